"""The plant's PostgreSQL database: its schema and migrations, batched writes, and the reading
side that `sxctl export` and `sxctl plot` use for a postgresql:// URL.

Every table is the SQLite log's table with a leading `gateway` column, keyed by (gateway, stage,
epoch, record) (events by seq, config by version and item): a row delivered twice, by the broker
or by two historians, is stored once (INSERT ... ON CONFLICT DO NOTHING).
"""
import contextlib
import time

from .. import store
from ..errors import SxctlError
from . import wire

SCHEMA_VERSION = 1
_TYPES = {name: ("TEXT" if name in wire.TEXT else "BIGINT") + ("" if name in wire.NULLABLE else " NOT NULL")
          for cols in wire.TABLES.values() for name in cols}
KEYS = {"epochs": ("gateway", "stage", "epoch"),
        "telemetry": ("gateway", "stage", "epoch", "record"),
        "events": ("gateway", "stage", "epoch", "seq"),
        "config": ("gateway", "stage", "epoch", "config_version", "item"),
        # the log's gaps have no key of their own: the whole row is one
        "gaps": ("gateway",) + store.GAP_COLUMNS}
COLUMNS = {t: ("gateway",) + cols for t, cols in wire.TABLES.items()}


def _create_table(table):
    cols = ", ".join('"%s" %s' % (c, _TYPES[c]) for c in wire.TABLES[table])
    return "CREATE TABLE IF NOT EXISTS %s (gateway TEXT NOT NULL, %s, PRIMARY KEY (%s))" % (
        table, cols, ", ".join('"%s"' % k for k in KEYS[table]))


# migrations[n] takes a database at schema n to n + 1; each runs in one transaction.
MIGRATIONS = {
    0: [_create_table(t) for t in wire.TABLES] + [
        # range reads by time: a btree for the telemetry (exports, plots), BRIN for the rest
        "CREATE INDEX IF NOT EXISTS telemetry_time ON telemetry (time, gateway, stage)",
        "CREATE INDEX IF NOT EXISTS events_time ON events USING brin (time)",
        "CREATE TABLE IF NOT EXISTS gateways (gateway TEXT PRIMARY KEY, state TEXT NOT NULL, "
        "since DOUBLE PRECISION, stages TEXT, last_commit DOUBLE PRECISION, lag_s DOUBLE PRECISION)",
    ],
}
assert max(MIGRATIONS) + 1 == SCHEMA_VERSION


def connect(url, autocommit=False):
    import psycopg

    try:
        return psycopg.connect(url, autocommit=autocommit, connect_timeout=10)
    except psycopg.OperationalError as e:
        raise SxctlError("cannot connect to the database %s: %s" % (safe_url(url), str(e).strip().splitlines()[0])) from None


def safe_url(url):
    """The URL without its password."""
    import urllib.parse
    u = urllib.parse.urlsplit(url)
    if u.password:
        netloc = u.netloc.replace(":" + u.password + "@", ":***@")
        return urllib.parse.urlunsplit(u._replace(netloc=netloc))
    return url


def is_url(text):
    return str(text).startswith(("postgresql://", "postgres://"))


def migrate(conn):
    """Create or migrate the schema; several historians starting at once take turns (an advisory
    lock). Refuses a database of a newer schema. Returns the version found."""
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(5873001)")
        conn.execute("CREATE TABLE IF NOT EXISTS sxctl_schema (version INTEGER NOT NULL)")
        row = conn.execute("SELECT version FROM sxctl_schema").fetchone()
        found = row[0] if row else 0
        if found > SCHEMA_VERSION:
            raise SxctlError("the database holds historian schema %d, this sxctl knows %d: use a newer sxctl"
                             % (found, SCHEMA_VERSION))
        for version in range(found, SCHEMA_VERSION):
            for sql in MIGRATIONS[version]:
                conn.execute(sql)
        if row:
            conn.execute("UPDATE sxctl_schema SET version = %s", (SCHEMA_VERSION,))
        else:
            conn.execute("INSERT INTO sxctl_schema VALUES (%s)", (SCHEMA_VERSION,))
    return found


