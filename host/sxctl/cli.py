"""The `sxctl` command line: one table of verbs; each verb is a module in sxctl.commands."""
import argparse
import importlib
import sys

from . import __version__
from .errors import SxctlError

# The verbs, in the order --help lists them.
VERBS = ("demo", "sim", "info", "ports", "flash", "config", "set", "calibrate", "tune", "log", "monitor", "plot", "export",
         "key")


def parser():
    top = argparse.ArgumentParser(prog="sxctl", description="Flash, configure, calibrate and log "
                                  "solvent-extraction stage controllers.")
    top.add_argument("--version", action="version", version="sxctl " + __version__)
    sub = top.add_subparsers(dest="verb", metavar="VERB")
    sub.required = True
    for verb in VERBS:
        module = importlib.import_module("sxctl.commands." + verb)
        p = sub.add_parser(verb, help=module.HELP, description=module.HELP,
                           epilog="example: " + module.EXAMPLE)
        module.add_arguments(p)
        p.set_defaults(run=module.run)
    return top


def main(argv=None):
    args = parser().parse_args(argv)
    try:
        return args.run(args)
    except SxctlError as e:
        print("sxctl %s: error: %s" % (args.verb, e), file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("sxctl %s: interrupted" % args.verb, file=sys.stderr)
        return 130
