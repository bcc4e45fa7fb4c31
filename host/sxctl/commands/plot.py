"""sxctl plot: a log's pH, setpoint, dosing and flows per stage over time, as a PNG."""
import sys

from .export import open_log, selection_arguments

HELP = "plot pH against setpoint, dosing and flows per stage from an `sxctl log` file or the plant historian, as a PNG"
EXAMPLE = "sxctl plot plant.sqlite -o plant.png --stage 2-3 --from 2024-06-10T08:00 --to 2024-06-10T12:00"


def add_arguments(p):
    selection_arguments(p)
    p.add_argument("-o", "--output", required=True, metavar="PNG", help="PNG file to write")
    p.add_argument("--title", default=None, help="heading of the picture (default: SX circuit log)")


def run(args):
    from ..plot import render

    store = open_log(args, label_stages=True)
    try:
        stages, bucket = render(store, args.output, args.stage, args.start, args.end, args.title)
    finally:
        store.close()
    print("stage%s %s plotted to %s%s" % ("s" if len(stages) > 1 else "", ",".join(map(str, stages)), args.output,
                                         " (means over %d s)" % bucket if bucket > 1 else ""), file=sys.stderr)
    return 0