class Writer:
    """Writes batches of rows, one transaction each: COPY into a temporary table, then INSERT ...
    SELECT ... ON CONFLICT DO NOTHING (COPY alone cannot skip a key already held)."""

    def __init__(self, url):
        self.url = url
        self.conn = None

    def open(self):
        self.conn = connect(self.url)
        migrate(self.conn)
        with self.conn.transaction():
            for t in wire.TABLES:
                self.conn.execute("CREATE TEMP TABLE IF NOT EXISTS incoming_%s (LIKE %s) ON COMMIT DELETE ROWS" % (t, t))
        return self

    def write(self, rows_by_table, statuses=(), lags=None):
        """rows_by_table: {table: [(gateway, *columns)]}; statuses: [(gateway, state, since, stages)];
        lags: {gateway: seconds}. One transaction; returns {table: rows new to the database}."""
        new = {}
        now = time.time()
        with self.conn.transaction():
            for t, rows in rows_by_table.items():
                if not rows:
                    continue
                cols = ", ".join('"%s"' % c for c in COLUMNS[t])
                with self.conn.cursor() as cur:
                    with cur.copy("COPY incoming_%s (%s) FROM STDIN" % (t, cols)) as copy:
                        for r in rows:
                            copy.write_row(r)
                    cur.execute("INSERT INTO %s (%s) SELECT %s FROM incoming_%s ON CONFLICT DO NOTHING" % (t, cols, cols, t))
                    new[t] = cur.rowcount
            for gateway, state, since, stages in statuses:
                self.conn.execute(
                    "INSERT INTO gateways (gateway, state, since, stages) VALUES (%s, %s, %s, %s) "
                    "ON CONFLICT (gateway) DO UPDATE SET state = excluded.state, since = excluded.since, "
                    "stages = excluded.stages", (gateway, state, since, stages))
            for gateway, lag in (lags or {}).items():
                self.conn.execute(
                    "INSERT INTO gateways (gateway, state, last_commit, lag_s) VALUES (%s, 'unknown', %s, %s) "
                    "ON CONFLICT (gateway) DO UPDATE SET last_commit = excluded.last_commit, lag_s = excluded.lag_s",
                    (gateway, now, lag))
        return new

    def close(self):
        if self.conn is not None:
            with contextlib.suppress(Exception):
                self.conn.close()
            self.conn = None


