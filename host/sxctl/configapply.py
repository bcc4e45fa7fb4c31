"""Bringing a board's config to a plant file stage's: all or none per board, in rule-keeping writes.

Used by `sxctl config diff/apply` and by the simulator, which configures its boards the same way.
A change goes out as a board's changed items in CONFIG_WRITEs of at most 8, each applied all or none
by the board. Across writes, a board's change is made all or none by the host:
- the writes are ordered so that the board's cross-field rules hold after every one of them
  (found by running the board's own rules on the host); if no such order exists, the board is
  refused before anything is written;
- if the board refuses a write, the writes it took are undone newest first, each returning the
  board to a config it accepted before, and the board is read back to show it kept its old one;
- a board that stops answering part-way is undone the same way if it answers the undo, else it is
  reported as in an unknown state, with what to do.
While a change is being written (tens of ms) the board runs on the intermediate configs.
"""
from sxproto import config_items, messages

from . import plantfile
from .buslink import RemoteError
from .errors import SxctlError

ITEMS = config_items.BY_NAME
BATCH = messages.CONFIG_WRITE_ITEMS



def read_board(bus, addr):
    """({item name: raw} of every config item on board `addr`, config version), read at one version."""
    bus.hello(addr)  # refuses a board built from another protocol schema (other item ids)
    for _ in range(3):
        values, versions = {}, set()
        for item in config_items.ITEMS:
            v = bus.request(addr, messages.CONFIG_READ, dict(item=item.id), expect=messages.CONFIG_VALUE).values
            if v["item"] != item.id:
                raise SxctlError("board %d answered item %d when asked for %s" % (addr, v["item"], item.name))
            if not item.lo <= v["value"] <= item.hi:
                raise SxctlError("board %d holds %s = %d, outside its declared range %s: its config is not "
                                 "believed; read it with `sxctl config diff` and apply the plant file"
                                 % (addr, item.name, v["value"], plantfile.item_range(item)))
            values[item.name] = v["value"]
            versions.add(v["config_version"])
        if len(versions) == 1:
            return values, versions.pop()
    raise SxctlError("board %d's config kept changing while it was read; is another host writing to it?" % addr)


def changed(board, plant_values):
    return {name: raw for name, raw in plant_values.items() if board[name] != raw}


def rules_after(board, settings, given="from the plant file", kept="on the board, not in the plant file"):
    """Text of the rules the board's config would break with `settings` applied, each rule in its
    own words with the values it compares and where each comes from."""
    after = dict(board, **settings)
    return "; ".join("%s %s (%s)" % (name, text, ", ".join(
        "%s %s %s" % (n, plantfile.engineering(ITEMS[n], after[n]), given if n in settings else kept)
        for n in [name] + [w for w in text.split() if w in ITEMS and w != name]))
        for name, text in config_items.rule_violations(after))


def change_table(before, changes, old="board", new="plant"):
    rows = [("  item", old, new)] + [("  " + name, plantfile.engineering(ITEMS[name], before[name]),
                                      plantfile.engineering(ITEMS[name], raw))
                                     for name, raw in sorted(changes.items(), key=lambda kv: ITEMS[kv[0]].id)]
    widths = [max(len(r[i]) for r in rows) for i in range(2)]
    return "\n".join("%-*s  %-*s  %s" % (widths[0], a, widths[1], b, c) for a, b, c in rows)


def plan_writes(board, changes, size=BATCH):
    """Writes of at most `size` items, [[(name, raw)]], taking `board` to board + `changes` with
    the board's rules holding after each write. SxctlError if no such order is found."""
    state = dict(board)
    pending = sorted(changes, key=lambda name: ITEMS[name].id)
    plan = []
    while pending:
        batch = []
        grew = True
        while grew and len(batch) < size:
            grew = False
            for name in list(pending):
                trial = dict(state, **{name: changes[name]})
                if len(batch) < size and not config_items.rule_violations(trial):
                    state, grew = trial, True
                    batch.append(name)
                    pending.remove(name)
        if not batch:
            raise SxctlError("no order of writes of at most %d items keeps the board's config rules after "
                             "each write (stuck at %s); apply the change in steps" % (size, ", ".join(pending)))
        plan.append([(name, changes[name]) for name in batch])
    return plan


