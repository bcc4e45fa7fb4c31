"""sxctl config diff/apply and sxctl set against three virtual boards (addresses 1..3)."""
import json
import re

import pytest
from sxproto import config_items, messages

from simboards import sxctl
from sxctl import buslink, cli, plantfile

ITEMS = config_items.BY_NAME

PLANT = """\
[defaults]
ph_setpoint = 2.0
ph_high_trip = 5.5
base_max = 250.0
dose_cap_hour = 13500.0
feedforward = 187.5
titration = [[0.5, 0], [0.69, 100], [1.0, 250], [1.18, 400], [1.5, 550], [2.06, 700], [3.0, 740], [7.0, 760]]

[[stage]]
address = 1
name = "E1"
role = "extraction"
k_factor_aq = 447.3

[[stage]]
address = 2
name = "E2"
role = "extraction"
k_factor_aq = 461.0
ph_setpoint = 2.2

[[stage]]
address = 3
name = "E3"
role = "extraction"
k_factor_aq = 455.2
"""


def plant_file(tmp_path, text=PLANT, name="plant.toml"):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def read(bus, addr, names=None):
    """{name: raw} straight from the board, one CONFIG_READ per item."""
    names = names or list(ITEMS)
    return {n: bus.request(addr, messages.CONFIG_READ, dict(item=ITEMS[n].id), expect=messages.CONFIG_VALUE)
            .values["value"] for n in names}


def version(bus, addr):
    return bus.hello(addr)["config_version"]


def row(name, board_raw, plant_raw):
    """A change line: item, board value and plant value in engineering units."""
    item = ITEMS[name]
    return re.compile(r"^\s+%s\s+%s\s+%s$" % (name, re.escape(plantfile.engineering(item, board_raw)),
                                             re.escape(plantfile.engineering(item, plant_raw))), re.M)


def test_diff_shows_each_boards_changes_and_reports_a_silent_board(sim3, tmp_path):
    with buslink.BusClient(sim3.bus) as bus:
        bus.request(2, messages.SET_SETPOINT, dict(loop=0, value=1800), expect=messages.SETPOINT_ACK)
        before = {addr: version(bus, addr) for addr in (1, 2, 3)}
    path = plant_file(tmp_path, PLANT + '\n[[stage]]\naddress = 9\nname = "E9"\nrole = "extraction"\n')
    proc = sxctl("config", "diff", path, "--port", sim3.bus)
    assert proc.returncode == 1, proc.stderr  # one board did not answer
    out = proc.stdout
    sp = ITEMS["ph_setpoint"].default
    assert row("ph_setpoint", sp, 2000).search(out.split("stage E2")[0])
    e2 = out.split("stage E2")[1].split("stage E3")[0]
    assert row("ph_setpoint", 1800, 2200).search(e2)  # the board's value changed by hand
    assert row("k_factor_aq", 4500, 4610).search(e2)
    assert row("titration_ph_7", 0, 7000).search(e2)
    assert "ph_high_trip" not in out  # already as the plant file says
    assert re.search(r"^stage E9 \(address 9, extraction\): unreachable: no answer from address 9", out, re.M)
    with buslink.BusClient(sim3.bus) as bus:
        assert {addr: version(bus, addr) for addr in (1, 2, 3)} == before  # diff writes nothing
    proc = sxctl("config", "diff", path, "--bus", sim3.bus, "--json")
    assert proc.returncode == 1
    report = {r["stage"]: r for r in json.loads(proc.stdout)}
    assert report["E2"]["changes"]["ph_setpoint"] == dict(board="1.800 pH", plant="2.200 pH")
    assert report["E9"]["reachable"] is False and "no answer" in report["E9"]["problem"]


