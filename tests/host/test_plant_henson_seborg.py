"""Henson & Seborg benchmark tank: published steady state, pH solver, gain, clamp, balances."""

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sxctl.plant import henson_seborg as hs
from sxctl.plant.henson_seborg import HensonSeborg, steady_state

PUBLISHED_Q3 = 15.55  # mL/s that puts the published operating point at pH 7.0


def test_steady_state_matches_published_operating_point():
    ss = steady_state(PUBLISHED_Q3)
    assert ss.ph == pytest.approx(7.0, abs=0.05)
    assert ss.h == pytest.approx(14.0, abs=0.15)
    assert ss.wa == pytest.approx(-4.32e-4, rel=0.01)
    assert ss.wb == pytest.approx(5.28e-4, rel=0.01)


def test_simulator_settles_to_published_state_from_elsewhere():
    tank = HensonSeborg(q3=PUBLISHED_Q3, h=8.0, wa=0.0, wb=0.0)
    for _ in range(30):
        tank.step(60.0)
    assert tank.ph() == pytest.approx(7.0, abs=0.05)
    assert tank.h == pytest.approx(14.0, abs=0.15)
    assert tank.wa == pytest.approx(-4.32e-4, rel=0.01)
    assert tank.wb == pytest.approx(5.28e-4, rel=0.01)


def test_simulator_holds_its_steady_state():
    tank = HensonSeborg(q3=PUBLISHED_Q3)
    start = tank.ph()
    tank.step(600.0)
    assert tank.ph() == pytest.approx(start, abs=1e-9)


@settings(max_examples=60, deadline=None)
@given(
    wa=st.floats(-3e-2, 3e-3),
    wb=st.floats(0.0, 3e-2),
)
def test_bisection_brackets_the_charge_balance_root(wa, wb):
    ph = hs.solve_ph(wa, wb)
    if -1.99 < ph < 15.99:  # root inside the bracket: the residual changes sign across it
        assert hs.charge_balance(ph - 1e-9, wa, wb) <= 0.0 <= hs.charge_balance(ph + 1e-9, wa, wb)


def test_charge_balance_is_tiny_at_operating_point():
    ss = steady_state(PUBLISHED_Q3)
    # Residual slope here is ~1e-3 per pH, so 1e-12 means a pH error below 1e-9.
    assert abs(hs.charge_balance(ss.ph, ss.wa, ss.wb)) < 1e-12


def _q3_for_ph(target):
    lo, hi = 0.0, 30.0
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        lo, hi = (lo, mid) if steady_state(mid).ph > target else (mid, hi)
    return 0.5 * (lo + hi)


def _gain(q3, dq=1e-3):
    return (steady_state(q3 + dq).ph - steady_state(q3 - dq).ph) / (2 * dq)


@pytest.mark.parametrize("ph, gain", [(3.1, 0.09), (7.0, 0.52), (8.2, 2.94)])
def test_process_gain_follows_the_published_values(ph, gain):
    assert _gain(_q3_for_ph(ph)) == pytest.approx(gain, rel=0.1)


def test_base_flow_is_clamped_to_the_valve_range():
    tank = HensonSeborg(q3=45.0)
    assert tank.q3 == 30.0
    tank.q3 = -2.0
    assert tank.q3 == 0.0
    assert steady_state(45.0) == steady_state(30.0)


@pytest.mark.parametrize("delta, direction", [(+1.0, +1), (-1.0, -1)])
def test_base_step_moves_ph_the_right_way(delta, direction):
    tank = HensonSeborg(q3=PUBLISHED_Q3)
    before = tank.ph()
    tank.q3 += delta
    tank.step(120.0)
    assert direction * (tank.ph() - before) > 0.05


def test_acid_disturbance_lowers_ph():
    tank = HensonSeborg(q3=PUBLISHED_Q3)
    tank.q1 = 20.0
    tank.step(300.0)
    assert tank.ph() < 6.5


def test_level_obeys_the_volume_balance():
    # Catches a dropped 1/A: the level would move 207× too fast.
    tank = HensonSeborg(q3=PUBLISHED_Q3)
    tank.q3 = 25.0
    dt = 0.5
    net_inflow_mL = 0.0
    start_h = tank.h
    for _ in range(240):
        before = hs.outflow(tank.h)
        tank.step(dt)
        inflow = tank.q1 + tank.q2 + tank.q3
        net_inflow_mL += dt * (inflow - 0.5 * (before + hs.outflow(tank.h)))
    assert hs.AREA_CM2 * (tank.h - start_h) == pytest.approx(net_inflow_mL, rel=1e-3)
    assert 0.1 < tank.h - start_h < 5.0


def test_invariant_inventory_obeys_its_balance():
    tank = HensonSeborg(q3=PUBLISHED_Q3)
    tank.q2 = 2.0  # more buffer: Wb inventory must grow by what the streams bring
    dt = 0.5
    carried_in = 0.0
    start = hs.AREA_CM2 * tank.h * tank.wb
    for _ in range(240):
        before = tank.q2 * hs.BUFFER.wb + tank.q3 * hs.BASE.wb - hs.outflow(tank.h) * tank.wb
        tank.step(dt)
        after = tank.q2 * hs.BUFFER.wb + tank.q3 * hs.BASE.wb - hs.outflow(tank.h) * tank.wb
        carried_in += dt * 0.5 * (before + after)
    assert hs.AREA_CM2 * tank.h * tank.wb - start == pytest.approx(carried_in, rel=1e-3)


def test_step_size_does_not_change_the_answer():
    coarse, fine = HensonSeborg(q3=20.0, h=10.0), HensonSeborg(q3=20.0, h=10.0)
    coarse.step(300.0)
    for _ in range(600):
        fine.step(0.5)
    assert coarse.ph() == pytest.approx(fine.ph(), abs=1e-9)
    assert math.isclose(coarse.time_s, fine.time_s)
