"""sxctl monitor: a live table of every stage, with alarm acknowledge."""
import sys

from . import common

HELP = ("show a live table of the stages (pH against setpoint, outputs, flows, mode, alarms); "
        "on a terminal `a`, a stage number and Enter acknowledge its alarms, `q` quits")
EXAMPLE = "sxctl monitor --bus /dev/ttyUSB0 --stage 1-4"


def add_arguments(p):
    common.bus_port(p)
    common.stage_arguments(p)
    p.add_argument("--period", type=float, default=1.0, help="seconds between refreshes (default 1)")
    p.add_argument("--once", action="store_true",
                   help="print the table once and exit: 0 if every stage answered, 1 if not")
    p.add_argument("--ack", type=common.address, action="append", metavar="STAGE",
                   help="acknowledge every latched alarm of STAGE (signed with the plant key), say what "
                   "was acknowledged and exit (may be given more than once)")
    common.json_option(p)


def run(args):
    from ..monitor import Terminal, acknowledge, live, read_stage, screen, views_json

    plant = common.load_plant(args)
    addrs = [] if args.ack else common.stages_of(args, plant)
    with common.open_bus(args, plant) as bus:
        if args.ack:
            for addr in args.ack:
                print(acknowledge(bus, addr))
            return 0
        if args.once or args.json:
            views = [read_stage(bus, a) for a in addrs]
            sys.stdout.write(views_json(views) if args.json else screen(bus.port, views))
            return 0 if all(v.telemetry for v in views) else 1
        if sys.stdin.isatty() and sys.stdout.isatty():
            with Terminal() as keyboard:
                live(bus, addrs, args.period, keyboard=keyboard)
        else:
            live(bus, addrs, args.period)
    return 0
