"""sxctl log: telemetry, events and config stored once each, across kills, outages and resets."""
import os
import re
import signal
import sqlite3
import subprocess
import time

import pytest
from simboards import SXCTL, start_sim, sxctl, wait_for
from sxproto import codec, messages

from sxctl import buslink
from sxctl.bench.host_log import FakeBoard, memory_bus
from sxctl.commands.common import stage_list
from sxctl.logger import Logger
from sxctl.store import Sink, SQLiteStore


def records(db, stage, epoch=None):
    q = "SELECT record FROM telemetry WHERE stage = ?" + (" AND epoch = ?" if epoch else "") + " ORDER BY epoch, record"
    with sqlite3.connect(db) as c:
        return [r[0] for r in c.execute(q, (stage, epoch) if epoch else (stage,))]


def stored_counts(db, stages):
    """Records stored per stage, zeros while the logger has not yet made the file and its tables."""
    try:
        return [len(records(db, s)) for s in stages] if os.path.exists(db) else [0] * len(stages)
    except sqlite3.OperationalError:
        return [0] * len(stages)


def query(db, sql, *args):
    with sqlite3.connect(db) as c:
        return c.execute(sql, args).fetchall()


def board_latest(bus_path, addrs):
    with buslink.BusClient(bus_path) as bus:
        return {a: bus.request(a, messages.BACKLOG_READ, dict(since=0, count=0), expect=messages.BACKLOG).values["latest"]
                for a in addrs}


def test_sigkill_and_restart_lose_no_record(sim3, tmp_path):
    db = str(tmp_path / "log.sqlite")
    args = SXCTL + ["log", "--port", sim3.bus, "--stages", "1-3", "--db", db]
    with open(tmp_path / "log1.err", "w") as err:
        proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=err)
    try:
        wait_for(lambda: all(n >= 3 for n in stored_counts(db, (1, 2, 3))), what="3 records of every stage")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    stored = {s: max(records(db, s)) for s in (1, 2, 3)}
    # While the logger is down the boards go on recording, and stage 2's config changes.
    wait_for(lambda: all(n >= stored[a] + 3 for a, n in board_latest(sim3.bus, (1, 2, 3)).items()),
             what="boards recording on")
    with buslink.BusClient(sim3.bus) as bus:
        bus.request(2, messages.SET_SETPOINT, dict(loop=0, value=2750), expect=messages.SETPOINT_ACK)
    latest = board_latest(sim3.bus, (1, 2, 3))
    again = subprocess.run(args + ["--duration", "1"], capture_output=True, text=True, timeout=30)
    assert again.returncode == 0, again.stderr
    assert "rows" in again.stderr and "pH" in again.stderr  # the status line
    for stage in (1, 2, 3):
        got = records(db, stage)
        assert got == list(range(1, len(got) + 1)), "stage %d: records missing or doubled" % stage
        assert got[-1] >= latest[stage]
        assert query(db, "SELECT epoch FROM epochs WHERE stage = ?", stage) == [(1,)]
    assert query(db, "SELECT COUNT(*) FROM gaps") == [(0,)]
    # The boot events are stored once; the setpoint change as a config event and a new snapshot.
    assert query(db, "SELECT stage, COUNT(*) FROM events WHERE kind = 'boot' GROUP BY stage") == [
        (1, 1), (2, 1), (3, 1)]
    assert query(db, "SELECT COUNT(*) FROM events WHERE stage = 2 AND kind = 'config'") == [(1,)]
    setpoints = query(db, "SELECT value FROM config WHERE stage = 2 AND name = 'ph_setpoint' ORDER BY config_version")
    assert setpoints[-1] == (2750,) and len(setpoints) == 2
    # Telemetry times are Unix seconds, in order, whether recorded before the clock sync or after.
    times = [t for (t,) in query(db, "SELECT time FROM telemetry WHERE stage = 1 ORDER BY record")]
    assert times == sorted(times) and abs(times[-1] - time.time()) < 30


