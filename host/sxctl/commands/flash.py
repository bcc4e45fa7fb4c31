"""sxctl flash: put the firmware (and optionally MicroPython itself) onto a board over USB."""
import sys

from . import common

HELP = "write the firmware onto a board over its USB REPL, copying only files that changed"
EXAMPLE = "sxctl flash --port auto --board rp2-pico --addr 2 --bus /dev/ttyUSB0"


def add_arguments(p):
    p.add_argument("--port", required=True, help="the board's USB serial port, or auto (the one USB serial port there is)")
    p.add_argument("--board", required=True, help="board definition (boards/*.py), e.g. rp2-pico, esp32-devkitc, unix-sim")
    p.add_argument("--addr", type=common.address, default=None, help="bus address to write to /identity.json (default: keep the board's)")
    p.add_argument("--serial", default=None, help="unit serial number to write to /identity.json (default: keep the board's)")
    p.add_argument("--bus", default=None, help="bus port: after the restart, wait for the board's HELLO there")
    p.add_argument("--baud", type=int, default=115200, help="bus baud rate for --bus (default 115200)")
    p.add_argument("--timeout", type=float, default=5.0, help="seconds to wait for the board's REPL (default 5)")
    p.add_argument("--dry-run", action="store_true",
                   help="list what would change and change nothing; refused on a running board unless --yes")
    p.add_argument("--yes", action="store_true",
                   help="with --dry-run: stop a running board's stage to read its files (it boots again after; "
                        "with --bus and --addr its mode is set again as it was)")
    p.add_argument("--force", action="store_true",
                   help="flash even if the board's platform does not match --board (wrong pins: know why)")
    p.add_argument("--interpreter", metavar="IMAGE", default=None,
                   help="first write MicroPython itself: an ESP32 .bin (via esptool) or an RP2040 .uf2")
    p.add_argument("--uf2-drive", metavar="PATH", default=None,
                   help="where the RPI-RP2 drive is mounted (default: look under /media and /run/media)")


def run(args):
    from .. import flash, ports

    files = flash.build_image(args.board)
    if args.interpreter:
        method = flash.interpreter_method(args.board)
        if method == "esptool":
            flash.write_with_esptool(ports.resolve_port(args.port), args.interpreter, args.dry_run)
        else:
            flash.write_uf2(args.interpreter, args.uf2_drive, args.dry_run)
        if args.dry_run:
            print("then would flash the %d files of the %s image (%.1f KiB); nothing changed"
                  % (len(files), args.board, sum(map(len, files.values())) / 1024))
            return 0
        port = flash.await_repl(args.port)
    else:
        port = ports.resolve_port(args.port)

    if args.dry_run and not args.yes and not flash.SerialRepl.at_prompt(port):
        print("the board on %s is running (no REPL prompt answered): a dry run would stop its stage to read "
              "its files, so nothing was done. Pass --yes to stop it for the dry run (it boots again after, "
              "in mode off), or flash without --dry-run" % port, file=sys.stderr)
        return 1
    mode = None
    if args.dry_run and args.bus and args.addr is not None:
        mode = flash.stage_mode(args.bus, args.addr, args.baud)  # to set again after the stop
    with flash.SerialRepl(port, timeout=args.timeout) as repl:
        mismatch = flash.check_platform(repl, args.board, args.force)
        if mismatch:
            print("warning (--force): %s" % mismatch, file=sys.stderr)
        flash.check_mpy(repl, files, args.board)
        plan = flash.plan(repl, args.board, files, args.addr, args.serial)
        if args.dry_run:
            for path in plan.remove:
                print("would remove", path)
            for path in flash.write_order(plan.write):
                print("would write %s (%d B)" % (path, len(plan.write[path])))
            if repl.interrupted:
                repl.restart()  # leave a running board running
        else:
            flash.apply(repl, plan, flash.Progress(len(plan.write)))
            flash.verify(repl, plan)
            restarted = repl.restart()
    if args.dry_run:
        print("dry run: %d files would change on %s; nothing changed" % (plan.changes(), port))
        if mode:
            flash.restore_mode(args.bus, args.addr, mode, args.baud)
            print("bus %s: address %d back in mode %s, as before the dry run"
                  % (args.bus, args.addr, flash.mode_name(mode)))
        return 0

    ident = plan.identity
    print("flashed %s firmware %s onto %s: %d files changed (%d written, %d removed), %d unchanged"
          % (args.board, flash.firmware_version(), port, plan.changes(), len(plan.write), len(plan.remove),
             len(plan.unchanged)))
    print("identity: addr %s, serial %s" % (ident.get("addr", "247 (unprovisioned)"), ident.get("serial") or "-"))
    if not restarted:
        print("warning: the board did not report a soft reboot; press its reset button", file=sys.stderr)
    if args.bus:
        addr = ident.get("addr", 247)
        info = flash.await_hello(args.bus, addr, baud=args.baud)
        print("bus %s: address %d answers HELLO as %s, schema %08x (matches this sxctl)"
              % (args.bus, addr, info["board"], info["fingerprint"]))
    return 0
