"""Identification: titration points from step data, as the board takes them."""
from sxctl.sim import identify
from sxctl.sim.identify import Step


def _steps(points):
    return [Step(dose=base / 10.0, start_s=0, ph=ph, flow_L_min=1.0, spread=0.0, t63_s=None) for ph, base in points]


def test_staircase():
    assert identify.staircase("110:120:2.5") == [110, 112.5, 115, 117.5, 120]
    assert identify.staircase("1,2,5") == [1, 2, 5]


def test_points_are_strictly_rising_as_the_board_requires():
    # an unsettled step reads lower than the one before; a flat one adds no information
    steps = _steps([(5.0, 100), (5.5, 200), (5.45, 300), (5.505, 400), (6.0, 500)])
    assert identify.monotone(steps) == [(5.0, 100), (5.5, 200), (6.0, 500)]


def test_chosen_points_keep_the_ends_and_the_corners():
    # a titration with a steep rise between pH 2.6 and 9 (little base moves the pH a lot):
    # 9 points in, 4 out; the corners of base against pH are what the board needs
    curve = [(2.0, 0), (2.2, 100), (2.4, 200), (2.6, 300), (3.0, 350), (6.0, 400), (9.0, 420), (9.2, 520), (9.4, 620)]
    assert identify.choose(curve, 4) == [(2.0, 0), (2.6, 300), (9.0, 420), (9.4, 620)]
    assert identify.choose(curve[:3], 8) == curve[:3]
    line = [(1.0 + k * 0.1, 100 * k) for k in range(10)]
    assert identify.choose(line, 8) == [line[0], line[-1]]  # collinear: two points say it all


def test_plant_lines_give_the_curve_and_the_feedforward_at_the_setpoint():
    lines = identify.plant_lines(_steps([(6.0, 1200), (7.0, 1560), (8.0, 1660)]), 7.5)
    assert lines[0] == "titration = [[6.000, 1200], [7.000, 1560], [8.000, 1660]]"
    assert lines[1].startswith("feedforward = 161.00 ")