def test_stage_list_syntax():
    assert stage_list("1-4") == [1, 2, 3, 4]
    assert stage_list("1,3,5-6") == [1, 3, 5, 6]
    proc = sxctl("log", "--port", "x", "--stages", "4-1", "--db", "x")
    assert proc.returncode == 2 and "stage addresses" in proc.stderr


# The rest runs against in-memory boards on a clock the test moves: resets and outages at will.
class Clock:
    def __init__(self):
        self.now = 1_800_000_000.0

    def __call__(self):
        return self.now

    def advance(self, seconds, logger=None, every=1.0):
        """Move time on, with a poll round every `every` s if a logger is given."""
        end = self.now + seconds
        while self.now < end:
            self.now = min(end, self.now + every)
            if logger:
                logger.poll_round()


@pytest.fixture
def rig(tmp_path):
    clock = Clock()
    boards = [FakeBoard(addr, clock) for addr in (1, 2)]
    bus = memory_bus(boards, timeout=0.001)
    db = tmp_path / "log.sqlite"

    def logger(sink=None):
        lg = Logger(bus, sink or SQLiteStore(db), [1, 2], clock=clock)
        lg.retry_s = 0
        return lg

    return clock, boards, logger, str(db)


def test_reset_while_logging_starts_a_new_epoch(rig):
    clock, (b1, b2), new_logger, db = rig
    logger = new_logger()
    logger.poll_round()
    clock.advance(10, logger)
    b2.reset()  # numbers restart at 1: the board's latest is below the stored one
    clock.advance(5, logger)
    assert records(db, 1) == list(range(1, 17))
    assert records(db, 2, epoch=1) == list(range(1, 12))
    assert records(db, 2, epoch=2) == list(range(1, 7))
    reason = query(db, "SELECT reason FROM epochs WHERE stage = 2 AND epoch = 2")[0][0]
    assert "newest record is" in reason
    # Each epoch starts with the board's boot event; its times are Unix seconds from the reset on.
    assert query(db, "SELECT epoch, seq, time FROM events WHERE stage = 2 AND kind = 'boot'") == [
        (1, 1, 1_800_000_000), (2, 1, b2.boot)]


def test_reset_found_when_numbers_caught_up(rig):
    clock, (b1, b2), new_logger, db = rig
    logger = new_logger()
    logger.poll_round()
    clock.advance(3, logger)
    b2.reset()
    clock.advance(10)  # no round until the new boot has recorded past the stored number
    logger.poll_round()
    assert records(db, 2, epoch=2) == list(range(1, 12))
    assert "is not the stored one" in query(db, "SELECT reason FROM epochs WHERE stage = 2 AND epoch = 2")[0][0]


def test_outage_is_filled_from_the_backlog(rig):
    clock, (b1, b2), new_logger, db = rig
    logger = new_logger()
    logger.poll_round()
    b2.answering = False
    clock.advance(30, logger)
    assert logger.stages[1].online is False and "offline" in logger.status()
    b2.answering = True
    clock.advance(1, logger)
    assert records(db, 2) == list(range(1, 33))
    assert query(db, "SELECT MAX(epoch), COUNT(*) FROM gaps") == [(None, 0)]


def test_outage_longer_than_the_backlog_with_reset_is_a_gap_in_a_new_epoch(rig):
    clock, (b1, b2), new_logger, db = rig
    logger = new_logger()
    clock.advance(5, logger)
    b2.answering = False
    clock.advance(10, logger)
    b2.reset()  # off for a while, then up for longer than its ring holds
    clock.advance(200, logger)
    b2.answering = True
    clock.advance(1, logger)
    got = records(db, 2, epoch=2)
    assert got == list(range(202 - 120 + 1, 203))  # up 201 s: records 1..202, the newest 120 kept
    assert "board reset: up 201 s" in query(db, "SELECT reason FROM epochs WHERE stage = 2 AND epoch = 2")[0][0]
    assert query(db, "SELECT stage, epoch, kind, first, last FROM gaps") == [(2, 2, "telemetry", 1, got[0] - 1)]
    assert "%d records lost" % (got[0] - 1) in logger.status()


