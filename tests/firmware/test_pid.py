"""Tests for control.pid: P/I/D arithmetic, dead band, limits, anti-windup, transfers, curve, feedforward."""

from control import pid
from fwlib_bounds import checked_muldiv as _checked

_SMALL = 1 << 30

# Mixer-stage titration (DOMAIN.md §6): base 0 / 0.4 / 0.7 / 0.76 mol per L feed -> pH 0.69 / 1.18 /
# 2.06 / 7, base in 0.1 mmol/L
_MIXER = ((690, 0), (1180, 4000), (2060, 7000), (7000, 7600))


def _auto(c, sp, pv=None, dt=1000):
    c.set_setpoint(sp)
    c.set_mode(pid.MODE_AUTO)
    return c.update(sp if pv is None else pv, dt)


def test_proportional_only():
    c = pid.Pid(kp=1000, ti_ms=0, dead_band=0, out_min=-5000, out_max=5000)
    assert _auto(c, 2000, 2000) == 0
    assert c.update(1900, 1000) == 100  # 0.1 pH low -> +100 at 1000 per pH
    assert c.update(2300, 1000) == -300
    assert c.p == -300 and c.error == -300


def test_integral_repeats_p_every_ti():
    c = pid.Pid(kp=1000, ti_ms=10000, dead_band=0, out_max=10000)
    _auto(c, 2000)
    out = c.update(1000, 1000)  # e = 1 pH: P = 1000, I += 100 per 1 s scan
    assert out == 1100
    for _ in range(9):
        out = c.update(1000, 1000)
    assert out == 2000 and c.i == 1000


def test_integral_keeps_fractions():
    # kp * e * dt / ti / 1000 = 7 * 3 * 1000 / 10000 / 1000 = 0.0021 per scan: 2.1 after 1000 scans
    c = pid.Pid(kp=7, ti_ms=10000, dead_band=0, out_min=-100, out_max=100)
    _auto(c, 2000)
    for _ in range(1000):
        c.update(1997, 1000)
    assert c.i == 2


def test_dead_band():
    c = pid.Pid(kp=1000, ti_ms=5000)  # dead band 30 milli-pH
    _auto(c, 2000)
    c.manual = 0
    start = c.out
    for pv in (1970, 2030, 2000, 1985):
        assert c.update(pv, 1000) == start and c.error == 0
    c.update(1960, 1000)  # 0.04 below: acts on the 0.01 outside the band
    assert c.error == 10


def test_output_limits_and_anti_windup():
    c = pid.Pid(kp=100, ti_ms=5000, dead_band=0, out_min=0, out_max=1000, rate_max=1000)
    _auto(c, 2000)
    for _ in range(200):
        out = c.update(0, 1000)  # 2 pH low for 200 s
    assert out == 1000 and c.limited & pid.LIM_HIGH
    assert c.i <= 1000  # not wound up
    out = c.update(2100, 1000)  # now 0.1 pH high: the output leaves the limit at once
    assert out < 1000 and c.limited == 0


def test_windup_without_limits_would_be_large():
    # the same run with a wide output range shows how much the integral would have grown
    c = pid.Pid(kp=100, ti_ms=5000, dead_band=0, out_min=0, out_max=100000, rate_max=100000)
    _auto(c, 2000)
    for _ in range(200):
        c.update(0, 1000)
    assert c.i > 7000


def test_rate_limit_per_scan():
    c = pid.Pid(kp=5000, ti_ms=0, dead_band=0, rate_max=250)
    _auto(c, 2000)
    prev = c.out
    for _ in range(10):
        out = c.update(1000, 1000)
        assert out - prev <= 250
        prev = out
    assert c.limited & pid.LIM_RATE or out == 5000
    assert out == 2500


def test_bumpless_manual_to_auto():
    c = pid.Pid(kp=2000, ti_ms=60000, dead_band=0, rate_max=300)
    c.set_setpoint(2000)
    c.set_mode(pid.MODE_MANUAL)
    c.manual = 4000
    for _ in range(20):
        c.update(1500, 1000)
    assert c.out == 4000
    c.set_mode(pid.MODE_AUTO)
    assert c.update(1500, 1000) == 4000  # no bump despite a 0.5 pH error
    out = c.update(1500, 1000)
    assert 4000 < out <= 4300


