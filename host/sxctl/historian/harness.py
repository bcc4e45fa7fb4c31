"""Processes of a plant on one machine, for the fault campaign, the bench, the tests and `make
demo-plant`: `sxctl historian` and synthetic gateways as child processes that can be killed and
started again, and the comparison of every gateway's SQLite log with the plant database."""
import collections
import os
import pathlib
import signal
import sqlite3
import subprocess
import sys

from .. import store
from ..waiting import wait_for  # noqa: F401  (the campaign and bench take it from here)
from . import pgstore, wire

PYTHON = sys.executable




class Child:
    """A child process with its stderr in a file of `folder`."""

    def __init__(self, folder, name, argv, env=None):
        self.folder = pathlib.Path(folder)
        self.name = name
        self.argv = argv
        self.env = env
        self.proc = None
        self.err = self.folder / ("%s.err" % name)

    def start(self):
        with open(self.err, "ab") as err:
            self.proc = subprocess.Popen(self.argv, stdout=subprocess.DEVNULL, stderr=err,
                                         env=dict(os.environ, **(self.env or {})))
        return self

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def log(self):
        return self.err.read_text(errors="replace") if self.err.exists() else ""

    def kill(self, sig=signal.SIGKILL, timeout=30):
        if self.alive():
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


class HistorianProcess(Child):
    def __init__(self, folder, broker_url, db_url, name="historian"):
        super().__init__(folder, name, [PYTHON, "-m", "sxctl", "historian", "--mqtt", broker_url, "--db", db_url,
                                        "--name", name])
        self.starts = 0

    def start(self, timeout=60, wait=True):
        """Starts and waits until it subscribed (or exited: then raises with its log); with
        wait=False (the broker is away) only until it runs."""
        mark = self.log().count("subscribed to plant")
        super().start()
        self.starts += 1
        wait_for(lambda: not self.alive() or self.log().count("subscribed to plant" if wait else "historian ") > mark,
                 timeout, "the historian's subscription" if wait else "the historian to start")
        if not self.alive():
            raise RuntimeError("sxctl historian exited %s: %s" % (self.proc.returncode, self.log()[-2000:]))
        return self


class SynthGateway(Child):
    def __init__(self, folder, broker_url, plant, gateway, stages, seconds, speed, linger=2.0):
        self.db = str(pathlib.Path(folder) / ("%s.sqlite" % gateway))
        super().__init__(folder, gateway, [
            PYTHON, "-m", "sxctl.historian.synth", "--db", self.db, "--mqtt", "%s/%s/%s" % (broker_url, plant, gateway),
            "--stages", str(stages), "--seconds", str(seconds), "--speed", str(speed), "--linger", str(linger)])
        self.gateway = gateway

    def progress(self):
        """The newest record number in its log (its simulated second)."""
        try:
            with sqlite3.connect("file:%s?mode=ro" % self.db, uri=True) as c:
                return c.execute("SELECT COALESCE(MAX(record), 0) FROM telemetry").fetchone()[0]
        except sqlite3.Error:
            return 0


def sqlite_rows(path):
    """{table: Counter of row tuples} of one log."""
    out = {}
    with sqlite3.connect("file:%s?mode=ro" % path, uri=True) as c:
        for table, columns in wire.TABLES.items():
            out[table] = collections.Counter(c.execute("SELECT %s FROM %s" % (", ".join(columns), table)))
    return out


def pg_rows(db_url, gateway):
    out = {}
    with pgstore.connect(db_url, autocommit=True) as c:
        for table, columns in wire.TABLES.items():
            out[table] = collections.Counter(c.execute('SELECT %s FROM %s WHERE gateway = %%s'
                                                       % (", ".join('"%s"' % x for x in columns), table), (gateway,)))
    return out


def compare(db_url, logs):
    """(missing, doubled, total): rows of the SQLite logs ({gateway: path}) not in the database,
    rows in the database beyond the logs' (a second copy, or a row no log holds), rows in the logs."""
    missing = doubled = total = 0
    for gateway, path in logs.items():
        want, got = sqlite_rows(path), pg_rows(db_url, gateway)
        for table in wire.TABLES:
            missing += sum((want[table] - got[table]).values())
            doubled += sum((got[table] - want[table]).values())
            total += sum(want[table].values())
    return missing, doubled, total


def counts_equal(db_url, logs):
    """Whether the database holds as many rows of each gateway and table as its log (cheap)."""
    try:
        with pgstore.connect(db_url, autocommit=True) as c:
            for gateway, path in logs.items():
                with sqlite3.connect("file:%s?mode=ro" % path, uri=True) as s:
                    for table in wire.TABLES:
                        n = s.execute("SELECT COUNT(*) FROM %s" % table).fetchone()[0]
                        m = c.execute("SELECT COUNT(*) FROM %s WHERE gateway = %%s" % table, (gateway,)).fetchone()[0]
                        if n != m:
                            return False
    except Exception:
        return False
    return True


def cursors_behind(path):
    """Tables of a log whose publish cursor is not at the table's newest row."""
    behind = 0
    with sqlite3.connect("file:%s?mode=ro" % path, uri=True) as c:
        cursors = dict(c.execute("SELECT tbl, last_rowid FROM publish_cursors"))
        for table in store.PUBLISHED_TABLES:
            newest = c.execute("SELECT COALESCE(MAX(rowid), 0) FROM %s" % table).fetchone()[0]
            behind += cursors.get(table, 0) != newest
    return behind
