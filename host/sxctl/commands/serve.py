"""sxctl serve: the plant gateway. Holds one bus, logs it, and serves it to sxctl and to SCADA."""
import logging
import signal
import threading
import time
import tomllib

from . import common
from .log import StatusLine

HELP = ("the plant gateway: hold one bus, log every stage into SQLite as `sxctl log` does, let other "
        "sxctl verbs share the bus, and serve the stages over Modbus TCP")
EXAMPLE = "sxctl serve --bus /dev/ttyUSB0 --stage 1-4 --db plant.sqlite --modbus 127.0.0.1:5020"
GATEWAY_KEYS = ("modbus", "modbus_writes", "modbus_allow")
STATUS_PERIOD_S = 1.0


def add_arguments(p):
    common.bus_port(p, gateway=False)
    common.stage_arguments(p)
    p.add_argument("--db", required=True, help="SQLite log file (created if missing; an existing one is continued "
                                               "where it ends, as `sxctl log` does)")
    p.add_argument("--period", type=float, default=1.0, help="seconds between the logger's poll rounds (default 1)")
    p.add_argument("--stale", type=float, default=None,
                   help="seconds after which a stage's data reads as NaN/offline (default 3 periods, at least 3)")
    p.add_argument("--modbus", default=None, metavar="HOST:PORT",
                   help="where to serve Modbus TCP (default: the plant file's [gateway] modbus, else 127.0.0.1:5020; "
                        "502 needs privileges; 'off': none)")
    p.add_argument("--http", nargs="?", const="127.0.0.1:8080", default=None, metavar="HOST:PORT",
                   help="serve the operator web view (alone: on 127.0.0.1:8080; default: none; read-only without "
                        "a login, see docs/web.md)")
    p.add_argument("--mqtt", default=None, metavar="URL",
                   help="publish the log to an MQTT broker for the plant historian: mqtt[s]://[user@]host[:port]/<plant>"
                        "[/<gateway>] (docs/historian.md; password from ?password_file=PATH or $SXCTL_MQTT_PASSWORD)")
    p.add_argument("--state-dir", help="folder of the state file other sxctl processes find the gateway by "
                                       "(default $SXCTL_STATE_DIR, $XDG_RUNTIME_DIR/sxctl or /tmp/sxctl-UID)")
    p.add_argument("--duration", type=float, default=None, help="seconds to serve (default: until SIGTERM/Ctrl-C)")
    p.add_argument("-v", "--verbose", action="store_true", help="log debug lines too (default: info, warnings, errors)")
    p.add_argument("-q", "--quiet", action="store_true", help="log only warnings and errors")


def gateway_settings(path):
    """The [gateway] table of a plant file, checked: {modbus, modbus_writes, modbus_allow}."""
    import ipaddress

    from ..errors import SxctlError

    with open(path, "rb") as f:
        table = tomllib.load(f).get("gateway", {})
    problems = []
    if not isinstance(table, dict):
        raise SxctlError("%s: gateway: must be a table: [gateway]" % path)
    for key in table:
        if key not in GATEWAY_KEYS:
            problems.append("gateway.%s: unknown key; [gateway] has %s" % (key, ", ".join(GATEWAY_KEYS)))
    writes = table.get("modbus_writes", False)
    if not isinstance(writes, bool):
        problems.append("gateway.modbus_writes: must be true or false")
    allow = table.get("modbus_allow", [])
    if not isinstance(allow, list):
        problems.append("gateway.modbus_allow: must be a list of client addresses, e.g. [\"10.0.0.5\"]")
        allow = []
    for a in allow:
        try:
            ipaddress.ip_address(a)
        except (ValueError, TypeError):
            problems.append("gateway.modbus_allow: %r is not an IP address" % (a,))
    if writes is True and not allow:
        problems.append("gateway.modbus_writes: true needs modbus_allow, the client addresses that may write")
    listen = table.get("modbus")
    if listen is not None and not isinstance(listen, str):
        problems.append("gateway.modbus: must be \"HOST:PORT\" as text")
    if problems:
        raise SxctlError("%s: %s; nothing started" % (path, "; ".join(problems)))
    return {"modbus": listen, "modbus_writes": writes, "modbus_allow": [str(a) for a in allow]}


class _StderrHandler(logging.Handler):
    """Log lines go above the status line."""

    def __init__(self, status):
        super().__init__()
        self.status = status
        self.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))

    def emit(self, record):
        try:
            self.status.say(self.format(record))
        except Exception:
            self.handleError(record)


def run(args):
    from ..errors import SxctlError
    from ..gateway import api, core, modbus, state, web

    settings = {"modbus": None, "modbus_writes": False, "modbus_allow": []}
    plant = common.load_plant(args)
    port, baud = args.bus, args.baud
    if plant is not None:
        settings = gateway_settings(common.plant_path(args))
        port = port or plant.port
        baud = baud or plant.baud
    if not port:
        raise SxctlError("say which bus: --bus PORT, or a plant file with [bus] port")
    addrs = common.stages_of(args, plant)
    key = common.plant_key(args, plant)  # the gateway signs every write with the plant's key
    listen_text = args.modbus or settings["modbus"] or "%s:%d" % modbus.DEFAULT_LISTEN
    listen = None
    if listen_text != "off":
        try:
            listen = modbus.listen_address(listen_text)
        except ValueError as e:
            raise SxctlError("--modbus %s: %s" % (listen_text, e)) from None

    status = StatusLine()
    root = logging.getLogger("sxctl")
    root.handlers[:] = [_StderrHandler(status)]
    root.setLevel(logging.WARNING if args.quiet else logging.DEBUG if args.verbose else logging.INFO)
    root.propagate = False
    log = logging.getLogger("sxctl.serve")

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())

    where = state.StateFile(port, args.state_dir)
    where.claim()
    gw = core.Gateway(port, sorted(set(addrs)), args.db, baud=baud or 115200, period=args.period,
                      stale_s=args.stale, key=key)
    gw.token_file = str(where.token_file)
    gw.add_face(api.ApiFace(where.socket, where.token))
    if args.http:
        gw.add_face(web.WebFace(args.http, plant))
    if args.mqtt:
        from ..gateway import mqtt
        gw.add_face(mqtt.MqttFace(args.mqtt))
    face = gw.add_face(modbus.ModbusFace(listen, settings["modbus_writes"], settings["modbus_allow"])) if listen else None
    try:
        gw.start()
        where.publish(stages=gw.addrs, db=str(args.db), period=args.period, stale_s=gw.stale_s,
                      modbus="%s:%d" % (listen[0], face.bound_port()) if face else None)
        status.say("serving stages %s on %s, logging into %s%s" % (
            ",".join(map(str, gw.addrs)), port, args.db, "; " + face.describe() if face else ""))
        deadline = None
        if args.duration is not None:
            deadline = time.monotonic() + args.duration
        while not stop.is_set() and not gw.stopping.is_set():
            stop.wait(STATUS_PERIOD_S if deadline is None else max(0.0, min(STATUS_PERIOD_S, deadline - time.monotonic())))
            status.update(gw.status())
            if deadline is not None and time.monotonic() >= deadline:
                break
    finally:
        where.remove()
        gw.stop()
        if gw.logger is not None:
            status.update(gw.status(), final=True)
        log.info("stopped")
    if gw.failure is not None:
        raise SxctlError("the gateway stopped: %s" % gw.failure)
    return 0
