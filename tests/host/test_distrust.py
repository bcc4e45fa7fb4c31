"""The host distrusts what boards send, and faults look like faults: in-memory boards that lie,
burst, fault and fill the disk, against the real logger, store, monitor, export and plot."""
import csv
import io
import sqlite3

import numpy as np
import pytest
from PIL import Image
from sxproto import config_items, messages

from sxctl import buslink, logger as logger_mod, monitor, store
from sxctl.bench.host_log import FakeBoard, MemoryPort, memory_bus
from sxctl.commands import export
from sxctl.logger import Logger

T0 = 1_800_000_000.0
PH_FAULT = 4  # ALARMS bit of ph_sensor_fault


class Clock:
    def __init__(self, t=T0):
        self.t = t

    def __call__(self):
        return self.t


class FaultingBoard(FakeBoard):
    """A board whose pH input is faulted (reads 0, ph_sensor_fault active) for records in `faulted`."""

    def __init__(self, addr, clock, faulted):
        self.faulted = faulted
        super().__init__(addr, clock, capacity=400)

    def _catch_up(self):
        start = self.latest
        super()._catch_up()
        for r in list(self.records):
            if r["record"] > start and r["record"] in self.faulted:
                r["ph"] = 0
                r["alarms_active"] |= 1 << PH_FAULT
        # the alarm state now, which the board's telemetry reports with its newest record
        if self.latest in self.faulted:
            self.alarms |= 1 << PH_FAULT
        else:
            self.alarms &= ~(1 << PH_FAULT)


def _log(tmp_path, boards, rounds, step=1.0, sink=None, clock=None):
    clock = clock or boards[0].clock
    sink = sink or store.SQLiteStore(tmp_path / "log.sqlite")
    said = []
    log = Logger(memory_bus(boards), sink, [b.addr for b in boards], clock=clock, say=said.append)
    for _ in range(rounds):
        log.poll_round()
        clock.t += step
    return log, said


# --- faults look like faults -------------------------------------------------------------------

@pytest.fixture
def faulted_log(tmp_path):
    clock = Clock()
    board = FaultingBoard(1, clock, faulted=range(101, 201))
    log, _ = _log(tmp_path, [board], rounds=1)
    clock.t += 299  # 300 records: good, 100 faulted in the middle, good
    log.poll_round()
    log.sink.close()
    return tmp_path / "log.sqlite", log


def test_monitor_and_status_line_show_a_faulted_ph_as_fault(tmp_path):
    clock = Clock()
    board = FaultingBoard(1, clock, faulted=range(1, 1000))
    log, _ = _log(tmp_path, [board], rounds=1)
    assert "1:FAULT" in log.status()
    lines = monitor.table([monitor.read_stage(log.bus, 1)])
    cells = lines[2].split()
    assert cells[1] == "FAULT" and cells[3] == "--"  # pH and its deviation: no number
    assert "ph_sensor_fault" in lines[3]
    assert '"ph": null' in monitor.views_json([monitor.read_stage(log.bus, 1)])


def test_csv_has_an_empty_ph_cell_where_the_input_was_faulted(faulted_log):
    db, _ = faulted_log
    rows = list(csv.DictReader(io.StringIO("\n".join(
        [",".join(export.HEADER)] + [",".join(map(str, r)) for r in export.rows(store.SQLiteStore(db, readonly=True))]))))
    assert len(rows) == 301
    faulted = rows[100:200]
    assert all(r["ph"] == "" and "ph_sensor_fault" in r["alarms_active"] for r in faulted)
    assert all(r["ph"] != "" and float(r["ph"]) > 3 for r in rows[:100] + rows[200:])
    assert all(r["ph_setpoint"] != "" for r in faulted)  # only the faulted input is blank


