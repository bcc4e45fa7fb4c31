"""Fault section `logger_kills`: `sxctl log` killed with SIGKILL at random moments and started
again; afterwards no telemetry record of any stage may be missing from its database."""
import os
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time

from sxproto import messages

from ..bench import Figure
from ..buslink import BusClient
from ..sim.simulator import running

STAGES = 3


def _logger(bus, db, duration=None):
    args = [sys.executable, "-m", "sxctl", "log", "--port", bus, "--stages", "1-%d" % STAGES, "--db", db]
    if duration:
        args += ["--duration", str(duration)]
    return subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _rows(db):
    try:
        with sqlite3.connect(db) as c:
            return c.execute("SELECT COUNT(*) FROM telemetry").fetchone()[0]
    except sqlite3.Error:
        return 0  # not created yet


def run(short):
    kills = 3 if short else 20
    rng = random.Random(5)
    folder = tempfile.mkdtemp(prefix="sxctl-logkill-")
    db = os.path.join(folder, "plant.sqlite")
    with running(STAGES) as sim:
        for _ in range(kills):
            proc = _logger(sim.bus.path, db)
            deadline = time.monotonic() + 30
            start = _rows(db)
            while _rows(db) <= start and time.monotonic() < deadline:
                time.sleep(0.05)  # wait until this run stored something
            time.sleep(rng.uniform(0.0, 1.5))  # then kill it anywhere in its rounds
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            time.sleep(rng.uniform(0.0, 2.0))  # the boards keep recording meanwhile
        with BusClient(sim.bus.path) as bus:  # what each board holds now
            latest = {a: bus.request(a, messages.BACKLOG_READ, dict(since=0, count=0), expect=messages.BACKLOG)
                      .values["latest"] for a in range(1, STAGES + 1)}
        _logger(sim.bus.path, db, duration=4).wait(60)  # a last run catches up
    missing = 0
    with sqlite3.connect(db) as c:
        for stage, last in latest.items():
            got = {r for (r,) in c.execute("SELECT record FROM telemetry WHERE stage=?", (stage,))}
            first = min(got) if got else 1
            missing += sum(1 for r in range(first, last + 1) if r not in got)
    return [
        Figure("faults.logger_kills", kills, "", note="SIGKILL at random moments, %d stages logging" % STAGES),
        Figure("faults.logger_samples_missing", missing, "records", ("==", 0),
               "records on the boards, from the first logged up to each board's latest, absent from the database"),
    ]
