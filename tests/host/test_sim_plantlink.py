"""The plant link: record layout, lock-step determinism, units end to end, pacing, a silent board."""
import re
import time

import pytest

from sxproto import plantlink as records

from sxctl.errors import SxctlError
from sxctl.sim import instruments, plantlink, plants
from sxctl.sim.plants import Event
from sxctl.sim.session import Session


def test_sense_record_is_the_declared_layout():
    raw = plantlink.sense_record(1234567, ph_uv=-88740.4, orp_uv=680000, rtd_mohm=1097350, pulses_aq=7,
                                 pulses_org=70000)
    assert len(raw) == records.SENSE.sizeof() == 24
    parsed = records.SENSE.parse(raw)
    assert (parsed.magic, parsed.time_ms, parsed.ph_uv, parsed.orp_uv, parsed.rtd_mohm, parsed.pulses_aq) == (
        0x53, 1234567, -88740, 680000, 1097350, 7)
    assert parsed.pulses_org == 65535  # held inside its declared range, not wrapped
    assert records.SENSE.parse(plantlink.sense_record(2 ** 30 + 5)).time_ms == 5  # the board clock wraps at 2^30


def test_act_records_are_read_across_split_writes_and_resynchronised():
    link = plantlink.BoardLink(1)
    try:
        act = records.ACT.build(dict(magic=0x41, enabled=1, valves=0, mode=2, time_ms=5000, base_dose=15550,
                                     reagent_dose=0, aq_pump=0, org_pump=0, reserved=0))
        board = open(link.path, "r+b", buffering=0)
        board.write(b"\x99" + act[:5])  # a stray byte, then half a record
        assert link.read() == []
        board.write(act[5:])
        got = link.read()
        board.close()
        assert [(a.time_ms, a.base_dose, a.mode) for a in got] == [(5000, 15550, 2)]
        assert link.skipped == 1 and link.act.base_dose == 15550
    finally:
        link.close()


def test_a_board_that_does_not_answer_is_named():
    link = plantlink.BoardLink(7)
    try:
        with pytest.raises(plantlink.PlantLinkError, match="board 7 did not answer .* t=2.000 s"):
            plantlink.PlantLink([link], timeout_s=0.2).exchange(2000, {7: plantlink.sense_record(2000)})
    finally:
        link.close()


def test_electrode_and_rtd_match_the_board_conversions():
    # the board's pH model: E = offset + (7 - pH) * 59.16 mV * T/298.15 K; Pt1000 by IEC 60751
    assert instruments.electrode_uv(4.0) == pytest.approx(3 * 59160.0)
    assert instruments.electrode_uv(10.0, temp_c=40.0) == pytest.approx(-3 * 62136.0, abs=3)
    assert instruments.pt1000_mohm(0.0) == pytest.approx(1000000.0)
    assert instruments.pt1000_mohm(100.0) == pytest.approx(1385055.0, abs=1)


def _hs(**fields):
    return plants.variant(plants.load("hs"), **fields)


def test_board_dosing_155_5_ml_min_brings_the_tank_to_the_published_steady_state():
    # From the q3 = 10 mL/s steady state (pH ~4), the board in manual at 155.50 mL/min gives
    # q3 = 15.55 mL/s; the tank settles at the published pH 7.0 and the board reads it.
    plant = _hs(model_params=dict(q1=16.6, q2=0.55, q3=10.0), probe={}, manual_dose=155.5,
                auto_at_s=float("inf"))
    result = Session(plant, 2400.0).run()
    assert result.trace.ph[0][0] < 4.5
    assert result.trace.base[-1][0] == pytest.approx(15.55)
    assert result.trace.ph[-1][0] == pytest.approx(7.0, abs=0.02)
    last = result.telemetry[1][-1]
    assert last["base_dose"] == 15550 and last["mode"] == 1
    assert last["ph"] / 1000.0 == pytest.approx(7.0, abs=0.02)
    assert last["flow_aq"] == pytest.approx(996, abs=5)  # q1 = 16.6 mL/s through the 3900 pulses/L meter


