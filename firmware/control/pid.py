"""Stage pH controller: fixed-point PID with anti-windup, bumpless transfer and titration-curve scheduling."""

from array import array
from micropython import const
from fixedpoint import muldiv as _muldiv  # a module name tests can swap for a checking one

# Units: pH in milli-pH, time in ms, feed flow in mL/min. The output is in the caller's unit
# (0.01 % of pump full scale is the intended one: 0..10000), |limits| <= OUT_MAX.
# kp is output units per pH (per 1000 error units); ti_ms, td_ms are integral and derivative times.
#   out = ff + kp * (e + (1/ti) * integral(e dt) + td * de/dt) / 1000
# With a titration curve the error is (base(setpoint) - base(pH)) rescaled by the curve's mean
# slope: it follows the reagent needed rather than the pH distance, so one tuning holds across
# a curve whose gain varies 30x (DOMAIN.md §6).
# With a curve and feedforward on, the curve also sets the dose: ff = feed * base(setpoint) (curve
# in 0.1 mL per L feed, output in 0.01 mL/min), so a setpoint step moves it at once and the
# integral only trims the curve's error. With mix_s (the stage's holdup / throughput) a step in
# auto also doses (base(new) - base(old)) * feed * mix_s, the base that moves the contents along
# the curve, as fast as the limits allow; the feedback then waits until the electrode reads the
# new setpoint, at most wait_ms (its response), so it does not dose that step a second time.

MODE_OFF = const(0)  # output 0 (pumps off), controller reset
MODE_MANUAL = const(1)  # output follows .manual, rate limited
MODE_AUTO = const(2)  # closed loop
MODE_HOLD = const(3)  # output frozen at its last value

# .limited bits: what held the output back on the last scan
LIM_HIGH = const(1)
LIM_LOW = const(2)
LIM_RATE = const(4)

# Input ranges; with them every product below stays under 2**30 (see test_pid bounds tests).
PH_MIN = const(-1000)
PH_MAX = const(16000)
E_MAX = const(16000)  # error clamp (milli-pH or milli-pH equivalent)
BASE_MAX = const(10000)  # titration curve base-per-feed values lie in 0..BASE_MAX (the config's range)
CURVE_STEP_MIN = const(10)  # milli-pH between curve points, bounds extrapolation
CURVE_SPAN_MIN = const(100)  # milli-pH from first to last point: bounds the curve's mean slope
# The curve-mapped error is kept in 1/E_FINE milli-pH: an error worth a fraction of one curve
# unit or of one milli-pH must still move the integral, or the loop stalls short of the setpoint.
E_FINE = const(256)
OUT_MAX = const(100000)
KP_MAX = const(1000000)
TI_MAX = const(36000000)  # 10 h
TD_MAX = const(100000)
DT_MIN = const(100)
DT_MAX = const(10000)
FEED_MAX = const(1000000)  # mL/min
FF_GAIN_MAX = const(100000)  # output units per L/min of feed
CURVE_FF = const(10)  # ff_gain per curve base unit: curve in 0.1 mL, ff_gain in 0.01 mL per L feed
I_MAX = const(200000)  # integral clamp, 2 * OUT_MAX

_GAIN_DIV = const(1000)
_STEP_MAX = const(1 << 29)  # curve units * s
_MIX_MAX = const(3600)  # s
_WAIT_MAX = const(600000)  # ms


def _clamp(x, lo, hi):
    return lo if x < lo else (hi if x > hi else x)


