"""sxctl log: follow every stage on the bus and store telemetry, events and config in SQLite."""
import shutil
import signal
import sys
import time

from . import common

HELP = "follow the stages on a bus and store their telemetry, events and config in an SQLite file"
EXAMPLE = "sxctl log --plant plant.toml --db plant.sqlite   (or: --bus /dev/ttyUSB0 --stage 1-4)"
STATUS_EVERY_S = 10.0  # when stderr is not a terminal: a status line this often, not every round


def add_arguments(p):
    common.bus_port(p)
    common.stage_arguments(p)
    p.add_argument("--db", required=True, help="SQLite file to store into (created if missing; "
                   "an existing sxctl log is continued where it ends; any other file is refused)")
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
    from ..logger import Logger
    from ..store import SQLiteStore

    plant = common.load_plant(args)
    addrs = common.stages_of(args, plant)
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(signal.SIGTERM))
    signal.signal(signal.SIGINT, lambda *_: stop.append(signal.SIGINT))
    status = StatusLine()
    common.refuse_gateway(args, plant, "sxctl log")  # one logger per bus: a gateway logs it already
    sink = SQLiteStore(args.db, foreign_ok=False)
    try:
        with common.open_bus(args, plant) as bus:
            logger = Logger(bus, sink, addrs, period=args.period, say=status.say)
            status.say("logging stages %s from %s into %s%s" % (
                ",".join(map(str, addrs)), bus.port, args.db,
                ", signing with key %08x" % bus.key.id if bus.key is not None else ""))
            logger.run(duration=args.duration, should_stop=lambda: bool(stop),
                       after_round=lambda: status.update(logger.status()))
            status.update(logger.status(), final=True)
    finally:
        sink.close()
    failures = logger.failures()
    for text in failures:
        status.say("sxctl log: error: " + text)
    if stop and stop[0] == signal.SIGINT:
        return 130
    return 1 if failures else 0
