"""Follows every stage on a bus and stores what the boards record, missing and doubling nothing.

Each poll round reads, from every stage, the telemetry records of its backlog after the newest
one stored (BACKLOG_READ) and the events after the newest one stored (EVENTS_READ); a config
event, or a config version the store has not seen, stores a snapshot of the board's config.
The sink gets one batch per round. A stage that does not answer is retried every few seconds;
when it answers again the gap is read from its backlog (120 records on unix-sim).

A board that resets numbers its records and events from 1 again, so the logger opens a new
*epoch* for the stage (rows are keyed by stage, epoch and record) when it finds that:
- at a (re)connection, another serial number answers at the address;
- at a (re)connection, its uptime says it booted after the newest data stored from it;
- its newest record or event number is below the newest stored one;
- the record with the newest stored number is not the stored one (each backlog read asks for
  one stored record again to compare it).
A reset that none of these shows (one within a few seconds of a reading, before the board has
recorded anything new) cannot be told from the data and is not detected.
"""
import time

from sxproto import config_items, messages

from . import store
from .buslink import NoAnswer, RemoteError
from .errors import SxctlError

# Board times below this are seconds since boot (the board's clock was not synced yet).
UNSYNCED_BEFORE = 1_000_000_000
# Uptime and the host clock agree to whole seconds only, and board clocks drift.
REBOOT_SLACK_S = 3
OFFLINE_RETRY_S = 5.0
_MAX_READS = 64  # backlog or event replies per stage and round: a board's ring is read in ~20


class Stage:
    """What the logger knows of one stage between rounds."""

    def __init__(self, addr, mark=None):
        self.addr = addr
        self.mark = mark
        self.connected = False
        self.online = None        # None until first tried
        self.retry_at = 0.0
        self.problem = ""
        self.last = None          # newest telemetry record read, raw values
        self.lost = 0             # records the board no longer held when read
        self.config_due = False