class TitrationCurve:
    """Steady-state titration curve of a stage: points (milli-pH, base per feed) from an
    identification run or a plant file, strictly increasing in both; base within 0..BASE_MAX in
    0.1 mL per L feed (any unit for scheduling alone; the curve feedforward needs this one).
    Linear between points, extrapolated beyond.
    The points are kept in the arrays .ph and .base."""

    def __init__(self, points):
        n = len(points)
        if n < 2:
            raise ValueError("need 2 points")
        self._n = n
        self.frac = 0  # set by base_fine()
        self.ph = array("i", [0] * n)
        self.base = array("i", [0] * n)
        for k in range(n):
            ph, base = points[k]
            if not PH_MIN <= ph <= PH_MAX or not 0 <= base <= BASE_MAX:
                raise ValueError("point out of range")
            if k and (ph - self.ph[k - 1] < CURVE_STEP_MIN or base <= self.base[k - 1]):
                raise ValueError("points must increase")
            self.ph[k] = ph
            self.base[k] = base
        if self.ph[n - 1] - self.ph[0] < CURVE_SPAN_MIN:
            raise ValueError("curve spans too little pH")

    def segment(self, mph):
        """Index i of the segment (points i, i+1) used for mph; the end segments extend outwards."""
        i = 1
        last = self._n - 1
        while i < last and mph >= self.ph[i]:
            i += 1
        return i - 1

    def base_at(self, mph):
        """Base per feed at mph (clamped to PH_MIN..PH_MAX)."""
        mph = _clamp(mph, PH_MIN, PH_MAX)
        i = self.segment(mph)
        p0 = self.ph[i]
        b0 = self.base[i]
        return b0 + _muldiv(mph - p0, self.base[i + 1] - b0, self.ph[i + 1] - p0)

    def base_fine(self, mph):
        """Base per feed at mph as whole units plus .frac in 1/E_FINE of a unit (0 <= frac <
        E_FINE): the fraction base_at rounds away. Returns the whole part; sets .frac."""
        mph = _clamp(mph, PH_MIN, PH_MAX)
        i = self.segment(mph)
        p0 = self.ph[i]
        w = self.ph[i + 1] - p0
        s = self.base[i + 1] - self.base[i]
        a = mph - p0
        q = a // w
        t = (a - q * w) * s  # below w * s, the product muldiv forms too
        r = t % w
        self.frac = r * E_FINE // w
        return self.base[i] + q * s + t // w


