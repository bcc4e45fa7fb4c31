"""sxctl monitor: a live table of every stage, with alarm acknowledge."""
import sys

from . import common
from .log import stage_arguments, stages_of

HELP = ("show a live table of the stages (pH against setpoint, outputs, flows, mode, alarms); "
        "on a terminal `a`, a stage number and Enter acknowledge its alarms, `q` quits")
EXAMPLE = "sxctl monitor --port /dev/ttyUSB0 --stages 1-4"


def add_arguments(p):
    common.bus_port(p)
    stage_arguments(p, required=False)
    p.add_argument("--period", type=float, default=1.0, help="seconds between refreshes (default 1)")
    p.add_argument("--once", action="store_true",
                   help="print the table once and exit: 0 if every stage answered, 1 if not")
    p.add_argument("--ack", type=int, action="append", metavar="STAGE",
                   help="acknowledge every latched alarm of STAGE, say what was acknowledged and exit "
                   "(may be given more than once)")


def run(args):
    from ..gateway.api import bus_for  # through a running `sxctl serve` if one holds the bus
    from ..errors import SxctlError
    from ..monitor import Terminal, acknowledge, live, read_stage, screen

    addrs = stages_of(args)
    if not addrs and not args.ack:
        raise SxctlError("say which stages to show: --stages 1-4 or --addr 1 2 3")
    with bus_for(args.port, baud=args.baud) as bus:
        if args.ack:
            for addr in args.ack:
                print(acknowledge(bus, addr))
            return 0
        if args.once:
            views = [read_stage(bus, a) for a in addrs]
            sys.stdout.write(screen(bus.port, views))
            return 0 if all(v.telemetry for v in views) else 1
        if sys.stdin.isatty() and sys.stdout.isatty():
            with Terminal() as keyboard:
                live(bus, addrs, args.period, keyboard=keyboard)
        else:
            live(bus, addrs, args.period)
    return 0
