"""Measurement checks: spike rejection, plausible rate, stuck sensor, range and lost measurement."""

from micropython import const
from time import ticks_diff

# Result bits of SignalCheck.update(); 0 means this scan's value is valid.
CHK_FAULT = const(1)  # the sensor driver reported a fault (rail, open loop...)
CHK_RANGE = const(2)  # outside low..high
CHK_RATE = const(4)  # changed faster than rate_per_s since the last valid value
CHK_STUCK = const(8)  # moved less than stuck_band over stuck_ms while the output moved
CHK_LOST = const(16)  # invalid_limit scans in a row without a valid value: dose nothing

VALUE_MAX = const(100000)  # |low|, |high| limit: keeps |change| * 1000 below 2**30
RATE_MAX = const(10000)  # rate_per_s limit
RATE_MS_MAX = const(60000)  # elapsed time used by the rate check is capped here
_COUNT_MAX = const(1000000)


class SignalCheck:
    """Checks one measured signal scan by scan. Defaults are for pH in milli-pH (DOMAIN.md §5):
    range 0-14, > 0.5 pH/s implausible, < 0.002 pH over 120 s while the output moves is stuck,
    3 invalid scans is lost. `output` (any unit) is what the loop drives; output_move is its change
    that proves the loop was acting, if made response_ms or more before the stuck window ends."""

    def __init__(self, low=0, high=14000, rate_per_s=500, stuck_band=2, stuck_ms=120000,
                 output_move=1, invalid_limit=3):
        if not -VALUE_MAX <= low < high <= VALUE_MAX:
            raise ValueError("low/high")
        if not 0 < rate_per_s <= RATE_MAX or invalid_limit < 1 or stuck_ms <= 0:
            raise ValueError("limits")
        self.low = low
        self.high = high
        self.rate_per_s = rate_per_s
        self.stuck_band = stuck_band
        self.stuck_ms = stuck_ms
        self.output_move = output_move
        self.response_ms = 0  # the electrode's response time (dead time and lag)
        self.invalid_limit = invalid_limit
        self.value = 0  # last valid (median-filtered) value
        self.flags = CHK_LOST  # of the last scan: 0 when its value was valid; CHK_LOST while
        # invalid_limit scans in a row had no valid value
        self.invalid_scans = invalid_limit  # nothing measured yet: start lost
        self.stuck = False
        self._valid_ms = 0
        self._have_value = False
        # median-of-3 history, newest first; reseeded from one sample after a loss
        self._m0 = 0
        self._m1 = 0
        self._m2 = 0
        self._m_reseed = True
        # stuck window: start time, value and output extremes since then
        self._st_running = False
        self._st_ms = 0
        self._v_lo = 0
        self._v_hi = 0
        self._o_lo = 0
        self._o_hi = 0

    def _median(self, x):
        if self._m_reseed:
            self._m1 = self._m2 = x
            self._m_reseed = False
        else:
            self._m2 = self._m1
            self._m1 = self._m0
        self._m0 = x
        a = x
        b = self._m1
        c = self._m2
        if a > b:
            a, b = b, a
        if b > c:
            b = c
        return a if a > b else b

    def _stuck_restart(self, v, now_ms, output):
        self._st_running = True
        self._st_ms = now_ms
        self._v_lo = self._v_hi = v
        self._o_lo = self._o_hi = output

    def _stuck_update(self, v, now_ms):
        if not self._st_running:
            return False
        if v < self._v_lo:
            self._v_lo = v
        elif v > self._v_hi:
            self._v_hi = v
        if self._v_hi - self._v_lo >= self.stuck_band:
            self.stuck = False
            self._st_running = False  # restarted below with this scan's output
        elif ticks_diff(now_ms, self._st_ms) >= self.stuck_ms:
            if self._o_hi - self._o_lo >= self.output_move:
                self.stuck = True  # held until the value moves again
            else:
                self._st_running = False  # the loop was idle: no evidence either way
        return self.stuck

    def update(self, raw, sensor_ok, now_ms, output):
        """One scan: raw value, driver status, time (ms ticks), loop output -> CHK_* bits (0 = valid)."""
        # an output move counts only if the electrode has had its response time to answer it
        # before the window ends
        if ticks_diff(now_ms, self._st_ms) < self.stuck_ms - self.response_ms:
            if output < self._o_lo:
                self._o_lo = output
            elif output > self._o_hi:
                self._o_hi = output
        flags = 0
        if not sensor_ok:
            flags = CHK_FAULT
        elif raw < self.low or raw > self.high:
            flags = CHK_RANGE
        else:
            if self.invalid_scans >= self.invalid_limit:
                self._m_reseed = True  # after a loss, old samples must not vote in the median
            m = self._median(raw)
            # stuck is judged on raw samples: the median would hide the noise of a live electrode
            if self._stuck_update(raw, now_ms):
                flags = CHK_STUCK
            if not self._st_running:
                self._stuck_restart(raw, now_ms, output)
            if self._have_value:
                dt = ticks_diff(now_ms, self._valid_ms)
                if dt > RATE_MS_MAX or dt < 0:
                    dt = RATE_MS_MAX  # negative: so long ago that the tick counter wrapped
                elif dt < 1:
                    dt = 1
                d = m - self.value
                if d < 0:
                    d = -d
                if d * 1000 > self.rate_per_s * dt:
                    flags |= CHK_RATE
            if flags == 0:
                self.value = m
                self._valid_ms = now_ms
                self._have_value = True
        if flags == 0:
            self.invalid_scans = 0
        else:
            if self.invalid_scans < _COUNT_MAX:
                self.invalid_scans += 1
            if self.invalid_scans >= self.invalid_limit:
                flags |= CHK_LOST
        self.flags = flags
        return flags