class Pid:
    """PID for one stage. update() once per control scan; set_mode(), set_setpoint(), .manual.
    rate_max: largest output change per scan; dead_band: milli-pH around the setpoint treated as
    on target; ff_gain: output units per L/min of feed (base dose proportional to feed flow); with
    a curve any non-zero ff_gain turns on the curve's feedforward. .mix_s, .wait_ms: see above."""

    def __init__(self, kp, ti_ms, td_ms=0, out_min=0, out_max=10000, rate_max=10000,
                 dead_band=30, ff_gain=0, curve=None):
        if not -OUT_MAX <= out_min < out_max <= OUT_MAX:
            raise ValueError("out_min/out_max")
        if not 0 < rate_max <= 2 * OUT_MAX:
            raise ValueError("rate_max")
        if not 0 <= dead_band <= 2000:
            raise ValueError("dead_band")
        if not 0 <= ff_gain <= FF_GAIN_MAX:
            raise ValueError("ff_gain")
        self.out_min = out_min
        self.out_max = out_max
        self.rate_max = rate_max
        self.dead_band = dead_band
        self.ff_gain = ff_gain
        self.curve = curve
        self.mode = MODE_OFF
        self.out = 0
        self.manual = 0  # manual output; tracks .out in auto so auto -> manual is bumpless
        self.setpoint = 7000
        self.error = 0  # last controller error (milli-pH or equivalent), after dead band
        self.p = 0
        self.i = 0  # integral term, output units
        self.d = 0
        self.ff = 0
        self.limited = 0
        self._rem_t = 0  # integral remainders: error*ms below one ti, output/1000 below one unit
        self._rem_k = 0
        self._rem_e = 0  # fine error not yet integrated: below one milli-pH, carried to the next scan
        self._e_fine = 0  # last error in 1/E_FINE milli-pH
        self._x_sp_whole = 0
        self._x_sp_frac = 0
        self._e_prev = 0
        self._d_ready = False
        self._track = True  # next auto scan sets the integral from the output: bumpless
        self._x_sp = 0
        self.mix_s = 0
        self.wait_ms = 0
        self._step_base = 0  # base still to dose for the last setpoint step, curve units * s
        self._wait = 0  # ms the feedback still waits for the electrode
        self._dp = 1
        self._dx = 1
        self._dx_lim = 0
        self.set_tuning(kp, ti_ms, td_ms)
        self.set_setpoint(7000)

    def set_tuning(self, kp, ti_ms, td_ms=0):
        """New gains (kp output units per pH, ti_ms 0 = no integral, td_ms); bumpless."""
        if not 1 <= kp <= KP_MAX or not 0 <= ti_ms <= TI_MAX or not 0 <= td_ms <= TD_MAX:
            raise ValueError("tuning")
        self.kp = kp
        self.ti_ms = ti_ms
        self.td_ms = td_ms
        # an error beyond e_lim already drives P past the whole output span: clamp it there,
        # which also bounds kp * e by span * 1000
        e_lim = (self.out_max - self.out_min) * _GAIN_DIV // kp
        self._e_lim = e_lim if e_lim < E_MAX else E_MAX
        self._track = True

    def set_setpoint(self, mph):
        """Setpoint in milli-pH. With a curve, precomputes its base and the local slope there."""
        mph = _clamp(mph, PH_MIN, PH_MAX)
        self.setpoint = mph
        self._d_ready = False  # no derivative kick from a setpoint step
        c = self.curve
        if c is not None:
            # Errors in base-equivalent units are scaled back to pH by the slope of the whole
            # curve, not of the segment holding the setpoint: then one kp gives the same loop
            # gain at every setpoint, where a local slope made it vary several-fold.
            n = c._n - 1
            self._dp = c.ph[n] - c.ph[0]
            self._dx = c.base[n] - c.base[0]
            x = c.base_at(mph)
            dx = _clamp(x, 0, BASE_MAX) - _clamp(self._x_sp, 0, BASE_MAX)
            if self.mode == MODE_AUTO and self.ff_gain and self.mix_s and dx:
                # a step in auto: the base that moves the stage contents along the curve
                dx = _clamp(self._step_base + dx * _clamp(self.mix_s, 0, _MIX_MAX), -_STEP_MAX, _STEP_MAX)
                self._step_base = dx
                w = _clamp(self.wait_ms, 0, _WAIT_MAX)
                self._wait = w if dx > 0 else -w  # the sign says which way the pH is to move
            self._x_sp = x
            self._x_sp_whole = c.base_fine(mph)
            self._x_sp_frac = c.frac
            self._dx_lim = _muldiv(E_MAX, self._dx, self._dp)

    def set_mode(self, mode):
        """MODE_OFF, MODE_MANUAL, MODE_AUTO or MODE_HOLD. Entering auto is bumpless."""
        if mode == MODE_OFF:
            self.out = 0
            self.manual = 0
            self.i = 0
        elif mode != MODE_AUTO and mode != MODE_MANUAL and mode != MODE_HOLD:
            raise ValueError("mode")
        if mode != self.mode:
            self._step_base = self._wait = 0
            self._track = True
            self._d_ready = False
        self.mode = mode

    def _error(self, pv):
        # pH error with the dead band removed (continuous at its edges), then mapped through the
        # curve; returns the error in milli-pH (rounded, for P and D) and sets ._e_fine, the same
        # in 1/E_FINE milli-pH, for the integral
        sp = self.setpoint
        e = sp - _clamp(pv, PH_MIN, PH_MAX)
        db = self.dead_band
        if e > db:
            e -= db
        elif e < -db:
            e += db
        else:
            e = 0
        c = self.curve
        if c is not None and e:
            whole = self._x_sp_whole - c.base_fine(sp - e)
            lim = self._dx_lim
            if whole >= lim:
                dx = lim * E_FINE
            elif whole <= -lim:
                dx = -lim * E_FINE
            else:
                dx = whole * E_FINE + self._x_sp_frac - c.frac
            fine = _muldiv(dx, self._dp, self._dx)
        else:
            fine = e * E_FINE
        lim = self._e_lim * E_FINE
        fine = _clamp(fine, -lim, lim)
        self._e_fine = fine
        return (fine + (E_FINE >> 1)) // E_FINE

    def _limit(self, u):
        # output limits, then the per-scan rate limit
        lim = 0
        if u > self.out_max:
            u = self.out_max
            lim = LIM_HIGH
        elif u < self.out_min:
            u = self.out_min
            lim = LIM_LOW
        step = u - self.out
        if step > self.rate_max:
            u = self.out + self.rate_max
            lim |= LIM_RATE
        elif step < -self.rate_max:
            u = self.out - self.rate_max
            lim |= LIM_RATE
        self.limited = lim
        return u

    def update(self, pv, dt_ms, feed_ml_min=0):
        """One control scan: measured pH (milli-pH), ms since the last scan, feed flow -> output."""
        mode = self.mode
        if mode == MODE_OFF:
            self.out = 0
            self.limited = 0
            return 0
        if mode == MODE_HOLD:
            return self.out
        if mode == MODE_MANUAL:
            self.out = self._limit(self.manual)
            return self.out
        dt = _clamp(dt_ms, DT_MIN, DT_MAX)
        feed = _clamp(feed_ml_min, 0, FEED_MAX)
        g = self.ff_gain
        if g and self.curve is not None:
            g = _clamp(self._x_sp, 0, BASE_MAX) * CURVE_FF
        ff = _clamp(_muldiv(feed, g, 1000), 0, I_MAX)
        w = self._wait
        if w and (w > 0) == (pv < self.setpoint) and (w > dt or w < -dt):
            # the electrode has not yet seen the base dosed for the setpoint change: no feedback
            # until it reads the new setpoint or the wait is over
            self._wait = w - dt if w > 0 else w + dt
            e = self._e_fine = 0
        else:
            w = self._wait = 0
            e = self._error(pv)
        kp = self.kp
        p = _muldiv(e, kp, _GAIN_DIV)
        d = 0
        if self._d_ready and self.td_ms:
            # derivative of the error; setpoint steps and mode changes skip one scan
            d_e = _clamp(_muldiv(e - self._e_prev, self.td_ms, dt), -self._e_lim, self._e_lim)
            d = _muldiv(d_e, kp, _GAIN_DIV)
        self._e_prev = e
        self._d_ready = not w
        i = self.i
        rem_t = self._rem_t
        rem_k = self._rem_k
        rem_e = self._rem_e
        ti = self.ti_ms
        # the integral takes the fine error in whole milli-pH and carries the rest to the next
        # scan: a steady error of a fraction of a milli-pH still moves it, on average exactly
        x = self._e_fine + rem_e
        e_i = x // E_FINE
        rem_e = x - e_i * E_FINE
        if self._track:
            # bumpless: the integral takes whatever makes this scan's output equal the last one
            i = _clamp(self.out - ff - p - d, -I_MAX, I_MAX)
            rem_t = rem_k = rem_e = 0
            self.i = i
            self._rem_t = self._rem_k = self._rem_e = 0
            self._track = False
        elif ti and e_i:
            # integral += kp * e * dt / ti / 1000, exactly: all remainders are carried
            x = e_i * (dt if dt < ti else ti) + rem_t
            a = x // ti
            rem_t = x - a * ti
            x = a * kp + rem_k
            a = x // _GAIN_DIV
            rem_k = x - a * _GAIN_DIV
            i = _clamp(i + a, -I_MAX, I_MAX)
        u_raw = ff + p + i + d
        b = self._step_base
        if b:
            # what is left of the base for the setpoint step: the stage also moves towards the new
            # setpoint on the dose the curve gives it (by dt / mix_s of the way per scan) ...
            dt10 = dt // 10
            m = _clamp(self.mix_s, 0, _MIX_MAX) * 100
            b = b - _muldiv(b, dt10, m) if dt10 < m else 0
            up = b > 0
            # ... and the rest is dosed as far as the limits leave room: output units, then
            # curve units * s at this feed flow
            if up:
                h = self.out + self.rate_max
                h = (h if h < self.out_max else self.out_max) - u_raw
            else:
                h = self.out - self.rate_max
                h = u_raw - (h if h > self.out_min else self.out_min)
            if b and h > 0:
                f = feed if feed else 1
                x = _muldiv(h, dt10, f)
                a = b if up else -b
                if x >= a:
                    h = _muldiv(a, f, dt10)
                    x = a
                b = b - x if up else b + x
                u_raw += h if up else -h
            self._step_base = b
        u = self._limit(u_raw)
        # anti-windup by conditional integration: keep the new integral unless the output was
        # held back in the direction the error pushes it
        if not ((u < u_raw and e_i > 0) or (u > u_raw and e_i < 0)):
            self.i = i
            self._rem_t = rem_t
            self._rem_k = rem_k
            self._rem_e = rem_e
        self.error = e
        self.p = p
        self.d = d
        self.ff = ff
        self.out = u
        self.manual = u
        return u