def test_restart_of_the_logger_after_a_reset_opens_a_new_epoch(rig):
    clock, (b1, b2), new_logger, db = rig
    logger = new_logger()
    clock.advance(20, logger)
    logger.sink.close()
    clock.advance(10)
    b2.reset()
    clock.advance(30)
    logger = new_logger()  # resumes from the file
    logger.poll_round()
    assert records(db, 1) == list(range(1, 62))
    assert records(db, 2, epoch=1) == list(range(1, 22)) and records(db, 2, epoch=2) == list(range(1, 32))
    assert "board reset: up 30 s" in query(db, "SELECT reason FROM epochs WHERE stage = 2 AND epoch = 2")[0][0]


def test_events_alarms_and_config_changes_are_stored(rig):
    clock, (b1, b2), new_logger, db = rig
    logger = new_logger()
    logger.poll_round()
    b1.raise_alarm(3)
    b1.write_config()
    clock.advance(2, logger)
    assert query(db, "SELECT seq, kind, alarm FROM events WHERE stage = 1 ORDER BY seq") == [
        (1, "boot", 0), (2, "raised", 3), (3, "config", 1)]
    assert query(db, "SELECT DISTINCT config_version FROM config WHERE stage = 1 ORDER BY 1") == [(0,), (1,)]


def test_another_sink_needs_only_the_interface(rig):
    clock, boards, new_logger, db = rig

    class ListSink(Sink):
        def __init__(self):
            self.rows = {"epoch": [], "telemetry": [], "events": [], "config": [], "gap": []}
            self.flushes = 0

        def write_epoch(self, row):
            self.rows["epoch"].append(row)

        def write_telemetry(self, rows):
            self.rows["telemetry"] += rows

        def write_events(self, rows):
            self.rows["events"] += rows

        def write_config(self, rows):
            self.rows["config"] += rows

        def write_gap(self, row):
            self.rows["gap"].append(row)

        def flush(self):
            self.flushes += 1

    sink = ListSink()
    logger = new_logger(sink)
    clock.advance(3, logger)
    assert len(sink.rows["telemetry"]) == 2 * 4 and sink.flushes == 3
    assert [r[:3] for r in sink.rows["epoch"]] == [(1, 1, clock.now - 3), (2, 1, clock.now - 3)]


def test_another_board_at_the_address_starts_a_new_epoch(rig):
    clock, (b1, b2), new_logger, db = rig
    logger = new_logger()
    clock.advance(3, logger)
    b2.answering = False
    clock.advance(1, logger)
    replacement = FakeBoard(2, clock)  # swapped in, already running longer than the old one
    replacement.boot -= 100
    replacement.serial = "SPARE-1"
    logger.bus.serial.boards[2] = replacement
    clock.advance(1, logger)
    assert query(db, "SELECT epoch, serial, reason FROM epochs WHERE stage = 2") == [
        (1, "FAKE-0002", "first contact"), (2, "SPARE-1", "another board answers: serial SPARE-1, was FAKE-0002")]
    assert records(db, 2, epoch=2) == list(range(1, replacement.latest + 1)) and replacement.latest > 100


def test_bench_ingest_figure_runs():
    from sxctl.bench import host_log
    figure = host_log.rows_per_s(n=2000)
    assert figure.key == "host.log_rows_per_s" and figure.value > 0