def test_bumpless_auto_to_manual_and_hold():
    c = pid.Pid(kp=2000, ti_ms=60000, dead_band=0)
    _auto(c, 2000)
    for _ in range(30):
        c.update(1800, 1000)
    out = c.out
    c.set_mode(pid.MODE_MANUAL)
    assert c.update(1000, 1000) == out  # manual starts where auto left off
    c.set_mode(pid.MODE_HOLD)
    assert c.update(500, 1000) == out
    c.set_mode(pid.MODE_AUTO)
    assert c.update(1800, 1000) == out


def test_manual_output_is_limited():
    c = pid.Pid(kp=100, ti_ms=0, out_max=10000, rate_max=1000)
    c.set_mode(pid.MODE_MANUAL)
    c.manual = 50000
    assert c.update(2000, 1000) == 1000
    for _ in range(20):
        c.update(2000, 1000)
    assert c.out == 10000 and c.limited & pid.LIM_HIGH


def test_off_forces_zero():
    c = pid.Pid(kp=2000, ti_ms=60000, dead_band=0)
    _auto(c, 2000)
    for _ in range(20):
        c.update(1000, 1000)
    assert c.out > 0
    c.set_mode(pid.MODE_OFF)
    assert c.out == 0 and c.update(1000, 1000) == 0


def test_bad_mode_and_tuning_raise():
    c = pid.Pid(kp=100, ti_ms=0)
    for bad in ((lambda: c.set_mode(9)), (lambda: c.set_tuning(0, 0)),
                (lambda: c.set_tuning(10, -1)), (lambda: pid.Pid(10, 0, out_min=5, out_max=5))):
        try:
            bad()
        except ValueError:
            continue
        assert False


def test_derivative_on_error_without_setpoint_kick():
    c = pid.Pid(kp=1000, ti_ms=0, td_ms=10000, dead_band=0, out_min=-10000, out_max=10000,
                rate_max=20000)
    _auto(c, 2000)
    c.update(2000, 1000)
    c.update(1990, 1000)  # pH falling 0.01 per s: D = kp * td * 10/1000 per s = 100
    assert c.d == 100 and c.p == 10
    c.set_setpoint(2500)  # a setpoint step: P jumps, D does not
    c.update(1990, 1000)
    assert c.d == 0 and c.p == 510


def test_feedforward_from_feed_flow():
    c = pid.Pid(kp=1000, ti_ms=0, dead_band=0, ff_gain=2000, rate_max=20000)
    _auto(c, 2000)
    base = c.update(2000, 1000, 1500)
    assert c.ff == 3000
    out = c.update(2000, 1000, 3000)  # feed doubles: base follows in the same scan
    assert c.ff == 6000 and out - base == 3000


# A neutralisation tank's curve in the board's unit, 0.1 mL of base dose per L of feed
_TANK = ((5000, 1100), (6000, 1270), (7000, 1560), (8500, 1680), (9700, 1860))


def _tank_pid(**kw):
    c = pid.Pid(kp=6000, ti_ms=90000, dead_band=0, out_max=30000, rate_max=30000, ff_gain=1,
                curve=pid.TitrationCurve(_TANK))
    for k, v in kw.items():
        setattr(c, k, v)
    _auto(c, 7000)
    return c


def test_curve_feedforward_follows_the_setpoint():
    # ff = feed * base(setpoint): 996 mL/min * 156.0 mL/L -> 155.4 mL/min (0.01 mL/min units)
    c = _tank_pid()
    c.update(7000, 5000, 996)
    assert c.ff == 15538
    c.set_setpoint(8500)
    c.update(7000, 5000, 996)
    assert c.ff == 16733  # the new setpoint's dose in the same scan, not the one ff_gain was set for
    c.update(7000, 5000, 498)
    assert c.ff == 8366  # and still in proportion to the feed
    off = pid.Pid(kp=6000, ti_ms=0, dead_band=0, out_max=30000, ff_gain=0, curve=pid.TitrationCurve(_TANK))
    _auto(off, 8500)
    off.update(8500, 5000, 996)
    assert off.ff == 0  # feedforward 0 still means none


