"""sxctl info: who a board is, its state and how its link is doing."""
import json

from . import common

HELP = "ask one board who it is and how its link is doing"
EXAMPLE = "sxctl info --bus /dev/ttyUSB0 --addr 2"


def add_arguments(p):
    common.bus_port(p)
    common.board_addr(p)
    common.json_option(p)


def run(args):
    from sxproto import messages

    from ..buslink import out_of_range, printable

    plant = common.load_plant(args)
    with common.open_bus(args, plant) as bus:
        info = bus.hello(args.addr)
        info["host_link"] = bus.stats.as_dict()
    bad = out_of_range(messages.INFO.body, info)
    info["version"] = "%d.%d.%d" % (info.pop("fw_major"), info.pop("fw_minor"), info.pop("fw_patch"))
    info["fingerprint"] = "%08x" % info["fingerprint"]
    alarms = [name for bit, name in messages.ALARMS.items() if info["alarms"] >> bit & 1]
    mode = messages.MODES.get(info["mode"]) if "mode" not in bad else None
    if args.json:
        believed = {name: None for name in bad if name in info}  # never a value out of its range
        print(json.dumps(dict(info, mode=mode, alarms=alarms, out_of_range=bad, **believed), indent=2))
        return 0
    info = {k: printable(v) if isinstance(v, str) else v for k, v in info.items()}

    def shown(name, text):  # a value outside the protocol's range is never shown as one
        return "-- (out of range: %d)" % info[name] if name in bad else text
    rows = [("board", info["board"]), ("serial", info["serial"] or "-"), ("address", args.addr),
            ("firmware", info["version"]), ("schema", info["fingerprint"] + " (matches this sxctl)"),
            ("uptime", shown("uptime_s", "%d s" % info["uptime_s"])), ("mode", shown("mode", mode)),
            ("alarms", ", ".join(alarms) or "none"), ("calibration id", info["cal_id"] or "none"),
            ("config version", info["config_version"]),
            ("free heap", shown("heap_free", "%d B" % info["heap_free"])),
            ("frames received", info["rx_frames"]), ("CRC errors", info["crc_errors"]),
            ("frames dropped", info["dropped"]), ("duplicate writes", info["duplicates"]),
            ("host link", " ".join("%s=%d" % kv for kv in info["host_link"].items()))]
    for key, value in rows:
        print("%-16s %s" % (key, value))
    if bad:
        print("%-16s %s" % ("not believed", ", ".join(bad) + " (outside the protocol's range)"))
    return 0
