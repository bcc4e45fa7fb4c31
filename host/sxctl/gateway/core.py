"""The gateway's core: one thread owns the bus and runs everything that goes on it.

The logger's poll rounds run at their period; between two rounds the thread serves the clients'
requests, taking one request of each waiting client in turn, so a busy client cannot starve
another and none can starve the logger (a round starts when it is due, after at most the
request in progress). After a round that ran late, still up to MIN_JOBS_BETWEEN_ROUNDS requests
go before the next one, so the logger cannot starve an operator's write either. A stage whose
round found no new record (the round came just before the board recorded, or a busy machine
made the board record late) is read again when its next record is due, one period after its
last one was read, then every CATCH_UP_S until it is in (CatchUps): so what the faces serve is
at most about one period and one step old, not two periods, and a stage whose phase is just
after the round's is read when its board records, not when the round passes; when most stages
missed, the rounds move one step later, after the boards' recording.

The faces (logger, client API, Modbus) read what the thread keeps current: a StageState per
stage, replaced whole as soon as a new record of the stage is stored and after each round, so a
reader never waits on the bus and never sees half an update.
"""
import collections
import concurrent.futures
import logging
import select
import sys
import threading
import time

from sxproto import messages

from .. import store
from ..buslink import BusClient
from ..logger import Logger
from . import registers

log = logging.getLogger("sxctl.serve")
MIN_JOBS_BETWEEN_ROUNDS = 4
GIL_SWITCH_S = 0.001
# A round that found no new record of a stage came just before its board recorded (records come
# once a period): read that stage again this much later, not a whole period later.
CATCH_UP_S = 0.1
MAX_CATCH_UPS = 4  # a board that does not record (a clock stopped) costs at most this many reads a round
CATCH_UP_MARGIN_S = 0.03  # after a record is due: the board's scan and the reply take this long
_ALARM_BIT = {name: bit for bit, name in messages.ALARMS.items()}
_EVENT_CODE = {name: code for code, name in messages.EVENT_CODES.items()}


def unacked_after(unacked, code, alarm):
    """The unacknowledged alarm bits after one event of the board (ISA-18.2: a raised alarm stays
    unacknowledged, cleared or not, until acknowledged)."""
    if code == _EVENT_CODE["raised"]:
        return unacked | 1 << alarm
    if code == _EVENT_CODE["acknowledged"]:
        return unacked & ~(1 << alarm) & 0xFFFF
    return unacked


class StageState:
    """One stage as the gateway last saw it. Immutable once published."""

    def __init__(self, addr, stale_s, raw=None, record=0, epoch=0, read_at=None, online=None,
                 unacked=0, cal_id=0, cal_time=None, config=None, clock=time.time):
        self.addr = addr
        self.stale_s = stale_s
        self.raw = raw            # {field: raw value} of the newest record, or None
        self.record = record
        self.epoch = epoch
        self.read_at = read_at    # host time the newest record was read
        self.online = online      # the logger's verdict after its last round
        self.unacked = unacked
        self.cal_id = cal_id
        self.cal_time = cal_time
        self.config = config or {}
        self.clock = clock
        self.cache = {}           # the encoded registers of this state (registers.encode_input)

    def replace(self, **changes):
        kw = {k: v for k, v in self.__dict__.items() if k != "cache"}
        kw.update(changes)
        return StageState(**kw)

    def age_ms(self):
        if self.read_at is None:
            return 0xFFFFFFFF
        return max(0, int((self.clock() - self.read_at) * 1000))

    def fresh(self):
        return bool(self.online) and self.read_at is not None and self.clock() - self.read_at <= self.stale_s

    def alarms(self):
        return self.raw.get("alarms_active", 0) if self.raw else 0

    def unacked_now(self):
        """The board's own unacknowledged bits from its newest record; before any, what the logged
        raise and acknowledge events say."""
        return self.raw["alarms_unacked"] if self.raw and "alarms_unacked" in self.raw else self.unacked

    def values(self):
        """{field: raw value, or None where it is invalid (stale, offline or faulted)}."""
        if not self.raw or not self.fresh():
            return {name: None for name in registers.FIELDS}
        active = self.alarms()
        out = dict(self.raw)
        for name, alarms in registers.FAULTS_OF.items():
            if name in out and any(active >> _ALARM_BIT[a] & 1 for a in alarms):
                out[name] = None
        return out

    def cal_age_s(self):
        if self.cal_time is None:
            return registers.UNKNOWN_U32
        return max(0, int(self.clock() - self.cal_time))

    def as_dict(self):
        return {"addr": self.addr, "online": self.fresh(), "record": self.record, "epoch": self.epoch,
                "data_age_ms": None if self.read_at is None else self.age_ms(), "values": self.raw,
                "alarms_unacked": self.unacked_now(), "cal_id": self.cal_id}


