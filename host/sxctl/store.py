"""Where logged data goes: the Sink interface the logger writes to, and its SQLite implementation.

Rows are plain tuples in the order of the *_COLUMNS below, values in protocol units (integers
until the reporting edge; `engineering()` converts). A sink for MQTT or PostgreSQL implements
the same few methods; only SQLiteStore can also tell the logger where to resume.

Boards number their telemetry records and events from 1 again after every reset, so a stage's
rows are keyed by (stage, epoch, record): the logger starts epoch 1 at its first contact with a
stage and opens the next epoch whenever it finds that the board restarted (see logger.py).
"""
import datetime
import math
import sqlite3
from dataclasses import dataclass

from sxproto import fields, messages

from .errors import SxctlError

# Telemetry values as the board sends them, after the record number and the board's time.
VALUE_FIELDS = tuple(f.name for f in fields.infos(messages.TelemetryRecord)
                     if f.name not in ("record", "time_s"))
# `time`: Unix seconds; `board_time`: the record's time_s as the board sent it (seconds since boot
# where the board's clock was not yet synced, see logger.record_time).
TELEMETRY_COLUMNS = ("stage", "epoch", "record", "time", "board_time") + VALUE_FIELDS
EVENT_COLUMNS = ("stage", "epoch", "seq", "time", "board_time", "code", "kind", "alarm", "value")
CONFIG_COLUMNS = ("stage", "epoch", "time", "config_version", "item", "name", "value")
EPOCH_COLUMNS = ("stage", "epoch", "boot_time", "seen_time", "reason", "board", "serial", "firmware")
GAP_COLUMNS = ("stage", "epoch", "kind", "first", "last", "time")

# EVENTS.code names, from the protocol's EVENT_CODES.
EVENT_KINDS = messages.EVENT_CODES

# 2: telemetry's one `alarms` mask became alarms_active and alarms_unacked (migrate_1_to_2).
# 3: publish_cursors, added by CREATE TABLE IF NOT EXISTS below (a schema 2 log gains it on open).
SCHEMA_VERSION = 3
# Tables a publisher (gateway/mqtt.py) sends on, in rowid order; rows are never deleted or
# updated, so a rowid cursor marks exactly what was sent.
PUBLISHED_TABLES = ("epochs", "telemetry", "events", "config", "gaps")
_SCHEMA = """
CREATE TABLE IF NOT EXISTS epochs (
    stage INTEGER NOT NULL, epoch INTEGER NOT NULL,
    boot_time INTEGER NOT NULL,   -- the board's reset, Unix s, as host time minus its uptime
    seen_time INTEGER NOT NULL,   -- when the logger first saw this boot
    reason TEXT NOT NULL, board TEXT, serial TEXT, firmware TEXT,
    PRIMARY KEY (stage, epoch));
CREATE TABLE IF NOT EXISTS telemetry (
    stage INTEGER NOT NULL, epoch INTEGER NOT NULL, record INTEGER NOT NULL,
    time INTEGER NOT NULL, board_time INTEGER NOT NULL, %(values)s,
    UNIQUE (stage, epoch, record));
CREATE INDEX IF NOT EXISTS telemetry_time ON telemetry (time, stage);
CREATE TABLE IF NOT EXISTS events (
    stage INTEGER NOT NULL, epoch INTEGER NOT NULL, seq INTEGER NOT NULL,
    time INTEGER NOT NULL, board_time INTEGER NOT NULL,
    code INTEGER NOT NULL, kind TEXT NOT NULL, alarm INTEGER NOT NULL, value INTEGER NOT NULL,
    UNIQUE (stage, epoch, seq));
CREATE TABLE IF NOT EXISTS config (
    stage INTEGER NOT NULL, epoch INTEGER NOT NULL, time INTEGER NOT NULL,
    config_version INTEGER NOT NULL, item INTEGER NOT NULL, name TEXT NOT NULL, value INTEGER NOT NULL,
    UNIQUE (stage, epoch, config_version, item));
CREATE TABLE IF NOT EXISTS gaps (  -- records or events a board no longer held when read
    stage INTEGER NOT NULL, epoch INTEGER NOT NULL, kind TEXT NOT NULL,
    first INTEGER NOT NULL, last INTEGER NOT NULL, time INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS publish_cursors (  -- per destination and table: the newest rowid acknowledged
    target TEXT NOT NULL, tbl TEXT NOT NULL, last_rowid INTEGER NOT NULL,
    PRIMARY KEY (target, tbl));
""" % {"values": ", ".join("%s INTEGER NOT NULL" % name for name in VALUE_FIELDS)}


