"""Tests for control.dosing: caps that hold over long runs, and every interlock."""

from time import ticks_add

from control import dosing

_SMALL = 1 << 30


def _env(**kw):
    args = dict(period_ul=10000, hour_ul=300000, pump_ul_min=600000, period_ms=2000)
    args.update(kw)
    e = dosing.Envelope(**args)
    e.enabled = True
    return e


def _ask(e, req, now, ph=2000, ph_ok=True, ph_ms=None, flow=1000, flow_ok=True):
    return e.grant(req, now, ph, ph_ok, now if ph_ms is None else ph_ms, flow, flow_ok)


def test_reset_leaves_pump_off():
    e = dosing.Envelope(10000, 300000, 600000)
    assert e.grant(5000, 0, 2000, True, 0, 1000, True) == 0
    assert e.blocked == dosing.BLOCK_DISABLED and e.blocks == 1
    e.enabled = True
    assert e.grant(5000, 2000, 2000, True, 2000, 1000, True) == 5000
    e.enabled = False
    assert e.grant(5000, 4000, 2000, True, 4000, 1000, True) == 0


def test_request_above_period_cap_is_cut_and_reported():
    e = _env()
    assert _ask(e, 400000, 0) == 10000  # 400 mL asked, 10 mL allowed
    assert e.cut == dosing.CUT_PERIOD and e.cuts == 1 and e.cut_ul == 390000
    assert _ask(e, 400000, 1000) == 0  # same period: nothing left
    assert e.cut == dosing.CUT_PERIOD and e.cuts == 2
    assert _ask(e, 4000, 2000) == 4000 and e.cut == 0


def test_pump_run_time():
    e = _env()  # 600 mL/min = 10 uL/ms
    _ask(e, 7000, 0)
    assert e.pump_ms == 700


def test_period_cap_limited_to_pump_capacity():
    e = _env(period_ul=10000, pump_ul_min=60000, period_ms=2000)  # pump delivers 2 mL per period
    assert e.period_ul == 2000
    assert _ask(e, 10000, 0) == 2000 and e.pump_ms == 2000


def test_hour_cap_holds_over_long_runs():
    # requests far above both caps every period for 3 h: no period above 10 mL, no rolling hour
    # above 300 mL, and every request reported as cut
    e = _env()
    log_t = []
    log_g = []
    total = 0
    now = 0
    n = 0
    while now < 3 * 3600000:
        g = _ask(e, 400000, now)
        assert 0 <= g <= 10000
        assert e.cut
        if g:
            log_t.append(now)
            log_g.append(g)
            total += g
        now += 2000
        n += 1
    assert e.cuts == n
    assert total <= 3 * 300000 and total >= 2 * 300000
    j = 0
    window = 0
    for k in range(len(log_t)):
        window += log_g[k]
        while log_t[k] - log_t[j] >= 3600000:
            window -= log_g[j]
            j += 1
        assert window <= 300000, (log_t[k], window)


def test_hour_cap_cut_flag():
    e = _env(period_ul=100000, hour_ul=150000, pump_ul_min=dosing.PUMP_MAX, period_ms=10000)
    assert _ask(e, 100000, 0) == 100000
    assert _ask(e, 100000, 10000) == 50000 and e.cut == dosing.CUT_HOUR
    assert _ask(e, 100000, 20000) == 0 and e.cut == dosing.CUT_HOUR
    assert _ask(e, 100000, 3600000) == 0  # an hour on, the bucket with the first doses still counts
    # one window plus one bucket later the first doses have expired
    assert _ask(e, 100000, 3600000 + 60000) == 100000


def test_period_cap_cannot_be_beaten_by_fast_calls():
    e = _env()
    got = 0
    for ms in range(0, 2000, 10):
        got += _ask(e, 400000, ms)
    assert got == 10000


def test_minimum_off_time():
    e = _env(pump_ul_min=60000, min_off_ms=3000)  # 1 mL/s
    assert _ask(e, 2000, 0) == 2000 and e.pump_ms == 2000
    assert _ask(e, 2000, 2000) == 0 and e.blocked == dosing.BLOCK_OFF_TIME
    assert _ask(e, 2000, 4000) == 0  # 2 s running + 3 s off = 5 s
    assert _ask(e, 2000, 5000) == 2000