class SnapshotSink(store.Sink):
    """The logger's sink in the gateway: passes every write to the store and keeps, per stage, what
    the faces serve (newest record, unacknowledged alarms, calibration, setpoints)."""

    def __init__(self, inner, gateway):
        self.inner = inner
        self.gw = gateway
        self.pending = {}  # addr -> changes for the next publish
        self.fresh = set()  # stages a new record came from since the round began
        self.info_due = set()

    def _change(self, addr, **kw):
        self.pending.setdefault(addr, {}).update(kw)

    def _state(self, addr):
        state = self.gw.states[addr]
        p = self.pending.get(addr)
        return state.replace(**p) if p else state

    def resume(self):
        return self.inner.resume()

    def write_epoch(self, row):
        self.inner.write_epoch(row)
        self._change(row[0], epoch=row[1], unacked=0)

    def write_telemetry(self, rows):
        self.inner.write_telemetry(rows)
        newest = {}
        for row in rows:
            newest[row[0]] = row
        now = time.time()
        for addr, row in newest.items():
            raw = dict(zip(store.VALUE_FIELDS, row[5:]))
            self._change(addr, raw=raw, record=row[2], epoch=row[1], read_at=now)
            self.fresh.add(addr)
            self.gw.publish(addr, online=True)  # served at once, not at the end of the round

    def write_events(self, rows):
        self.inner.write_events(rows)
        for addr, epoch, seq, t, board_time, code, kind, alarm, value in rows:
            if kind == "calibration":
                self._change(addr, cal_time=t)
                self.info_due.add(addr)
            self._change(addr, unacked=unacked_after(self._state(addr).unacked, code, alarm))

    def write_config(self, rows):
        self.inner.write_config(rows)
        by_stage = {}
        for addr, epoch, t, version, item, name, value in rows:
            by_stage.setdefault(addr, dict(self._state(addr).config))[name] = value
        for addr, config in by_stage.items():
            self._change(addr, config=config)

    def write_gap(self, row):
        self.inner.write_gap(row)

    def flush(self):
        self.inner.flush()

    def rollback(self):
        self.inner.rollback()

    def close(self):
        self.inner.close()


class GatewayBus(BusClient):
    """The gateway's bus client: remembers each board's INFO (calibration id) as the logger reads it."""

    def __init__(self, *a, on_info=None, **kw):
        super().__init__(*a, **kw)
        self.on_info = on_info or (lambda addr, info: None)

    def hello(self, addr):
        info = super().hello(addr)
        self.on_info(addr, info)
        return info

    def _await_reply(self, addr, seq, deadline):
        """As BusClient's, but blocked in select() on the port until bytes come, not in 1 ms
        sleeps: each of those wakes needs the CPU and the GIL, which the faces answering Modbus
        reads hold, and on a loaded machine the waits added up to doubled rounds."""
        try:
            fd = self.serial.fileno()
        except (AttributeError, OSError, ValueError):  # a URL port (loop://) has no descriptor
            return super()._await_reply(addr, seq, deadline)
        while True:
            data = self.serial.read(4096)
            for raw in self.splitter.feed(data) if data else ():
                reply = self._accept(raw, addr, seq)
                if reply is not None:
                    return reply
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            if not data:
                select.select([fd], [], [], left)


class FairQueue:
    """Requests of many clients: get() takes the oldest request of the next client in turn."""

    def __init__(self):
        self.lock = threading.Condition()
        self.queues = collections.OrderedDict()  # client -> deque of jobs

    def put(self, client, job):
        with self.lock:
            self.queues.setdefault(client, collections.deque()).append(job)
            self.lock.notify()

    def get(self, timeout):
        with self.lock:
            if not self.queues:
                self.lock.wait(max(0.0, timeout))
            if not self.queues:
                return None
            client, jobs = next(iter(self.queues.items()))
            job = jobs.popleft()
            del self.queues[client]
            if jobs:
                self.queues[client] = jobs  # to the back of the line
            return job

    def drain(self):
        with self.lock:
            jobs = [j for q in self.queues.values() for j in q]
            self.queues.clear()
            return jobs