@dataclass
class Mark:
    """Where the stored data of one stage ends: the logger resumes from here."""
    epoch: int
    boot_time: int
    last_time: int            # newest time stored for the stage's epoch, Unix s
    record: int = 0           # newest stored record number in the epoch
    record_raw: tuple = None  # that record as the board sent it: (board_time, *VALUE_FIELDS)
    event: int = 0            # newest stored event number in the epoch
    config_version: int = None
    serial: str = None        # the board's serial number in this epoch


class Sink:
    """What the logger writes to. Each write_* takes a list of row tuples; flush() ends a batch
    and makes it durable; after a crash a sink may lose the batch not yet flushed, no more. A
    sink whose flush fails (sqlite3.Error) gets rollback() and later the same writes again."""

    def resume(self):
        """{stage: Mark} to resume from; a sink that cannot read back returns {} (the logger then
        starts from the oldest record each board still holds)."""
        return {}

    def write_epoch(self, row):
        raise NotImplementedError

    def write_telemetry(self, rows):
        raise NotImplementedError

    def write_events(self, rows):
        raise NotImplementedError

    def write_config(self, rows):
        raise NotImplementedError

    def write_gap(self, row):
        raise NotImplementedError

    def flush(self):
        pass

    def rollback(self):
        """Drop the writes since the last flush (the logger writes them again)."""

    def close(self):
        pass


def _insert(table, columns):
    return "INSERT OR IGNORE INTO %s (%s) VALUES (%s)" % (table, ", ".join(columns), ", ".join("?" * len(columns)))


