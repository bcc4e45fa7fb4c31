"""Fault section `historian`: two gateways of four stages publish a simulated hour of their logs
through a real Mosquitto into `sxctl historian` and a real PostgreSQL, while the broker is
stopped for ten simulated minutes and started again, the historian is SIGKILLed at ten random
moments and started again, one gateway is SIGKILLed and started again, and PostgreSQL is
restarted once. Afterwards the database must hold exactly the rows of both SQLite logs, and
every publish cursor must stand at the end of its table.

The gateways are synthetic (historian/synth.py: the real publisher over a real SQLite log, a
simulated second per record, paced at SPEED); the broker, the historian and the database are
the real programs. The short form (make test) runs five simulated minutes with two historian
kills and the same other faults, scaled.
"""
import random
import shutil
import tempfile
import time

from ..bench import Figure
from ..historian import harness, servers

PLANT = "faults"
STAGES = 4


def run(short):
    seconds = 300 if short else 3600
    speed = 50.0 if short else 60.0
    historian_kills = 2 if short else 10
    outage = 60 if short else 600  # simulated seconds without a broker
    rng = random.Random(17)
    folder = tempfile.mkdtemp(prefix="sxctl-faults-historian-")
    began = time.monotonic()
    try:
        with servers.Postgres(folder + "/pg") as pg, servers.Mosquitto(folder + "/mqtt") as broker:
            historian = harness.HistorianProcess(folder, broker.url + "/" + PLANT, pg.url).start()
            gateways = [harness.SynthGateway(folder, broker.url, PLANT, "gw%d" % i, STAGES, seconds, speed)
                        for i in (1, 2)]
            for g in gateways:
                g.start()
            clock = gateways[1].progress  # the gateway never killed keeps the simulated time
            # the plan, in simulated seconds
            plan = [(t, "kill historian") for t in sorted(rng.uniform(0.05, 0.95) * seconds
                                                          for _ in range(historian_kills))]
            plan += [(0.25 * seconds, "stop broker"), (0.25 * seconds + outage, "start broker"),
                     (0.55 * seconds, "kill gateway"), (0.75 * seconds, "restart postgres")]
            plan.sort()
            kills = 0
            for t, what in plan:
                harness.wait_for(lambda: clock() >= t or not gateways[1].alive(), 600, "simulated second %d" % t)
                if what == "kill historian":
                    kills += historian.alive()
                    historian.kill()
                    time.sleep(rng.uniform(0.0, 1.0))  # the gateways keep publishing meanwhile
                    historian.start(wait=broker.proc is not None)  # without a broker it waits for one
                elif what == "stop broker":
                    broker.stop()
                elif what == "start broker":
                    broker.start()
                elif what == "kill gateway":
                    gateways[0].kill()
                    time.sleep(rng.uniform(0.2, 1.0))
                    gateways[0].start()
                elif what == "restart postgres":
                    pg.restart()
            for g in gateways:
                harness.wait_for(lambda: not g.alive(), 600, "%s to finish its log" % g.name)
                if g.proc.returncode:
                    raise RuntimeError("%s exited %s: %s" % (g.name, g.proc.returncode, g.log()[-2000:]))
            logs = {g.gateway: g.db for g in gateways}
            try:
                harness.wait_for(lambda: harness.counts_equal(pg.url, logs), 120, "the historian to catch up")
            except TimeoutError:
                pass  # counted below as missing rows
            missing, doubled, total = harness.compare(pg.url, logs)
            behind = sum(harness.cursors_behind(g.db) for g in gateways)
            historian.kill()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    note = "2 gateways x %d stages, %d simulated s; broker down %d s, historian killed %d x, a gateway killed, " \
           "postgres restarted; %d rows" % (STAGES, seconds, outage, kills, total)
    return [Figure("faults.historian.rows_missing", missing, "rows", ("==", 0), note),
            Figure("faults.historian.rows_doubled", doubled, "rows", ("==", 0)),
            Figure("faults.historian.cursors_behind", behind, "tables", ("==", 0),
                   "publish cursors not at the end of their table after the run"),
            Figure("faults.historian.rows", total, "rows", None),
            Figure("faults.historian.wall_s", round(time.monotonic() - began, 1), "s", None)]
