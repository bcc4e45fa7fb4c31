"""Follows every stage on a bus and stores what the boards record, missing and doubling nothing.

Each poll round reads, from every stage, the telemetry records of its backlog after the newest
one stored (BACKLOG_READ) and the events after the newest one stored (EVENTS_READ); a config
event, or a config version the store has not seen, stores a snapshot of the board's config.
The sink gets one batch per round. A stage that does not answer is retried every few seconds;
when it answers again the gap is read from its backlog (120 records on unix-sim).

Backfill adapts to the line: a BACKLOG reply is as long as the records it carries, and a noisy
line breaks a long frame far more often than a short one (at a bit error rate of 1e-3 a
6-record reply arrives whole about one time in five, a 1-record one about two in three). So a
backlog read that gets no answer is tried again at once for half as many records, down to
one, and each answered read doubles the count again, up to a full reply.

A board that resets numbers its records and events from 1 again, so the logger opens a new
*epoch* for the stage (rows are keyed by stage, epoch and record) when it finds that:
- at a (re)connection, another serial number answers at the address;
- at a (re)connection, its uptime says it booted after the newest data stored from it;
- its newest record or event number is below the newest stored one;
- the record with the newest stored number is not the stored one (each backlog read asks for
  one stored record again to compare it).
A reset that none of these shows (one within a few seconds of a reading, before the board has
recorded anything new) cannot be told from the data and is not detected.

The logger trusts no board: at most one new epoch per stage and round (a board that asks for
more, or for one in several rounds running, is reported as suspect and not stored for a while);
records with values outside the protocol's declared ranges, or times ahead of the host's clock,
are not stored but counted (and listed in `gaps` as kind "refused").

A store that fails (disk full, database locked) is rolled back and the logger goes on polling
into memory: every round's rows are kept, in order, and written again (all of them, one commit)
at the end of each round until the store takes them. The memory is bounded (BUFFER_ROWS): once
it is full, a round that cannot be stored is dropped and the stages' positions are put back, so
the following rounds read the same records from the boards' backlogs again (each holds about 2
minutes) and nothing is lost that a board still holds when the store works again.
"""
import dataclasses
import sqlite3
import time

from sxproto import config_items, fields, messages

from . import store
from .buslink import NoAnswer, RemoteError, out_of_range, printable
from .errors import SxctlError

# Board times below this are seconds since boot (the board's clock was not synced yet).
UNSYNCED_BEFORE = 1_000_000_000
# Uptime and the host clock agree to whole seconds only, and board clocks drift.
REBOOT_SLACK_S = 3
OFFLINE_RETRY_S = 5.0
_MAX_READS = 64  # backlog or event replies per stage and round: a board's ring is read in ~20
FUTURE_SLACK_S = 300  # a record timed further ahead of the host's clock than this is refused
SUSPECT_ROUNDS = 3  # a new epoch in this many rounds running: the board's answers are not believed
SUSPECT_PAUSE_S = 30.0
# Rows kept in memory while the store fails: 50,000 rows (about 40 MB) are 14 h of one stage at
# 1 record/s, or 8 min of 100 stages; beyond them the boards' backlogs hold the rest.
BUFFER_ROWS = 50_000


_EVENT_RECORD = next(f.record for f in fields.infos(messages.EVENTS.body) if f.name == "events")
ALARM_EVENTS = {code for code, kind in messages.EVENT_CODES.items() if kind in ("raised", "cleared")}