class Logger:
    def __init__(self, bus, sink, addrs, period=1.0, clock=time.time, say=None):
        self.bus = bus
        self.sink = sink
        self.period = period
        self.clock = clock
        self.say = say or (lambda text: None)
        marks = sink.resume()
        self.stages = [Stage(addr, marks.get(addr)) for addr in addrs]
        self.rows = 0
        self.events = 0
        self.rounds = 0
        self.retry_s = OFFLINE_RETRY_S

    # the loop
    def run(self, duration=None, should_stop=lambda: False, after_round=lambda: None):
        """Poll rounds every `period` s until `duration` s passed or should_stop() is true."""
        start = time.monotonic()
        deadline = None if duration is None else start + duration
        next_round = start
        while True:
            self.poll_round()
            after_round()
            now = time.monotonic()
            if should_stop() or (deadline is not None and now >= deadline):
                break
            next_round = max(next_round + self.period, now)  # behind schedule: no burst of rounds
            wake = next_round if deadline is None else min(next_round, deadline)
            while not should_stop() and time.monotonic() < wake:
                time.sleep(min(0.05, max(0.0, wake - time.monotonic())))
            if should_stop():
                break

    def poll_round(self):
        for stage in self.stages:
            if not stage.online and self.clock() < stage.retry_at:
                continue
            try:
                self._poll(stage)
            except NoAnswer:
                self._offline(stage, "no answer")
            except (RemoteError, SxctlError) as e:  # a schema mismatch, a refused request
                self._offline(stage, str(e))
        self.sink.flush()
        self.rounds += 1

    def _offline(self, stage, problem):
        if stage.online is not False or stage.problem != problem:
            self.say("stage %d: %s; retrying every %g s" % (stage.addr, problem, self.retry_s))
        stage.online = False
        stage.connected = False  # check who answers when it is back: the board may have reset
        stage.problem = problem
        stage.retry_at = self.clock() + self.retry_s  # the logger's clock: simulated time in a sim

    def _poll(self, stage):
        if not stage.connected:
            self._connect(stage)
        self._read_backlog(stage)
        self._read_events(stage)
        self.bus.keepalive(stage.addr)  # a keyed board's link is held only by signed frames
        if stage.config_due:
            self._read_config(stage)
        if stage.online is False:
            self.say("stage %d: answering again" % stage.addr)
        stage.online = True
        stage.problem = ""

    # connection and epochs
    def _connect(self, stage, restarted=None):
        """HELLO (refusing another schema), a new epoch if the board reset, then TIME_SYNC."""
        info = self.bus.hello(stage.addr)
        now = self.clock()
        boot_time = round(now - info["uptime_s"])
        mark = stage.mark
        if mark is None:
            self._new_epoch(stage, 1, boot_time, "first contact", info)
        elif restarted or info["serial"] != mark.serial or boot_time > mark.last_time + REBOOT_SLACK_S:
            if restarted:
                reason = restarted
            elif info["serial"] != mark.serial:
                reason = "another board answers: serial %s, was %s" % (info["serial"] or "-", mark.serial or "-")
            else:
                reason = "board reset: up %d s, newest stored data %d s old" % (info["uptime_s"], now - mark.last_time)
            self._new_epoch(stage, mark.epoch + 1, boot_time, reason, info)
        else:
            mark.boot_time = boot_time  # the same boot: a fresher estimate for unsynced times
        self.bus.request(stage.addr, messages.TIME_SYNC, {"unix_s": int(self.clock())}, expect=messages.TIME_ACK)
        if info["config_version"] != stage.mark.config_version:
            stage.config_due = True
        stage.connected = True

    def _new_epoch(self, stage, epoch, boot_time, reason, info):
        now = round(self.clock())
        firmware = "%d.%d.%d" % (info["fw_major"], info["fw_minor"], info["fw_patch"])
        self.sink.write_epoch((stage.addr, epoch, boot_time, now, reason, info["board"], info["serial"], firmware))
        stage.mark = store.Mark(epoch, boot_time, now, serial=info["serial"])
        if epoch > 1:
            self.say("stage %d: %s; epoch %d starts" % (stage.addr, reason, epoch))

    def _restarted(self, stage, reason):
        self._connect(stage, restarted=reason)

    def record_time(self, mark, board_time):
        return board_time if board_time >= UNSYNCED_BEFORE else mark.boot_time + board_time

    # reading
    def _read_backlog(self, stage):
        addr = stage.addr
        for _ in range(_MAX_READS):
            mark = stage.mark
            # Ask for the newest stored record again (if the board still has it) to compare it.
            since = mark.record - 1 if mark.record_raw else mark.record
            reply = self.bus.request(addr, messages.BACKLOG_READ, {"since": since}, expect=messages.BACKLOG).values
            records = reply["records"][:reply["count"]]
            if reply["latest"] < mark.record:
                self._restarted(stage, "board reset: its newest record is %d, %d stored" % (reply["latest"], mark.record))
                continue
            if records and records[0]["record"] == mark.record and mark.record_raw:
                if raw_values(records[0]) != mark.record_raw:
                    self._restarted(stage, "board reset: its record %d is not the stored one" % mark.record)
                    continue
                records = records[1:]
            if records:
                self._store_records(stage, records)
            if not records or records[-1]["record"] >= reply["latest"]:
                return

    def _store_records(self, stage, records):
        mark = stage.mark
        first = records[0]["record"]
        if first > mark.record + 1 and _was_logging(mark, mark.record):
            self.sink.write_gap((stage.addr, mark.epoch, "telemetry", mark.record + 1, first - 1, round(self.clock())))
            stage.lost += first - 1 - mark.record
            self.say("stage %d: records %d..%d were gone from the board's backlog" % (stage.addr, mark.record + 1, first - 1))
        rows = []
        for r in records:
            raw = raw_values(r)
            rows.append((stage.addr, mark.epoch, r["record"], self.record_time(mark, raw[0])) + raw)
        self.sink.write_telemetry(rows)
        self.rows += len(rows)
        mark.record, mark.record_raw = records[-1]["record"], raw_values(records[-1])
        mark.last_time = max(mark.last_time, rows[-1][3])
        stage.last = records[-1]

    def _read_events(self, stage):
        addr = stage.addr
        for _ in range(_MAX_READS):
            mark = stage.mark
            reply = self.bus.request(addr, messages.EVENTS_READ, {"since": mark.event}, expect=messages.EVENTS).values
            if reply["latest"] < mark.event:
                self._restarted(stage, "board reset: its newest event is %d, %d stored" % (reply["latest"], mark.event))
                continue
            events = reply["events"][:reply["count"]]
            if not events:
                return
            if events[0]["seq"] > mark.event + 1 and _was_logging(mark, mark.event):
                self.sink.write_gap((addr, mark.epoch, "events", mark.event + 1, events[0]["seq"] - 1, round(self.clock())))
            rows = []
            for e in events:
                code = e["code"]
                rows.append((addr, mark.epoch, e["seq"], self.record_time(mark, e["time_s"]), e["time_s"], code,
                             store.EVENT_KINDS.get(code, "code %d" % code), e["alarm"], e["value"]))
                if store.EVENT_KINDS.get(code) in ("config", "calibration"):  # store the config it left
                    stage.config_due = True
            self.sink.write_events(rows)
            self.events += len(rows)
            mark.event = events[-1]["seq"]
            mark.last_time = max(mark.last_time, rows[-1][3])
            if events[-1]["seq"] >= reply["latest"]:
                return

    def _read_config(self, stage):
        """A snapshot of every config item, stored under the config version the board reports."""
        now = round(self.clock())
        rows = []
        version = None
        for item in config_items.ITEMS:
            try:
                v = self.bus.request(stage.addr, messages.CONFIG_READ, {"item": item.id},
                                     expect=messages.CONFIG_VALUE).values
            except RemoteError:
                continue  # an item this firmware does not have
            version = v["config_version"]
            rows.append((stage.addr, stage.mark.epoch, now, version, item.id, item.name, v["value"]))
        self.sink.write_config(rows)
        stage.mark.config_version = version
        stage.config_due = False

    # reporting
    def status(self):
        """One line: rows stored, each stage's last pH (or why it has none), link counters."""
        parts = []
        for s in self.stages:
            if s.online is False:
                parts.append("%d:offline" % s.addr)
            elif s.last is None:
                parts.append("%d:-" % s.addr)
            else:
                parts.append("%d:%.*f" % (s.addr, store.decimals("ph"), store.engineering("ph", s.last["ph"])))
        if len(parts) > 16:
            parts = parts[:16] + ["+%d more" % (len(parts) - 16)]
        st = self.bus.stats
        lost = sum(s.lost for s in self.stages)
        return "%d rows, %d events%s | pH %s | link sent %d recv %d retries %d timeouts %d bad %d" % (
            self.rows, self.events, ", %d records lost" % lost if lost else "", " ".join(parts),
            st.sent, st.received, st.retries, st.timeouts, st.crc_errors + st.malformed)


def _was_logging(mark, newest_stored):
    """Whether what a board no longer holds was lost, not older than the first contact with it."""
    return mark.epoch > 1 or newest_stored > 0


def raw_values(record):
    """A telemetry record as stored: (board_time, *VALUE_FIELDS)."""
    return (record["time_s"],) + tuple(record[name] for name in store.VALUE_FIELDS)
