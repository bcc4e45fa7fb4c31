"""sxctl set: single changes on one board, each echoed as the board applied it."""
from . import common

HELP = ("change a board's mode, a setpoint or any config item, in the order given; "
        "each is echoed as the board applied it")
EXAMPLE = "sxctl set --bus /dev/ttyUSB0 --addr 2 ph_setpoint=2.5 mode=auto   (or --plant plant.toml)"

# SET_SETPOINT loop of each setpoint item; other items go by CONFIG_WRITE.
SETPOINT_LOOPS = {"ph_setpoint": 0, "orp_setpoint": 1, "flow_aq_setpoint": 2, "flow_org_setpoint": 3}
BUMPLESS = 0xFFFF  # SET_MODE.manual_output: keep the manual dose in force
ITEM_ERRORS = (3, 4, 5)  # ERROR codes whose detail is a config item id (sxproto.messages.ERROR_CODES)


class _Quantity:
    """Unit, scale and range of a value that is not a config item (SET_MODE.manual_output)."""

    def __init__(self, name, unit, scale, lo, hi):
        self.name, self.unit, self.scale, self.lo, self.hi = name, unit, scale, lo, hi


def add_arguments(p):
    common.bus_port(p)
    common.board_addr(p)
    common.json_option(p, "a line per change")
    p.add_argument("changes", nargs="+", metavar="KEY=VALUE",
                   help="mode=off|manual|auto|hold (with manual_output=<mL/min> for the manual base dose), "
                        "or any config item by name in its unit, e.g. ph_setpoint=2.5 orp_setpoint=680 "
                        "pid_kp=1.2; see protocol/config_items.py")


def _manual_output():
    from sxproto import fields, messages

    info = next(f for f in fields.infos(messages.SET_MODE.body) if f.name == "manual_output")
    return _Quantity(info.name, info.unit, info.scale, info.lo, min(info.hi, BUMPLESS - 1))


def parse(pairs):
    """[(key, raw value or mode number, value text)] for KEY=VALUE texts, all checked before any is sent."""
    from sxproto import config_items, messages

    from .. import plantfile
    from ..errors import SxctlError

    modes = {name: number for number, name in messages.MODES.items()}
    keys = list(config_items.BY_NAME) + ["mode", "manual_output"]
    out, problems, seen = [], [], set()
    for text in pairs:
        key, eq, value = text.partition("=")
        key = key.strip()
        if not eq or not key:
            problems.append("%r: write KEY=VALUE, e.g. ph_setpoint=2.5" % text)
            continue
        if key in seen:
            problems.append("%s given twice" % key)
            continue
        seen.add(key)
        try:
            if key == "mode":
                if value.strip() not in modes:
                    raise ValueError("must be one of %s" % ", ".join(modes))
                out.append((key, modes[value.strip()], value))
            elif key == "manual_output":
                out.append((key, plantfile.parse_text(_manual_output(), value), value))
            elif key in config_items.BY_NAME:
                out.append((key, plantfile.parse_text(config_items.BY_NAME[key], value), value))
            else:
                problems.append("%s: unknown key%s" % (key, plantfile.did_you_mean(key, keys)))
        except ValueError as e:
            problems.append("%s=%s: %s" % (key, value, e))
    if "manual_output" in seen and "mode" not in seen:
        problems.append("manual_output goes with mode, e.g. mode=manual manual_output=12.5")
    if problems:
        raise SxctlError("nothing sent: %s" % "; ".join(problems))
    return out


