"""sxctl export and sxctl plot on logs of virtual boards and of in-memory boards with known values."""
import csv
import io
import sqlite3

import pytest
from PIL import Image
from simboards import start_sim, sxctl
from sxproto import messages

from sxctl import store
from sxctl.bench.host_log import FakeBoard, memory_bus
from sxctl.commands import export
from sxctl.logger import Logger

HEADER = ("time,stage,ph,ph_setpoint,orp_mv,temperature_c,flow_aq_lpm,flow_org_lpm,base_dose_ml_min,"
          "mode,alarms_active,alarms_unacked")


@pytest.fixture(scope="module")
def sim_log(tmp_path_factory):
    """A few seconds of three virtual boards, logged by the real command."""
    tmp = tmp_path_factory.mktemp("simlog")
    sim = start_sim(tmp, "--stages", "3")
    try:
        db = tmp / "log.sqlite"
        proc = sxctl("log", "--port", sim.bus, "--stages", "1-3", "--db", str(db), "--duration", "2")
        assert proc.returncode == 0, proc.stderr
    finally:
        sim.stop()
    return db


@pytest.fixture
def known_log(tmp_path):
    """A log of two in-memory boards whose values are known, stage 2 with an alarm raised."""
    t0 = 1_800_000_000.0
    now = [t0]
    boards = [FakeBoard(addr, lambda: now[0]) for addr in (1, 2)]
    db = tmp_path / "known.sqlite"
    logger = Logger(memory_bus(boards), store.SQLiteStore(db), [1, 2], clock=lambda: now[0])
    logger.poll_round()
    boards[1].raise_alarm(3)
    boards[1].raise_alarm(7)
    now[0] += 2
    logger.poll_round()
    logger.sink.close()
    return db, int(t0)


def test_export_of_a_sim_log_has_the_columns_and_every_row(sim_log, tmp_path):
    out = tmp_path / "log.csv"
    proc = sxctl("export", str(sim_log), "--csv", str(out))
    assert proc.returncode == 0, proc.stderr
    lines = out.read_text().splitlines()
    assert lines[0] == HEADER
    rows = list(csv.DictReader(lines))
    with sqlite3.connect(sim_log) as c:
        assert len(rows) == c.execute("SELECT COUNT(*) FROM telemetry").fetchone()[0]
    assert {r["stage"] for r in rows} == {"1", "2", "3"}
    assert all(sum(r["stage"] == s for r in rows) >= 3 for s in "123")
    keys = [(r["time"], int(r["stage"])) for r in rows]
    assert keys == sorted(keys)
    for r in rows:
        assert r["time"].endswith("Z") and r["mode"] in messages.MODES.values()
        for name in HEADER.split(",")[2:-3]:
            if r[name] == "":  # a faulted input (a bench board has no electrode): the alarm says which
                assert "fault" in r["alarms_active"], r
            else:
                float(r[name])


def test_export_converts_to_engineering_units_and_selects(known_log):
    db, t0 = known_log
    proc = sxctl("export", str(db), "--csv", "-", "--stage", "2", "--from", str(t0 + 1))
    assert proc.returncode == 0, proc.stderr
    rows = list(csv.reader(io.StringIO(proc.stdout)))
    assert rows[0] == HEADER.split(",")
    # FakeBoard record n: ph 4000 + 37n mod 600, orp -200 + n mod 50, base 1500 + 13n mod 300 (raw).
    assert rows[1:] == [
        # the aqueous flow is faulted: an empty cell, never its stale number
        ["2027-01-15T08:00:01Z", "2", "4.074", "4.300", "-198", "38.50", "", "11.800", "15.26", "auto",
         "ph_low|flow_aq_fault", "ph_low|flow_aq_fault"],
        ["2027-01-15T08:00:02Z", "2", "4.111", "4.300", "-197", "38.50", "", "11.800", "15.39", "auto",
         "ph_low|flow_aq_fault", "ph_low|flow_aq_fault"]]
    assert "2 rows written" in proc.stderr