class CatchUps:
    """The stages a round found no new record on, each to be read again when its board's next
    record is due: one period after the gateway last read a new record of it (a board records
    once a period), then every `step` until it is in, at most MAX_CATCH_UPS times. So a stage is
    read about when its board records, whatever the round's phase, and its served data is at
    most about a period and a step old."""

    def __init__(self, period, step):
        self.period = period
        self.step = step
        self.due = {}  # stage -> [monotonic time of the next read, reads left]

    def plan(self, stages, states):
        now, wall = time.monotonic(), time.time()
        for stage in stages:
            read_at = states[stage.addr].read_at
            expected = now + self.step if read_at is None else now + (read_at + self.period + CATCH_UP_MARGIN_S - wall)
            self.due[stage] = [max(now + self.step / 2, expected), MAX_CATCH_UPS]

    def next_due(self):
        return min(d for d, _ in self.due.values()) if self.due else None

    def take_due(self, now):
        return [stage for stage, (d, _) in self.due.items() if d <= now]

    def missed_again(self, read, still, now):
        """After a catch-up read of `read`: done, but those `still` without a new record."""
        for stage in read:
            entry = self.due[stage]
            entry[1] -= 1
            if stage in still and entry[1] > 0:
                entry[0] = now + self.step
            else:
                del self.due[stage]