def test_apply_writes_in_rule_keeping_batches_verifies_and_leaves_nothing_to_diff(sim3, tmp_path):
    path = plant_file(tmp_path)
    plant = plantfile.load(path)
    proc = sxctl("config", "apply", path, "--port", sim3.bus)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for stage in plant.stages:
        n = sum(raw != ITEMS[name].default for name, raw in stage.settings().items())
        writes = -(-n // messages.CONFIG_WRITE_ITEMS)
        assert writes >= 3  # more than one write: the curve alone is 16 changed items
        assert re.search(r"^stage %s .*: applied %d items in %d writes, read back and verified \(config version %d\)$"
                         % (stage.name, n, writes, writes), proc.stdout, re.M)
    assert proc.stdout.rstrip().endswith("3 of 3 boards match the plant file")
    with buslink.BusClient(sim3.bus) as bus:
        for stage in plant.stages:
            assert read(bus, stage.address, list(stage.settings())) == stage.settings()
    again = sxctl("config", "diff", path, "--port", sim3.bus)
    assert again.returncode == 0 and again.stdout.count("up to date (config version") == 3
    rerun = sxctl("config", "apply", path, "--port", sim3.bus)
    assert rerun.returncode == 0 and rerun.stdout.count(": up to date") == 3


def test_a_board_refusing_a_later_write_keeps_its_old_config(sim3, tmp_path, monkeypatch, capsys):
    # The board refuses what the host's check let through (in the field: a storage failure, a
    # write from another host). Simulated by widening the host's range of one item after the
    # schema fingerprint was taken at import: board 2 refuses the curve's last point in its last
    # write, and the writes it took before must be undone.
    monkeypatch.setattr(ITEMS["titration_base_7"], "hi", 20000)
    curve = PLANT.split("titration = ")[1].split("\n")[0]
    text = PLANT.replace('ph_setpoint = 2.2', 'ph_setpoint = 2.2\ntitration = ' + curve.replace("760]]", "12000]]"))
    path = plant_file(tmp_path, text)
    with buslink.BusClient(sim3.bus) as bus:
        old = read(bus, 2)
        old_version = version(bus, 2)
    status = cli.main(["config", "apply", path, "--port", sim3.bus])
    out = capsys.readouterr().out
    assert status == 1
    e2 = out.split("stage E2")[1].split("stage E3")[0]
    assert "board refused titration_base_7 = 12000 0.1 mL/L feed: value out of range" in e2
    undone = re.search(r"; undid (\d+) earlier writes?, board keeps its old config \(read back\)", e2)
    assert undone and int(undone.group(1)) >= 1
    assert "not applied: E2 (refused)" in out
    assert out.count("read back and verified") == 2  # E1 and E3 applied
    with buslink.BusClient(sim3.bus) as bus:
        assert read(bus, 2) == old
        assert version(bus, 2) == old_version + 2 * int(undone.group(1))  # each write taken was undone


def test_apply_refuses_a_board_whose_other_items_break_a_rule_before_writing(sim3, tmp_path):
    with buslink.BusClient(sim3.bus) as bus:
        bus.request(3, messages.CONFIG_WRITE, dict(count=1, items=[dict(item=ITEMS["ph_high_trip"].id, value=1900)]
                                                   + [dict(item=0, value=0)] * 7), expect=messages.CONFIG_ACK)
        before = version(bus, 3)
    text = PLANT.replace("ph_high_trip = 5.5\n", "")  # the file leaves board 3's trip (1.9) alone
    proc = sxctl("config", "apply", plant_file(tmp_path, text), "--port", sim3.bus)
    assert proc.returncode == 1
    e3 = proc.stdout.split("stage E3")[1]
    assert "refused before writing: ph_setpoint must lie between ph_low_alarm and ph_high_trip" in e3
    assert "ph_high_trip 1.900 pH on the board, not in the plant file" in e3
    with buslink.BusClient(sim3.bus) as bus:
        assert version(bus, 3) == before


def test_a_bad_plant_file_is_refused_before_any_board_is_touched(sim3, tmp_path):
    with buslink.BusClient(sim3.bus) as bus:
        before = {addr: version(bus, addr) for addr in (1, 2, 3)}
    path = plant_file(tmp_path, PLANT.replace("k_factor_aq = 461.0", "k_factor_aq = 461.05"))
    proc = sxctl("config", "apply", path, "--port", sim3.bus)
    assert proc.returncode == 1 and proc.stdout == ""
    assert "refused (1 error), nothing sent to any board" in proc.stderr
    assert "plant.toml:19: stage E2: k_factor_aq: 461.05 is finer than the board keeps" in proc.stderr
    with buslink.BusClient(sim3.bus) as bus:
        assert {addr: version(bus, addr) for addr in (1, 2, 3)} == before


def test_set_echoes_the_values_the_board_applied(sim3):
    proc = sxctl("set", "--port", sim3.bus, "--addr", "2", "ph_setpoint=2.5", "pid_kp=120.5",
                 "orp_setpoint=700mV", "mode=manual", "manual_output=12.5")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [
        "board 2: ph_setpoint = 2.500 pH",
        "board 2: pid_kp = 120.50 mL/min per pH",
        "board 2: orp_setpoint = 700 mV",
        "board 2: mode = manual, manual base dose 12.50 mL/min",
    ]
    with buslink.BusClient(sim3.bus) as bus:
        assert read(bus, 2, ["ph_setpoint", "pid_kp", "orp_setpoint"]) == dict(
            ph_setpoint=2500, pid_kp=12050, orp_setpoint=700)
        tel = bus.request(2, messages.GET_TELEMETRY, expect=messages.TELEMETRY).values
        assert tel["mode"] == 1 and tel["ph_setpoint"] == 2500
        assert read(bus, 1, ["ph_setpoint"]) == dict(ph_setpoint=ITEMS["ph_setpoint"].default)


def test_set_and_config_print_json_with_modes_by_name(sim3, tmp_path):
    proc = sxctl("set", "--json", "--bus", sim3.bus, "--addr", "2", "ph_setpoint=2.4", "mode=hold")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == {"address": 2, "applied": [
        {"key": "ph_setpoint", "asked": "2.4", "applied": "2.400 pH", "limited": False},
        {"key": "mode", "asked": "hold", "applied": "hold", "manual_output": "0.00 mL/min", "limited": False}]}
    path = plant_file(tmp_path)
    proc = sxctl("config", "apply", "--json", path, "--bus", sim3.bus)
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout)
    assert got["matching"] == 3 and [(s["address"], s["status"]) for s in got["stages"]] == [
        (1, "applied"), (2, "applied"), (3, "applied")]
    proc = sxctl("config", "check", "--json", path)
    assert proc.returncode == 0 and json.loads(proc.stdout)["stages"][1]["settings"]["ph_setpoint"] == "2.200 pH"
    proc = sxctl("config", "check", "--json", plant_file(tmp_path, PLANT.replace("461.0", "461.05"), "bad.toml"))
    assert proc.returncode == 1 and json.loads(proc.stdout)["problems"] == [
        {"line": 19, "where": "stage E2", "key": "k_factor_aq", "problem": "461.05 is finer than the board keeps "
         "(steps of 0.1 pulses/L)"}]


