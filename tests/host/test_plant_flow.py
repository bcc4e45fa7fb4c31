"""Dosing pump curve and lag, Hall meter pulse counts."""

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sxctl.plant.flow import FlowMeter, Pump, interpolate


def test_pulse_counts_match_k_factor_times_volume():
    meter = FlowMeter(k_factor_pulses_per_L=450.0)
    counts = [meter.count(2.0, 1.0) for _ in range(60)]  # 2 L/min for a minute
    assert all(isinstance(c, int) for c in counts)
    assert sum(counts) == 900
    assert set(counts) == {15}  # YF-S201: 7.5 Hz per L/min


@settings(max_examples=50, deadline=None)
@given(
    flows=st.lists(st.floats(0.0, 30.0), min_size=1, max_size=50),
    dt_s=st.floats(0.05, 5.0),
    k_factor=st.sampled_from([450.0, 3900.0]),
    unit_error=st.floats(-0.1, 0.1),
)
def test_total_pulses_stay_within_one_of_true_k_factor_times_volume(flows, dt_s, k_factor,
                                                                     unit_error):
    meter = FlowMeter(k_factor, unit_error)
    total = sum(meter.count(q, dt_s) for q in flows)
    volume_L = sum(flows) * dt_s / 60.0
    assert abs(total - k_factor * (1 + unit_error) * volume_L) < 1.0 + 1e-6


def test_unit_error_is_what_calibration_must_remove():
    meter = FlowMeter(450.0, unit_error=0.10)
    pulses = sum(meter.count(1.0, 1.0) for _ in range(60))  # one litre
    assert pulses == 495
    assert pulses / meter.nominal_k_factor == pytest.approx(1.10)


def test_sampled_meters_are_reproducible_and_within_spread():
    errors = [FlowMeter.sampled(seed).unit_error for seed in range(50)]
    assert errors == [FlowMeter.sampled(seed).unit_error for seed in range(50)]
    assert all(-0.10 <= e <= 0.10 for e in errors)
    assert len(set(errors)) == 50


def test_pump_curve_has_a_start_threshold_and_reaches_full_flow():
    pump = Pump(max_flow_L_min=0.5, tau_s=0.0)
    for command, flow in [(0.0, 0.0), (0.04, 0.0), (1.0, 0.5), (1.5, 0.5), (-1.0, 0.0)]:
        pump.command = command
        assert pump.step(1.0) == pytest.approx(flow)
    pump.command = 0.525  # halfway between threshold and full
    assert pump.step(1.0) == pytest.approx(0.25)


def test_pump_flow_lags_its_command():
    pump = Pump(max_flow_L_min=1.0, tau_s=2.0, curve=((0.0, 0.0), (1.0, 1.0)))
    pump.command = 1.0
    for _ in range(20):
        pump.step(0.1)
    assert pump.flow_L_min == pytest.approx(1.0 - math.exp(-1.0))


def test_pump_refuses_a_falling_curve():
    with pytest.raises(ValueError):
        Pump(curve=((0.0, 1.0), (1.0, 0.0)))


def test_interpolation_holds_flat_beyond_the_ends():
    curve = ((0.0, 0.0), (0.5, 1.0), (1.0, 4.0))
    assert [interpolate(curve, x) for x in (-1, 0.25, 0.75, 2)] == [0.0, 0.5, 2.5, 4.0]


def test_metered_pump_delivers_what_the_pulses_say():
    pump = Pump(max_flow_L_min=2.0, tau_s=1.0)
    meter = FlowMeter(450.0)
    pump.command = 1.0
    pulses = 0
    delivered_L = 0.0
    for _ in range(600):
        flow = pump.step(0.1)
        pulses += meter.count(flow, 0.1)
        delivered_L += flow * 0.1 / 60.0
    assert abs(pulses - 450.0 * delivered_L) <= 1
