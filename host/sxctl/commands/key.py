"""sxctl key: make a plant key, put it on boards over USB, rotate it, and see a board's signing state.

A key goes onto a board only over the board's USB REPL, i.e. with physical access to it; the bus
never carries one. Output names a key by its id, never by its bytes (docs/security.md).
"""
import json
import os

from . import common

HELP = "plant keys for signed writes: new, provision and rotate (over USB), status (over the bus)"
EXAMPLE = "sxctl key provision --usb /dev/ttyACM0 --key-file plant.key --bus /dev/ttyUSB0"

ACTIONS = {
    "new": ("make a new random plant key in a file only you can read (never overwrites one)",
            "sxctl key new --key-file plant.key"),
    "provision": ("write the plant key to boards over their USB REPL and restart them; from then on "
                  "they refuse unsigned writes",
                  "sxctl key provision --usb /dev/ttyACM0 --key-file plant.key --bus /dev/ttyUSB0"),
    "rotate": ("make a new key, provision it onto every board given, then replace the key file with it",
               "sxctl key rotate --usb /dev/ttyACM0 --usb /dev/ttyACM1 --key-file plant.key"),
    "status": ("show whether a board requires signed writes, with which key id, its counter and its refusals",
               "sxctl key status --bus /dev/ttyUSB0 --addr 2"),
}


def _key_file(q, required=False):
    q.add_argument("--key-file", required=required, metavar="FILE",
                   help="plant key file (hex)" + ("" if required else "; default: $SXCTL_PLANT_KEY"))


def _usb(q):
    q.add_argument("--usb", "--port", dest="port", action="append", required=True, metavar="USB",
                   help="a board's USB serial port, or auto (the one USB serial port there is); repeat for "
                        "several boards (--port is the old spelling)")
    q.add_argument("--bus", default=None, help="bus port: after the restart, check each board's key id there")
    q.add_argument("--baud", type=int, default=115200, help="bus baud rate for --bus (default 115200)")
    q.add_argument("--timeout", type=float, default=5.0, help="seconds to wait for a board's REPL (default 5)")


def add_arguments(p):
    sub = p.add_subparsers(dest="action", metavar="ACTION")
    sub.required = True
    for action, (text, example) in ACTIONS.items():
        q = sub.add_parser(action, help=text, description=text, epilog="example: " + example)
        if action == "new":
            _key_file(q, required=True)
        elif action == "provision":
            _usb(q)
            _key_file(q)
            q.add_argument("--reset-counter", action="store_true",
                           help="also clear the board's counter floor (only with a key the board does not "
                                "hold yet: see docs/security.md)")
        elif action == "rotate":
            _usb(q)
            _key_file(q, required=True)
        else:
            common.bus_port(q)
            common.board_addr(q)
            common.json_option(q)


def run(args):
    return {"new": new, "provision": provision, "rotate": rotate, "status": status}[args.action](args)


def new(args):
    from .. import keys

    key = keys.write_file(args.key_file, keys.new_key())
    print("wrote a new plant key to %s (key id %08x, readable by you only); provision it with "
          "`sxctl key provision --port <usb> --key-file %s`" % (args.key_file, key.id, args.key_file))
    return 0


def _provision_all(args, key, reset_counter=False):
    """Provision `key` on every --port, stopping at the first failure: ({port: bus address} of
    the boards done, the failure or None)."""
    from .. import keys, ports
    from ..errors import SxctlError

    done = {}
    for spec in args.port:
        port = spec
        try:
            port = ports.resolve_port(spec)
            before, restarted, addr = keys.provision(port, key, reset_counter, args.timeout)
        except SxctlError as e:
            return done, "%s: %s" % (port, e)
        print("board on %s (address %d): now holds plant key %08x (held before: %s)%s" % (
            port, addr, key.id, before, "" if restarted else "; it did not report a restart: press its reset button"))
        done[port] = addr
    return done, None