def test_a_log_of_schema_1_keeps_reading_and_migrates(tmp_path):
    # A log written before the two alarm states: one `alarms` column, user_version 1.
    db = tmp_path / "old.sqlite"
    old = [c if c != "alarms_active" else "alarms" for c in store.TELEMETRY_COLUMNS if c != "alarms_unacked"]
    with sqlite3.connect(db) as c:
        c.executescript(store._SCHEMA.replace("alarms_active INTEGER NOT NULL, alarms_unacked INTEGER NOT NULL",
                                              "alarms INTEGER NOT NULL"))
        c.execute("PRAGMA user_version=1")
        row = dict.fromkeys(old, 0)
        row.update(stage=1, epoch=1, record=1, time=1_800_000_000, mode=2, alarms=1 << 3, ph=4000)
        c.execute("INSERT INTO telemetry (%s) VALUES (%s)" % (", ".join(old), ", ".join("?" * len(old))),
                  [row[k] for k in old])
    proc = sxctl("export", str(db), "--csv", "-")  # read-only: the file is not changed
    assert proc.returncode == 0, proc.stderr
    rows = list(csv.reader(io.StringIO(proc.stdout)))
    assert rows[0] == HEADER.split(",") and rows[1][-3:] == ["auto", "ph_low", ""]
    with sqlite3.connect(db) as c:
        assert c.execute("PRAGMA user_version").fetchone()[0] == 1
    s = store.SQLiteStore(db)  # opened to log into: migrated in place
    s.write_telemetry([(1, 1, 2, 1_800_000_001, 1) + (0,) * (len(store.VALUE_FIELDS) - 2) + (1 << 3, 0)])
    s.close()
    with sqlite3.connect(db) as c:
        assert c.execute("PRAGMA user_version").fetchone()[0] == store.SCHEMA_VERSION
        assert c.execute("SELECT record, alarms_active, alarms_unacked FROM telemetry ORDER BY record").fetchall() == [
            (1, 1 << 3, None), (2, 1 << 3, 0)]


def test_export_columns_carry_the_protocols_units():
    units = {"ph": "pH", "ph_setpoint": "pH", "orp_mv": "mV", "temperature_c": "°C", "flow_aq_lpm": "L/min",
             "flow_org_lpm": "L/min", "base_dose_ml_min": "mL/min"}
    assert {column: store.unit(field) for column, field in export.COLUMNS} == units


def test_plot_of_a_sim_log_is_a_png_to_look_at(sim_log, tmp_path):
    png = tmp_path / "log.png"
    proc = sxctl("plot", str(sim_log), "-o", str(png))
    assert proc.returncode == 0, proc.stderr
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 20_000
    with Image.open(png) as im:
        im.verify()
    with Image.open(png) as im:
        assert im.width >= 1000 and im.height >= 600  # three stages, two panels each
        assert len(im.convert("RGB").getcolors(1 << 20)) > 50  # lines, text and shading, not a blank page


def test_plot_of_one_stage_and_a_time_window(known_log, tmp_path):
    db, t0 = known_log
    png = tmp_path / "one.png"
    proc = sxctl("plot", str(db), "-o", str(png), "--stage", "2", "--from", "2027-01-15T08:00:00Z",
                 "--to", str(t0 + 2))
    assert proc.returncode == 0, proc.stderr
    assert "stage 2 plotted" in proc.stderr
    with Image.open(png) as im:
        assert im.height < 500  # one row of panels


def test_plot_says_what_the_file_holds_when_nothing_is_selected(known_log, tmp_path):
    db, _ = known_log
    proc = sxctl("plot", str(db), "-o", str(tmp_path / "x.png"), "--stage", "9")
    assert proc.returncode == 1
    assert "holds stages 1,2" in proc.stderr and "--stage" in proc.stderr
    missing = sxctl("export", str(tmp_path / "nothing.sqlite"), "--csv", "-")
    assert missing.returncode == 1 and "nothing.sqlite" in missing.stderr