class ShortLine:
    """Between the logger and a FakeBoard: a reply longer than `limit` wire bytes arrives broken
    (a noisy line breaks long frames); records the count of every BACKLOG_READ sent (a retry, the
    same frame again, once)."""

    def __init__(self, port, limit):
        self.port = port
        self.limit = limit
        self.counts = []
        self._seq = None
        port_write = port.write

        def write(data):
            for raw in codec.FrameSplitter().feed(data):
                request = codec.decode(raw)
                if request.message is messages.BACKLOG_READ and request.seq != self._seq:
                    self.counts.append(request.values["count"])
                    self._seq = request.seq
            before = len(port.pending)
            n = port_write(data)
            if self.limit is not None and len(port.pending) - before > self.limit:
                port.pending[(before + len(port.pending)) // 2] ^= 0x10  # broken on the line
            return n
        port.write = write


def test_backfill_reads_fewer_records_while_long_replies_fail_and_full_ones_after(rig, tmp_path):
    clock, (b1, _b2), _new_logger, db = rig
    clock.now += 60  # 61 records waiting on the board
    bus = memory_bus([b1], timeout=0.001)
    line = ShortLine(bus.serial, limit=100)  # a 2-record reply (82 bytes) arrives, a 3-record one not
    logger = Logger(bus, SQLiteStore(db), [1], clock=clock)
    logger.poll_round()
    assert records(db, 1) == list(range(1, b1.latest + 1))  # every record, none lost
    assert line.counts[:3] == [messages.BACKLOG_RECORDS, 3, 1] and max(line.counts[3:]) <= 4
    assert logger.stages[0].online
    line.limit = None  # the line clears: full frames again
    clock.now += 60
    line.counts.clear()
    logger.poll_round()
    assert records(db, 1) == list(range(1, b1.latest + 1))
    assert messages.BACKLOG_RECORDS in line.counts[:4] and line.counts[-1] == messages.BACKLOG_RECORDS


def test_backfill_gives_up_the_round_only_when_a_one_record_read_fails(rig):
    clock, (b1, _b2), _new_logger, db = rig
    bus = memory_bus([b1], timeout=0.001)
    logger = Logger(bus, SQLiteStore(db), [1], clock=clock)
    logger.poll_round()
    line = ShortLine(bus.serial, limit=30)  # not even one record gets through
    clock.now += 30
    logger.poll_round()
    assert line.counts == [messages.BACKLOG_RECORDS, 3, 1] and logger.stages[0].online is False


def test_a_file_that_cannot_grow_is_survived_by_the_log_command_losing_no_record(tmp_path):
    """The real `sxctl log` on a virtual board, its files capped at 96 KiB (RLIMIT_FSIZE, what a
    full small disk does to SQLite's writes) until the cap is lifted while it runs."""
    import resource

    sim = start_sim(tmp_path, "--stages", "1")
    db, err_path = str(tmp_path / "log.sqlite"), tmp_path / "log.err"

    def small_disk():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the cap fails (EFBIG) instead
        resource.setrlimit(resource.RLIMIT_FSIZE, (96 << 10, resource.RLIM_INFINITY))
    try:
        with open(err_path, "w") as err:
            proc = subprocess.Popen(SXCTL + ["log", "--bus", sim.bus, "--stage", "1", "--db", db],
                                    stdout=subprocess.DEVNULL, stderr=err, preexec_fn=small_disk)
        try:
            wait_for(lambda: "polling on into memory" in err_path.read_text(), what="the store to fail")
            # the status line (every 10 s off a terminal) counts what waits in memory
            wait_for(lambda: re.search(r"NOT STORING .*; \d+ rows in memory.*\| (\d\d+|[3-9]) rows", err_path.read_text()),
                     timeout=40, what="records read into memory")
            resource.prlimit(proc.pid, resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
            stored = wait_for(lambda: re.search(r"the (\d+) rows held in memory are stored", err_path.read_text()),
                              what="storing again")
        finally:
            proc.send_signal(signal.SIGINT)
            rc = proc.wait(10)
    finally:
        sim.stop()
    text = err_path.read_text()
    assert rc == 130 and "Traceback" not in text, text
    got = records(db, 1)
    assert got == list(range(1, len(got) + 1)) and len(got) >= 3 and int(stored.group(1)) >= 3
    assert query(db, "SELECT COUNT(*) FROM gaps") == [(0,)]
