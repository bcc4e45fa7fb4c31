"""What every verb does the same way: addresses checked, stage lists, Ctrl-C, closed pipes,
foreign databases, times in UTC, numbers range-checked before arithmetic, names for choices."""
import sqlite3
import subprocess

import pytest
from simboards import SXCTL, sxctl

from sxctl import plantfile
from sxctl.commands import common, export

STAGE = '[[stage]]\naddress = 1\nname = "E1"\nrole = "extraction"\n'


ADDRESS_RULE = "a bus address is a whole number 1..247 (the Modbus unit ids, which `sxctl serve` serves the stages under"


@pytest.mark.parametrize("addr", ["300", "255", "0", "-1", "x"])
def test_a_bus_address_is_checked_before_anything_is_opened(addr):
    proc = sxctl("info", "--bus", "/nonexistent", "--addr", addr)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert ADDRESS_RULE in proc.stderr


@pytest.mark.parametrize("argv", [
    ["info", "--addr", "248"], ["set", "--addr", "248", "mode=off"], ["calibrate", "ph", "--addr", "248"],
    ["monitor", "--ack", "248"], ["log", "--db", "x", "--stage", "1-248"], ["key", "status", "--addr", "248"],
    ["flash", "--port", "auto", "--board", "unix-sim", "--addr", "248"], ["export", "x", "--stage", "248"],
    ["plot", "x", "-o", "x.png", "--stage", "248"]])
def test_every_verb_says_the_same_address_rule(argv, capsys):
    from sxctl import cli

    with pytest.raises(SystemExit) as stop:
        cli.parser().parse_args(argv)
    assert stop.value.code == 2 and ADDRESS_RULE in capsys.readouterr().err
    _, [problem] = plantfile.check_text(STAGE.replace("address = 1", "address = 248"))
    assert "1..247 (the Modbus unit ids" in problem.text


# Verbs that print data (a table, a result) and what to give them for --json to parse.
DATA_VERBS = {"info": ["--addr", "1"], "ports": [], "monitor": [], "set": ["--addr", "1", "mode=off"],
              "calibrate": ["ph", "--addr", "1"], "key": ["status", "--addr", "1"], "sim": ["--plant", "sx"],
              "config": ["check", "p.toml"]}


def test_every_verb_that_prints_data_takes_json():
    from sxctl import cli

    for verb, argv in DATA_VERBS.items():
        assert cli.parser().parse_args([verb] + argv + ["--json"]).json, verb
    for action in ("check", "diff", "apply"):
        assert cli.parser().parse_args(["config", action, "p.toml", "--json"]).json


def test_sim_prints_its_summary_as_json_with_alarms_by_name():
    import json

    proc = sxctl("sim", "--plant", "sx", "--stages", "2", "--duration", "10", "--json")
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout)  # stdout is the JSON alone; the other lines go to stderr
    assert [s["stage"] for s in got["stages"]] == ["E1", "E2"] and got["simulated_s"] == 10.0
    assert "ph_sensor_fault" in got["stages"][0]["alarms_seen"] and "ran 0:00:10 simulated" in proc.stderr


def test_stage_lists_are_spelled_one_way_with_the_old_spellings_kept():
    parser = __import__("argparse").ArgumentParser()
    common.stage_arguments(parser)
    assert common.stages_of(parser.parse_args(["--stage", "1-4,7"])) == [1, 2, 3, 4, 7]
    assert common.stages_of(parser.parse_args(["--stages", "2-3"])) == [2, 3]
    assert common.stages_of(parser.parse_args(["--addr", "5", "1"])) == [1, 5]
    with pytest.raises(SystemExit):
        parser.parse_args(["--stage", "1-300"])


