"""Tests for sensors.flow: K-factor pulse meters over a window and NAMUR NE43 4-20 mA loops."""

from sensors import flow, flow_loop
from fwlib_bounds import checked_muldiv as _checked

_SMALL = 1 << 30


def test_yf_s201_one_litre_per_minute():
    # f = 7.5 Hz per L/min: 15 pulses every 2 s is exactly 1 L/min
    m = flow.PulseFlow(flow.K_YF_S201)
    for _ in range(5):
        assert m.add(15, 2000) == flow.FLOW_OK
    assert m.ml_min == 1000


def test_yf_s201_half_pulses_average_over_window():
    # 7.5 Hz sampled each second alternates 7 and 8 pulses; the window averages them
    m = flow.PulseFlow(flow.K_YF_S201, buckets=4)
    for k in range(8):
        m.add(7 if k & 1 else 8, 1000)
    assert m.ml_min == 1000


def test_small_meter_k_3900():
    m = flow.PulseFlow(flow.K_SMALL)
    m.add(130, 1000)  # 130 Hz = 2 L/min
    assert m.ml_min == 2000
    m.add(65, 1000)
    assert m.ml_min == 1500  # 195 pulses over 2 s


def test_flow_stops_after_the_window():
    m = flow.PulseFlow(450, buckets=3)
    for _ in range(3):
        m.add(15, 2000)
    assert m.ml_min == 1000
    m.add(0, 2000)
    assert m.ml_min == 667
    m.add(0, 2000)
    m.add(0, 2000)
    assert m.ml_min == 0


def test_window_is_capped_in_time():
    m = flow.PulseFlow(450, buckets=8)
    for _ in range(8):
        m.add(30, 4000)  # 7.5 Hz
    assert m._sum_ms <= flow.WINDOW_MS_MAX
    assert m.ml_min == 1000


def test_pulse_faults():
    m = flow.PulseFlow(450)
    m.add(15, 2000)
    assert m.add(-1, 1000) == flow.FLOW_FAULT and m.fault and m.ml_min == 0
    assert m.add(5, 0) == flow.FLOW_FAULT
    assert m.add(1001, 1000) == flow.FLOW_FAULT  # faster than MAX_HZ is noise
    assert m.add(5, flow.WINDOW_MS_MAX + 1) == flow.FLOW_FAULT
    assert m.add(1000, 1000) == flow.FLOW_OK and not m.fault


def test_k_factor_calibration():
    m = flow.PulseFlow(450)
    assert m.calibrate(4672, 10000) == 467  # this unit reads 3.8 % high
    assert m.k_factor == 467
    assert m.calibrate(100, 0) == 0 and m.k_factor == 467
    assert m.calibrate(0, 1000) == 0 and m.k_factor == 467
    m.add(467, 60000 // 4)
    assert m.ml_min == 4000


def test_bad_k_factor_raises():
    for k in (0, flow.K_MAX + 1):
        try:
            flow.PulseFlow(k)
        except ValueError:
            continue
        assert False, k


def test_loop_scaling():
    f = flow_loop.LoopFlow(10000)  # 0..10 L/min
    assert f.read(4000) == flow.FLOW_OK and f.ml_min == 0
    assert f.read(12000) == flow.FLOW_OK and f.ml_min == 5000
    assert f.read(20000) == flow.FLOW_OK and f.ml_min == 10000
    f2 = flow_loop.LoopFlow(2000, 500)
    f2.read(8000)
    assert f2.ml_min == 1000


def test_loop_namur_ne43_bands():
    f = flow_loop.LoopFlow(10000)
    assert f.read(3800) == flow.FLOW_OK and f.ml_min == 0
    assert f.read(3799) == flow.FLOW_RANGE and f.ml_min == 0
    assert f.read(3600) == flow.FLOW_RANGE
    assert f.read(3599) == flow.FLOW_FAULT and f.ml_min == 0
    assert f.read(20500) == flow.FLOW_OK and f.ml_min == 10313
    assert f.read(20501) == flow.FLOW_RANGE and f.ml_min == 10313
    assert f.read(21000) == flow.FLOW_RANGE
    assert f.read(21001) == flow.FLOW_FAULT and f.ml_min == 0
    assert f.read(0) == flow.FLOW_FAULT  # open loop
    assert f.status == flow.FLOW_FAULT


def test_products_stay_small_at_extremes():
    peak = [0]
    orig = flow._muldiv
    flow._muldiv = flow_loop._muldiv = _checked(orig, peak)
    try:
        for k in (flow.K_MIN, 450, flow.K_MAX):
            m = flow.PulseFlow(k, buckets=64)
            for _ in range(70):
                assert m.add(flow.WINDOW_MS_MAX * flow.MAX_HZ // 1000, flow.WINDOW_MS_MAX) == flow.FLOW_OK
                assert m._sum_pulses * 60000 < _SMALL  # the one product outside _muldiv
                m.add(1, 1)
                assert m._sum_pulses * 60000 < _SMALL
            # 1000 Hz = 60000 pulses/min -> 60000 * 1000 / K mL/min
            m2 = flow.PulseFlow(k, buckets=1)
            m2.add(flow.MAX_HZ, 1000)
            assert m2.ml_min == (60000000 + k // 2) // k
        assert flow.PulseFlow(1).calibrate(10 ** 6, 1) == 0
        assert flow.PulseFlow(1).calibrate(1, 10 ** 6) == 0
        for span in (1, flow_loop.SPAN_MAX):
            f = flow_loop.LoopFlow(span, flow_loop.SPAN_MAX)
            for ua in (3600, 4000, 20500, 21000):
                f.read(ua)
            assert f.ml_min == flow_loop.SPAN_MAX + span * 17 // 16
    finally:
        flow._muldiv = flow_loop._muldiv = orig
    assert 0 < peak[0] < _SMALL, peak[0]