class Suspect(SxctlError):
    """A board whose answers contradict each other (resets it cannot have made)."""


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
        self.refused = 0          # records not stored: values out of the protocol's ranges
        self.stored = 0           # telemetry rows stored in this run
        self.config_due = False
        self.backlog_count = messages.BACKLOG_RECORDS  # records asked for per BACKLOG_READ now
        self.epoch_round = None   # the poll round that last opened an epoch
        self.epoch_rounds = 0     # rounds running that each opened an epoch


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
        self.store_problem = ""   # why the last round could not be stored ("" once it could)
        self.store_failures = 0
        self.buffer_rows = BUFFER_ROWS
        self.held = []            # writes (sink method name, argument) the store has not taken yet
        self._round = []          # the writes of the round (or catch-up read) under way
        self._writing = True      # False: the store failed, the writes go into memory only

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
        saved = [_saved(stage) for stage in self.stages]
        counts = (self.rows, self.events)
        self._begin()
        for stage in self.stages:
            if not stage.online and self.clock() < stage.retry_at:
                continue
            try:
                self._poll(stage)
            except NoAnswer:
                self._offline(stage, "no answer")
            except Suspect as e:
                self._offline(stage, str(e), SUSPECT_PAUSE_S)
            except (RemoteError, SxctlError) as e:  # a schema mismatch, a refused request
                self._offline(stage, str(e))
        self._store(saved, counts)
        self.rounds += 1

    def read_new_records(self, addrs):
        """Read now, between two rounds, the records these stages made since the newest one read,
        and store them as a round does (memory holding included): for a gateway whose round came
        just before a board recorded. Only stages online and connected are read; one that does not
        answer is left to the next round, which finds out and says so. Returns rows stored or held."""
        saved, counts = [_saved(s) for s in self.stages], (self.rows, self.events)
        wanted = set(addrs)
        self._begin()
        try:
            for stage in self.stages:
                if stage.addr in wanted and stage.online and stage.connected:
                    try:
                        self._read_backlog(stage)
                    except SxctlError:  # NoAnswer, RemoteError, a reset seen: the next round handles it
                        stage.connected = False
        finally:
            self._store(saved, counts)
        return self.rows - counts[0]

    # storing, and holding in memory what the store does not take
    def _begin(self):
        if not self._writing:
            self.held += self._round  # read outside a round while the store was failing
        self._round = []
        self._writing = not self.held  # while rows wait in memory, this round's join them there
        self._error = None

    def _write(self, name, arg):
        """One sink write of the round; kept in memory too until the round is stored."""
        self._round.append((name, arg))
        if self._writing:
            try:
                getattr(self.sink, name)(arg)
            except sqlite3.Error as e:
                self._writing = False  # the rest of the round goes into memory only
                self._error = e

    def _store(self, saved, counts):
        """End the round: commit it, or (the store failed now or before) roll back and write
        everything held in memory again; what the store still refuses stays in memory."""
        if self._writing:
            try:
                self.sink.flush()
                self._round = []
                return
            except sqlite3.Error as e:
                self._error = e
        self.sink.rollback()
        held = self.held + self._round
        self._round, self._writing = [], True
        try:
            for name, arg in held:
                getattr(self.sink, name)(arg)
            self.sink.flush()
        except sqlite3.Error as e:
            self.sink.rollback()
            self._store_failed(e, held, saved, counts)
            return
        self.say("storing again into %s: the %d rows held in memory are stored" % (self._store_name(), _rows(held)))
        self.held = []
        self.store_problem = ""

    def _store_failed(self, error, held, saved, counts):
        self.store_failures += 1
        problem = "cannot store into %s: %s" % (self._store_name(), error)
        if _rows(held) <= self.buffer_rows:
            self.held = held
            if problem != self.store_problem:
                self.say("%s; polling on into memory (up to %d rows) and storing them once it can: "
                         "free the disk or stop what locks the file" % (problem, self.buffer_rows))
        else:
            # Memory is full: the round is dropped (self.held stays as it was) and every stage put
            # back where it was, so the next rounds read the same records from the boards again
            # (each holds its backlog until it is overwritten).
            for stage, state in zip(self.stages, saved):
                stage.__dict__.update(state)
                stage.connected = False  # sync again, and see any reset again, next round
            self.rows, self.events = counts
            problem += " (memory full)"
            if problem != self.store_problem:
                self.say("%s; %d rows held in memory, no more: reading the rest again from the boards each "
                         "round (their backlogs hold about 2 minutes)" % (problem, _rows(self.held)))
        self.store_problem = problem
        self._writing = False

    def _store_name(self):
        return getattr(self.sink, "path", "the store")

    def _offline(self, stage, problem, retry_s=None):
        retry_s = self.retry_s if retry_s is None else retry_s
        if stage.online is not False or stage.problem != problem:
            self.say("stage %d: %s; retrying every %g s" % (stage.addr, problem, retry_s))
        stage.online = False
        stage.connected = False  # check who answers when it is back: the board may have reset
        stage.problem = problem
        stage.retry_at = self.clock() + retry_s  # the logger's clock: simulated time in a sim

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
        if stage.epoch_round not in (self.rounds, self.rounds - 1):
            stage.epoch_rounds = 0  # a round without a new epoch: the board is believed again

    # connection and epochs
    def _connect(self, stage, restarted=None):
        """HELLO (refusing another schema), a new epoch if the board reset, then TIME_SYNC."""
        info = self.bus.hello(stage.addr)
        bad = out_of_range(messages.INFO.body, info)
        if bad:  # an uptime out of its range would open epochs at random: nothing believed
            stage.refused += 1
            raise SxctlError("its INFO has %s outside the protocol's range: nothing read from it; check it "
                             "with `sxctl info`" % ", ".join("%s %s" % (name, info[name]) for name in bad))
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
        if epoch > 1:
            if stage.epoch_round == self.rounds:
                raise Suspect("suspect board: it reported a second reset within one poll round (%s); "
                              "nothing more stored from it this round; check it with `sxctl info`" % printable(reason))
            stage.epoch_rounds = stage.epoch_rounds + 1 if stage.epoch_round == self.rounds - 1 else 1
            if stage.epoch_rounds > SUSPECT_ROUNDS:
                raise Suspect("suspect board: it reported a reset in each of the last %d poll rounds (%s); "
                              "not stored for %g s; check it with `sxctl info`"
                              % (stage.epoch_rounds - 1, printable(reason), SUSPECT_PAUSE_S))
        stage.epoch_round = self.rounds
        now = round(self.clock())
        firmware = "%d.%d.%d" % (info["fw_major"], info["fw_minor"], info["fw_patch"])
        self._write("write_epoch", (stage.addr, epoch, boot_time, now, reason, info["board"], info["serial"], firmware))
        stage.mark = store.Mark(epoch, boot_time, now, serial=info["serial"])
        if epoch > 1:
            self.say("stage %d: %s; epoch %d starts" % (stage.addr, printable(reason), epoch))

    def _restarted(self, stage, reason):
        self._connect(stage, restarted=reason)

    def record_time(self, mark, board_time):
        return board_time if board_time >= UNSYNCED_BEFORE else mark.boot_time + board_time

    # reading
    def _read_backlog(self, stage):
        addr = stage.addr
        compared = False
        for _ in range(_MAX_READS):
            mark = stage.mark
            # The round's first read asks for the newest stored record again (if the board still
            # has it) to compare it; the reads after it go on from there.
            compare = bool(mark.record_raw) and not compared
            since = mark.record - 1 if compare else mark.record
            reply = self._backlog_read(stage, since, answered=compared)
            if reply is None:
                continue  # no answer: tried again with fewer records
            sent = reply["records"][:reply["count"]]
            records = sent
            if reply["latest"] < mark.record:
                self._restarted(stage, "board reset: its newest record is %d, %d stored" % (reply["latest"], mark.record))
                continue
            if compare and records and records[0]["record"] == mark.record:
                if raw_values(records[0]) != mark.record_raw:
                    self._restarted(stage, "board reset: its record %d is not the stored one" % mark.record)
                    continue
                records = records[1:]
            compared = True
            if records:
                self._store_records(stage, records)
            if not sent or sent[-1]["record"] >= reply["latest"]:
                return

    def _backlog_read(self, stage, since, answered):
        """One BACKLOG_READ for stage.backlog_count records; None when unanswered and a shorter
        read is left to try, NoAnswer when even a 1-record read went unanswered. A stage that
        has not `answered` this round and sent nothing, not even a broken frame, is silent rather
        than on a noisy line: it is not asked again in this round (the next one asks for fewer),
        so a silent board costs the round one request, not one per read size."""
        count = stage.backlog_count
        heard = self._heard()
        try:
            reply = self.bus.request(stage.addr, messages.BACKLOG_READ, {"since": since, "count": count},
                                     expect=messages.BACKLOG).values
        except NoAnswer:
            if count == 1:
                raise
            stage.backlog_count = max(1, count // 2)
            if not answered and self._heard() == heard:
                raise  # not a word from it, not even a broken one: silent, not noisy
            return None
        stage.backlog_count = min(messages.BACKLOG_RECORDS, 2 * count)
        return reply

    def _heard(self):
        """Frames that came back, whole or broken (a noisy line breaks long replies)."""
        stats = getattr(self.bus, "stats", None)
        return (stats.received, stats.crc_errors, stats.malformed) if stats is not None else None

    def _store_records(self, stage, records):
        mark = stage.mark
        first, newest = records[0]["record"], records[-1]
        records = self._believable(stage, records)
        if first > mark.record + 1 and _was_logging(mark, mark.record):
            self._write("write_gap", (stage.addr, mark.epoch, "telemetry", mark.record + 1, first - 1, round(self.clock())))
            stage.lost += first - 1 - mark.record
            self.say("stage %d: records %d..%d were gone from the board's backlog" % (stage.addr, mark.record + 1, first - 1))
        if records:
            rows = []
            for r in records:
                raw = raw_values(r)
                rows.append((stage.addr, mark.epoch, r["record"], self.record_time(mark, raw[0])) + raw)
            self._write("write_telemetry", rows)
            self.rows += len(rows)
            stage.stored += len(rows)
            mark.record, mark.record_raw = records[-1]["record"], raw_values(records[-1])
            mark.last_time = max(mark.last_time, rows[-1][3])
            stage.last = records[-1]
        if not records or records[-1] is not newest:  # the newest was refused: go on after it
            mark.record, mark.record_raw = newest["record"], None

    def _believable(self, stage, records):
        """The records with every value in its declared range and a time not ahead of the host's;
        the others are counted, listed as a refused gap, and not stored."""
        mark = stage.mark
        good = []
        horizon = self.clock() + FUTURE_SLACK_S
        for r in records:
            bad = out_of_range(messages.TelemetryRecord, r)
            if self.record_time(mark, r["time_s"]) > horizon:
                bad.append("time_s (ahead of this host's clock)")
            if not bad:
                good.append(r)
                continue
            stage.refused += 1
            self._write("write_gap", (stage.addr, mark.epoch, "refused", r["record"], r["record"], round(self.clock())))
            if stage.refused == 1 or stage.refused % 100 == 0:
                self.say("stage %d: record %d not stored: %s outside the protocol's range (%d refused so far)"
                         % (stage.addr, r["record"], ", ".join(bad), stage.refused))
        return good

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
                self._write("write_gap", (addr, mark.epoch, "events", mark.event + 1, events[0]["seq"] - 1, round(self.clock())))
            rows = []
            for e in events:
                code = e["code"]
                if (code not in store.EVENT_KINDS or out_of_range(_EVENT_RECORD, e)
                        or (code in ALARM_EVENTS and e["alarm"] not in messages.ALARMS)):
                    stage.refused += 1  # no event the protocol declares: counted, not stored
                    self._write("write_gap", (addr, mark.epoch, "refused events", e["seq"], e["seq"], round(self.clock())))
                    continue
                rows.append((addr, mark.epoch, e["seq"], self.record_time(mark, e["time_s"]), e["time_s"], code,
                             store.EVENT_KINDS.get(code, "code %d" % code), e["alarm"], e["value"]))
                if store.EVENT_KINDS.get(code) in ("config", "calibration"):  # store the config it left
                    stage.config_due = True
            if rows:
                self._write("write_events", rows)
            self.events += len(rows)
            mark.event = events[-1]["seq"]
            if rows:
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
            if v["item"] != item.id or not item.lo <= v["value"] <= item.hi:
                stage.refused += 1  # not the item asked, or outside its declared range: not stored
                self.say("stage %d: config item %s not stored: the board answered item %d = %d, outside %d..%d"
                         % (stage.addr, item.name, v["item"], v["value"], item.lo, item.hi))
                continue
            rows.append((stage.addr, stage.mark.epoch, now, version, item.id, item.name, v["value"]))
        self._write("write_config", rows)
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
            elif store.faulted("ph", s.last["alarms_active"]):
                parts.append("%d:FAULT" % s.addr)
            else:
                parts.append("%d:%.*f" % (s.addr, store.decimals("ph"), store.engineering("ph", s.last["ph"])))
        if len(parts) > 16:
            parts = parts[:16] + ["+%d more" % (len(parts) - 16)]
        st = self.bus.stats
        lost = sum(s.lost for s in self.stages)
        refused = sum(s.refused for s in self.stages)
        return "%s%d rows, %d events%s%s | pH %s | link sent %d recv %d retries %d timeouts %d bad %d" % (
            "NOT STORING (%s; %d rows in memory) | " % (self.store_problem, _rows(self.held))
            if self.store_problem else "",
            self.rows, self.events, ", %d records lost" % lost if lost else "",
            ", %d refused" % refused if refused else "", " ".join(parts),
            st.sent, st.received, st.retries, st.timeouts, st.crc_errors + st.malformed)

    def failures(self):
        """What the run could not do, one text per failure: stages that stored nothing or were
        not answering at the end, and a store that was failing at the end. Empty: all well."""
        out = []
        for s in self.stages:
            if s.stored == 0 and s.online is not True:
                out.append("stage %d: nothing stored: %s" % (s.addr, printable(s.problem) or "never read"))
            elif s.online is False:
                out.append("stage %d: not answering at the end (%s); %d rows stored before"
                           % (s.addr, printable(s.problem), s.stored))
        if self.store_problem:
            out.append("%s; the last rounds are not stored (%d rows held in memory lost)"
                       % (self.store_problem, _rows(self.held)))
        return out


def _rows(writes):
    """Rows in a list of sink writes: a list of rows, or one row (a tuple)."""
    return sum(len(arg) if isinstance(arg, list) else 1 for _, arg in writes)


def _saved(stage):
    state = dict(stage.__dict__)
    if stage.mark is not None:
        state["mark"] = dataclasses.replace(stage.mark)
        stage.mark = dataclasses.replace(stage.mark)  # the round works on a copy
    return state


def _was_logging(mark, newest_stored):
    """Whether what a board no longer holds was lost, not older than the first contact with it."""
    return mark.epoch > 1 or newest_stored > 0


def raw_values(record):
    """A telemetry record as stored: (board_time, *VALUE_FIELDS)."""
    return (record["time_s"],) + tuple(record[name] for name in store.VALUE_FIELDS)
