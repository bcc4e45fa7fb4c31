"""python -m sxctl.faults [--short] [SECTION ...]: run the fault campaign, write build/faults.json."""
import argparse
import sys

from .. import bench
from . import OUTPUT, SECTIONS, run, write


def main(argv=None):
    p = argparse.ArgumentParser(prog="sxctl.faults", description=__doc__)
    p.add_argument("sections", nargs="*", choices=list(SECTIONS) + [[]], default=[])
    p.add_argument("--short", action="store_true", help="the quick form (what make test runs)")
    args = p.parse_args(argv)
    figures = run(args.sections or list(SECTIONS), args.short)
    write(figures)
    sys.stdout.write(bench.table(figures))
    print("wrote", OUTPUT)
    missed = [f.key for f in figures if f.verdict() == "MISSED"]
    if missed:
        print("MISSED: " + ", ".join(missed), file=sys.stderr)
        return 1
    return 0


sys.exit(main())
