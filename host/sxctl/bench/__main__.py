"""`make bench`: run benchmark sections, merge their figures into build/bench.json, print them."""
import argparse
import pathlib
import sys

from . import OUTPUT, SECTIONS, merge, run, table


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m sxctl.bench", description=__doc__)
    p.add_argument("sections", nargs="*", metavar="SECTION",
                   help="sections to run (default: all): %s" % ", ".join(SECTIONS))
    p.add_argument("--seconds", type=float, default=5.0,
                   help="length of each timed run on a simulated bus (default 5)")
    p.add_argument("--out", type=pathlib.Path, default=OUTPUT,
                   help="JSON file to merge the figures into (default build/bench.json)")
    args = p.parse_args(argv)
    unknown = sorted(set(args.sections) - set(SECTIONS))
    if unknown:
        p.error("unknown section %s; known: %s" % (", ".join(unknown), ", ".join(SECTIONS)))
    figures = run(args.sections or list(SECTIONS), args)
    merge(figures, args.out)
    sys.stdout.write(table(figures))
    print("merged into", args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