class SQLiteStore(Sink):
    """One SQLite file in WAL mode. Writes go into one open transaction that flush() commits:
    a process killed at any point leaves every flushed batch (WAL with synchronous=NORMAL is
    durable against a crash of the process; a power cut may also lose the last commits).
    INSERT OR IGNORE on the unique keys makes re-reading what is already stored harmless."""

    _TELEMETRY = _insert("telemetry", TELEMETRY_COLUMNS)
    _EVENTS = _insert("events", EVENT_COLUMNS)
    _CONFIG = _insert("config", CONFIG_COLUMNS)
    _EPOCH = _insert("epochs", EPOCH_COLUMNS)
    _GAP = _insert("gaps", GAP_COLUMNS)

    def __init__(self, path, readonly=False, foreign_ok=True):
        """`foreign_ok=False`: refuse an SQLite file that holds tables but no sxctl log, rather
        than add the log's tables to another program's database."""
        self.path = str(path)
        try:
            if readonly:
                self.db = sqlite3.connect("file:%s?mode=ro" % self.path, uri=True, isolation_level=None)
            else:
                self.db = sqlite3.connect(self.path, isolation_level=None)
            version = self.db.execute("PRAGMA user_version").fetchone()[0]
            if readonly and version == 0:
                raise SxctlError("%s holds no sxctl log; give the file `sxctl log --db` wrote" % self.path)
            if version == 0 and not readonly and not foreign_ok and self.db.execute(
                    "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table'").fetchone()[0]:
                self.db.close()
                raise SxctlError("%s is an SQLite database of another program (it holds tables, no sxctl log): "
                                 "nothing added to it; give a new file or one `sxctl log` wrote" % self.path)
            if version not in (0, 1, 2, SCHEMA_VERSION):
                raise SxctlError("%s was written by another sxctl version (log schema %d, this one reads %d); "
                                 "log to a new file" % (self.path, version, SCHEMA_VERSION))
            if version == 1:
                _read_1_as_2(self.db) if readonly else _migrate_1_to_2(self.db)
            if not readonly:
                self.db.execute("PRAGMA journal_mode=WAL")
                self.db.execute("PRAGMA synchronous=NORMAL")
                self.db.executescript(_SCHEMA)
                self.db.execute("PRAGMA user_version=%d" % SCHEMA_VERSION)
        except sqlite3.DatabaseError as e:
            raise SxctlError("cannot use %s as a log database: %s; check the path, or give a new file"
                             % (self.path, e)) from None
        self._open = False

    def _begin(self):
        if not self._open:
            self.db.execute("BEGIN")
            self._open = True

    def write_epoch(self, row):
        self._begin()
        self.db.execute(self._EPOCH, row)

    def write_telemetry(self, rows):
        self._begin()
        self.db.executemany(self._TELEMETRY, rows)

    def write_events(self, rows):
        self._begin()
        self.db.executemany(self._EVENTS, rows)

    def write_config(self, rows):
        self._begin()
        self.db.executemany(self._CONFIG, rows)

    def write_gap(self, row):
        self._begin()
        self.db.execute(self._GAP, row)

    def flush(self):
        if self._open:
            self.db.execute("COMMIT")
            self._open = False

    def rollback(self):
        """Drop the batch not yet flushed (after a failed write or commit)."""
        self._open = False
        try:
            self.db.execute("ROLLBACK")
        except sqlite3.Error:
            pass  # no transaction left open: SQLite rolled it back itself

    def close(self):
        try:
            self.flush()
        except sqlite3.Error:
            self.rollback()
        self.db.close()

    def resume(self):
        marks = {}
        q = self.db.execute
        for stage, epoch, boot_time, seen_time, serial in q(
                "SELECT stage, epoch, boot_time, seen_time, serial FROM epochs e WHERE epoch = "
                "(SELECT MAX(epoch) FROM epochs WHERE stage = e.stage)").fetchall():
            mark = Mark(epoch, boot_time, seen_time, serial=serial)
            row = q("SELECT record, time, board_time, %s FROM telemetry WHERE stage = ? AND epoch = ? "
                    "ORDER BY record DESC LIMIT 1" % ", ".join(VALUE_FIELDS), (stage, epoch)).fetchone()
            if row:
                mark.record, mark.record_raw = row[0], tuple(row[2:])
                mark.last_time = max(mark.last_time, row[1])
            seq, event_time = q("SELECT MAX(seq), MAX(time) FROM events WHERE stage = ? AND epoch = ?",
                                (stage, epoch)).fetchone()
            if seq:
                mark.event = seq
                mark.last_time = max(mark.last_time, event_time)
            row = q("SELECT config_version FROM config WHERE stage = ? AND epoch = ? "
                    "ORDER BY rowid DESC LIMIT 1", (stage, epoch)).fetchone()
            mark.config_version = row[0] if row else None
            marks[stage] = mark
        return marks

    # reading, for export and plot
    def stages(self):
        return [r[0] for r in self.db.execute("SELECT DISTINCT stage FROM telemetry ORDER BY stage")]

    def count(self, table="telemetry"):
        return self.db.execute("SELECT COUNT(*) FROM %s" % table).fetchone()[0]

    def telemetry(self, stages=None, start=None, end=None, columns=TELEMETRY_COLUMNS):
        """Telemetry rows (tuples of `columns`) ordered by time and stage, within [start, end]."""
        where, args = _filter(stages, start, end)
        return self.db.execute("SELECT %s FROM telemetry%s ORDER BY time, stage, epoch, record"
                               % (", ".join(columns), where), args)

    def telemetry_means(self, bucket_s, stages=None, start=None, end=None, columns=VALUE_FIELDS):
        """(stage, bucket start time, mean of each column, max of alarms) per stage and bucket of
        `bucket_s` seconds, ordered by stage and time: a long log reduced for a plot."""
        where, args = _filter(stages, start, end)
        # a faulted input's value is no reading: left out of the mean (a bucket of only faulted
        # values is NULL, a gap in the plot, never a line at 0)
        means = ", ".join("AVG(CASE WHEN alarms_active & %d THEN NULL ELSE %s END)" % (fault_mask(c), c)
                          if fault_mask(c) else "AVG(%s)" % c for c in columns)
        return self.db.execute(
            "SELECT stage, (time / ?) * ? AS t, %s, MAX(alarms_active != 0) FROM telemetry%s "
            "GROUP BY stage, t ORDER BY stage, t" % (means, where), [bucket_s, bucket_s] + args)

    def time_span(self, stages=None, start=None, end=None):
        where, args = _filter(stages, start, end)
        return self.db.execute("SELECT MIN(time), MAX(time), COUNT(*) FROM telemetry" + where, args).fetchone()

    def resets(self, stages=None, start=None, end=None):
        """(stage, boot time) of each board reset the logger found: every epoch after the first."""
        where, args = _filter(stages, start, end, "boot_time", ["epoch > 1"])
        return self.db.execute("SELECT stage, boot_time FROM epochs%s ORDER BY stage, epoch" % where, args).fetchall()


