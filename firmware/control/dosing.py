"""Dosing envelope: hard caps and interlocks on every base dose, enforced independently of the PID."""

from array import array
from micropython import const
from time import ticks_add, ticks_diff
from fixedpoint import muldiv as _muldiv  # a module name tests can swap for a checking one

# Units: dose µL, pump rate µL/min, time ms (ticks), pH milli-pH, flow mL/min.
# Every grant is a bounded volume; the pump runs for .pump_ms to deliver it, so a lost link or a
# stuck controller can never keep a pump running (DOMAIN.md §4).

# .blocked bits: why the last request was refused (dose 0)
BLOCK_DISABLED = const(1)  # not enabled (the state after reset)
BLOCK_TRIP = const(2)  # high-pH trip latched
BLOCK_PH_FAULT = const(4)  # no valid pH
BLOCK_PH_STALE = const(8)  # the last valid pH is older than stale_ms
BLOCK_NO_FLOW = const(16)  # feed flow faulted or below min_flow_ml_min
BLOCK_OFF_TIME = const(32)  # the last dose plus the minimum off time has not passed

# .cut bits: which cap cut the last request
CUT_PERIOD = const(1)
CUT_HOUR = const(2)

DOSE_MAX = const(10000000)  # µL: largest period cap; larger requests are cut to it
HOUR_MAX = const(500000000)  # µL: largest hourly cap
PUMP_MAX = const(1000000)  # µL/min
PERIOD_MS_MAX = const(60000)
_COUNT_MAX = const(0x1FFFFFFF)  # counters saturate here, never become big ints