def test_plot_leaves_a_gap_where_the_ph_input_was_faulted(faulted_log, tmp_path):
    from sxctl import plot

    db, _ = faulted_log
    png = tmp_path / "plot.png"
    with open(png, "wb") as f:
        plot.render(store.SQLiteStore(db, readonly=True), f)
    pixels = np.asarray(Image.open(png).convert("RGB")).astype(int)
    blue = np.abs(pixels - np.array([0x1F, 0x77, 0xB4])).sum(axis=2) < 40  # the pH line's colour
    width = pixels.shape[1]
    rows = blue[:, : width // 2].any(axis=0)  # the pH axes are the left half
    # the legend's sample line is blue too: take the columns of the line's lower, plotted part
    line = blue[int(pixels.shape[0] * 0.45):, : width // 2].any(axis=0)
    columns = np.nonzero(line)[0]
    assert rows.any() and len(columns) > 50
    span = columns[-1] - columns[0]
    gaps = np.diff(columns)
    widest = gaps.max()
    at = columns[gaps.argmax()]
    assert widest > span * 0.25, "no gap in the pH line where the input was faulted"
    assert columns[0] + span * 0.25 < at < columns[0] + span * 0.5  # where records 101..200 lie
    # and no flat line at pH 0: nothing blue below the good readings' level
    lowest_good_row = np.nonzero(blue[:, columns[0]:columns[0] + 5].any(axis=1))[0].max()
    assert not blue[lowest_good_row + 10:, at + 2: at + widest - 2].any()


# --- values out of the protocol's ranges ------------------------------------------------------------

class LyingBoard(FakeBoard):
    """Records 5..7 carry mode 255, pH -32.768 and a time in 2106."""

    def _catch_up(self):
        start = self.latest
        super()._catch_up()
        for r in self.records:
            if r["record"] > start and 5 <= r["record"] <= 7:
                r.update(mode=255, ph=-32768, time_s=0xFFFFFFFF)


def test_out_of_range_records_are_counted_and_never_stored_or_shown(tmp_path):
    clock = Clock()
    log, said = _log(tmp_path, [LyingBoard(1, clock)], rounds=12)
    db = tmp_path / "log.sqlite"
    with sqlite3.connect(db) as c:
        assert c.execute("SELECT COUNT(*) FROM telemetry WHERE mode > 3 OR ph < -2000 OR time > ?",
                         (int(clock.t) + 1000,)).fetchone()[0] == 0
        assert sorted(r[0] for r in c.execute("SELECT first FROM gaps WHERE kind = 'refused'")) == [5, 6, 7]
        stored = [r[0] for r in c.execute("SELECT record FROM telemetry ORDER BY record")]
    assert stored[:6] == [1, 2, 3, 4, 8, 9]
    assert log.stages[0].refused == 3 and "3 refused" in log.status()
    assert any("record 5 not stored: ph, mode" in text for text in said), said
    view = monitor.StageView(1, dict(log.bus.serial.boards[1].records[5]))  # record 6, as a board sent it
    line = monitor.table([view])[2]
    assert "-32.768" not in line and "255" not in line and line.split()[1] == "--"


def test_info_shows_no_out_of_range_value_and_no_control_character(monkeypatch, capsys):
    from sxctl.commands import common, info

    board = FakeBoard(1)
    board.serial = "\x1b[2J\x07pwned"
    bus = memory_bus([board])
    original = board._handle

    def handle(message, values):
        reply, v = original(message, values)
        if message is messages.HELLO:
            v = dict(v, mode=255)
        return reply, v
    board._handle = handle
    monkeypatch.setattr(common, "open_bus", lambda *a, **k: bus)
    args = type("Args", (), dict(addr=1, json=False, bus="memory", baud=None, plant=None, key_file=None,
                                 env_key=None, verb="info"))()
    assert info.run(args) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\x07" not in out and "\\x1b" in out
    assert "out of range: 255" in out and "not believed" in out


def test_every_field_a_board_sends_declares_its_range():
    from sxproto import fields

    def undeclared(struct, prefix):
        for f in fields.infos(struct):
            if f.record is not None:
                yield from undeclared(f.record, prefix + f.name + "[].")
            elif not f.text_len and not f.declared:
                yield prefix + f.name
    assert [name for m in messages.ALL if m.is_reply for name in undeclared(m.body, m.name + ".")] == []
    assert fields.infos(messages.INFO.body)[7].name == "uptime_s"
    assert fields.infos(messages.INFO.body)[7].hi == messages.UPTIME_MAX_S < 0xFFFFFFFF


class UptimeBoard(FakeBoard):
    """Says it has been up 4294967295 s, and answers STREAM with a period beyond the protocol's."""

    def _handle(self, message, v):
        if message is messages.STREAM:
            return messages.STREAM_ACK, dict(period_ms=65000)
        reply, values = super()._handle(message, v)
        if message is messages.HELLO:
            values = dict(values, uptime_s=0xFFFFFFFF)
        return reply, values


def test_an_info_out_of_range_is_shown_as_no_value_and_the_logger_stores_nothing_of_it(tmp_path, monkeypatch, capsys):
    import json

    from sxctl.commands import common, info
    clock = Clock()
    board = UptimeBoard(1, clock)
    log, said = _log(tmp_path, [board], rounds=3)
    assert log.stages[0].online is False and log.rows == 0 and log.stages[0].refused >= 1
    assert any("uptime_s 4294967295 outside the protocol's range" in text for text in said), said
    assert "nothing stored" in log.failures()[0]
    monkeypatch.setattr(common, "open_bus", lambda *a, **k: memory_bus([board]))
    for as_json in (False, True):
        args = type("Args", (), dict(addr=1, json=as_json, bus="memory", baud=None, plant=None, key_file=None,
                                     env_key=None, verb="info"))()
        assert info.run(args) == 0
        out = capsys.readouterr().out
        if as_json:
            got = json.loads(out)
            assert got["uptime_s"] is None and got["out_of_range"] == ["uptime_s"]
        else:
            assert "4294967295 s" not in out and "-- (out of range: 4294967295)" in out


def test_any_other_reply_out_of_range_is_refused_whole():
    bus = memory_bus([UptimeBoard(1, Clock())])
    with pytest.raises(buslink.OutOfRange, match="STREAM_ACK outside the protocol.s range: period_ms 65000"):
        bus.request(1, messages.STREAM, {"period_ms": 1000}, expect=messages.STREAM_ACK)
    assert bus.stats.out_of_range == 1


def test_board_text_reaches_the_terminal_with_control_characters_escaped(tmp_path):
    clock = Clock()
    board = FakeBoard(1, clock)
    log, said = _log(tmp_path, [board], rounds=2)
    board.serial = "EVIL\x1b[2J\x07"
    board.reset()
    log.stages[0].connected = False
    log.poll_round()
    assert any("EVIL\\x1b[2J\\x07" in text for text in said), said
    assert not any("\x1b" in text or "\x07" in text for text in said)
    assert buslink.printable("a\x1b[31mb\x07") == "a\\x1b[31mb\\x07"


# --- a board that keeps "resetting" ------------------------------------------------------------------

class ChangingBoard(FakeBoard):
    """Answers every re-read of a stored record with other values: each read looks like a reset."""

    def _handle(self, message, v):
        reply, values = super()._handle(message, v)
        if message is messages.BACKLOG_READ:
            self.calls = getattr(self, "calls", 0) + 1
            values = dict(values, records=[dict(r, ph=(r["ph"] + self.calls) % 14000) if r["record"] else r
                                           for r in values["records"]])
        return reply, values


def test_an_epoch_storm_is_bounded_and_the_board_reported_as_suspect(tmp_path):
    clock = Clock()
    log, said = _log(tmp_path, [ChangingBoard(1, clock)], rounds=10, step=0.5)
    with sqlite3.connect(tmp_path / "log.sqlite") as c:
        epochs = c.execute("SELECT COUNT(*) FROM epochs").fetchone()[0]
        rows = c.execute("SELECT COUNT(*) FROM telemetry").fetchone()[0]
    assert epochs <= 1 + logger_mod.SUSPECT_ROUNDS  # not one per read: bounded whatever the board says
    assert rows <= 12 * epochs
    assert any("suspect board" in text for text in said), said
    assert log.stages[0].online is False and "suspect" in log.failures()[0]


# --- a bus full of other boards' frames --------------------------------------------------------------

class BurstPort(MemoryPort):
    """A bus on which other boards' replies never stop arriving; the asked board never answers."""

    def __init__(self):
        super().__init__([])
        self.reads = 0
        frame = FakeBoard(9).answer(type("R", (), dict(message=messages.HELLO, values={}, seq=1))())
        self.burst = frame * 20

    def read(self, size=1):
        self.reads += 1
        return self.burst[:size]


def test_a_wait_for_a_reply_ends_at_its_deadline_whatever_arrives(monkeypatch):
    now = [0.0]

    def monotonic():  # each look at the clock is 10 ms later: deterministic, no wall-clock timing
        now[0] += 0.01
        return now[0]
    monkeypatch.setattr(buslink.time, "monotonic", monotonic)
    bus = buslink.BusClient("loop://", timeout=0.25, retries=1)
    bus.serial = port = BurstPort()
    with pytest.raises(buslink.NoAnswer):
        bus.request(1, messages.HELLO, expect=messages.INFO)
    assert port.reads <= 2 * (0.25 / 0.01) + 4  # two tries, each ended by its deadline
    assert bus.stats.foreign > 0 and bus.stats.timeouts == 2


# --- the disk fills up -------------------------------------------------------------------------------

class FillingStore(store.SQLiteStore):
    """An SQLite store whose writes fail like a full disk while `full` is set."""

    full = False

    def write_telemetry(self, rows):
        if self.full:
            raise sqlite3.OperationalError("database or disk is full")
        super().write_telemetry(rows)


def test_a_full_disk_loses_nothing_the_boards_still_hold(tmp_path):
    clock = Clock()
    sink = FillingStore(tmp_path / "log.sqlite")
    boards = [FakeBoard(1, clock), FakeBoard(2, clock)]
    log, said = _log(tmp_path, boards, rounds=3, sink=sink)
    sink.full = True
    for _ in range(20):  # 20 s of a full disk: well within the boards' 120-record backlogs
        log.poll_round()
        clock.t += 1
    assert "NOT STORING" in log.status() and log.failures()
    assert any("database or disk is full" in text for text in said)
    sink.full = False
    for _ in range(3):
        log.poll_round()
        clock.t += 1
    assert not log.failures() and any("storing again" in text for text in said)
    sink.close()
    with sqlite3.connect(tmp_path / "log.sqlite") as c:
        for stage in (1, 2):
            got = [r[0] for r in c.execute("SELECT record FROM telemetry WHERE stage = ? ORDER BY record", (stage,))]
            assert got == list(range(1, boards[stage - 1].latest + 1))
        assert c.execute("SELECT COUNT(*) FROM gaps").fetchone()[0] == 0
        assert c.execute("SELECT COUNT(*) FROM epochs").fetchone()[0] == 2  # no false resets


def _stored(path, stage):
    with sqlite3.connect(path) as c:
        return [r[0] for r in c.execute("SELECT record FROM telemetry WHERE stage = ? ORDER BY record", (stage,))]


def test_a_full_disk_longer_than_the_backlogs_is_held_in_memory(tmp_path):
    # 5 minutes of a full disk: the boards' 120-record backlogs alone would lose 3 minutes of it
    clock = Clock()
    sink = FillingStore(tmp_path / "log.sqlite")
    boards = [FakeBoard(1, clock), FakeBoard(2, clock)]
    log, said = _log(tmp_path, boards, rounds=2, sink=sink)
    sink.full = True
    for _ in range(300):
        log.poll_round()
        clock.t += 1
    assert "NOT STORING" in log.status() and "rows in memory" in log.status()
    assert sum(len(rows) for name, rows in log.held if name == "write_telemetry") == 2 * 300
    sink.full = False
    log.poll_round()
    assert not log.failures() and not log.held
    assert any("rows held in memory are stored" in text for text in said)
    sink.close()
    for board in boards:
        assert _stored(tmp_path / "log.sqlite", board.addr) == list(range(1, board.latest + 1))
    with sqlite3.connect(tmp_path / "log.sqlite") as c:
        assert c.execute("SELECT COUNT(*) FROM gaps").fetchone()[0] == 0


def test_a_full_memory_falls_back_on_the_boards_and_loses_only_what_neither_held(tmp_path):
    clock = Clock()
    sink = FillingStore(tmp_path / "log.sqlite")
    board = FakeBoard(1, clock)
    log, said = _log(tmp_path, [board], rounds=2, sink=sink)
    log.buffer_rows = 40
    stored_before = board.latest
    sink.full = True
    for _ in range(200):
        log.poll_round()
        clock.t += 1
    assert "memory full" in log.status() and any("no more" in text for text in said)
    held = [row[2] for name, rows in log.held if name == "write_telemetry" for row in rows]
    assert 0 < len(held) <= 40 and held == list(range(stored_before + 1, stored_before + 1 + len(held)))
    sink.full = False
    log.poll_round()
    assert not log.failures()
    sink.close()
    got = _stored(tmp_path / "log.sqlite", 1)
    # everything up to what memory held, and every record the board still held
    oldest_on_board = board.latest - board.capacity + 1
    assert got == list(range(1, held[-1] + 1)) + list(range(oldest_on_board, board.latest + 1))
    with sqlite3.connect(tmp_path / "log.sqlite") as c:
        gaps = c.execute("SELECT kind, first, last FROM gaps").fetchall()
    assert gaps == [("telemetry", held[-1] + 1, oldest_on_board - 1)]  # and the loss is on record


def test_a_locked_database_is_survived_too(tmp_path):
    clock = Clock()
    db = tmp_path / "log.sqlite"
    log, said = _log(tmp_path, [FakeBoard(1, clock)], rounds=2)
    other = sqlite3.connect(db, timeout=0)
    other.execute("BEGIN EXCLUSIVE")
    log.sink.db.execute("PRAGMA busy_timeout = 0")
    log.poll_round()
    clock.t += 1
    assert log.store_problem and "locked" in log.store_problem
    other.rollback()
    other.close()
    log.poll_round()
    assert not log.store_problem
    log.sink.close()
    with sqlite3.connect(db) as c:
        got = [r[0] for r in c.execute("SELECT record FROM telemetry ORDER BY record")]
    assert got == list(range(1, len(got) + 1)) and len(got) >= 3


class GarblingBoard(FakeBoard):
    """Answers one config item out of its declared range, and queues an event of no known code."""

    def _handle(self, message, v):
        reply, values = super()._handle(message, v)
        if message is messages.CONFIG_READ and v["item"] == config_items.BY_NAME["ph_setpoint"].id:
            values = dict(values, value=32000)
        return reply, values


def test_out_of_range_config_and_unknown_events_are_not_stored(tmp_path):
    from sxctl import configapply

    clock = Clock()
    board = GarblingBoard(1, clock)
    board.push_event(99, 0, 0)
    log, said = _log(tmp_path, [board], rounds=2)
    with sqlite3.connect(tmp_path / "log.sqlite") as c:
        assert c.execute("SELECT COUNT(*) FROM config WHERE name = 'ph_setpoint'").fetchone()[0] == 0
        assert c.execute("SELECT COUNT(*) FROM config").fetchone()[0] == len(config_items.ITEMS) - 1
        assert c.execute("SELECT COUNT(*) FROM events WHERE code = 99").fetchone()[0] == 0
        assert c.execute("SELECT COUNT(*) FROM gaps WHERE kind = 'refused events'").fetchone()[0] == 1
    assert any("config item ph_setpoint not stored" in text for text in said)
    with pytest.raises(Exception, match="holds ph_setpoint = 32000, outside its declared range"):
        configapply.read_board(log.bus, 1)