def test_setpoint_step_doses_the_base_that_moves_the_stage_along_the_curve():
    c = _tank_pid(mix_s=90, wait_ms=60000)
    c.update(7000, 5000, 1000)
    c.set_setpoint(8500)  # 12.0 mL/L more at 1 L/min for a 90 s holdup: 18 mL at once
    extra = 0
    outs = []
    for _ in range(4):
        u = c.update(7000, 5000, 1000)
        outs.append(u)
        extra += (u - c.ff - c.i) * 5000 // 6000  # 0.01 mL/min over 5 s -> µL
    assert outs[0] == 30000 and 16800 < outs[1] < 30000  # full pump while the step lasts ...
    assert outs[2] == outs[3] == c.ff + c.i == 16800  # ... then the dose the curve gives the new setpoint
    # 18 mL less what the stage gains on the new dose alone meanwhile (dt / mix_s per scan)
    assert abs(extra - 16667) <= 2, extra
    c.set_setpoint(6000)  # down: the dose stops until the acid has done the same
    assert c.update(7000, 5000, 1000) == 0


def test_step_base_needs_auto_feedforward_and_a_mix_time():
    for kw, mode in ((dict(mix_s=0), pid.MODE_AUTO), (dict(mix_s=90, ff_gain=0), pid.MODE_AUTO),
                     (dict(mix_s=90), pid.MODE_MANUAL)):
        c = _tank_pid(**kw)
        c.update(7000, 5000, 1000)
        c.set_mode(mode)
        c.set_setpoint(8500)
        assert c._step_base == 0 and c._wait == 0, kw
    c = _tank_pid(mix_s=90)
    c.set_setpoint(8500)
    c.set_mode(pid.MODE_MANUAL)  # a mode change drops what was left of the step
    assert c._step_base == 0 and c._wait == 0


def test_feedback_waits_for_the_electrode_after_a_setpoint_step():
    c = _tank_pid(mix_s=90, wait_ms=30000)
    c.update(7000, 5000, 1000)
    i = c.i
    c.set_setpoint(8500)
    for _ in range(5):  # the electrode still reads the old pH: no P, I or D on it
        c.update(7000, 5000, 1000)
        assert c.error == 0 and c.p == 0 and c.d == 0 and c.i == i
    c.update(7000, 5000, 1000)  # 30 s on: the loop acts on what it reads
    assert c.error > 0 and c.p > 0
    # reading the new setpoint (or beyond) ends the wait at once
    c.set_setpoint(6000)
    c.update(8400, 5000, 1000)
    assert c.error == 0
    c.update(5900, 5000, 1000)
    assert c.error > 0


def test_curve_interpolates_and_extrapolates():
    curve = pid.TitrationCurve(_MIXER)
    assert curve.base_at(690) == 0 and curve.base_at(1180) == 4000
    assert curve.base_at(1620) == 5500  # halfway 1.18 -> 2.06
    assert curve.base_at(7000) == 7600
    assert curve.base_at(8235) == 7750  # beyond the last point: the last segment continues
    assert curve.base_at(445) == -2000
    assert curve.segment(2060) == 2 and curve.segment(100) == 0 and curve.segment(9000) == 2


def test_curve_rejects_bad_points():
    for pts in (((1000, 0),), ((1000, 0), (1000, 5)), ((1000, 5), (2000, 5)),
                ((1000, 0), (1005, 10)), ((1000, 0), (2000, pid.BASE_MAX + 1)),
                ((1000, 0), (1050, 10), (1099, 20))):  # spans less than CURVE_SPAN_MIN
        try:
            pid.TitrationCurve(pts)
        except ValueError:
            continue
        assert False, pts


def _reagent_error(curve, sp, pv):
    # base needed to go from pv to sp, in pH by the mean slope of the whole curve
    return round((curve.base_at(sp) - curve.base_at(pv)) * (7000 - 690) / 7600)


