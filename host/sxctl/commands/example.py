"""sxctl example: the example plant files that come with sxctl, to start your own from."""
import sys

from .. import EXAMPLES_DIR
from ..errors import SxctlError

HELP = "print an example plant file (plant, sx-cascade, hs-benchmark) to start your own"
EXAMPLE = "sxctl example plant > plant.toml && sxctl config check plant.toml"


def names():
    return sorted(p.stem for p in EXAMPLES_DIR.glob("*.toml"))


def add_arguments(p):
    p.add_argument("name", nargs="?", help="which example (without it: list them)")


def run(args):
    if args.name is None:
        for name in names():
            print(name)
        return 0
    path = EXAMPLES_DIR / (args.name + ".toml")
    if args.name not in names():
        raise SxctlError("no example %r; the examples are: %s" % (args.name, ", ".join(names())))
    sys.stdout.write(path.read_text())
    return 0
