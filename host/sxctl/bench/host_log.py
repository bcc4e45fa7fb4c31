"""Benchmark section `host_log`: how fast the logger stores, and what following 64 stages costs.

`host.log_rows_per_s`: telemetry rows into an SQLite file through the Sink, in the batches a
poll round gives. `host.log_cpu_share_64_stages`: the logger's share of one core while it follows
64 stages recording at 1 Hz. Sixty-four virtual boards on ptys would be 64 MicroPython
processes and a bus far slower than the figure; instead 64 in-memory boards (FakeBoard) answer
the real BusClient with real protocol frames, and their own CPU time is subtracted. The tests
use the same boards to reset one at will.
"""
import collections
import pathlib
import statistics
import tempfile
import time

from sxproto import codec, config_items, framing, messages

from . import Figure

STAGES = 64
ROWS_BATCH = 64 * 6   # a catching-up round of 64 stages: one full BACKLOG reply each


class FakeBoard:
    """A stage board in memory: it records telemetry every `period` s of `clock` into a ring of
    `capacity` records numbered from 1, queues events, and answers what the logger and the
    monitor ask. reset() starts it again from record 1, as a board's reset does."""

    def __init__(self, addr, clock=time.time, period=1.0, capacity=120):
        self.addr = addr
        self.clock = clock
        self.period = period
        self.capacity = capacity
        self.serial = "FAKE-%04d" % addr
        self.answering = True
        self.config_version = 0
        self.reset()

    def reset(self):
        self.boot = self.clock()
        self.offset = 0  # Unix seconds at boot once synced; until then times count from boot
        self.records = collections.deque(maxlen=self.capacity)
        self.latest = 0
        self.events = collections.deque(maxlen=32)
        self.event_latest = 0
        self.alarms = 0
        self.latched = 0
        self.push_event(6, 0, 0)

    def uptime(self):
        return int(self.clock() - self.boot)

    def push_event(self, code, alarm, value):
        self.event_latest += 1
        self.events.append(dict(seq=self.event_latest, time_s=self.offset + self.uptime(),
                                code=code, alarm=alarm, value=value))

    def write_config(self):
        self.config_version += 1
        self.push_event(4, 1, self.config_version)

    def raise_alarm(self, bit):
        self.alarms |= 1 << bit
        self.latched |= 1 << bit
        self.push_event(1, bit, 0)

    def _catch_up(self):
        due = int((self.clock() - self.boot) / self.period) + 1  # record 1 at boot
        while self.latest < due:
            n = self.latest + 1
            self.records.append(dict(
                record=n, time_s=self.offset + int((n - 1) * self.period), ph=4000 + n * 37 % 600,
                ph_setpoint=4300, orp_mv=-200 + n % 50, temperature=3850, flow_aq=12000 + n % 100,
                flow_org=11800, base_dose=1500 + n * 13 % 300, reagent_dose=0, aq_pump=120,
                org_pump=118, valves=5, mode=2, alarms_active=self.alarms, alarms_unacked=self.latched))
            self.latest = n

    def answer(self, request):
        """The reply frame (wire bytes) to a decoded request."""
        self._catch_up()
        message, values = self._handle(request.message, request.values)
        return codec.encode(self.addr, framing.FLAG_REPLY, request.seq, message, values)

    def _handle(self, message, v):
        m = messages
        if message is m.HELLO:
            from ..buslink import FINGERPRINT
            return m.INFO, dict(fingerprint=FINGERPRINT, fw_major=0, fw_minor=1, fw_patch=0, board="fake",
                                serial=self.serial, heap_free=30000, uptime_s=self.uptime(),
                                mode=2, alarms=self.alarms, cal_id=0, config_version=self.config_version,
                                rx_frames=0, crc_errors=0, dropped=0, duplicates=0)
        if message is m.TIME_SYNC:
            self.offset = v["unix_s"] - self.uptime()
            return m.TIME_ACK, dict(unix_s=self.offset + self.uptime())
        if message is m.BACKLOG_READ:
            got = [r for r in self.records if r["record"] > v["since"]][:v["count"] or m.BACKLOG_RECORDS]
            return m.BACKLOG, dict(count=len(got), oldest=self.records[0]["record"] if self.records else 0,
                                   latest=self.latest, records=_padded(got, m.BACKLOG_RECORDS, _ZERO_RECORD))
        if message is m.EVENTS_READ:
            got = [e for e in self.events if e["seq"] > v["since"]][:m.EVENT_RECORDS]
            return m.EVENTS, dict(count=len(got), latest=self.event_latest,
                                  events=_padded(got, m.EVENT_RECORDS, _ZERO_EVENT))
        if message is m.CONFIG_READ and v["item"] in config_items.BY_ID:
            return m.CONFIG_VALUE, dict(item=v["item"], value=config_items.BY_ID[v["item"]].default,
                                        config_version=self.config_version)
        if message is m.GET_TELEMETRY:
            # the newest record with the alarm state as it is now, as a board packs its telemetry
            return m.TELEMETRY, dict(self.records[-1], alarms_active=self.alarms, alarms_unacked=self.latched)
        if message is m.ALARMS_READ:
            return m.ALARM_STATE, dict(alarms_active=self.alarms, alarms_unacked=self.latched)
        if message is m.ALARM_ACK:
            acked = self.latched & v["mask"]
            self.latched &= ~v["mask"]
            if acked:
                self.push_event(3, 0, acked & 0x7FFF)
            return m.ALARM_STATE, dict(alarms_active=self.alarms, alarms_unacked=self.latched)
        code = 3 if message is m.CONFIG_READ else 1
        return m.ERROR, dict(request_type=message.type_id, code=code, detail=0)