def rate_to_dose(out, full_ul_min, period_ms):
    """Dose (µL) for one period from a PID output in 0.01 % (0..10000) of a pump's full scale."""
    if out <= 0:
        return 0
    if out > 10000:
        out = 10000
    # µL/min first (full <= PUMP_MAX), then over the period (<= PERIOD_MS_MAX, 10 ms resolution)
    return _muldiv(_muldiv(full_ul_min, out, 10000), period_ms // 10, 6000)


class Envelope:
    """Caps and interlocks for one dosing pump. grant() every control period, also with 0.

    period_ul: cap per period of period_ms (cut to what the pump can deliver in a period);
    hour_ul: cap over any rolling window_ms, kept in buckets of bucket_ms;
    pump_ul_min: pump rate, sets how long each dose runs; min_off_ms: pump off time after a dose;
    min_flow_ml_min: no dosing below this feed flow; stale_ms: oldest usable pH;
    trip_mph: high-pH trip, latched until reset_trip()."""

    def __init__(self, period_ul, hour_ul, pump_ul_min, period_ms=2000, min_off_ms=0,
                 min_flow_ml_min=1, stale_ms=3000, trip_mph=5500, bucket_ms=60000,
                 window_ms=3600000):
        if not 0 < pump_ul_min <= PUMP_MAX:
            raise ValueError("pump_ul_min")
        if not 10 <= period_ms <= PERIOD_MS_MAX:
            raise ValueError("period_ms")
        if not 0 <= period_ul <= DOSE_MAX or not 0 <= hour_ul <= HOUR_MAX:
            raise ValueError("caps")
        if bucket_ms <= 0 or window_ms % bucket_ms or not 0 < window_ms <= 86400000:
            raise ValueError("window_ms")
        if not 0 <= min_off_ms <= 86400000 or stale_ms <= 0:
            raise ValueError("times")
        capacity = rate_to_dose(10000, pump_ul_min, period_ms)
        self.period_ul = period_ul if period_ul < capacity else capacity
        self.hour_ul = hour_ul
        self.pump_ul_min = pump_ul_min
        self.period_ms = period_ms
        self.min_off_ms = min_off_ms
        self.min_flow_ml_min = min_flow_ml_min
        self.stale_ms = stale_ms
        self.trip_mph = trip_mph
        self.bucket_ms = bucket_ms
        # one bucket more than the window: the sum then covers at least the last window_ms
        self._buckets = array("i", [0] * (window_ms // bucket_ms + 1))
        self._bi = 0
        self._bucket_start = 0
        self._period_start = 0
        self._started = False
        self._next_ok = 0  # ticks when the pump may start again
        self._dosed = False
        self.enabled = False  # a reset leaves the pump off until the controller enables it
        self.tripped = False
        self.hour_used = 0  # µL granted within the rolling window
        self.period_used = 0  # µL granted in the current period
        self.granted = 0  # last grant, µL
        self.pump_ms = 0  # run time of the last grant
        self.blocked = 0  # BLOCK_* of the last request
        self.cut = 0  # CUT_* of the last request
        self.cuts = 0  # requests cut by a cap
        self.cut_ul = 0  # µL refused by caps (saturating)
        self.blocks = 0  # non-zero requests refused by an interlock
        self.trips = 0
        self.total_ul = 0  # µL granted since start (saturating)

    def reset_trip(self, ph_mph):
        """Clear a latched high-pH trip once the pH is back below the trip level; True if cleared."""
        if ph_mph < self.trip_mph:
            self.tripped = False
        return not self.tripped

    def _advance(self, now_ms):
        # roll the hourly buckets and the period forward to now
        if not self._started:
            self._started = True
            self._bucket_start = now_ms
            self._period_start = now_ms
            return
        steps = 0
        n = len(self._buckets)
        while ticks_diff(now_ms, self._bucket_start) >= self.bucket_ms:
            if steps == n:
                self._bucket_start = now_ms  # idle longer than the window: all expired
                break
            bi = self._bi + 1
            if bi == n:
                bi = 0
            self._bi = bi
            self.hour_used -= self._buckets[bi]
            self._buckets[bi] = 0
            self._bucket_start = ticks_add(self._bucket_start, self.bucket_ms)
            steps += 1
        if ticks_diff(now_ms, self._period_start) >= self.period_ms:
            self._period_start = now_ms
            self.period_used = 0

    def grant(self, request_ul, now_ms, ph_mph, ph_ok, ph_ms, flow_ml_min, flow_ok):
        """Dose allowed now (µL, may be 0) for request_ul; ph_ms is when ph_mph was measured.
        Sets .granted, .pump_ms, .blocked, .cut."""
        self._advance(now_ms)
        if ph_ok and ph_mph >= self.trip_mph and not self.tripped:
            self.tripped = True
            self.trips += 1
        blocked = 0
        if not self.enabled:
            blocked = BLOCK_DISABLED
        if self.tripped:
            blocked |= BLOCK_TRIP
        if not ph_ok:
            blocked |= BLOCK_PH_FAULT
        elif ticks_diff(now_ms, ph_ms) > self.stale_ms:
            blocked |= BLOCK_PH_STALE
        if not flow_ok or flow_ml_min < self.min_flow_ml_min:
            blocked |= BLOCK_NO_FLOW
        if self._dosed:
            if ticks_diff(now_ms, self._next_ok) < 0:
                blocked |= BLOCK_OFF_TIME
            else:
                self._dosed = False  # forget the old time before the tick counter wraps past it
        self.blocked = blocked
        self.cut = 0
        self.granted = 0
        self.pump_ms = 0
        if request_ul <= 0:
            return 0
        if blocked:
            if self.blocks < _COUNT_MAX:
                self.blocks += 1
            return 0
        req = request_ul if request_ul < DOSE_MAX else DOSE_MAX
        g = req
        room = self.period_ul - self.period_used
        if g > room:
            g = room
            self.cut = CUT_PERIOD
        room = self.hour_ul - self.hour_used
        if g > room:
            g = room
            self.cut |= CUT_HOUR
        if self.cut:
            if self.cuts < _COUNT_MAX:
                self.cuts += 1
            self.cut_ul += req - g
            if self.cut_ul > _COUNT_MAX:
                self.cut_ul = _COUNT_MAX
        if g <= 0:
            return 0
        self.period_used += g
        self.hour_used += g
        self._buckets[self._bi] += g
        self.total_ul += g
        if self.total_ul > _COUNT_MAX:
            self.total_ul = _COUNT_MAX
        # run time: g * 60000 / rate, as (g * 60) * 1000 / rate so no product passes 2**30
        self.pump_ms = _muldiv(g * 60, 1000, self.pump_ul_min)
        self._next_ok = ticks_add(now_ms, self.pump_ms + self.min_off_ms)
        self._dosed = True
        self.granted = g
        return g