class Gateway:
    """One bus, its logger and its faces. start() opens the bus and starts the bus thread and every
    face; stop() stops the faces, ends the logger after its round and closes bus and store."""

    def __init__(self, port, addrs, db, baud=115200, period=1.0, stale_s=None, key=None):
        self.port = port
        self.addrs = list(addrs)
        self.db = str(db)
        self.baud = baud
        self.period = period
        self.stale_s = stale_s if stale_s is not None else max(3.0, 3 * period)
        self.key = key
        self.states = {a: StageState(a, self.stale_s) for a in self.addrs}
        self.jobs = FairQueue()
        self.faces = []
        self.stopping = threading.Event()
        self.thread = None
        self.bus = None
        self.logger = None
        self.sink = None
        self.jobs_done = 0
        self.failure = None  # what stopped the bus thread, if not stop()

    def add_face(self, face):
        self.faces.append(face)
        return face

    # life
    def start(self):
        # The bus thread waits for each reply in 1 ms sleeps, and every wake needs the GIL, which a
        # face answering reads back to back holds for up to the switch interval (5 ms by default):
        # under full Modbus load that doubled the logger's rounds. A 1 ms interval bounds that wait.
        sys.setswitchinterval(min(sys.getswitchinterval(), GIL_SWITCH_S))
        self.bus = GatewayBus(self.port, baud=self.baud, key=self.key, holder="sxctl serve", on_info=self._on_info)
        ready = threading.Event()
        self.thread = threading.Thread(target=self._run_bus, args=(ready,), name="bus", daemon=True)
        self.thread.start()
        ready.wait()
        if self.failure is not None:
            raise self.failure
        for face in self.faces:
            face.start(self)
            log.info("%s: %s", face.NAME, face.describe())

    def stop(self):
        for face in reversed(self.faces):
            try:
                face.stop()
            except Exception as e:  # a face that fails to stop must not keep the log open
                log.error("%s did not stop cleanly: %s", face.NAME, e)
        self.stopping.set()
        self.jobs.put("stop", None)  # wakes the bus thread
        if self.thread is not None:
            self.thread.join(30)
        for job in self.jobs.drain():
            if job is not None:
                job[1].cancel()
        if self.bus is not None:
            self.bus.close()

    def _load_history(self, db):
        """Unacknowledged alarms and the newest calibration time from what is logged already."""
        for addr, mark in db.resume().items():
            if addr not in self.states:
                continue
            unacked = 0
            for code, alarm in db.db.execute("SELECT code, alarm FROM events WHERE stage = ? AND epoch = ? "
                                             "ORDER BY seq", (addr, mark.epoch)):
                unacked = unacked_after(unacked, code, alarm)
            cal = db.db.execute("SELECT MAX(time) FROM events WHERE stage = ? AND kind = 'calibration'",
                                (addr,)).fetchone()[0]
            self.states[addr] = self.states[addr].replace(epoch=mark.epoch, record=mark.record,
                                                          unacked=unacked, cal_time=cal)

    def _on_info(self, addr, info):
        if addr in self.states:
            self.sink._change(addr, cal_id=info["cal_id"])

    # the bus thread
    def _open_log(self):
        # SQLite objects stay in the thread that made them: the store lives in the bus thread.
        inner = store.SQLiteStore(self.db)
        self.sink = SnapshotSink(inner, self)
        self._load_history(inner)
        self.logger = Logger(self.bus, self.sink, self.addrs, period=self.period, say=log.warning)

    def _run_bus(self, ready):
        try:
            self._open_log()
        except Exception as e:
            self.failure = e
            return
        finally:
            ready.set()
        try:
            next_round = time.monotonic()
            while not self.stopping.is_set():
                missed = self._round()
                next_round = max(next_round + self.period, time.monotonic())
                online = sum(1 for s in self.logger.stages if s.online)
                if missed and 2 * len(missed) > online:
                    # Most boards record just after our rounds: move the rounds after them.
                    next_round += min(CATCH_UP_S, self.period / 2)
                catch_ups = CatchUps(self.period, min(CATCH_UP_S, self.period / 2))
                catch_ups.plan(missed, self.states)
                served = 0
                while not self.stopping.is_set():
                    now = time.monotonic()
                    due = catch_ups.take_due(now)
                    if due:
                        catch_ups.missed_again(due, self._catch_up(due), time.monotonic())
                    wait = next_round - now
                    if wait <= 0 and served >= MIN_JOBS_BETWEEN_ROUNDS:
                        break
                    if catch_ups.next_due() is not None:
                        wait = min(wait, catch_ups.next_due() - now)
                    job = self.jobs.get(wait if wait > 0 else 0)
                    if job is None:
                        if wait <= 0:
                            break
                        continue
                    self._serve(job)
                    served += 1
        except Exception as e:  # the bus or the store failed: say so, and let serve stop
            log.exception("the bus thread stopped")
            self.failure = e
        finally:
            self.stopping.set()
            self.sink.close()  # commits the last round

    def _round(self):
        """One logger round; returns the online stages it found no new record on."""
        self.sink.fresh.clear()
        self.logger.poll_round()
        missed = [s for s in self.logger.stages if s.online and s.addr not in self.sink.fresh]
        for addr in sorted(self.sink.info_due):  # a calibration changed the board's cal id
            try:
                self.bus.hello(addr)
            except Exception as e:
                log.warning("stage %d: cannot read its calibration id: %s", addr, e)
        self.sink.info_due.clear()
        self._publish()
        return missed

    def _catch_up(self, stages):
        """Read again the backlog of stages whose round came before their board's next record;
        returns those still without it (online ones: an offline stage is left to the rounds)."""
        self.logger.read_new_records([stage.addr for stage in stages])
        self._publish()
        return [s for s in stages if s.online and s.addr not in self.sink.fresh]

    def _publish(self):
        for stage in self.logger.stages:
            self.publish(stage.addr, stage.online)

    def publish(self, addr, online):
        """Replace the stage's state by one with its pending changes (bus thread only)."""
        changes = self.sink.pending.pop(addr, {})
        changes["online"] = online
        self.states[addr] = self.states[addr].replace(**changes)

    def _serve(self, job):
        fn, future = job
        if not future.set_running_or_notify_cancel():
            return
        try:
            future.set_result(fn(self.bus))
        except BaseException as e:
            future.set_exception(e)
        self.jobs_done += 1
        self._publish()  # a request may have moved a board on (HELLO, a calibration)

    def submit(self, client, fn):
        """Run fn(bus) in the bus thread between the logger's rounds; a concurrent Future of its result."""
        future = concurrent.futures.Future()
        if self.stopping.is_set():
            future.set_exception(RuntimeError("the gateway is stopping"))
            return future
        self.jobs.put(client, (fn, future))
        return future

    # reporting
    def status(self):
        return "%s | requests %d" % (self.logger.status(), self.jobs_done)

    def snapshot(self):
        return [self.states[a].as_dict() for a in self.addrs]
