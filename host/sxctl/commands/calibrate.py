"""sxctl calibrate: guided pH, ORP or flow-meter calibration of one board."""
import sys

from . import common

HELP = "calibrate a board's pH, ORP or flow input (guided, or scripted with --yes)"
EXAMPLE = "sxctl calibrate ph --bus /dev/ttyUSB0 --addr 2 --points 7.00,4.00 --temperature 21.5"


def add_arguments(p):
    p.add_argument("sensor", choices=["ph", "orp", "flow_aq", "flow_org"], help="the input to calibrate")
    common.bus_port(p)
    common.board_addr(p)
    p.add_argument("--points", default=None,
                   help="pH buffers, any two or three of %s (default 7.00,4.00,10.01; for a stage at pH 1-3 "
                        "e.g. 1.68,4.00; the one nearest 7 is taken first), the ORP standard in mV (default 225), "
                        "or the volume in mL run through a flow meter" % ", ".join(_buffer_names()))
    p.add_argument("--temperature", type=float, default=None,
                   help="buffer temperature in °C (default: the board's temperature input)")
    p.add_argument("--yes", action="store_true",
                   help="no prompts: take each point when stable (and moved from the previous buffer's "
                        "reading as it should) and commit")
    p.add_argument("--stable-timeout", type=float, default=120.0,
                   help="seconds to wait for a stable reading in each buffer (default 120)")
    p.add_argument("--settle", type=float, default=10.0,
                   help="seconds a stable reading must hold before a point is taken (default 10)")
    common.json_option(p, "the result's lines (the steps go to stderr)")


def _buffer_names():
    from sxproto import buffers
    return list(buffers.BUFFERS)


def run(args):
    from ..calibrate import Wizard

    default = {"ph": "7.00,4.00,10.01", "orp": "225"}.get(args.sensor)
    points = (args.points or default or "").split(",")
    if not points or points == [""]:
        from ..errors import SxctlError
        raise SxctlError("give the volume run through the meter with --points, in mL")
    plant = common.load_plant(args)
    with common.open_bus(args, plant) as bus:
        bus.hello(args.addr)
        say = (lambda text: print(text, file=sys.stderr, flush=True)) if args.json else print
        wizard = Wizard(bus, args.addr, args.sensor, assume_yes=args.yes, say=say,
                        stable_timeout=args.stable_timeout, settle_s=args.settle)
        result = wizard.run([p.strip() for p in points], args.temperature)
    if args.json:
        common.print_json(wizard.summary(result) if result is not None else dict(
            sensor=args.sensor, address=args.addr, committed=False))
    return 0 if result is not None else 1
