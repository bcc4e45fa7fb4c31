"""Plant files: checked as a whole, every error with its line and key; the write plan keeps the rules."""
import pathlib
import re

import pytest
from sxproto import config_items

from simboards import sxctl
from sxctl import cli, plantfile
from sxctl import configapply

EXAMPLE = pathlib.Path(__file__).resolve().parents[2] / "examples" / "plant.toml"
ITEMS = config_items.BY_NAME

GOOD = """\
[bus]
port = "/dev/ttyUSB0"

[defaults]
ph_dev_warn = 0.3
ph_dev_alarm = 0.5

[[stage]]
address = 1
name = "E1"
role = "extraction"
ph_setpoint = 2.1
orp_setpoint = "680 mV"
"""

# Every line marked `# <- key` must be reported, with that key, and nothing else.
BAD = """\
[bus]
port = "/dev/ttyUSB0"
speed = 9600                        # <- speed

[defaults]
ph_dev_warn = 0.6                   # <- ph_dev_warn
ph_dev_alarm = 0.5
address = 3                         # <- address

[[stage]]
address = 1
name = "E1"
role = "extraction"
ph_setpoint = 15                    # <- ph_setpoint
ph_setpiont = 2.0                   # <- ph_setpiont
orp_setpoint = "680 pH"             # <- orp_setpoint
k_factor_aq = 447.35                # <- k_factor_aq
pid_kp = true                       # <- pid_kp
titration = [
    [0.69, 0],
    [0.50, 400],                    # <- titration
]

[[stage]]
address = 1                         # <- address
name = "E2"
role = "extration"                  # <- role
ph_high_trip = 6.0
ph_setpoint = 2.0

[[stage]]
address = 3
name = "E3"
role = "extraction"
ph_high_trip = 6.0                  # <- ph_high_trip
"""


def marked(text):
    return sorted((n, m.group(1)) for n, line in enumerate(text.splitlines(), 1)
                  for m in [re.search(r"# <- (\w+)", line)] if m)


def reported(problems):
    return sorted((p.line, p.key) for p in problems)


def test_example_plant_file_passes_the_check():
    proc = sxctl("config", "check", str(EXAMPLE))
    assert proc.returncode == 0, proc.stderr
    assert "4 stages" in proc.stdout
    plant = plantfile.load(EXAMPLE)
    assert [(s.name, s.address, s.role) for s in plant.stages] == [
        ("E1", 1, "extraction"), ("E2", 2, "extraction"), ("E3", 3, "extraction"), ("E4", 4, "extraction")]
    e1, e4 = plant.stages[0], plant.stages[3]
    # engineering units -> raw by item scale; a stage's own keys win over [defaults]
    assert e1.values["ph_setpoint"] == 2000 and e4.values["ph_setpoint"] == 2200
    assert e1.values["k_factor_aq"] == 4473 and e4.values["k_factor_aq"] == 4449
    assert e1.values["orp_range"] == 1020 and e1.values["temperature_fixed"] == 2500
    assert e1.values["titration_points"] == 4
    assert [e1.values["titration_ph_%d" % i] for i in range(4)] == [690, 1180, 2060, 7000]
    assert [e1.values["titration_base_%d" % i] for i in range(4)] == [0, 2000, 3500, 3800]
    assert plant.port == "/dev/ttyUSB0" and plant.baud == 115200


