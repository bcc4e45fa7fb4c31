"""sxctl tune: the step test on a virtual stage, the fitted model, the settings written into the
plant file, and the plant holding its setpoint on them; the CLI flow (progress, diff, Ctrl-C)."""
import dataclasses
import pathlib
import shutil
import signal
import subprocess
import time

import numpy as np
import pytest

from simboards import SXCTL, start_sim
from sxctl import cli, plantedit, tune, tuning
from sxctl.errors import SxctlError
from sxctl.sim import metrics, plants
from sxctl.sim.plants import Event
from sxctl.sim.session import Session

ROOT = pathlib.Path(__file__).resolve().parents[2]


def _holds(path, stage, steps, end_s, band):
    """Run the plant file with setpoint steps [(t, pH)]; worst |setpoint - true pH| over the
    last third of each step, and whether it oscillates."""
    plant = plants.load(str(path))
    index = [s.name for s in plant.stages].index(stage)
    events = [Event(t, "ph_setpoint", sp, index) for t, sp in steps]
    result = Session(dataclasses.replace(plant, events=events), end_s).run()
    s = metrics.sample(result.trace, index, 5.0)
    edges = [t for t, _ in steps] + [end_s]
    worst = max(metrics.max_error(metrics.Samples(*[
        [x for t, x in zip(s.t_s, col) if a + (b - a) * 2 / 3 <= t < b] for col in (s.t_s, s.ph, s.setpoint, s.output)]))
        for a, b in zip(edges, edges[1:]))
    return worst, metrics.oscillates(s, [t for t, _ in steps])


def test_tune_writes_settings_with_which_the_hs_tank_holds_its_setpoint(tmp_path, capsys):
    path = tmp_path / "hs.toml"
    shutil.copy(ROOT / "examples" / "hs-benchmark.toml", path)
    before = plants.load(str(path)).stages[0].values
    assert cli.main(["tune", "--plant", str(path), "--stage", "CSTR", "--ph-range", "6.5:8.0", "--yes"]) == 0
    out = capsys.readouterr().out
    assert "stage stable: auto" in out and "step 3:" in out and "step test done: stage back in auto" in out
    assert "fitted model:" in out and "SIMC" in out and "+pid_kp = " in out and "written to" in out
    after = plants.load(str(path)).stages[0].values
    changed = {k for k in after if after[k] != before[k]}
    assert {"pid_kp", "pid_ti", "mix_time", "ph_response"} <= changed, changed
    # the model it found is the tank's: mixing 89 s (holdup/throughput), electrode 15 s lag after
    # 10 s dead time plus the 5 s median sample
    assert 60 <= after["mix_time"] <= 110 and 60 <= after["ph_response"] <= 160
    worst, osc = _holds(path, "CSTR", [(0, 7.0), (300, 7.5)], 1500, 0.05)
    assert worst < 0.05 and not osc, worst


def test_the_flow_refuses_an_unconfirmed_start_and_leaves_the_file(tmp_path, capsys):
    path = tmp_path / "hs.toml"
    shutil.copy(ROOT / "examples" / "hs-benchmark.toml", path)
    text = path.read_text()
    # no --yes and no terminal to ask: nothing starts
    assert cli.main(["tune", "--plant", str(path), "--stage", "CSTR"]) == 1
    err = capsys.readouterr().err
    assert "not confirmed: the stage was left as it was" in err
    assert path.read_text() == text


@pytest.fixture(scope="module")
def live_hs(tmp_path_factory):
    """The HS tank on a virtual board run paced by `sxctl sim --no-host`, its bus left to other
    programs as a plant's is; the plant file gives the boards a link timeout the tests' polls keep."""
    folder = tmp_path_factory.mktemp("live")
    path = folder / "hs.toml"
    path.write_text((ROOT / "examples" / "hs-benchmark.toml").read_text().replace(
        "[defaults]\n", "[defaults]\nlink_timeout = 3600\n", 1))
    sim = start_sim(folder, "--plant", str(path), "--no-host", "--speed", "40")
    yield path, sim
    sim.stop()


