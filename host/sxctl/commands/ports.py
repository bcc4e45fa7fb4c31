"""sxctl ports: the serial ports this machine sees, and (with --probe) which hold a board."""
import json

HELP = "list serial ports; with --probe, which answer as a MicroPython board with sxctl firmware"
EXAMPLE = "sxctl ports --probe"


def add_arguments(p):
    p.add_argument("--probe", action="store_true",
                   help="try each port's REPL (Ctrl-C, raw REPL, then restart what was running); "
                        "ports another program holds are skipped")
    p.add_argument("--timeout", type=float, default=1.0, help="seconds to wait for a REPL per port (default 1)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")


def run(args):
    from .. import ports

    rows = []
    for port in ports.comports():
        row = {"device": port.device, "usb": ports.usb_id(port), "serial": port.serial_number or "-",
               "description": port.description or "-"}
        if args.probe:
            row["repl"], row["firmware"] = ports.probe(port.device, args.timeout)
        rows.append(row)
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    if not rows:
        print("no serial ports found: check the USB cable (a data cable, not a charge-only one) and that "
              "the board is powered")
        return 0
    keys = list(rows[0])
    table = [keys] + [[str(r[k]) for k in keys] for r in rows]
    widths = [max(len(line[i]) for line in table) for i in range(len(keys))]
    for line in table:
        print("  ".join(c.ljust(w) for c, w in zip(line, widths)).rstrip())
    if not args.probe:
        print("(--probe also shows which ports answer as a MicroPython board)")
    return 0