# Log schema 1 kept one alarm mask per record, the board's "active or not yet acknowledged".
# Such rows keep it as alarms_active (it may include alarms no longer present) and hold NULL,
# unknown, in alarms_unacked.
def _migrate_1_to_2(db):
    """Rewrite a schema 1 log in place, in one transaction: a crash leaves it as it was."""
    db.execute("BEGIN")
    db.execute("ALTER TABLE telemetry RENAME COLUMN alarms TO alarms_active")
    db.execute("ALTER TABLE telemetry ADD COLUMN alarms_unacked INTEGER")
    db.execute("PRAGMA user_version=%d" % SCHEMA_VERSION)
    db.execute("COMMIT")


def _read_1_as_2(db):
    """A schema 1 log opened read-only: a temporary view (it shadows the table by name) shows it
    with schema 2's columns, leaving the file untouched."""
    old = ", ".join("alarms AS alarms_active, NULL AS alarms_unacked" if c == "alarms_active" else c
                    for c in TELEMETRY_COLUMNS if c != "alarms_unacked")
    db.execute("CREATE TEMP VIEW telemetry AS SELECT %s FROM main.telemetry" % old)


def _filter(stages, start, end, time_column="time", terms=()):
    terms, args = list(terms), []
    if stages:
        terms.append("stage IN (%s)" % ", ".join("?" * len(stages)))
        args += list(stages)
    if start is not None:
        terms.append(time_column + " >= ?")
        args.append(start)
    if end is not None:
        terms.append(time_column + " <= ?")
        args.append(end)
    return (" WHERE " + " AND ".join(terms) if terms else ""), args


# engineering units, at the reporting edge
_INFOS = {f.name: f for f in fields.infos(messages.TelemetryRecord)}


def unit(name):
    return _INFOS[name].unit


def scale(name):
    return _INFOS[name].scale


def decimals(name):
    """Decimals that show one count of the field: 3 for 0.001 pH."""
    return max(0, -math.floor(math.log10(scale(name)) + 1e-9))


def engineering(name, raw):
    return round(raw * scale(name), decimals(name))


def mode_name(mode):
    return messages.MODES.get(mode, str(mode))


def alarm_names(bits, sep="|"):
    return sep.join(name for bit, name in messages.ALARMS.items() if bits >> bit & 1)


def iso_time(unix_s):
    return datetime.datetime.fromtimestamp(unix_s, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


# faults: a value whose input is faulted is no reading, and is never shown or plotted as one
_ALARM_BITS = {name: bit for bit, name in messages.ALARMS.items()}
FAULT_ALARMS = {"ph": "ph_sensor_fault", "orp_mv": "orp_fault", "temperature": "temperature_fault",
                "flow_aq": "flow_aq_fault", "flow_org": "flow_org_fault"}
FAULT_ALARMS["ph_deviation"] = FAULT_ALARMS["ph"]


def faulted(name, alarms):
    """Whether telemetry field `name` is faulted by the record's active `alarms`."""
    alarm = FAULT_ALARMS.get(name)
    return alarm is not None and bool(alarms >> _ALARM_BITS[alarm] & 1)


def fault_mask(name):
    """The alarm bit that faults telemetry field `name`, 0 if none."""
    alarm = FAULT_ALARMS.get(name)
    return 1 << _ALARM_BITS[alarm] if alarm else 0


def in_range(name, raw):
    info = _INFOS[name]
    return info.lo <= raw <= info.hi


def reading(name, raw, alarms):
    """The engineering value of a field as people may see it, or None: faulted or out of range."""
    if faulted(name, alarms) or not in_range(name, raw):
        return None
    return engineering(name, raw)