def test_tune_drives_a_live_stage_over_the_bus_and_writes_the_plant_file(live_hs, tmp_path, capsys):
    source, sim = live_hs
    path = tmp_path / "hs.toml"
    shutil.copy(source, path)
    assert cli.main(["tune", "--plant", str(path), "--stage", "CSTR", "--bus", sim.bus, "--ph-range", "6.5:8.0",
                     "--poll", "0.1", "--yes"]) == 0
    out = capsys.readouterr().out
    assert "on the bus" in out and "stage stable: auto" in out and "step 3:" in out, out
    assert "step test done: stage back in auto" in out and "(board confirmed)" in out and "+pid_kp = " in out, out
    after = plants.load(str(path)).stages[0].values
    assert 60 <= after["mix_time"] <= 110 and 60 <= after["ph_response"] <= 160, after
    assert after["pid_td"] > 0 and after["pid_kp"] > 0


def test_ctrl_c_on_a_live_stage_restores_its_mode_and_dose_through_the_bus(live_hs, tmp_path):
    source, sim = live_hs
    path = tmp_path / "hs.toml"
    shutil.copy(source, path)
    text = path.read_text()
    from sxctl.buslink import BusClient
    from sxproto import messages

    # as an operator would: the alarms an earlier step test raised are acknowledged first
    with BusClient(sim.bus, timeout=1.0) as bus:
        bus.request(1, messages.ALARM_ACK, dict(mask=0xFFFF), expect=messages.ALARM_STATE)
    proc = subprocess.Popen(SXCTL + ["tune", "--plant", str(path), "--stage", "CSTR", "--bus", sim.bus, "--poll",
                                     "0.1", "--yes"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines = []
    deadline = time.monotonic() + 300
    for line in proc.stdout:  # progress: wait until the step test is under way
        lines.append(line)
        if line.startswith("step 2:") or time.monotonic() > deadline:
            break
    assert lines[-1].startswith("step 2:"), lines
    proc.send_signal(signal.SIGINT)
    rest = proc.stdout.read()
    assert proc.wait(60) == 130, rest
    assert "interrupted: stage back in auto at 155." in rest and "(board confirmed)" in rest, rest
    assert "nothing written" in rest and path.read_text() == text
    # the board says so too: auto, dosing again
    with BusClient(sim.bus, timeout=1.0) as bus:
        t = bus.request(1, messages.GET_TELEMETRY, expect=messages.TELEMETRY).values
    assert t["mode"] == 2 and t["base_dose"] > 10000, t


class _Stage:
    def __init__(self):
        self.calls = []

    def set_manual(self, dose):
        self.calls.append(("manual", dose))

    def restore(self, mode, dose):
        self.calls.append(("restore", mode, dose))
        return "restored"


def _record(t, ph, mode=2, alarms=0):
    return dict(time_s=t, ph=int(ph * 1000), base_dose=15550, flow_aq=996, mode=mode, alarms_active=alarms, alarms_unacked=0)


def test_an_unstable_stage_is_refused_before_any_dose():
    stage = _Stage()
    opts = tune.Options(6.5, 8.0, 300.0, 5.0, 5.0, wait_s=900.0)
    proc = tune.Procedure(stage, opts, say=lambda text: None)
    with pytest.raises(tune.TuneRefused, match="not stable after 900 s.*pH spread 0.100"):
        for k in range(200):
            proc.feed(k * 5.0, [_record(k * 5.0, 7.0 + 0.05 * (-1) ** (k // 10))])
    assert stage.calls == []


def test_bounded_steps_and_restore_at_the_end():
    stage = _Stage()
    opts = tune.Options(6.8, 7.2, 300.0, 5.0, 5.0, max_step=3.0, stable_s=60, settle_s=30, min_hold_s=30)
    proc = tune.Procedure(stage, opts, say=lambda text: None)
    t, dose = 0.0, None
    while not proc.done and t < 50000:
        d = stage.calls[-1][1] if stage.calls and stage.calls[-1][0] == "manual" else 155.5
        proc.feed(t, [dict(_record(t, 7.0 + (d - 155.5) * 0.05), base_dose=int(d * 100))])
        t += 5.0
    doses = [c[1] for c in stage.calls if c[0] == "manual"]
    assert doses[0] == 155.5 and all(abs(b - a) <= 3.0 + 1e-9 for a, b in zip(doses, doses[1:]))
    assert min(doses) < 155.5 - 3.9 and max(doses) > 155.5 + 3.9  # down past 6.8, up past 7.2
    assert stage.calls[-1] == ("restore", 2, 155.5)


def test_fit_finds_mixing_electrode_and_dead_time():
    t = np.arange(0, 600, 5.0)
    y = tuning.step_response(t, 90.0, 15.0, 15.0) + np.random.default_rng(1).normal(0, 0.005, len(t))
    r = tuning.fit_response(t, y)
    assert abs(r.tau1 - 90) < 8 and abs(r.tau2 - 15) < 5 and abs(r.theta - 15) < 3, r


def test_a_noisy_stage_is_fitted_on_all_its_steps_together():
    # five small steps, each with noise a tenth of its size (an SX stage: 0.002 pH noise on
    # steps of 0.02 pH); one alone places the dead time anywhere, all together within 3 s
    rng = np.random.default_rng(3)
    steps = []
    for k in range(5):
        t = np.arange(0, 400, 1.0)
        steps.append((t, tuning.step_response(t, 70.0, 10.0, 11.0) + rng.normal(0, 0.1, len(t)), 1.0))
    r = tuning.fit_responses(steps)
    assert r.steps == 5 and abs(r.theta - 11) < 3 and abs(r.tau1 - 70) < 10 and abs(r.tau2 - 10) < 5, r


class _Backlog:
    """A board's backlog as BACKLOG_READ answers it: records from 10 on, `latest` moving on."""

    def __init__(self):
        self.latest = 12

    def request(self, addr, message, values=None, expect=None):
        since, count = values["since"], values["count"] or 120
        recs = [dict(record=n, ph=7000 + n, base_dose=15550, flow_aq=996, mode=2, alarms_active=0, alarms_unacked=0)
                for n in range(max(since + 1, 10), self.latest + 1)][:count]
        return type("Reply", (), {"values": dict(count=len(recs), latest=self.latest, records=recs)})()


def test_the_live_reader_starts_at_the_newest_record_and_counts_what_the_board_lost():
    bus = _Backlog()
    reader = tune.BacklogReader(bus, 1, 5.0)
    assert [r["time_s"] for r in reader.read()] == [60.0]  # the newest, record 12 at 5 s each
    bus.latest = 14
    assert [r["ph"] for r in reader.read()] == [7013, 7014] and reader.lost == 0
    bus.latest = 10
    with pytest.raises(SxctlError, match="reset during the step test"):
        reader.read()


def test_simc_margins_and_a_slow_electrode_rule_with_its_fix():
    model = tuning.StageModel([(5.0, 1100), (9.7, 1860)], 1.0, 7.0, 89.0, 40.0, 35.0, 5.0, 5.0)
    settings = tuning.simc(model)
    gm, pm = tuning.margins(model, settings)
    assert 2.5 < gm < 4 and pm > 45  # SIMC τc = θ: a gain margin about 3
    breaks = tuning.rule_breaks(model, {"stuck_window": 120})
    assert model.ph_response_s == 235 and breaks[0].fix == {"stuck_window": 470}
    assert "must be below stuck_window 120 s" in breaks[0].text and "fix: stuck_window = 470" in breaks[0].text


def test_plantedit_replaces_in_place_and_adds_to_the_stage():
    text = ("[defaults]\npid_kp = 60.0   # old\n\n[[stage]]\naddress = 1\nname = \"E1\"\nmix_time = 5\n\n"
            "[[stage]]\naddress = 2\nname = \"E2\"\n")
    new = plantedit.set_items(text, "E1", {"mix_time": "80", "pid_kp": "40.00"}, note="sxctl tune")
    assert "mix_time = 80   # sxctl tune" in new and "pid_kp = 60.0   # old" in new  # two stages: defaults kept
    assert new.index("pid_kp = 40.00") < new.index("name = \"E2\"")
    with pytest.raises(SxctlError, match="no \\[\\[stage\\]\\] named 'E9'"):
        plantedit.set_items(text, "E9", {"mix_time": "1"})


def test_tune_on_a_cascade_stage_writes_settings_with_which_it_holds_its_setpoint(tmp_path, capsys):
    path = tmp_path / "sx.toml"
    shutil.copy(ROOT / "examples" / "sx-cascade.toml", path)
    assert cli.main(["tune", "--plant", str(path), "--stage", "E1", "--ph-range", "1.6:1.8", "--yes"]) == 0
    out = capsys.readouterr().out
    assert "step test done: stage back in auto" in out and "written to" in out
    e1 = next(s for s in plants.load(str(path)).stages if s.name == "E1").values
    assert e1["titration_points"] >= 3 and e1["titration_ph_0"] <= 1620 and e1["mix_time"] > 0
    # from the cold start, on the written settings: E1 holds 1.70, then a step to 1.75
    worst, osc = _holds(path, "E1", [(0, 1.7), (3000, 1.75)], 4200, 0.05)
    assert worst < 0.05 and not osc, worst