def test_no_dosing_without_flow():
    e = _env(min_flow_ml_min=200)
    assert _ask(e, 5000, 0, flow=0) == 0 and e.blocked == dosing.BLOCK_NO_FLOW
    assert _ask(e, 5000, 2000, flow=199) == 0
    assert _ask(e, 5000, 4000, flow=1000, flow_ok=False) == 0 and e.blocked == dosing.BLOCK_NO_FLOW
    assert _ask(e, 5000, 6000, flow=200) == 5000


def test_no_dosing_on_faulted_or_stale_ph():
    e = _env(stale_ms=3000)
    assert _ask(e, 5000, 0, ph_ok=False) == 0 and e.blocked == dosing.BLOCK_PH_FAULT
    assert _ask(e, 5000, 10000, ph_ms=6999) == 0 and e.blocked == dosing.BLOCK_PH_STALE
    assert _ask(e, 5000, 12000, ph_ms=9000) == 5000


def test_high_ph_trip_latches():
    e = _env(trip_mph=3000)  # Fe-bearing feed
    assert _ask(e, 5000, 0, ph=2900) == 5000
    assert _ask(e, 5000, 2000, ph=3000) == 0 and e.blocked & dosing.BLOCK_TRIP and e.tripped
    assert e.trips == 1
    assert _ask(e, 5000, 4000, ph=2500) == 0  # still latched after the pH falls
    assert not e.reset_trip(3100)
    assert e.reset_trip(2500)
    assert _ask(e, 5000, 6000, ph=2500) == 5000 and e.trips == 1


def test_caps_hold_across_the_tick_wrap():
    e = _env(pump_ul_min=60000, min_off_ms=1000)
    now = ticks_add(0, -7000)
    got = 0
    for _ in range(10):
        got += _ask(e, 400000, now)
        now = ticks_add(now, 1000)
    # 1 mL/s pump: 2 mL runs 2 s, plus 1 s off: a dose every 3 s
    assert got == 4 * 2000 and e.hour_used == got


def test_zero_and_negative_requests():
    e = _env()
    assert _ask(e, 0, 0) == 0 and e.cut == 0 and e.blocks == 0
    assert _ask(e, -5000, 2000) == 0
    assert e.total_ul == 0


def test_rate_to_dose():
    assert dosing.rate_to_dose(5000, 120000, 2000) == 2000  # 50 % of 120 mL/min for 2 s
    assert dosing.rate_to_dose(10000, 60000, 1000) == 1000
    assert dosing.rate_to_dose(-5, 60000, 1000) == 0
    assert dosing.rate_to_dose(20000, 60000, 1000) == 1000


def test_bad_config_raises():
    for kw in (dict(pump_ul_min=0), dict(period_ms=5), dict(period_ul=-1),
               dict(hour_ul=dosing.HOUR_MAX + 1), dict(window_ms=3600000, bucket_ms=70000)):
        try:
            _env(**kw)
        except ValueError:
            continue
        assert False, kw


def test_products_stay_small_at_extremes():
    # run time: (g * 60) * 1000 / rate with g <= one period of the pump
    assert dosing.PUMP_MAX * 60 < _SMALL
    assert dosing.PUMP_MAX * 1000 < _SMALL
    assert dosing.DOSE_MAX * 60 < _SMALL
    assert dosing.HOUR_MAX + dosing.DOSE_MAX < _SMALL
    e = _env(period_ul=dosing.DOSE_MAX, hour_ul=dosing.HOUR_MAX, pump_ul_min=dosing.PUMP_MAX,
             period_ms=dosing.PERIOD_MS_MAX, window_ms=86400000, bucket_ms=3600000)
    assert e.period_ul == dosing.PUMP_MAX  # one minute of pumping
    now = 0
    for k in range(600):
        g = _ask(e, 10 ** 12, now)
        if k < dosing.HOUR_MAX // dosing.PUMP_MAX:
            assert g == dosing.PUMP_MAX and e.pump_ms == 60000
        else:
            assert g == 0 and e.cut == dosing.CUT_PERIOD | dosing.CUT_HOUR
        assert e.cut_ul < _SMALL and e.total_ul < _SMALL and e.hour_used < _SMALL
        now += 60000
    assert e.cut_ul == 0x1FFFFFFF and e.total_ul == dosing.HOUR_MAX
    assert dosing.rate_to_dose(10000, dosing.PUMP_MAX, dosing.PERIOD_MS_MAX) == dosing.PUMP_MAX
