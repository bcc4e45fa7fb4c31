"""Arguments several verbs share, and the bus, stages and key they name.

A verb that talks over the bus takes `--bus PORT` (`--port` kept as an alias for one release),
`--plant FILE` and `--key-file FILE`. The plant file is found as platformio.ini or an ESPHome
config is: `--plant`, else $SXCTL_PLANT, else `sxctl.toml` in the current directory. It gives
the bus port, baud, stages and key file; what the command line gives wins.
"""
import argparse
import os

PLANT_ENV = "SXCTL_PLANT"
PLANT_HERE = "sxctl.toml"
from sxproto.link_rules import BOARD_ADDRS

# What a board takes as its address (firmware/identity.py): the Modbus unit ids 1..247, so the
# gateway serves each stage under its own address; 255 is the bus's broadcast.
ADDRESSES = range(BOARD_ADDRS[0], BOARD_ADDRS[1] + 1)
ADDRESS_RULE = ("a bus address is a whole number %d..%d (the Modbus unit ids, which `sxctl serve` serves the "
                "stages under; 255 is broadcast)" % BOARD_ADDRS)


def address(text):
    """A board's bus address, checked before it reaches a frame."""
    if not text.strip().isdigit() or int(text) not in ADDRESSES:
        raise argparse.ArgumentTypeError("%s, not %r" % (ADDRESS_RULE, text))
    return int(text)


def stage_list(text):
    """Stage addresses as `1-4`, `1,3,5-7`."""
    addrs = []
    for part in text.split(","):
        lo, _, hi = part.strip().partition("-")
        if not (lo.strip().isdigit() and (hi.strip().isdigit() or not hi)):
            raise argparse.ArgumentTypeError("stages look like 1-4 or 1-4,7, not %r" % text)
        lo, hi = int(lo), int(hi or lo)
        if not (lo in ADDRESSES and hi in ADDRESSES and lo <= hi):
            raise argparse.ArgumentTypeError("stage addresses go low to high, and %s: not %r"
                                             % (ADDRESS_RULE, text))
        addrs += range(lo, hi + 1)
    return sorted(set(addrs))


def plant_options(p):
    p.add_argument("--plant", metavar="FILE",
                   help="plant file giving the bus port, stages and key file (default: $%s, else ./%s if "
                        "there is one)" % (PLANT_ENV, PLANT_HERE))
    p.add_argument("--key-file", metavar="FILE",
                   help="plant key to sign writes with (default: the plant file's key_file, else "
                        "$SXCTL_PLANT_KEY); reads need none")


def bus_port(p, plant=True, gateway=True):
    p.add_argument("--bus", "--port", dest="bus", metavar="PORT",
                   help="bus serial port, e.g. /dev/ttyUSB0 or the sim's bus pty (default: the plant "
                        "file's [bus] port; --port is the old spelling)")
    p.add_argument("--baud", type=int, default=None, help="bus baud rate (default: the plant file's, else 115200)")
    if gateway:
        p.add_argument("--gateway", metavar="SOCKET",
                       help="go through this running `sxctl serve`: its client API socket (a path or "
                            "unix:///path) or its state file (default: $SXCTL_GATEWAY, else the gateway "
                            "whose state file says it holds the bus)")
    if plant:
        plant_options(p)
    else:  # the verb names its plant file itself
        p.add_argument("--key-file", metavar="FILE", help="plant key to sign writes with (default: the plant "
                       "file's key_file, else $SXCTL_PLANT_KEY)")


def board_addr(p):
    p.add_argument("--addr", type=address, required=True, help="board bus address (%d..%d)"
                   % (ADDRESSES[0], ADDRESSES[-1]))


def stage_arguments(p):
    """--stage 1-4,7 (old spellings --stages 1-4 and --addr 1 2 3 kept as aliases)."""
    p.add_argument("--stage", "--stages", dest="stages", type=stage_list, metavar="STAGES",
                   help="stage addresses, e.g. 1-4 or 1-4,7 (default: every stage of the plant file)")
    p.add_argument("--addr", dest="addr_list", type=address, nargs="+", help=argparse.SUPPRESS)


def json_option(p, what="a table"):
    p.add_argument("--json", action="store_true", help="print JSON instead of %s (modes and alarms by name)" % what)


def print_json(data):
    import json
    print(json.dumps(data, indent=2))


