"""Tests for sensors.checks: spikes, rate, stuck sensor, range, fault and lost measurement."""

from sensors import checks

_SMALL = 1 << 30


def _feed(c, values, t0=0, step=1000, output=0, ok=True):
    t = t0
    flags = 0
    for v in values:
        t += step
        flags = c.update(v, ok, t, output)
    return t, flags


def test_starts_lost_then_valid():
    c = checks.SignalCheck()
    assert c.flags & checks.CHK_LOST
    assert c.update(2000, True, 1000, 0) == 0
    assert c.flags == 0 and c.value == 2000 and c.invalid_scans == 0


def test_single_spike_is_removed_by_median():
    c = checks.SignalCheck()
    t, _ = _feed(c, (2000, 2001, 2002))
    t, flags = _feed(c, (5000,), t)  # one 3 pH spike, inside the range
    assert flags == 0 and c.value == 2002
    t, flags = _feed(c, (2003, 2004), t)
    assert flags == 0 and c.value == 2004


def test_two_sample_jump_is_implausible_rate():
    c = checks.SignalCheck()
    t, _ = _feed(c, (2000, 2000, 2000))
    t, flags = _feed(c, (5000,), t)
    assert flags == 0
    t, flags = _feed(c, (5000,), t)  # the median now follows: 3 pH in 1 s
    assert flags & checks.CHK_RATE and c.flags == flags and c.value == 2000


def test_rate_limit_half_ph_per_second():
    fast = checks.SignalCheck()
    t, _ = _feed(fast, (2000, 2000, 2000))
    v = 2000
    seen = 0
    for _ in range(5):
        v += 600  # 0.6 pH/s
        t, f = _feed(fast, (v,), t)
        seen |= f
    assert seen & checks.CHK_RATE
    slow = checks.SignalCheck()
    t, _ = _feed(slow, (2000, 2000, 2000))
    v = 2000
    for _ in range(10):
        v += 500  # exactly 0.5 pH/s is plausible
        t, f = _feed(slow, (v,), t)
        assert f == 0
    assert slow.value == v - 500  # one scan behind through the median


def test_rate_recovers_as_time_passes():
    # a real step of 2 pH is accepted once enough time has passed since the last valid value
    c = checks.SignalCheck(invalid_limit=100)
    t, _ = _feed(c, (2000, 2000, 2000))
    accepted = 0
    for k in range(8):
        t, f = _feed(c, (4000,), t)
        if c.value == 4000:
            accepted = k
            break
    # scan 0 is masked by the median; 2 pH needs 4 s at 0.5 pH/s since the last valid value
    assert c.value == 4000 and accepted == 4


def test_wrapped_clock_counts_as_long_ago():
    # a negative time since the last valid value means the tick counter wrapped: long ago
    c = checks.SignalCheck(invalid_limit=100)
    _feed(c, (2000, 2000, 4000), 100000)
    assert c.value == 2000
    assert c.update(4000, True, 50000, 0) == 0
    assert c.value == 4000


def test_out_of_range_and_fault():
    c = checks.SignalCheck(low=0, high=14000)
    t, _ = _feed(c, (3000, 3000, 3000))
    assert c.update(14001, True, t + 1000, 0) == checks.CHK_RANGE
    assert c.update(-1, True, t + 2000, 0) == checks.CHK_RANGE
    assert c.invalid_scans == 2 and not c.flags & checks.CHK_LOST and c.value == 3000
    assert c.update(3000, False, t + 3000, 0) == checks.CHK_FAULT | checks.CHK_LOST
    assert c.flags & checks.CHK_LOST


def test_three_invalid_scans_is_lost_then_recovers():
    c = checks.SignalCheck()
    t, _ = _feed(c, (3000, 3000))
    t, f = _feed(c, (20000, 20000), t)
    assert not f & checks.CHK_LOST
    t, f = _feed(c, (20000,), t)
    assert f == checks.CHK_RANGE | checks.CHK_LOST and c.flags & checks.CHK_LOST
    t, f = _feed(c, (3000,), t)
    assert f == 0 and not c.flags & checks.CHK_LOST and c.invalid_scans == 0


def test_stuck_sensor_while_output_moves():
    c = checks.SignalCheck()
    t = 0
    for k in range(130):
        t += 1000
        f = c.update(7000 + (k & 1), True, t, k * 10)  # 0.001 pH wobble, dosing ramping up
        if t < 120000:
            assert f == 0, t
    assert f & checks.CHK_STUCK and c.stuck and c.flags == f
    assert f & checks.CHK_LOST
    # the pH moves again by 0.002: not stuck any more
    t += 1000
    c.update(7003, True, t, 0)
    t += 1000
    f = c.update(7003, True, t, 0)
    assert not c.stuck and f & checks.CHK_STUCK == 0


def test_output_step_within_the_electrodes_response_is_no_evidence_of_stuck():
    # a flat, noiseless pH at steady state, then a large output step 5 s before the window ends:
    # an electrode with a 30 s response cannot have answered it yet
    c = checks.SignalCheck()
    c.response_ms = 30000
    t = 0
    for k in range(150):
        t += 5000
        f = c.update(7000, True, t, 15500 if t < 120000 else 30000)
        assert f == 0 and not c.stuck, t
    # the same step 60 s before the window ends, the pH still flat at its end: stuck
    t += 5000
    c.update(7003, True, t, 30000)  # a move restarts the window
    for k in range(25):
        t += 5000
        f = c.update(7003, True, t, 15500 if k < 12 else 30000)
    assert f & checks.CHK_STUCK and c.stuck
    # without a response time the late step was evidence enough (the old behaviour)
    c = checks.SignalCheck()
    t = 0
    for k in range(30):
        t += 5000
        f = c.update(7000, True, t, 15500 if t < 120000 else 30000)
    assert f & checks.CHK_STUCK


def test_flat_ph_with_idle_output_is_not_stuck():
    c = checks.SignalCheck()
    t, f = _feed(c, [7000] * 300, output=500)
    assert f == 0 and not c.stuck


def test_moving_ph_is_not_stuck():
    c = checks.SignalCheck()
    t = 0
    for k in range(300):
        t += 1000
        f = c.update(7000 + (k % 3) * 2, True, t, k)
        assert f == 0


def test_bad_limits_raise():
    for kw in ((5, 5), (0, checks.VALUE_MAX + 1)):
        try:
            checks.SignalCheck(*kw)
        except ValueError:
            continue
        assert False, kw


def test_products_stay_small_at_extremes():
    # the rate test multiplies |change| by 1000 and rate_per_s by the capped elapsed time
    assert 2 * checks.VALUE_MAX * 1000 < _SMALL
    assert checks.RATE_MAX * checks.RATE_MS_MAX < _SMALL
    c = checks.SignalCheck(-checks.VALUE_MAX, checks.VALUE_MAX, checks.RATE_MAX, invalid_limit=1000)
    t, _ = _feed(c, (-checks.VALUE_MAX,) * 3)
    t, _ = _feed(c, (checks.VALUE_MAX,) * 3, t, step=10 ** 8)
    assert c.value == checks.VALUE_MAX  # 2e5 in >= 60 s at 10000/s is plausible
    t, f = _feed(c, (-checks.VALUE_MAX,) * 3, t, step=1)
    assert f & checks.CHK_RATE
