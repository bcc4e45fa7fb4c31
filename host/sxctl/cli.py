"""The `sxctl` command line: one table of verbs, each an argparse factory and a handler."""
import argparse
import json
import os
import signal
import sys

from . import __version__
from .errors import SxctlError


def _size(text):
    """A heap size as MicroPython's -X heapsize takes it: 65536, 64K, 1M."""
    t = text.strip().upper()
    mult = {"K": 1024, "M": 1024 * 1024}.get(t[-1:], 1)
    digits = t[:-1] if t[-1:] in "KM" else t
    if not digits.isdigit() or int(digits) * mult < 8 * 1024:
        raise argparse.ArgumentTypeError("heap size must look like 65536, 64K or 1M and be at least 8K")
    return t


def _args_sim(p):
    p.add_argument("--stages", type=int, default=3, help="number of virtual boards (addresses 1..N)")
    p.add_argument("--ports-file", required=True, help="where to write the JSON map of bus and USB ports")
    p.add_argument("--heapsize", type=_size, default=None,
                   help="MicroPython heap of each board (default: the unix-sim board's, 64K)")
    p.add_argument("--duration", type=float, default=None, help="seconds to run (default: until Ctrl-C)")
    p.add_argument("--root", default=None, help="folder for the boards' filesystems (default: a temporary one, removed at exit)")
    p.add_argument("--blank", action="store_true", help="boards start with an empty filesystem, as from the factory")


def cmd_sim(args):
    from . import boards
    from .sim.simulator import Simulator

    heapsize = args.heapsize or "%dK" % boards.load("unix-sim")["heap_kb"]
    sim = Simulator(args.stages, heapsize=heapsize, root=args.root, blank=args.blank)
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    signal.signal(signal.SIGINT, lambda *_: stop.append(1))
    try:
        sim.start()
        if not args.blank:
            halt = sim.run_in_background()
            try:
                sim.wait_ready()
            finally:
                halt()
        ports = sim.ports()
        # Written only once every board answers, so a reader may use the ports at once.
        tmp = args.ports_file + ".tmp"
        with open(tmp, "w") as f:
            json.dump(ports, f, indent=2)
        os.replace(tmp, args.ports_file)
        print("bus %s; %d boards; ports in %s; Ctrl-C stops" % (ports["bus"], args.stages, args.ports_file),
              flush=True)
        sim.run(duration=args.duration, should_stop=lambda: bool(stop))
    finally:
        sim.close()
    return 0


def _args_info(p):
    p.add_argument("--port", required=True, help="bus serial port, e.g. /dev/ttyUSB0 or the sim's bus pty")
    p.add_argument("--addr", type=int, required=True, help="board bus address (1..247)")
    p.add_argument("--baud", type=int, default=115200)
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")


def cmd_info(args):
    from .buslink import BusClient

    with BusClient(args.port, baud=args.baud) as bus:
        info = bus.hello(args.addr)
        info["version"] = "%d.%d.%d" % (info.pop("fw_major"), info.pop("fw_minor"), info.pop("fw_patch"))
        info["fingerprint"] = "%08x" % info["fingerprint"]
        info["host_link"] = bus.stats.as_dict()
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    from sxproto import messages

    alarms = [name for bit, name in messages.ALARMS.items() if info["alarms"] >> bit & 1]
    rows = [("board", info["board"]), ("serial", info["serial"] or "-"), ("address", args.addr),
            ("firmware", info["version"]), ("schema", info["fingerprint"] + " (matches this sxctl)"),
            ("uptime", "%d s" % info["uptime_s"]), ("mode", messages.MODES.get(info["mode"], info["mode"])),
            ("alarms", ", ".join(alarms) or "none"), ("calibration id", info["cal_id"] or "none"),
            ("config version", info["config_version"]),
            ("free heap", "%d B" % info["heap_free"]),
            ("frames received", info["rx_frames"]), ("CRC errors", info["crc_errors"]),
            ("frames dropped", info["dropped"]), ("duplicate writes", info["duplicates"]),
            ("host link", " ".join("%s=%d" % kv for kv in info["host_link"].items()))]
    for key, value in rows:
        print("%-16s %s" % (key, value))
    return 0


def cmd_demo(args):
    from . import demo
    return demo.main()


# verb -> (handler, argparse factory, one-line help, example)
COMMANDS = {
    "demo": (cmd_demo, lambda p: None, "run the simulated plant end to end (what `make demo` runs)",
             "sxctl demo"),
    "sim": (cmd_sim, _args_sim, "run virtual boards on a virtual bus",
            "sxctl sim --stages 3 --ports-file ports.json --duration 60"),
    "info": (cmd_info, _args_info, "ask one board who it is and how its link is doing",
             "sxctl info --port /dev/ttyUSB0 --addr 2"),
}


def parser():
    top = argparse.ArgumentParser(prog="sxctl", description="Flash, configure, calibrate and log "
                                  "solvent-extraction stage controllers.")
    top.add_argument("--version", action="version", version="sxctl " + __version__)
    sub = top.add_subparsers(dest="verb", metavar="VERB")
    sub.required = True
    for verb, (handler, factory, text, example) in COMMANDS.items():
        p = sub.add_parser(verb, help=text, description=text, epilog="example: " + example)
        factory(p)
        p.set_defaults(handler=handler)
    return top


def main(argv=None):
    args = parser().parse_args(argv)
    try:
        return args.handler(args)
    except SxctlError as e:
        print("sxctl %s: error: %s" % (args.verb, e), file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("sxctl %s: interrupted" % args.verb, file=sys.stderr)
        return 130
