"""sxctl log: follow every stage on the bus and store telemetry, events and config in SQLite."""
import argparse
import shutil
import signal
import sys
import time

from . import common

HELP = "follow the stages on a bus and store their telemetry, events and config in an SQLite file"
EXAMPLE = "sxctl log --port /dev/ttyUSB0 --stages 1-4 --db plant.sqlite"
STATUS_EVERY_S = 10.0  # when stderr is not a terminal: a status line this often, not every round


def stage_list(text):
    """Stage addresses as `1-4`, `1,3,5-7`."""
    addrs = []
    for part in text.split(","):
        lo, _, hi = part.strip().partition("-")
        try:
            lo, hi = int(lo), int(hi or lo)
        except ValueError:
            raise argparse.ArgumentTypeError("stages look like 1-4 or 1,3,5-7, not %r" % text) from None
        if not 1 <= lo <= hi <= 247:
            raise argparse.ArgumentTypeError("stage addresses are 1..247, low to high: %r" % text)
        addrs += range(lo, hi + 1)
    return addrs


def stage_arguments(p, required=True):
    which = p.add_mutually_exclusive_group(required=required)
    which.add_argument("--stages", type=stage_list, help="stage addresses, e.g. 1-4 or 1,3,5-7")
    which.add_argument("--addr", type=int, nargs="+", help="stage addresses, e.g. --addr 1 2 3")


def stages_of(args):
    return sorted(set(args.stages or args.addr or ()))


def add_arguments(p):
    common.bus_port(p)
    stage_arguments(p)
    p.add_argument("--db", required=True, help="SQLite file to store into (created if missing; "
                   "an existing one is continued where it ends)")
    p.add_argument("--duration", type=float, default=None, help="seconds to log (default: until Ctrl-C)")
    p.add_argument("--period", type=float, default=1.0, help="seconds between poll rounds (default 1)")


class StatusLine:
    """The logger's status on stderr: redrawn in place on a terminal, a line now and then elsewhere."""

    def __init__(self, stream=sys.stderr):
        self.stream = stream
        self.tty = stream.isatty()
        self.shown = False
        self.last = 0.0

    def update(self, text, final=False):
        now = time.monotonic()
        if self.tty:
            if not final:  # one terminal row, or the next redraw leaves the wrapped part behind
                text = text[:shutil.get_terminal_size().columns - 1]
            self.stream.write("\r\x1b[K" + text + ("\n" if final else ""))
            self.shown = not final
        elif final or now - self.last >= STATUS_EVERY_S:
            self.stream.write(text + "\n")
            self.last = now
        self.stream.flush()

    def say(self, text):
        self.stream.write(("\r\x1b[K" if self.shown else "") + text + "\n")
        self.shown = False
        self.stream.flush()


def run(args):
    from ..buslink import BusClient
    from ..logger import Logger
    from ..store import SQLiteStore

    addrs = stages_of(args)
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    signal.signal(signal.SIGINT, lambda *_: stop.append(1))
    status = StatusLine()
    sink = SQLiteStore(args.db)
    try:
        with BusClient(args.port, baud=args.baud) as bus:
            logger = Logger(bus, sink, addrs, period=args.period, say=status.say)
            status.say("logging stages %s from %s into %s" % (",".join(map(str, addrs)), args.port, args.db))
            logger.run(duration=args.duration, should_stop=lambda: bool(stop),
                       after_round=lambda: status.update(logger.status()))
            status.update(logger.status(), final=True)
    finally:
        sink.close()
    return 0