def run(args):
    from sxproto import config_items, messages

    from .. import plantfile
    from ..buslink import RemoteError
    from ..errors import SxctlError

    changes = parse(args.changes)
    manual = dict((key, raw) for key, raw, _ in changes).get("manual_output", BUMPLESS)
    done = []
    report = []  # for --json: each change as the board applied it
    plant = common.load_plant(args)
    with common.open_bus(args, plant) as bus:
        bus.hello(args.addr)  # refuses a board built from another protocol schema
        for key, raw, text in changes:
            if key == "manual_output":
                continue  # goes with mode
            try:
                if key in config_items.BY_NAME:
                    _check_rules(bus, args.addr, key, raw, text, done)
                if key == "mode":
                    ack = bus.request(args.addr, messages.SET_MODE, dict(mode=raw, manual_output=manual),
                                      expect=messages.MODE_ACK).values
                    mode = messages.MODES.get(ack["mode"], ack["mode"])
                    dose = plantfile.engineering(_manual_output(), ack["manual_output"])
                    echo = "mode = %s, manual base dose %s" % (mode, dose)
                    differs = ack["mode"] != raw
                    entry = dict(key=key, asked=text.strip(), applied=mode, manual_output=dose)
                else:
                    item = config_items.BY_NAME[key]
                    applied = _write_item(bus, args.addr, item, raw)
                    echo = "%s = %s" % (key, plantfile.engineering(item, applied))
                    differs = applied != raw
                    entry = dict(key=key, asked=text.strip(), applied=plantfile.engineering(item, applied))
            except ReadBackFailed as e:
                raise SxctlError("state unknown: board %d acknowledged %s=%s but reading it back failed (%s): read it "
                                 "back with `sxctl config diff` or `sxctl info --addr %d`%s" % (
                                     args.addr, key, text, e.__cause__, args.addr,
                                     "; applied before it: " + ", ".join(done) if done else "")) from None
            except RemoteError as e:
                item = config_items.BY_ID.get(e.detail) if e.code in ITEM_ERRORS else None
                raise SxctlError("board %d refused %s=%s%s: %s; %s" % (
                    args.addr, key, text, " (%s)" % item.name if item is not None and item.name != key else "",
                    messages.ERROR_CODES.get(e.code, "error code %d" % e.code),
                    "applied before it: " + ", ".join(done) if done else "nothing was changed")) from None
            if not args.json:
                print("board %d: %s%s" % (args.addr, echo, " (asked %s; the board limited it)" % text if differs else ""))
            report.append(dict(entry, limited=differs))
            done.append(key)
    if args.json:
        common.print_json(dict(address=args.addr, applied=report))
    return 0


class ReadBackFailed(Exception):
    """A write was acknowledged, the read-back of it failed: what the board holds is unknown."""


def _check_rules(bus, addr, key, raw, text, done):
    """Refuse, before sending, a change that breaks one of the board's cross-field rules, naming
    the rule and the values it compares as the board holds them."""
    from .. import configapply
    from ..errors import SxctlError

    board, _ = configapply.read_board(bus, addr)
    broken = configapply.rules_after(board, {key: raw}, given="asked", kept="on the board")
    if broken:
        raise SxctlError("board %d would refuse %s=%s, so it was not sent: the rule %s; %s" % (
            addr, key, text, broken, "applied before it: " + ", ".join(done) if done else "nothing was changed"))


def _write_item(bus, addr, item, raw):
    """Write one item and return the value the board holds afterwards."""
    from sxproto import messages

    from ..errors import SxctlError

    loop = SETPOINT_LOOPS.get(item.name)
    if loop is not None:
        try:
            return bus.request(addr, messages.SET_SETPOINT, dict(loop=loop, value=raw),
                               expect=messages.SETPOINT_ACK).values["value"]
        except SxctlError as e:
            if getattr(e, "code", None) is not None:
                raise  # refused: nothing applied
            raise ReadBackFailed() from e  # unanswered: it may have been applied
    items = [dict(item=item.id, value=raw)] + [dict(item=0, value=0)] * (messages.CONFIG_WRITE_ITEMS - 1)
    try:
        bus.request(addr, messages.CONFIG_WRITE, dict(count=1, items=items), expect=messages.CONFIG_ACK)
    except SxctlError as e:
        if getattr(e, "code", None) is not None:
            raise
        raise ReadBackFailed() from e
    # CONFIG_ACK carries no values: the board's own read-back is the applied value.
    try:
        return bus.request(addr, messages.CONFIG_READ, dict(item=item.id), expect=messages.CONFIG_VALUE).values["value"]
    except SxctlError as e:
        raise ReadBackFailed() from e