def test_set_stops_at_a_refusal_naming_key_and_reason(sim3):
    proc = sxctl("set", "--port", sim3.bus, "--addr", "3", "ph_high_trip=3", "ph_setpoint=4", "pid_kp=2")
    assert proc.returncode == 1
    assert proc.stdout == "board 3: ph_high_trip = 3.000 pH\n"
    assert ("board 3 would refuse ph_setpoint=4, so it was not sent: the rule ph_setpoint must lie between "
            "ph_low_alarm and ph_high_trip (ph_setpoint 4.000 pH asked, ph_low_alarm 0.000 pH on the board, "
            "ph_high_trip 3.000 pH on the board); applied before it: ph_high_trip") in proc.stderr
    with buslink.BusClient(sim3.bus) as bus:
        assert read(bus, 3, ["ph_setpoint", "pid_kp"]) == dict(
            ph_setpoint=ITEMS["ph_setpoint"].default, pid_kp=ITEMS["pid_kp"].default)


def test_set_checks_every_change_before_sending_any(sim3):
    with buslink.BusClient(sim3.bus) as bus:
        before = version(bus, 1)
    proc = sxctl("set", "--port", sim3.bus, "--addr", "1", "pid_kp=2", "ph_setpoint=20", "mode=fast",
                 "ph_setpiont=2", "orp_setpoint=700 pH", "pid_ti=1.5")
    assert proc.returncode == 1 and proc.stdout == ""
    err = proc.stderr
    assert "nothing sent" in err
    assert "ph_setpoint=20: 20.000 pH is outside -1.000..14.000 pH" in err
    assert "mode=fast: must be one of off, manual, auto, hold" in err
    assert "ph_setpiont: unknown key (did you mean ph_setpoint?)" in err
    assert "orp_setpoint=700 pH: unit 'pH' does not fit orp_setpoint, which is in mV" in err
    assert "pid_ti=1.5: 1.5 is finer than the board keeps (steps of 1 s)" in err
    with buslink.BusClient(sim3.bus) as bus:
        assert version(bus, 1) == before
        assert read(bus, 1, ["pid_kp"]) == dict(pid_kp=ITEMS["pid_kp"].default)


def test_set_sends_the_manual_dose_only_with_a_mode():
    from sxctl.commands import set as set_cmd
    from sxctl.errors import SxctlError

    assert set_cmd.parse(["mode=manual", "manual_output=12.5"]) == [
        ("mode", 1, "manual"), ("manual_output", 1250, "12.5")]
    for bad, text in ((["manual_output=5"], "manual_output goes with mode"),
                      (["mode=auto", "mode=off"], "mode given twice"),
                      (["ph_setpoint"], "write KEY=VALUE"),
                      (["mode=manual", "manual_output=700"], "700.00 mL/min is outside 0.00..655.34 mL/min")):
        with pytest.raises(SxctlError, match=re.escape(text)):
            set_cmd.parse(bad)