def write(bus, addr, batch):
    pad = [dict(item=0, value=0)] * (BATCH - len(batch))
    items = [dict(item=ITEMS[name].id, value=raw) for name, raw in batch] + pad
    ack = bus.request(addr, messages.CONFIG_WRITE, dict(count=len(batch), items=items),
                      expect=messages.CONFIG_ACK).values
    if ack["count"] != len(batch):
        raise SxctlError("board %d applied %d of %d items" % (addr, ack["count"], len(batch)))
    return ack["config_version"]


def apply_stage(bus, stage):
    """(status, text) of bringing one board to the stage's config: 'applied', 'up to date',
    'refused' (old config kept), 'unreachable' or 'unknown' (part written, not undone)."""
    addr = stage.address
    try:
        board, version = read_board(bus, addr)
    except SxctlError as e:
        return "unreachable", "unreachable: %s" % e
    changes = changed(board, stage.settings())
    if not changes:
        return "up to date", "up to date (config version %d)" % version
    table = change_table(board, changes, "board", "plant")  # while not applied
    broken = rules_after(board, stage.settings())
    if broken:
        return "refused", "refused before writing: %s; board keeps its old config\n%s" % (broken, table)
    try:
        plan = plan_writes(board, changes)
    except SxctlError as e:
        return "refused", "refused before writing: %s; board keeps its old config\n%s" % (e, table)
    states = []  # the config before each write the board took (or may have taken)
    state = dict(board)
    try:
        for batch in plan:
            states.append(dict(state))
            version = write(bus, addr, batch)
            state.update(batch)
    except SxctlError as e:
        refused = isinstance(e, RemoteError)
        why = _refusal(e, plan[len(states) - 1])
        if refused:
            states.pop()  # a refused write changed nothing; one unanswered may have: undo it too
        return _undo(bus, addr, board, plan, states, why, table, "refused" if refused else "unreachable")
    try:
        after, version = read_board(bus, addr)
    except SxctlError as e:
        return "unknown", ("state unknown: all %d writes acknowledged, but reading back failed (%s): read it "
                           "back with `sxctl config diff`" % (len(plan), e))
    wrong = changed(after, stage.settings())
    if wrong:
        return "unknown", "state unknown: read back differs from the plant file (another host writing?):\n%s" % (
            change_table(after, wrong))
    return "applied", "applied %d item%s in %d write%s, read back and verified (config version %d)\n%s" % (
        len(changes), "" if len(changes) == 1 else "s", len(plan), "" if len(plan) == 1 else "s", version,
        change_table(board, changes, "was", "now"))


def _refusal(e, batch):
    if isinstance(e, RemoteError):
        item = config_items.BY_ID.get(e.detail)
        reason = messages.ERROR_CODES.get(e.code, "error code %d" % e.code)
        if item is not None and item.name in dict(batch):
            return "board refused %s = %s: %s" % (item.name, plantfile.engineering(item, dict(batch)[item.name]), reason)
        return "board refused the write: %s (detail %d)" % (reason, e.detail)
    return str(e)


def _undo(bus, addr, board, plan, states, why, table, status):
    """Undo writes len(states)-1 .. 0, newest first: write k is undone by writing its items' values
    from states[k], the config the board held before it, so every undo is to a config it took."""
    undone = 0
    try:
        for k in range(len(states) - 1, -1, -1):
            write(bus, addr, [(name, states[k][name]) for name, _ in plan[k]])
            undone += 1
        after, _ = read_board(bus, addr)
    except SxctlError as e:
        return "unknown", ("state unknown: %s; undoing the %d earlier write%s failed after %d (%s): the board may "
                           "hold part of the change; read it back with `sxctl config diff`, then apply again" % (
                               why, len(states), "" if len(states) == 1 else "s", undone, e))
    if changed(after, board):
        return "unknown", "state unknown: %s; undid %d write%s but the board differs from its old config:\n%s" % (
            why, undone, "" if undone == 1 else "s", change_table(board, changed(after, board), "old", "now"))
    return status, "%s; %s, board keeps its old config (read back)\n%s" % (
        why, "undid %d earlier write%s" % (undone, "" if undone == 1 else "s") if undone else "nothing was written",
        table)
