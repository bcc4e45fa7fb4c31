"""ORP response: Nernst targets against DOMAIN.md's table, dose direction, lag."""

import math

import pytest

from sxctl.plant.orp import OrpResponse, nernst_mV


@pytest.mark.parametrize(
    "e0_mV_vs_she, oxidised, expected_mV",
    [
        (771.0, 0.99, 680.0),  # Fe2+ → Fe3+ before FeOOH removal
        (1440.0, 0.99, 1350.0),  # Ce3+ → Ce4+ in H2SO4
        (1610.0, 0.99, 1520.0),  # Ce3+ → Ce4+ in HNO3
        (-350.0, 0.01, -680.0),  # Eu3+ → Eu2+ by Zn: 99 % reduced
    ],
)
def test_nernst_matches_the_99_percent_conversion_table(e0_mV_vs_she, oxidised, expected_mV):
    assert nernst_mV(e0_mV_vs_she, oxidised) == pytest.approx(expected_mV, abs=5.0)


def test_half_converted_couple_reads_its_formal_potential():
    assert nernst_mV(771.0, 0.5) == pytest.approx(771.0 - 207.0)


def test_more_oxidant_raises_orp_and_overdose_stays_finite():
    readings = []
    for dose in (0.0, 0.2, 0.5, 0.9, 0.99, 1.5):
        cell = OrpResponse(dose_ratio=dose)
        readings.append(cell.mV)
    assert readings == sorted(readings)
    assert all(math.isfinite(r) for r in readings)


def test_orp_lags_a_dose_step():
    cell = OrpResponse(tau_s=30.0, dose_ratio=0.5)
    start = cell.mV
    cell.dose_ratio = 0.99
    target = cell.target_mV()
    for _ in range(30):
        cell.step(1.0)
    assert cell.mV - start == pytest.approx((target - start) * (1 - math.exp(-1.0)))
    cell.dose_ratio = -1.0
    assert cell.dose_ratio == 0.0