def plant_path(args):
    """The plant file this command runs on, or None: --plant, $SXCTL_PLANT, ./sxctl.toml."""
    path = getattr(args, "plant", None) or os.environ.get(PLANT_ENV)
    if path:
        return path
    return PLANT_HERE if os.path.isfile(PLANT_HERE) else None


def load_plant(args):
    from .. import plantfile

    path = plant_path(args)
    return plantfile.load(path) if path else None


def stages_of(args, plant=None):
    """The stage addresses a command runs on: --stage, else every stage of the plant file."""
    from ..errors import SxctlError

    addrs = sorted(set((getattr(args, "stages", None) or []) + (getattr(args, "addr_list", None) or [])))
    if addrs:
        return addrs
    if plant is not None and plant.stages:
        return sorted(s.address for s in plant.stages)
    raise SxctlError("say which stages: --stage 1-4,7, or --plant FILE with its [[stage]] tables")


def plant_key(args, plant):
    """The key writes are signed with: --key-file, else the plant file's key_file, else
    $SXCTL_PLANT_KEY (read at start, see cli.py), else None (the board decides if that is enough)."""
    from .. import keys

    if getattr(args, "key_file", None):
        return keys.from_file(args.key_file)
    if plant is not None and plant.key_file:
        return keys.from_file(plant.key_file)
    return keys.parse(args.env_key, keys.ENV) if getattr(args, "env_key", None) else None


def open_bus(args, plant=None, program=None, **options):
    """A BusClient on the bus this command names, holding the bus for `program` and signing with
    the command's key; the gateway's client when a running `sxctl serve` holds that bus, or
    --gateway (or $SXCTL_GATEWAY) names one."""
    from ..gateway import api  # through a running `sxctl serve` if one holds the bus

    target = getattr(args, "gateway", None) or os.environ.get(api.GATEWAY_ENV)
    if target:
        return api.connect(target, args.bus)  # the gateway knows its bus: --bus only checks it
    port = _port(args, plant)
    baud = args.baud or (plant.baud if plant is not None else None) or 115200
    return api.bus_for(port, baud=baud, key=plant_key(args, plant), holder=program or "sxctl " + args.verb,
                       **options)


def _port(args, plant):
    from ..errors import SxctlError

    port = args.bus or (plant.port if plant is not None else None)
    if not port:
        raise SxctlError("no bus port: give --bus PORT, or --plant FILE with port in its [bus] (or set "
                         "$%s, or put a %s here)" % (PLANT_ENV, PLANT_HERE))
    return port


def refuse_gateway(args, plant, program):
    """For a verb that must hold the bus itself (`sxctl log`): refuse, naming the gateway and what
    to do, when a running `sxctl serve` holds the bus (or --gateway names one)."""
    from ..errors import SxctlError
    from ..gateway import api, state

    target = getattr(args, "gateway", None) or os.environ.get(api.GATEWAY_ENV)
    if target:
        with api.connect(target, args.bus) as bus:
            held = bus.state
    else:
        held = state.find(_port(args, plant))
        if held is None:
            return
        try:
            api.GatewayBus(held).close()
        except api.GatewayGone:
            return  # a killed gateway's leftover: nobody holds the bus
    db = held.get("db") or "DB"
    raise SxctlError(
        "bus %s is held by the gateway `sxctl serve` (pid %s), which logs stages %s into %s already: read that "
        "log (sxctl export %s --csv -), or stop the gateway (SIGTERM; systemctl stop sxctl-serve) before %s "
        "takes the bus" % (held["bus"], held.get("pid", "?"), ",".join(map(str, held.get("stages") or [])) or "-",
                           db, db, program))


def heap_size(text):
    """A heap size as MicroPython's -X heapsize takes it: 65536, 64K, 1M."""
    t = text.strip().upper()
    mult = {"K": 1024, "M": 1024 * 1024}.get(t[-1:], 1)
    digits = t[:-1] if t[-1:] in "KM" else t
    from sxproto.messages import HEAP_MAX_B

    if not digits.isdigit() or not 8 * 1024 <= int(digits) * mult <= HEAP_MAX_B:
        raise argparse.ArgumentTypeError("heap size must look like 65536, 64K or 1M, at least 8K and at most %dM "
                                         "(what a board's INFO may report)" % (HEAP_MAX_B >> 20))
    return t
