"""Bench section `historian`: 8 gateways x 16 stages at 1 record/s through a real Mosquitto and
`sxctl historian` into a real PostgreSQL (private instances, historian/servers.py).

- historian.rows_per_s: logs of REPLAY_S simulated seconds each, published at once: rows stored
  per second, from the publishers' start until the database holds every row.
- historian.e2e_p99_s: the gateways log in real time (one record per stage and second); for each
  record, the time from its commit into the gateway's SQLite log until the database holds it
  (the database polled every POLL_S), 99th percentile.
- historian.broker_outage_catchup_s: the broker stopped while the gateways log 10 simulated
  minutes; time from the broker's return until the database holds all of it.

The gateways are synthetic (historian/synth.py) and run in this process, one publisher each.
"""
import os
import shutil
import statistics
import tempfile
import threading
import time

from ..gateway.mqtt import Publisher
from ..historian import harness, pgstore, servers, synth
from . import Figure

GATEWAYS = 8
STAGES = 16
REPLAY_S = 600          # simulated seconds per gateway for the throughput run
REALTIME_S = 20         # seconds of real-time logging for the latency run
OUTAGE_S = 600          # simulated seconds logged while the broker is away
POLL_S = 0.02
PLANT = "bench"


def _count(url):
    with pgstore.connect(url, autocommit=True) as c:
        return c.execute("SELECT COUNT(*) FROM telemetry").fetchone()[0]


def _wait_rows(url, n, timeout=600):
    harness.wait_for(lambda: _count(url) >= n, timeout, "%d rows in the database" % n)
    return time.monotonic()


def run(options):
    folder = tempfile.mkdtemp(prefix="sxctl-bench-historian-")
    figures = []
    with servers.Postgres(os.path.join(folder, "pg")) as pg, \
            servers.Mosquitto(os.path.join(folder, "mqtt")) as broker:
        historian = harness.HistorianProcess(folder, broker.url + "/" + PLANT, pg.url).start()
        try:
            logs = [synth.SyntheticLog(os.path.join(folder, "gw%d.sqlite" % g), "gw%d" % g, range(1, STAGES + 1))
                    for g in range(GATEWAYS)]
            for log in logs:
                for _ in range(REPLAY_S):
                    log.write_second()
            total = GATEWAYS * STAGES * REPLAY_S
            pubs = [Publisher(log.db.path, "%s/%s/gw%d" % (broker.url, PLANT, g), stages=log.stages)
                    for g, log in enumerate(logs)]
            began = time.monotonic()
            for p in pubs:
                p.start()
            done = _wait_rows(pg.url, total)
            rate = total / (done - began)
            figures.append(Figure("historian.rows_per_s", round(rate), "rows/s", (">=", 50_000),
                                  "%d gateways x %d stages, %d s of log each replayed at once" % (GATEWAYS, STAGES, REPLAY_S)))

            # real time: one record per stage and second, the commit time of each remembered
            committed, seen = {}, {}
            stop = threading.Event()

            def watch():
                """When each committed record shows up in the database."""
                first_new = REPLAY_S + 1
                with pgstore.connect(pg.url, autocommit=True) as c:
                    while not stop.is_set():
                        rows = c.execute("SELECT gateway, MAX(record) FROM telemetry WHERE record >= %s "
                                         "GROUP BY gateway", (first_new,)).fetchall()
                        now = time.monotonic()
                        for gw, newest in rows:
                            for r in range(first_new, newest + 1):
                                if (gw, r) not in seen and (gw, r) in committed:
                                    seen[(gw, r)] = now - committed[(gw, r)]
                        time.sleep(POLL_S)

            watcher = threading.Thread(target=watch, daemon=True)
            watcher.start()
            start = time.monotonic()
            for k in range(REALTIME_S):
                due = start + k
                if due > time.monotonic():
                    time.sleep(due - time.monotonic())
                for log in logs:
                    r = log.write_second()
                    committed[(log.gateway, r)] = time.monotonic()
            harness.wait_for(lambda: len(seen) >= len(committed), 60, "the real-time records in the database")
            stop.set()
            watcher.join(10)
            lat = sorted(seen.values())
            p99 = lat[min(len(lat) - 1, int(0.99 * len(lat)))]
            figures.append(Figure("historian.e2e_p99_s", round(p99, 3), "s", ("<=", 2.0),
                                  "SQLite commit to PostgreSQL, %d records at 1/s per stage, median %.3f s"
                                  % (len(lat), statistics.median(lat))))

            # broker outage: ten simulated minutes logged while it is away
            before = _count(pg.url)
            broker.stop()
            for log in logs:
                for _ in range(OUTAGE_S):
                    log.write_second()
            back = time.monotonic()
            broker.start()
            done = _wait_rows(pg.url, before + GATEWAYS * STAGES * OUTAGE_S)
            figures.append(Figure("historian.broker_outage_catchup_s", round(done - back, 2), "s", None,
                                  "%d rows of %d s from %d gateways, from the broker's return"
                                  % (GATEWAYS * STAGES * OUTAGE_S, OUTAGE_S, GATEWAYS)))
            for p in pubs:
                p.stop()
            for log in logs:
                log.close()
        finally:
            historian.kill()
    shutil.rmtree(folder, ignore_errors=True)
    return figures