def test_curve_error_is_the_reagent_needed_scaled_by_the_mean_slope():
    curve = pid.TitrationCurve(_MIXER)
    c = pid.Pid(kp=1000, ti_ms=0, dead_band=0, out_min=-10000, out_max=10000, curve=curve)
    _auto(c, 2000)
    c.update(1900, 1000)
    assert abs(c.error - _reagent_error(curve, 2000, 1900)) <= 1
    # 0.1 pH below 2.0 sits on a part 3.4x flatter than the curve's mean: 3.4x the action
    assert 270 <= c.error <= 300


def test_curve_schedules_gain_across_the_titration():
    # 2 pH above the setpoint on the steep part needs little acid-equivalent; 1 pH below on the
    # flat acid part needs much base: the action follows the reagent, not the pH distance
    curve = pid.TitrationCurve(_MIXER)
    c = pid.Pid(kp=1000, ti_ms=0, dead_band=0, out_min=-10000, out_max=10000, curve=curve)
    _auto(c, 2000)
    c.update(4000, 1000)
    high = c.error
    assert abs(high - _reagent_error(curve, 2000, 4000)) <= 1 and -400 < high < -300
    c.update(1000, 1000)
    low = c.error
    assert abs(low - _reagent_error(curve, 2000, 1000)) <= 1 and low > 3000
    plain = pid.Pid(kp=1000, ti_ms=0, dead_band=0, out_min=-10000, out_max=10000)
    _auto(plain, 2000)
    plain.update(4000, 1000)
    assert plain.error == -2000


