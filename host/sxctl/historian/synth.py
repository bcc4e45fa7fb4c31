"""A synthetic gateway: a real SQLite log, written as the logger writes it (one epoch per stage,
a config snapshot, one telemetry record per stage and simulated second, now and then an event
and a gap), published by the real MQTT publisher of gateway/mqtt.py.

The fault campaign and the bench run it as a process they can kill: a simulated hour passes in
a minute (`--speed`), and a restarted run continues its log where it ends, as `sxctl serve`
does. Values are a deterministic function of (gateway, stage, record), inside the protocol's
ranges, so any row can be checked against what it must be.

    python -m sxctl.historian.synth --db gw1.sqlite --mqtt mqtt://127.0.0.1:1883/plant/gw1 \\
        --stages 4 --seconds 3600 --speed 60
"""
import argparse
import signal
import sys
import threading
import time
import zlib

from .. import store

T0 = 1_800_000_000     # the simulated plant's first second (2027-01-15)
EVENT_EVERY = 97       # records between two events of a stage
GAP_EVERY = 251        # records between two gaps (a board that held less than asked)


def values(gateway, stage, record):
    """The record's VALUE_FIELDS, a function of its key, inside every field's range."""
    out = []
    for name in store.VALUE_FIELDS:
        info = store._INFOS[name]
        h = zlib.crc32(b"%s/%d/%d/%s" % (gateway.encode(), stage, record, name.encode()))
        out.append(info.lo + h % (info.hi - info.lo + 1))
    return tuple(out)


class SyntheticLog:
    """Writes the log of `stages` stages; continues a log it wrote before."""

    def __init__(self, path, gateway, stages):
        self.gateway = gateway
        self.stages = list(stages)
        self.db = store.SQLiteStore(path)
        marks = self.db.resume()
        self.next_second = 1 + max((m.record for m in marks.values()), default=0)
        if not marks:
            for s in self.stages:
                self.db.write_epoch((s, 1, T0, T0, "power-on", "unix-sim", "SN%s%02d" % (gateway, s), "1.0.0"))
                self.db.write_config([(s, 1, T0, 1, item, "item%d" % item, 100 * s + item) for item in range(1, 5)])
            self.db.flush()

    def write_second(self):
        """One simulated second: a record of every stage, committed; returns its record number."""
        k = self.next_second
        t = T0 + k
        rows = [(s, 1, k, t, k) + values(self.gateway, s, k) for s in self.stages]
        self.db.write_telemetry(rows)
        for s in self.stages:
            if k % EVENT_EVERY == s % EVENT_EVERY:
                self.db.write_events([(s, 1, k // EVENT_EVERY + 1, t, k, 1, "raised", 3, k)])
            if k % GAP_EVERY == 0:
                self.db.write_gap((s, 1, "telemetry", k, k, t))
        self.db.flush()
        self.next_second = k + 1
        return k

    def close(self):
        self.db.close()


def main(argv=None):
    from ..gateway.mqtt import Publisher
    from . import wire

    p = argparse.ArgumentParser(prog="python -m sxctl.historian.synth", description=__doc__.split("\n\n")[0])
    p.add_argument("--db", required=True)
    p.add_argument("--mqtt", required=True, help="mqtt://host:port/<plant>/<gateway>")
    p.add_argument("--stages", type=int, default=4)
    p.add_argument("--seconds", type=int, default=3600, help="simulated seconds the log reaches")
    p.add_argument("--speed", type=float, default=60.0, help="simulated seconds per second (0: as fast as it can)")
    p.add_argument("--linger", type=float, default=0.0, help="seconds to keep publishing after the last record")
    args = p.parse_args(argv)
    url = wire.BrokerUrl(args.mqtt)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    log = SyntheticLog(args.db, url.gateway, range(1, args.stages + 1))
    pub = Publisher(args.db, url, stages=log.stages)
    pub.start()
    began, first = time.monotonic(), log.next_second
    while log.next_second <= args.seconds and not stop.is_set():
        if args.speed:
            due = began + (log.next_second - first) / args.speed
            if due > time.monotonic():
                stop.wait(due - time.monotonic())
                continue
        log.write_second()
    log.close()
    stop.wait(args.linger)
    pub.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