_ZERO_RECORD = {f.name: 0 for f in messages.TelemetryRecord.subcons}
_ZERO_EVENT = dict(seq=0, time_s=0, code=0, alarm=0, value=0)


def _padded(items, count, zero):
    return list(items) + [zero] * (count - len(items))


class MemoryPort:
    """A serial port whose far end is a set of FakeBoards: a request written is answered at once.
    `board_cpu` is the CPU time the boards spent answering, to tell it from the host's."""

    def __init__(self, boards):
        self.boards = {b.addr: b for b in boards}
        self.splitter = codec.FrameSplitter()
        self.pending = bytearray()
        self.board_cpu = 0.0

    def write(self, data):
        t = time.thread_time()
        for raw in self.splitter.feed(data):
            request = codec.decode(raw)
            board = self.boards.get(request.addr)
            if board is not None and board.answering:
                self.pending += board.answer(request)
        self.board_cpu += time.thread_time() - t
        return len(data)

    def read(self, size=1):
        data = bytes(self.pending[:size])
        del self.pending[:size]
        return data

    def reset_input_buffer(self):
        self.pending.clear()

    def close(self):
        pass


def memory_bus(boards, timeout=0.25):
    """A real BusClient talking to FakeBoards in memory."""
    from ..buslink import BusClient

    bus = BusClient("loop://", timeout=timeout)
    bus.serial.close()
    bus.serial = MemoryPort(boards)
    bus.port = "memory"
    return bus


def run(options):
    return [rows_per_s(), cpu_share(max(getattr(options, "seconds", 5.0), 5.0))]


def _rows(n):
    board = FakeBoard(1, clock=lambda: 1718000000.0 + n)
    board._catch_up()
    from ..logger import raw_values
    return [(1 + i % STAGES, 1, 1 + i // STAGES, 1718000000 + i // STAGES) + raw_values(board.records[i % len(board.records)])
            for i in range(n)]


def rows_per_s(n=200_000):
    from ..store import SQLiteStore

    rows = _rows(n)
    rates = []
    for _ in range(3):
        with tempfile.TemporaryDirectory(prefix="sxctl-bench-") as d:
            sink = SQLiteStore(pathlib.Path(d) / "log.sqlite")
            t = time.perf_counter()
            for i in range(0, n, ROWS_BATCH):
                sink.write_telemetry(rows[i:i + ROWS_BATCH])
                sink.flush()
            rates.append(n / (time.perf_counter() - t))
            assert sink.count() == n
            sink.close()
    return Figure("host.log_rows_per_s", round(statistics.median(rates)), "rows/s", (">=", 50000),
                  "SQLiteStore (WAL, synchronous=NORMAL), %d rows in commits of %d, median of 3"
                  % (n, ROWS_BATCH))


def cpu_share(seconds):
    from ..logger import Logger
    from ..store import SQLiteStore

    boards = [FakeBoard(addr) for addr in range(1, STAGES + 1)]
    with tempfile.TemporaryDirectory(prefix="sxctl-bench-") as d:
        sink = SQLiteStore(pathlib.Path(d) / "log.sqlite")
        bus = memory_bus(boards)
        logger = Logger(bus, sink, [b.addr for b in boards])
        logger.poll_round()  # first contact: HELLO, TIME_SYNC, a config snapshot of each stage
        port = bus.serial
        cpu0, boards0, rows0 = time.process_time(), port.board_cpu, logger.rows
        t0 = time.monotonic()
        logger.run(duration=seconds)
        wall = time.monotonic() - t0
        cpu = time.process_time() - cpu0 - (port.board_cpu - boards0)
        rows = logger.rows - rows0
        sink.close()
    share = cpu / wall
    return Figure("host.log_cpu_share_64_stages", round(share, 4), "", ("<=", 0.05),
                  "logger CPU / wall over %.0f s following %d in-memory boards at 1 Hz (real frames "
                  "through BusClient, boards' CPU subtracted): %d rows, %.1f ms CPU per round"
                  % (wall, STAGES, rows, 1000 * cpu / max(1, logger.rounds - 1)))
