"""sxctl historian: a plant's gateways, from the MQTT broker into one PostgreSQL database."""
import logging
import signal
import sys
import threading
import time

HELP = ("the plant historian: subscribe to every gateway of a plant on the MQTT broker and write "
        "their logs into one PostgreSQL database, nothing lost or doubled")
EXAMPLE = "sxctl historian --mqtt mqtt://historian@broker:1883/plant1 --db postgresql://sxctl@dbhost/plant"
STATUS_PERIOD_S = 1.0


def add_arguments(p):
    p.add_argument("--mqtt", required=True, metavar="URL",
                   help="broker and plant: mqtt[s]://[user@]host[:port]/<plant>; the password from "
                        "?password_file=PATH or $SXCTL_MQTT_PASSWORD; mqtts: ?ca=FILE for a private CA")
    p.add_argument("--db", required=True, metavar="URL", help="postgresql://[user@]host[:port]/database "
                                                              "(schema created or migrated on start)")
    p.add_argument("--name", default="historian",
                   help="this historian's name: its persistent session on the broker (default: historian); "
                        "several historians of one plant take different names and may share the database")
    p.add_argument("--duration", type=float, default=None, help="seconds to run (default: until SIGTERM/Ctrl-C)")
    p.add_argument("-q", "--quiet", action="store_true", help="log only warnings and errors")


def run(args):
    from ..historian import pgstore
    from ..historian.service import Historian
    from .log import StatusLine
    from .serve import _StderrHandler

    status = StatusLine()
    root = logging.getLogger("sxctl")
    root.handlers[:] = [_StderrHandler(status)]
    root.setLevel(logging.WARNING if args.quiet else logging.INFO)
    root.propagate = False

    h = Historian(args.mqtt, args.db, name=args.name)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    h.start()
    status.say("historian %s: plant %s from %s into %s" % (h.name, h.url.plant, h.url.safe(),
                                                           pgstore.safe_url(args.db)))
    deadline = None if args.duration is None else time.monotonic() + args.duration
    last = [0.0]

    def until(_):
        now = time.monotonic()
        if now - last[0] >= STATUS_PERIOD_S:
            status.update(h.status())
            last[0] = now
        return stop.is_set() or (deadline is not None and now >= deadline)

    try:
        h.run(until)
    finally:
        h.stop()
        status.update(h.status(), final=True)
    print("historian stopped", file=sys.stderr)
    return 0