def test_export_to_a_closed_pipe_ends_quietly(tmp_path):
    from sxctl.bench.host_log import FakeBoard, memory_bus
    from sxctl.logger import Logger
    from sxctl.store import SQLiteStore

    now = [1_800_000_000.0]
    board = FakeBoard(1, lambda: now[0], capacity=5000)
    log = Logger(memory_bus([board]), SQLiteStore(tmp_path / "log.sqlite"), [1], clock=lambda: now[0])
    log.poll_round()
    now[0] += 3000
    log.poll_round()
    log.sink.close()
    export_proc = subprocess.Popen(SXCTL + ["export", str(tmp_path / "log.sqlite"), "--csv", "-"],
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    head = export_proc.stdout.readline()
    export_proc.stdout.close()  # as `| head -1` does
    err = export_proc.stderr.read().decode()
    export_proc.wait(30)
    assert head.startswith(b"time,stage,ph")
    assert export_proc.returncode == 0 and "Traceback" not in err and "BrokenPipe" not in err


def test_log_refuses_to_add_its_tables_to_another_programs_database(tmp_path):
    db = tmp_path / "other.sqlite"
    with sqlite3.connect(db) as c:
        c.execute("CREATE TABLE invoices (id INTEGER)")
    proc = sxctl("log", "--bus", "loop://", "--stage", "1", "--db", str(db), "--duration", "0")
    assert proc.returncode == 1 and "database of another program" in proc.stderr
    with sqlite3.connect(db) as c:
        assert [r[0] for r in c.execute("SELECT name FROM sqlite_master")] == ["invoices"]


def test_times_without_a_zone_are_utc_like_the_output():
    assert export.time_arg("2027-01-15T08:00") == export.time_arg("2027-01-15T08:00Z") == 1_800_000_000
    assert export.time_arg("2027-01-15T08:00") == export.time_arg("2027-01-15T08:00+00:00")
    assert export.time_arg("2027-01-15T10:00+02:00") == export.time_arg("2027-01-15T08:00")


def test_a_huge_number_is_refused_by_its_range_not_a_crash(tmp_path):
    path = tmp_path / "plant.toml"
    path.write_text(STAGE + "ph_setpoint = 1e2000000\n")
    proc = sxctl("config", "check", str(path))
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "ph_setpoint: 1.000000E+2000000 pH is outside -1.000..14.000 pH" in proc.stderr


def test_choices_are_taken_by_name(tmp_path):
    plant, problems = plantfile.check_text(STAGE + 'safe_state = "flows_held"\ntemperature_source = "probe"\n')
    assert problems == [] and plant.stages[0].settings()["safe_state"] == 1
    assert plant.stages[0].settings()["temperature_source"] == 1
    plant, problems = plantfile.check_text(STAGE + 'safe_state = "off"\n')
    assert problems == [] and plant.stages[0].settings()["safe_state"] == 0
    _, [problem] = plantfile.check_text(STAGE + 'safe_state = "of"\n')
    assert problem.key == "safe_state" and "must be one of 'off', 'flows_held'" in problem.text


def test_a_plant_s_sim_events_name_modes():
    from sxctl.errors import SxctlError
    from sxctl.sim import plants
    from sxctl.sim.session import Session

    text = plants.BUILTIN["hs"].read_text() + '\n[[sim.event]]\nat_s = 80\nstage = "CSTR"\nmode = "hold"\n'
    plant = plants.parse(text)
    [event] = [e for e in plant.events if e.key == "mode"]
    assert (event.at_s, event.value, event.stage) == (80.0, 3.0, 0)
    with pytest.raises(SxctlError, match="mode must be one of 'off', 'manual', 'auto', 'hold'"):
        plants.parse(text.replace('mode = "hold"', 'mode = "hol"'))
    modes = [(r["time_s"], r["mode"]) for r in Session(plant, 100.0).run().telemetry[1]]
    # manual, auto from 60 s, hold from the event on
    assert {m for t, m in modes if 0 < t < 60} == {1} and {m for t, m in modes if 60 < t < 80} == {2}
    assert {m for t, m in modes if t > 80} == {3}


def test_sim_runs_the_first_stages_of_a_plant():
    from sxctl.errors import SxctlError
    from sxctl.sim import plants

    full = plants.load("sx")
    two = plants.load("sx", 2)
    assert two.boards == 2 and [s.address for s in two.stages] == [1, 2]
    assert two.make_model().boards == 2
    assert all(e.stage is None or e.stage < 2 for e in two.events)
    with pytest.raises(SxctlError, match="--stages can be 1..%d, not %d" % (full.boards, full.boards + 1)):
        plants.load("sx", full.boards + 1)


class _ReadBackLost:
    """A bus whose board takes a CONFIG_WRITE and then stops answering."""

    def __init__(self):
        from sxctl import configapply
        from sxproto import config_items
        self.board = {item.name: item.default for item in config_items.ITEMS}
        self.configapply = configapply
        self.written = False

    def hello(self, addr):
        return {}

    def request(self, addr, message, values=None, expect=None):
        from sxctl.buslink import NoAnswer
        from sxproto import config_items, messages

        if message is messages.CONFIG_WRITE:
            self.written = True
            return type("R", (), dict(values=dict(count=values["count"], config_version=2)))()
        if message is messages.CONFIG_READ and not self.written:
            item = config_items.BY_ID[values["item"]]
            return type("R", (), dict(values=dict(item=item.id, value=self.board[item.name], config_version=1)))()
        raise NoAnswer("no answer from address %d" % addr)


def test_a_write_whose_read_back_failed_is_reported_as_state_unknown(monkeypatch, capsys):
    from sxctl import cli
    from sxctl.commands import common

    bus = _ReadBackLost()
    monkeypatch.setattr(common, "open_bus", lambda *a, **k: type("Ctx", (), dict(
        __enter__=lambda self: bus, __exit__=lambda self, *e: None))())
    assert cli.main(["set", "--bus", "x", "--addr", "2", "pid_kp=2"]) == 1
    err = capsys.readouterr().err
    assert "state unknown: board 2 acknowledged pid_kp=2 but reading it back failed" in err
    assert "read it back with `sxctl config diff`" in err
