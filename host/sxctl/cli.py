"""The `sxctl` command line: one table of verbs; each verb is a module in sxctl.commands."""
import argparse
import importlib
import sys

from . import __version__
from .errors import SxctlError

# The verbs, in the order --help lists them.
VERBS = ("demo", "sim", "info", "ports", "flash", "config", "set", "calibrate", "log", "serve", "historian", "monitor", "plot", "export", "key",
         "tune", "example", "completion")


def version_text():
    """The package, the firmware it flashes and the protocol schema both were built from."""
    from sxproto import schema

    from .flash import firmware_version

    return "sxctl %s, firmware %s, schema fingerprint %08x" % (__version__, firmware_version(), schema.fingerprint())


class _Version(argparse.Action):
    """--version, worked out only when asked (it reads the firmware's version constants)."""

    def __init__(self, option_strings, dest, **kwargs):
        super().__init__(option_strings, dest, nargs=0, help="print the package, firmware and schema versions")

    def __call__(self, parser, namespace, values, option_string=None):
        print(version_text())
        parser.exit()


def parser():
    top = argparse.ArgumentParser(prog="sxctl", description="Flash, configure, calibrate and log "
                                  "solvent-extraction stage controllers.",
                                  epilog="`sxctl help VERB` (or `sxctl VERB --help`) explains a verb.")
    top.add_argument("--version", action=_Version)
    sub = top.add_subparsers(dest="verb", metavar="VERB")
    for verb in VERBS:
        module = importlib.import_module("sxctl.commands." + verb)
        p = sub.add_parser(verb, help=module.HELP, description=module.HELP,
                           epilog="example: " + module.EXAMPLE)
        module.add_arguments(p)
        p.set_defaults(run=module.run)
    helper = sub.add_parser("help", help="explain a verb: `sxctl help flash` is `sxctl flash --help`")
    helper.add_argument("topic", nargs="?", choices=VERBS, metavar="VERB")
    return top


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    top = parser()
    if not argv:  # bare `sxctl`: what it can do
        top.print_help()
        return 0
    if argv[0] == "help":
        args = top.parse_args(argv)
        top.parse_args([args.topic, "--help"] if args.topic else ["--help"])
    args = top.parse_args(argv)
    if getattr(args, "run", None) is None:
        top.print_help()
        return 2
    from . import keys
    args.env_key = keys.take_environment()  # handed to the verb, kept from every child process
    try:
        return args.run(args)
    except SxctlError as e:
        print("sxctl %s: error: %s" % (args.verb, e), file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("sxctl %s: interrupted" % args.verb, file=sys.stderr)
        return 130
