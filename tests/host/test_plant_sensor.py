"""Probe dynamics: first-order lag, dead time, and the realistic 15 s lag + 10 s delay probe."""

import math

import pytest

from sxctl.plant.henson_seborg import HensonSeborg
from sxctl.plant.sensor import DeadTime, FirstOrderSensor, Probe


def test_lag_reaches_63_percent_after_one_time_constant():
    sensor = FirstOrderSensor(tau_s=15.0, initial=0.0)
    for _ in range(15):
        sensor.update(1.0, 1.0)
    assert sensor.value == pytest.approx(1.0 - math.exp(-1.0))


def test_dead_time_returns_the_input_from_delay_ago():
    delay = DeadTime(delay_s=10.0, dt_s=1.0, initial=-1.0)
    out = [delay.push(float(k)) for k in range(15)]
    assert out[:10] == [-1.0] * 10
    assert out[10:] == [0.0, 1.0, 2.0, 3.0, 4.0]
    assert DeadTime(0.0, 1.0).push(3.0) == 3.0


def test_realistic_probe_on_the_benchmark_sees_a_step_late_and_slow():
    tank = HensonSeborg(q3=15.55)
    probe = Probe(tau_s=15.0, delay_s=10.0, dt_s=1.0, initial=tank.ph())
    start = tank.ph()
    tank.q3 = 18.0
    readings, truth = [], []
    for _ in range(120):
        truth.append(tank.step(1.0))
        readings.append(probe.measure(truth[-1]))
    assert readings[9] == pytest.approx(start, abs=1e-12)  # nothing yet inside the dead time
    assert truth[9] > start + 0.01
    assert start < readings[-1] < truth[-1]
