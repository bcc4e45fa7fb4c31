"""A cascade that works, through the commands a user runs: `sxctl sim --plant sx --log`, then
`sxctl export`. Shortened to 30 simulated minutes in lock-step (the full hour at --speed 200 is
`make bench`'s control.sx_cascade figures and the command in the README)."""
import csv
import datetime

from simboards import sxctl

DURATION_S = 1800
LAST_S = 600
SETPOINTS = {1: 1.7, 2: 1.5, 3: 1.3, 4: 1.1}  # examples/sx-cascade.toml


def test_cold_cascade_holds_every_stage_within_0_1_ph_over_the_last_10_minutes(tmp_path):
    db, out = tmp_path / "run.sqlite", tmp_path / "run.csv"
    run = sxctl("sim", "--stages", "4", "--plant", "sx", "--duration", str(DURATION_S), "--log", str(db), timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "ran 0:30:00 simulated" in run.stdout
    export = sxctl("export", str(db), "--csv", str(out))
    assert export.returncode == 0, export.stderr
    rows = list(csv.DictReader(out.open()))
    when = [datetime.datetime.fromisoformat(r["time"].replace("Z", "+00:00")).timestamp() for r in rows]
    start, end = min(when), max(when)
    assert end - start == DURATION_S
    by_stage = {}
    for t, r in zip(when, rows):
        by_stage.setdefault(int(r["stage"]), []).append((t - start, r))
    assert sorted(by_stage) == [1, 2, 3, 4]
    for stage, recs in by_stage.items():
        assert len(recs) == DURATION_S + 1  # a record per 1 s scan, none lost by the logger
        # a cold start: the mixers start full of feed, far from the setpoint, and the stage is off
        assert recs[0][1]["mode"] == "off" and recs[-1][1]["mode"] == "auto"
        # (a record taken before the first measurement is a faulted input: an empty cell)
        assert any(r["ph"] and abs(float(r["ph"]) - SETPOINTS[stage]) > 0.3 for _, r in recs[:300])
        assert all(r["ph"] or "ph_sensor_fault" in r["alarms_active"] for _, r in recs)
        tail = [r for t, r in recs if t >= DURATION_S - LAST_S]
        assert all(float(r["ph_setpoint"]) == SETPOINTS[stage] for r in tail)
        worst = max(abs(float(r["ph"]) - SETPOINTS[stage]) for r in tail)
        assert worst <= 0.1, "stage %d off its setpoint by %.3f pH in the last 10 min" % (stage, worst)
        assert all(float(r["base_dose_ml_min"]) > 0 for r in tail)