def _verify(args, key, addresses):
    """With --bus: wait until each board answers SIGNING_READ with the new key's id."""
    if not args.bus:
        return
    import time

    from ..buslink import BusClient, NoAnswer
    from ..errors import SxctlError

    deadline = time.monotonic() + 10
    with BusClient(args.bus, baud=args.baud, timeout=0.2, retries=0, holder="sxctl key " + args.action) as bus:
        for addr in addresses:
            while True:
                try:
                    state = bus.signing_state(addr)
                    if state["key_id"] == key.id:
                        print("bus %s: address %d requires writes signed with key %08x" % (args.bus, addr, key.id))
                        break
                except NoAnswer:
                    pass
                if time.monotonic() > deadline:
                    raise SxctlError("address %d on %s does not report key %08x after its restart: check --bus and "
                                     "the board's console" % (addr, args.bus, key.id))
                time.sleep(0.1)


def provision(args):
    from .. import keys
    from ..errors import SxctlError

    key = keys.resolve(args.key_file, args.env_key)
    done, failed = _provision_all(args, key, args.reset_counter)
    if failed:
        raise SxctlError("%s%s" % (failed, "; done before it: " + ", ".join(done) if done else ""))
    _verify(args, key, done.values())
    return 0


def rotate(args):
    from .. import keys
    from ..errors import SxctlError

    old = keys.from_file(args.key_file)
    staged = args.key_file + ".new"
    if os.path.exists(staged):
        raise SxctlError("%s exists from a rotation that did not finish: boards may hold it; provision it to "
                         "the rest (`sxctl key provision --key-file %s`), then move it over %s"
                         % (staged, staged, args.key_file))
    # The new key is on disk before any board holds it, so it can never be lost with a board.
    new_key = keys.write_file(staged, keys.new_key())
    done, failed = _provision_all(args, new_key)
    if failed:
        raise SxctlError("%s; the new key %08x is in %s and on: %s; the other boards still hold key %08x. Fix "
                         "the fault and provision %s to them, then move it over %s" % (
                             failed, new_key.id, staged, ", ".join(done) or "no board", old.id, staged,
                             args.key_file))
    os.replace(staged, args.key_file)
    print("rotated %s: key %08x replaced by %08x on %d board%s; boards not named here still hold %08x and "
          "now refuse this host's writes" % (args.key_file, old.id, new_key.id, len(done),
                                             "" if len(done) == 1 else "s", old.id))
    _verify(args, new_key, done.values())
    return 0


def status(args):
    from .. import keys

    plant = common.load_plant(args)
    mine = common.plant_key(args, plant)
    with common.open_bus(args, plant, program="sxctl key status") as bus:
        bus.hello(args.addr)  # refuses a board built from another protocol schema
        state = bus.signing_state(args.addr)
    kid = state["key_id"]
    if kid == 0:
        required = "no: no plant key provisioned; anyone on the bus can write (docs/security.md)"
    elif kid == keys.UNUSABLE:
        required = "yes, but its key file is unusable: every write is refused; provision the key again"
    else:
        required = "yes, with key %08x" % kid
    match = ("no key given" if mine is None else "the same key" if mine.id == kid
             else "key %08x: not the board's" % mine.id)
    state["signed_writes_required"] = kid != 0
    state["host_key_id"] = None if mine is None else "%08x" % mine.id
    if args.json:
        print(json.dumps(dict(state, key_id="%08x" % kid), indent=2))
        return 0
    rows = [("signed writes", required), ("this host's key", match),
            ("counter", "%d (a signed write must carry a higher one)" % state["counter"]),
            ("stored floor", "%d (after a reset, the counter)" % state["stored"]),
            ("refused unsigned", state["unsigned"]), ("refused forged", state["bad_signature"]),
            ("refused replayed", state["replayed"])]
    for name, value in rows:
        print("%-17s %s" % (name, value))
    return 0
