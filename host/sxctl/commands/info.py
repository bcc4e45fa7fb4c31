"""sxctl info: who a board is, its state and how its link is doing."""
import json

from . import common

HELP = "ask one board who it is and how its link is doing"
EXAMPLE = "sxctl info --port /dev/ttyUSB0 --addr 2"


def add_arguments(p):
    common.bus_port(p)
    common.board_addr(p)
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")


def run(args):
    from ..gateway.api import bus_for  # through a running `sxctl serve` if one holds the bus

    with bus_for(args.port, baud=args.baud) as bus:
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