def test_one_kp_gives_the_same_gain_at_every_setpoint():
    # the error per unit of reagent is the same whichever curve segment holds the setpoint
    curve = pid.TitrationCurve(_MIXER)
    gains = []
    for sp in (1000, 1800, 3000):
        c = pid.Pid(kp=1000, ti_ms=0, dead_band=0, out_min=-10000, out_max=10000, curve=curve)
        _auto(c, sp)
        pv = sp - 200  # inside the same curve segment
        c.update(pv, 1000)
        gains.append(c.error * 1000 // (curve.base_at(sp) - curve.base_at(pv)))
    assert max(gains) - min(gains) <= 10, gains  # integer rounding of base_at only


def test_curve_with_dead_band_is_continuous():
    c = pid.Pid(kp=1000, ti_ms=0, dead_band=30, curve=pid.TitrationCurve(_MIXER))
    _auto(c, 2000)
    c.update(1975, 1000)
    assert c.error == 0
    c.update(1969, 1000)
    assert 0 < c.error <= 3  # 1 milli-pH past the band on a segment 2.8x the mean slope


def _tank_ph(base):
    # the pH at which the tank's curve holds `base` (linear between its points)
    for (p0, b0), (p1, b1) in zip(_TANK, _TANK[1:]):
        if base <= b1:
            return p0 + (p1 - p0) * (base - b0) / (b1 - b0)
    return _TANK[-1][0]


def test_a_two_milli_ph_offset_is_removed():
    # On the flat part of the curve 2 milli-pH is a sixth of one curve unit: a loop that maps the
    # error in whole units sees no error there and holds the offset forever. The tank mixes in
    # 90 s, the loop runs every 5 s, feed 1 L/min; it starts 2 milli-pH above its setpoint.
    sp = 8000
    c = _tank_pid()
    c.set_setpoint(sp)
    c.set_mode(pid.MODE_MANUAL)
    c.manual = 16402  # 164.02 mL/min at 1 L/min: the tank holds 1640.2 curve units, pH 8.0025
    c.update(sp, 5000, 1000)
    c.set_mode(pid.MODE_AUTO)
    base = c.manual / 10  # the tank's contents, curve units (0.1 mL per L feed)
    readings = []
    for _ in range(720):  # an hour
        pv = int(_tank_ph(base))  # the electrode resolves 1 milli-pH
        readings.append(pv)
        u = c.update(pv, 5000, 1000)
        base += (u / 10 - base) * 5 / 90  # mixing towards what the dose holds
    assert readings[0] == sp + 2
    last = readings[-120:]  # the last 10 min: on setpoint within the electrode's resolution
    assert max(abs(r - sp) for r in last) <= 1 and sum(r - sp for r in last) < 60, last


def test_fine_error_moves_the_integral_below_one_curve_unit():
    c = _tank_pid()
    c.set_setpoint(8000)
    c.update(8000, 5000, 1000)
    i0 = c.i
    for _ in range(60):
        c.update(8001, 5000, 1000)  # 1 milli-pH high: an eighth of a curve unit here
    assert c.error in (0, -1) and c.i < i0


def test_explicit_products_bound():
    # the integrator's two products, outside _muldiv: e * dt + rem < ti, and a * kp + rem
    assert (pid.E_MAX + 1) * pid.DT_MAX + pid.TI_MAX < _SMALL
    # the fine error: whole curve units times E_FINE up to the clamp, a segment's width times
    # its rise in base_fine(), and the error with its carried fraction
    assert pid.E_MAX * pid.BASE_MAX // pid.CURVE_SPAN_MIN * pid.E_FINE + pid.E_FINE < _SMALL
    assert (pid.PH_MAX - pid.PH_MIN) * pid.BASE_MAX < _SMALL
    assert (pid.PH_MAX - pid.PH_MIN) // pid.CURVE_STEP_MIN * pid.BASE_MAX < _SMALL
    assert 2 * pid.E_MAX * pid.E_FINE < _SMALL
    assert 2 * pid.OUT_MAX * 1000 + pid.KP_MAX + 1000 < _SMALL
    assert 2 * pid.OUT_MAX * 1000 < _SMALL  # span * 1000 in set_tuning


def test_products_stay_small_at_extremes():
    peak = [0]
    orig = pid._muldiv
    pid._muldiv = _checked(orig, peak)
    try:
        curves = (None,
                  # steepest and flattest segments the limits allow
                  pid.TitrationCurve(((pid.PH_MIN, 0), (pid.PH_MIN + 10, pid.BASE_MAX - 1),
                                      (pid.PH_MAX, pid.BASE_MAX))),
                  pid.TitrationCurve(((pid.PH_MIN, 0), (pid.PH_MAX - 10, 1), (pid.PH_MAX, pid.BASE_MAX))),
                  pid.TitrationCurve(((pid.PH_MIN, 0), (pid.PH_MAX, pid.BASE_MAX))))
        for curve in curves:
            for kp in (1, 1000, pid.KP_MAX):
                for ti in (0, 1, pid.TI_MAX):
                    c = pid.Pid(kp, ti, pid.TD_MAX, -pid.OUT_MAX, pid.OUT_MAX, 2 * pid.OUT_MAX, 0,
                                pid.FF_GAIN_MAX, curve)
                    c.mix_s = 3600 if kp & 1 else 1  # longest holdup, and one shorter than a scan
                    c.wait_ms = 600000 if ti else 1
                    for sp in (-10 ** 6, pid.PH_MIN, 7000, pid.PH_MAX, 10 ** 6):
                        c.set_setpoint(sp)
                        c.set_mode(pid.MODE_AUTO)
                        for pv in (10 ** 6, pid.PH_MIN, -10 ** 6, pid.PH_MAX, 7000):
                            for dt in (0, pid.DT_MAX, 10 ** 6):
                                for feed in (10 ** 7, 0, 1):
                                    u = c.update(pv, dt, feed)
                                    assert -pid.OUT_MAX <= u <= pid.OUT_MAX
                                    assert abs(c.i) <= pid.I_MAX
                                    assert abs(c._rem_t) < (ti or 1) and 0 <= c._rem_k < 1000
                                    assert 0 <= c._rem_e < pid.E_FINE
                                    assert abs(c._e_fine) <= pid.E_MAX * pid.E_FINE
                                    assert abs(c._step_base) < 1 << 30
    finally:
        pid._muldiv = orig
    assert 0 < peak[0] < _SMALL, peak[0]