def test_bad_file_is_refused_whole_with_every_error_named_by_line_and_key(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text(BAD)
    plant, problems = plantfile.check_text(BAD, str(path))
    assert plant is None
    assert reported(problems) == marked(BAD)
    with pytest.raises(plantfile.PlantFileError):
        plantfile.load(path)

    proc = sxctl("config", "check", str(path))
    assert proc.returncode == 1 and proc.stdout == ""
    lines = proc.stderr.splitlines()
    for line, key in marked(BAD):
        assert any(text.startswith("%s:%d: " % (path, line)) and (" %s: " % key) in text for text in lines), (line, key)
    assert lines[-1] == "%s: %d errors; the file is refused whole" % (path, len(marked(BAD)))
    # what each error says: the range in engineering units, the unit, the step, the rule, the first user
    err = proc.stderr
    assert "15.000 pH is outside -1.000..14.000 pH" in err
    assert "unit 'pH' does not fit orp_setpoint, which is in mV" in err
    assert "finer than the board keeps (steps of 0.1 pulses/L)" in err
    assert "did you mean ph_setpoint?" in err and "did you mean extraction?" in err
    assert "address 1 already used by stage E1 (line 11)" in err
    assert "must be below ph_dev_alarm (value from [defaults])" in err
    assert "stages E1, E2, E3: ph_dev_warn" in err  # a [defaults] value breaking every stage: once
    assert "titration pH points must increase: titration_ph_1 0.500 pH, titration_ph_0 0.690 pH" in err


def test_syntax_error_names_its_line_and_key():
    text = GOOD + "pid_kp = = 3\n"
    plant, problems = plantfile.check_text(text, "p.toml")
    assert plant is None and len(problems) == 1
    assert problems[0].format("p.toml").startswith("p.toml:14: pid_kp: syntax: ")


def test_an_array_s_error_is_reported_on_the_line_of_its_element():
    # a point's bad value and a point out of order, on the lines the points are written on
    text = GOOD + "titration = [[0.69, 0],\n             [1.18, 400], [2.0, \"y\"],\n  [1.5, 500]]\n"
    _, problems = plantfile.check_text(text, "p.toml")
    assert sorted((p.line, p.key, p.text.split(":")[0]) for p in problems) == [
        (15, "titration", "point 2 (titration_base_2)"), (16, "titration", "titration pH points must increase")]
    assert plantfile.Lines("k = [ 1, # [\n  \"]\", [2,\n3], 4]\n").elements[((), "k")] == [1, 2, 2, 3]


@pytest.mark.parametrize("tail, line, text", [
    ("titration = [[0.69, 0], [1.18, 400]\nph_setpoint = 2\n", 14, "the array opened here is not closed"),
    ("titration = [[0.69, 0], [1.18, 400]\n", 14, "the array opened here is not closed"),
    ("titration = [\n  [0.69, 0],\n  [1.18 400],\n]\n", 16, "Unclosed array (column 9)"),
    ("titration = [\n  [0.69, 0],\n  [1.18, x],\n]\n", 16, "Invalid value"),
])
def test_a_syntax_error_in_an_array_names_the_array_and_the_line_to_fix(tail, line, text):
    _, problems = plantfile.check_text(GOOD + tail, "p.toml")
    assert [(p.line, p.key) for p in problems] == [(line, "titration")] and text in problems[0].text


def test_rule_broken_by_an_item_default_points_at_the_stage_and_says_so():
    text = GOOD.replace("ph_setpoint = 2.1", "ph_setpoint = 6.0")
    _, problems = plantfile.check_text(text, "p.toml")
    assert [(p.line, p.key) for p in problems] == [(12, "ph_setpoint")]
    assert "must lie between ph_low_alarm and ph_high_trip" in problems[0].text
    assert "ph_high_trip 5.500 pH" in problems[0].text
    high = GOOD.replace("role = \"extraction\"", "role = \"extraction\"\nph_high_trip = 6.0")
    _, problems = plantfile.check_text(high, "p.toml")
    assert [(p.line, p.key) for p in problems] == [(12, "ph_high_trip")]  # extraction trips at 5.5 at most
    assert plantfile.check_text(high.replace("\"extraction\"", "\"feed_prep\""), "p.toml")[1] == []


@pytest.mark.parametrize("value, raw", [("2.5", 2500), ("\"2.5 pH\"", 2500), ("\"2.5pH\"", 2500), ("3", 3000)])
def test_values_in_engineering_units_with_or_without_unit(value, raw):
    plant, problems = plantfile.check_text(GOOD.replace("ph_setpoint = 2.1", "ph_setpoint = " + value))
    assert problems == [] and plant.stages[0].values["ph_setpoint"] == raw


def test_temperature_unit_alias_and_unitless_items():
    text = GOOD + "temperature_fixed = \"30 degC\"\nsafe_state = 1\n"
    plant, problems = plantfile.check_text(text)
    assert problems == [] and plant.stages[0].values["temperature_fixed"] == 3000
    _, problems = plantfile.check_text(GOOD + "safe_state = \"1 s\"\n")
    assert [p.key for p in problems] == ["safe_state"] and "without a unit" in problems[0].text
    _, problems = plantfile.check_text(GOOD + "pid_ti = \"60\"\n")
    assert [p.key for p in problems] == ["pid_ti"] and "needs its unit" in problems[0].text


def test_titration_curve_is_one_form_or_the_other_and_clears_unused_points():
    text = GOOD.replace("[[stage]]", "titration = [[0.5, 0], [1.0, 100], [1.5, 200]]\n\n[[stage]]")
    text += "titration = [[1.0, 0], [2.0, 300]]\n"
    plant, problems = plantfile.check_text(text)
    assert problems == []
    values = plant.stages[0].values
    assert values["titration_points"] == 2 and values["titration_ph_1"] == 2000
    assert values["titration_ph_2"] == 0 and values["titration_base_2"] == 0  # the stage's curve replaced the default
    _, problems = plantfile.check_text(text + "titration_ph_0 = 0.9\n")
    assert [(p.line, p.key) for p in problems] == [(17, "titration_ph_0")]
    _, problems = plantfile.check_text(GOOD + "titration = [[1.0, 0]] \n" + "x = 1\n")
    assert [(p.line, p.key) for p in problems] == [(15, "x")]


def test_items_the_file_does_not_name_are_not_managed():
    plant, _ = plantfile.check_text(GOOD)
    assert set(plant.stages[0].settings()) == {"ph_dev_warn", "ph_dev_alarm", "ph_setpoint", "orp_setpoint"}


def test_missing_stages_and_unknown_tables():
    _, problems = plantfile.check_text("[defaults]\npid_kp = 1.0\n\n[stages]\naddress = 1\n")
    assert sorted((p.line, p.key) for p in problems) == [(1, "stage"), (4, "stages")]
    assert "did you mean stage?" in problems[-1].text or "did you mean stage?" in problems[0].text


def _rules_hold_along(board, plan, target):
    state = dict(board)
    for batch in plan:
        assert 1 <= len(batch) <= 8
        state.update(batch)
        assert config_items.rule_violations(state) == [], batch
    assert state == target


def test_write_plan_keeps_the_rules_after_every_write():
    board = {i.name: i.default for i in config_items.ITEMS}
    # An 8-point curve onto a fresh board: writes cut in item order would switch on 8 points
    # while most are still 0 and be refused; the plan writes the points before the count.
    target = dict(board, titration_points=8, **{"titration_ph_%d" % i: 500 + 500 * i for i in range(8)},
                  **{"titration_base_%d" % i: 100 * i for i in range(8)})
    changes = {k: v for k, v in target.items() if board[k] != v}
    naive = sorted(changes, key=lambda n: ITEMS[n].id)[:8]
    assert config_items.rule_violations(dict(board, **{n: changes[n] for n in naive}))
    plan = configapply.plan_writes(board, changes)
    _rules_hold_along(board, plan, target)
    assert len(plan) == 2

    # The pH window moved wholly above the old high trip, one item per write.
    target = dict(board, ph_low_alarm=6000, ph_setpoint=7000, ph_high_trip=8000)
    plan = configapply.plan_writes(board, {k: v for k, v in target.items() if board[k] != v}, size=1)
    _rules_hold_along(board, plan, target)
    assert [b[0][0] for b in plan] == ["ph_high_trip", "ph_setpoint", "ph_low_alarm"]


def test_every_new_verb_has_help_with_an_example(capsys):
    for argv in (["config"], ["config", "check"], ["config", "diff"], ["config", "apply"], ["set"]):
        with pytest.raises(SystemExit) as done:
            cli.main(argv + ["--help"])
        assert done.value.code == 0
        out = capsys.readouterr().out
        assert re.search(r"example: sxctl %s" % argv[0], out), argv