def test_lock_step_runs_are_identical():
    plant = _hs(events=[Event(120, "ph_setpoint", 7.5, 0), Event(300, "q2", 1.2)])

    def run():
        result = Session(plant, 600.0, epoch0=1_700_000_000).run()
        return [(r["record"], r["time_s"], r["ph"], r["base_dose"], r["mode"], r["alarms_active"], r["alarms_unacked"])
                for r in result.telemetry[1]], result.trace

    first, trace1 = run()
    second, trace2 = run()
    assert len(first) == 121  # one record per 5 s scan, t = 0..600 s
    assert first == second
    assert trace1 == trace2
    # and the run did something: the setpoint step moved the dose and the pH
    doses = {r[3] for r in first}
    assert len(doses) > 10 and max(r[2] for r in first) > 7300


def test_every_board_s_first_scan_measures_the_plant_whichever_boots_first():
    # Four boards start one after another; each one's first scan (record 1, t = 0) must measure
    # its preloaded first SENSE, not its inputs as unconnected: which board reached its loop
    # before the simulator moved bytes made runs differ from each other.
    result = Session(plants.load("sx"), 2.0, epoch0=1_700_000_000).run()
    for i, addr in enumerate(sorted(result.telemetry)):
        first = result.telemetry[addr][0]
        assert first["record"] == 1 and first["time_s"] == 0
        assert first["ph"] / 1000.0 == pytest.approx(result.trace.ph_read[0][i], abs=0.005), addr


def test_paced_run_keeps_to_its_speed():
    plant = _hs(probe={})
    started = time.monotonic()
    result = Session(plant, 60.0, speed=60.0).run()
    assert result.wall_s >= 60.0 / 60.0 * 0.98  # paced, not lock-step
    assert time.monotonic() - started < 30
    assert result.trace.t_s[-1] == 60.0
    assert sum(s["received"] for s in result.plant_link.values()) == 61


def test_plant_file_sim_table_is_checked():
    text = plants.BUILTIN["hs"].read_text()
    with pytest.raises(SxctlError, match=r"\[sim\] params.qq: unknown"):
        plants.parse(text.replace("q2 = 0.55", "qq = 0.55"), "x.toml")
    with pytest.raises(SxctlError, match="ph_setpoint needs stage"):
        plants.parse(text + "\n[[sim.event]]\nat_s = 5\nph_setpoint = 8.0\n", "x.toml")
    with pytest.raises(SxctlError, match="q3 cannot change during a run"):
        plants.parse(text + "\n[[sim.event]]\nat_s = 5\nq3 = 20.0\n", "x.toml")
    plant = plants.parse(text + "\n[[sim.event]]\nat_s = 60\nq1 = 18.1\n", "x.toml")
    assert plant.events == [Event(60.0, "q1", 18.1)]
    # the rest is an `sxctl config` plant file: pid_kp in mL/min per pH, kept in 0.01 units
    kp = float(re.search(r"^pid_kp = ([0-9.]+)", text, re.M).group(1))
    assert plant.stages[0].values["pid_kp"] == round(kp * 100)


def test_docs_tables_are_the_declared_records():
    import pathlib
    import struct

    from sxproto import fields

    doc = (pathlib.Path(__file__).parents[2] / "docs" / "plant-link.md").read_text()
    types = {"B": "u8", "H": "u16", "I": "u32", "i": "i32"}
    for record in records.RECORDS.values():
        offset = 0
        for f in fields.infos(record):
            unit = f.unit if f.scale == 1 else "%s %s" % (f.scale, f.unit)
            assert "| %d | %s | %s | %s | %s |" % (offset, f.name, types[f.fmt], unit, f.doc) in doc, f.name
            offset += struct.calcsize("<" + f.fmt)
    assert plantlink.SENSE.format in doc and plantlink.ACT.format in doc