class PgReader:
    """The reading side of SQLiteStore over the plant database, for export and plot. `gateways`
    selects gateways (default all). Rows come ordered by gateway, then as SQLiteStore orders them,
    so a plant's export is its gateways' exports one after the other. With `label_stages` and
    more than one gateway a stage is named "gateway/stage" (stage numbers repeat across buses):
    the plot's panels; the CSV keeps the columns of a gateway's own export."""

    def __init__(self, url, gateways=None, label_stages=True):
        self.path = safe_url(url)
        self.conn = connect(url, autocommit=True)
        row = None
        try:
            row = self.conn.execute("SELECT version FROM sxctl_schema").fetchone()
        except Exception:
            pass
        if not row:
            self.conn.close()
            raise SxctlError("%s holds no sxctl historian tables; give the database `sxctl historian --db` writes"
                             % self.path)
        if row[0] > SCHEMA_VERSION:
            self.conn.close()
            raise SxctlError("%s holds historian schema %d, this sxctl reads %d: use a newer sxctl"
                             % (self.path, row[0], SCHEMA_VERSION))
        held = self.gateways_held()
        if gateways:
            unknown = [g for g in gateways if g not in held]
            if unknown:
                self.conn.close()
                raise SxctlError("%s holds no gateway %s (it holds %s); check --gateway"
                                 % (self.path, ", ".join(unknown), ", ".join(held) or "none"))
        self.gateways = list(gateways) if gateways else held
        self.named = label_stages and len(self.gateways) > 1

    def gateways_held(self):
        return [r[0] for r in self.conn.execute("SELECT DISTINCT gateway FROM epochs ORDER BY gateway")]

    def _label(self, gateway, stage):
        return "%s/%d" % (gateway, stage) if self.named else stage

    def _where(self, stages, start, end, time_column="time", terms=()):
        """stages: numbers, or "gateway/stage" labels."""
        terms, args = list(terms), []
        terms.append("gateway = ANY(%s)")
        args.append(self.gateways)
        if stages:
            nums = [s for s in stages if isinstance(s, int)]
            pairs = [tuple(s.split("/", 1)) for s in stages if isinstance(s, str)]
            alts = []
            if nums:
                alts.append("stage = ANY(%s)")
                args.append(nums)
            for g, s in pairs:
                alts.append("(gateway = %s AND stage = %s)")
                args += [g, int(s)]
            terms.append("(" + " OR ".join(alts) + ")")
        if start is not None:
            terms.append(time_column + " >= %s")
            args.append(start)
        if end is not None:
            terms.append(time_column + " <= %s")
            args.append(end)
        return " WHERE " + " AND ".join(terms), args

    def stages(self):
        return [self._label(g, s) for g, s in self.conn.execute(
            "SELECT DISTINCT gateway, stage FROM telemetry WHERE gateway = ANY(%s) ORDER BY gateway, stage",
            (self.gateways,))]

    def count(self, table="telemetry"):
        return self.conn.execute("SELECT COUNT(*) FROM %s WHERE gateway = ANY(%%s)" % table, (self.gateways,)).fetchone()[0]

    def telemetry(self, stages=None, start=None, end=None, columns=store.TELEMETRY_COLUMNS):
        where, args = self._where(stages, start, end)
        cols = ", ".join('"%s"' % c if c != "stage" else "gateway, stage" for c in columns)
        cur = self.conn.cursor(name=None)
        cur.execute("SELECT %s FROM telemetry%s ORDER BY gateway, time, stage, epoch, record" % (cols, where), args)
        i = columns.index("stage") if "stage" in columns else None
        for r in cur:
            if i is None:
                yield r
            else:  # gateway, stage -> one label
                yield r[:i] + (self._label(r[i], r[i + 1]),) + r[i + 2:]

    def telemetry_means(self, bucket_s, stages=None, start=None, end=None, columns=store.VALUE_FIELDS):
        where, args = self._where(stages, start, end)
        means = ", ".join("AVG(CASE WHEN (alarms_active & %d) != 0 THEN NULL ELSE %s END)::float8" % (store.fault_mask(c), c)
                          if store.fault_mask(c) else "AVG(%s)::float8" % c for c in columns)
        rows = self.conn.execute(
            "SELECT gateway, stage, (time / %%s) * %%s AS t, %s, MAX((alarms_active != 0)::int) FROM telemetry%s "
            "GROUP BY gateway, stage, t ORDER BY gateway, stage, t" % (means, where), [bucket_s, bucket_s] + args)
        for r in rows:
            yield (self._label(r[0], r[1]),) + r[2:]

    def time_span(self, stages=None, start=None, end=None):
        where, args = self._where(stages, start, end)
        return self.conn.execute("SELECT MIN(time), MAX(time), COUNT(*) FROM telemetry" + where, args).fetchone()

    def resets(self, stages=None, start=None, end=None):
        where, args = self._where(stages, start, end, "boot_time", ["epoch > 1"])
        return [(self._label(g, s), t) for g, s, t in self.conn.execute(
            "SELECT gateway, stage, boot_time FROM epochs%s ORDER BY gateway, stage, epoch" % where, args)]

    def close(self):
        self.conn.close()
