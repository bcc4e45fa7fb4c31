"""The Modbus register map of the gateway, generated from the protocol's telemetry declaration.

Per stage (Modbus unit id = the stage's bus address), addresses 0-based as on the wire:

- input registers (function 4):
  - 0..15, the status block: online, quality bits, data age, record, mode, alarms, faults,
    calibration;
  - 16.., every telemetry field in engineering units as float32, two registers each, the high
    word first (big-endian word order, the Modbus convention; "ABCD");
  - 80.., the same fields as 16-bit integers in the protocol's raw unit (value × scale =
    engineering value), signed where the field is;
- holding registers (function 3 reads, 6 and 16 write): setpoints, mode and alarm acknowledge.

A value the board reports as faulted (its sensor's fault alarm is active), or any value while
the stage is offline or its data is older than the stale age, reads as NaN (0x7FC00000) with its
quality bit set; its integer copy reads the sentinel 0x8000 (-32768) where the field is signed
and 0xFFFF where it is unsigned (a raw value at the sentinel is sent one count inside it).

The field lists come from sxproto.messages.TelemetryRecord, so a field added to the schema gets
its registers here (and in docs/modbus.md and docs/modbus.csv, `python -m sxctl.gateway.registers`).
"""
import math
import struct

from sxproto import config_items, fields, messages

from .. import store

FLOAT_BASE = 16
INT_BASE = 80
BLOCK_SIZE = 112          # status + floats + integers: one read of at most 125 registers
MAX_FIELDS = (INT_BASE - FLOAT_BASE) // 2
NAN_WORDS = (0x7FC0, 0x0000)
INT16_INVALID = 0x8000    # -32768
UINT16_INVALID = 0xFFFF
UNKNOWN_U32 = 0xFFFFFFFF  # calibration age when no calibration event is known

# Which active alarm bits fault which telemetry value (a faulted value reads NaN).
FAULTS_OF = {
    "ph": ("ph_sensor_fault", "ph_stuck"),
    "orp_mv": ("orp_fault",),
    "temperature": ("temperature_fault",),
    "flow_aq": ("flow_aq_fault",),
    "flow_org": ("flow_org_fault",),
}
_ALARM_BIT = {name: bit for bit, name in messages.ALARMS.items()}
SENSOR_FAULT_BITS = sum(1 << _ALARM_BIT[name] for names in FAULTS_OF.values() for name in names)

_INFOS = {f.name: f for f in fields.infos(messages.TelemetryRecord)}
FIELDS = store.VALUE_FIELDS  # telemetry values after record and time_s, in wire order
if len(FIELDS) > MAX_FIELDS:
    raise ImportError("the telemetry record has %d values, the register map holds %d: move INT_BASE"
                      % (len(FIELDS), MAX_FIELDS))
QUALITY_WORDS = (len(FIELDS) + 15) // 16


class Register:
    """One entry of the map: a name at a 0-based address, `words` registers long."""

    def __init__(self, table, address, name, kind, unit="", scale=1, doc=""):
        self.table = table      # "input" or "holding"
        self.address = address
        self.name = name
        self.kind = kind        # uint16, int16, uint32, float32
        self.words = 2 if kind in ("uint32", "float32") else 1
        self.unit = unit
        self.scale = scale
        self.doc = doc

    @property
    def notation(self):
        """The 1-based number SCADA configuration tools show: 3xxxx input, 4xxxx holding."""
        return (30001 if self.table == "input" else 40001) + self.address


def _signed(name):
    return _INFOS[name].lo < 0


def _status():
    regs = [("online", "uint16", "", "1 while the stage answers and its data is fresh, else 0")]
    regs += [("quality_%d" % i if QUALITY_WORDS > 1 else "quality", "uint16", "",
              "bit n set: telemetry value %d..%d is invalid (NaN / sentinel); bits in the order of the "
              "float block" % (16 * i, 16 * i + 15)) for i in range(QUALITY_WORDS)]
    regs += [
        ("data_age_ms", "uint32", "ms", "since the gateway read the stage's newest record from the board"),
        ("record", "uint32", "", "number of the telemetry record served (0: none yet)"),
        ("epoch", "uint16", "", "the logger's epoch of the stage (a new one after each board reset)"),
        ("mode", "uint16", "", "mode: " + ", ".join("%d %s" % kv for kv in messages.MODES.items())),
        ("alarms_active", "uint16", "", "alarm bits whose condition is present (sxproto.messages.ALARMS)"),
        ("alarms_unacked", "uint16", "", "alarm bits raised and not yet acknowledged (from the board's events)"),
        ("sensor_faults", "uint16", "", "the active alarm bits that fault a measurement (mask 0x%04x)"
         % SENSOR_FAULT_BITS),
        ("cal_id", "uint16", "", "id of the pH calibration in use (0: none)"),
        ("cal_age_s", "uint32", "s", "since the newest calibration event logged (0xFFFFFFFF: none known)"),
    ]
    out, address = [], 0
    for name, kind, unit, doc in regs:
        out.append(Register("input", address, name, kind, unit, 1, doc))
        address += out[-1].words
    assert address <= FLOAT_BASE
    return out


def _values():
    out = []
    for i, name in enumerate(FIELDS):
        info = _INFOS[name]
        out.append(Register("input", FLOAT_BASE + 2 * i, name, "float32", info.unit, 1, info.doc))
    for i, name in enumerate(FIELDS):
        info = _INFOS[name]
        out.append(Register("input", INT_BASE + i, name + "_raw", "int16" if _signed(name) else "uint16",
                            info.unit, info.scale, info.doc + " (raw: × %s)" % info.scale))
    return out


# Holding registers: what a write does. Setpoints in the config item's raw unit.
SETPOINTS = ("ph_setpoint", "orp_setpoint", "flow_aq_setpoint", "flow_org_setpoint")


def _holding():
    out = []
    for i, name in enumerate(SETPOINTS):
        item = config_items.BY_NAME[name]
        out.append(Register("holding", i, name, "int16" if item.lo < 0 else "uint16", item.unit, item.scale,
                            "%s (raw: × %s, %s..%s)" % (item.doc, item.scale, item.lo, item.hi)))
    out.append(Register("holding", len(SETPOINTS), "mode", "uint16", "", 1,
                        "mode: " + ", ".join("%d %s" % kv for kv in messages.MODES.items())
                        + "; writing sets it (a manual dose is kept)"))
    out.append(Register("holding", len(SETPOINTS) + 1, "alarm_ack", "uint16", "", 1,
                        "reads the unacknowledged alarm bits; writing a mask acknowledges those alarms"))
    return out


STATUS = _status()
VALUES = _values()
HOLDING = _holding()
INPUT = STATUS + VALUES
HOLDING_SIZE = len(HOLDING)
BY_NAME = {r.name: r for r in INPUT}
HOLDING_BY_ADDRESS = {r.address: r for r in HOLDING}


# encoding, for the Modbus face
def float_words(value):
    hi, lo = struct.unpack(">HH", struct.pack(">f", value))
    return [hi, lo]


def words_float(hi, lo):
    return struct.unpack(">f", struct.pack(">HH", hi, lo))[0]


def int_word(name, raw):
    if raw is None:
        return INT16_INVALID if _signed(name) else UINT16_INVALID
    if _signed(name):
        return max(-0x7FFF, min(0x7FFF, raw)) & 0xFFFF
    return max(0, min(0xFFFE, raw))


def _put(regs, reg, value):
    value = min(value, 0xFFFFFFFF if reg.words == 2 else 0xFFFF)
    if reg.words == 2:
        regs[reg.address:reg.address + 2] = [value >> 16, value & 0xFFFF]
    else:
        regs[reg.address] = value


def encode_input(state):
    """The BLOCK_SIZE input registers of one stage from a core.StageState. What does not move with
    the clock is encoded once per state (and per fresh/stale), the ages at every read."""
    fresh = state.fresh()
    cached = state.cache.get(fresh)
    if cached is None:
        cached = state.cache[fresh] = _encode(state)
    regs = list(cached)
    _put(regs, BY_NAME["data_age_ms"], state.age_ms())
    _put(regs, BY_NAME["cal_age_s"], state.cal_age_s())
    return regs


_AGES = ("data_age_ms", "cal_age_s")


def input_bytes(state):
    """encode_input(state) as the big-endian bytes a read answer carries: packed once per state
    (and per fresh/stale), the ages written into a copy at every read."""
    fresh = state.fresh()
    key = ("bytes", fresh)
    packed = state.cache.get(key)
    if packed is None:
        cached = state.cache.get(fresh)
        if cached is None:
            cached = state.cache[fresh] = _encode(state)
        packed = state.cache[key] = struct.pack(">%dH" % BLOCK_SIZE, *cached)
    out = bytearray(packed)
    for name, value in zip(_AGES, (state.age_ms(), state.cal_age_s())):
        struct.pack_into(">I", out, 2 * BY_NAME[name].address, min(value, 0xFFFFFFFF))
    return out


def _encode(state):
    regs = [0] * BLOCK_SIZE
    values = state.values()  # {name: raw or None (invalid)}
    quality = 0
    for i, name in enumerate(FIELDS):
        raw = values.get(name)
        if raw is None:
            quality |= 1 << i
            regs[FLOAT_BASE + 2 * i:FLOAT_BASE + 2 * i + 2] = NAN_WORDS
        else:
            regs[FLOAT_BASE + 2 * i:FLOAT_BASE + 2 * i + 2] = float_words(store.engineering(name, raw))
        regs[INT_BASE + i] = int_word(name, raw)
    status = {
        "online": int(state.fresh()), "data_age_ms": state.age_ms(), "record": state.record,
        "epoch": state.epoch, "mode": state.raw.get("mode", 0) if state.raw else 0,
        "alarms_active": state.alarms(), "alarms_unacked": state.unacked_now(),
        "sensor_faults": state.alarms() & SENSOR_FAULT_BITS, "cal_id": state.cal_id,
        "cal_age_s": state.cal_age_s(),
    }
    for i in range(QUALITY_WORDS):
        status["quality_%d" % i if QUALITY_WORDS > 1 else "quality"] = quality >> (16 * i) & 0xFFFF
    for reg in STATUS:
        _put(regs, reg, status[reg.name])
    return regs


def decode_input(regs):
    """{name: value} of a block read from address 0: floats (NaN for invalid), raw integers and
    the status words; the inverse of encode_input, for clients and tests."""
    out = {}
    for reg in INPUT:
        w = regs[reg.address:reg.address + reg.words]
        if reg.kind == "float32":
            out[reg.name] = words_float(*w)
        elif reg.kind == "uint32":
            out[reg.name] = w[0] << 16 | w[1]
        elif reg.kind == "int16":
            out[reg.name] = w[0] - 0x10000 if w[0] & 0x8000 else w[0]
        else:
            out[reg.name] = w[0]
    return out


def is_nan(value):
    return isinstance(value, float) and math.isnan(value)


# the generated documents
CSV_COLUMNS = ("table", "address", "notation", "name", "type", "words", "unit", "scale", "description")


def csv_text():
    import csv
    import io

    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(CSV_COLUMNS)
    for r in INPUT + HOLDING:
        w.writerow((r.table, r.address, r.notation, r.name, r.kind, r.words, r.unit, r.scale, r.doc))
    return out.getvalue()


def markdown():
    lines = [
        "# Modbus TCP register map of `sxctl serve`",
        "",
        "Generated from the protocol schema by `python -m sxctl.gateway.registers`; do not edit.",
        "The same map as CSV for SCADA tools: [modbus.csv](modbus.csv).",
        "",
        "- One Modbus unit id per stage: the unit id is the stage's bus address (1..247); another",
        "  unit id is answered with exception 0x0B (gateway target failed to respond).",
        "- **Addresses are 0-based as on the wire.** The *notation* column gives the 1-based number",
        "  SCADA tools show: input register 0 is 30001, holding register 0 is 40001.",
        "- float32 values take two registers, **high word first** (big-endian word order, \"ABCD\").",
        "- The whole input block of a stage is one read: address 0, count %d." % BLOCK_SIZE,
        "- A faulted value (its sensor's fault alarm active) and every value of a stage that is offline",
        "  or whose data is older than the stale age (`sxctl serve --stale`, default 3 poll periods and",
        "  at least 3 s) reads NaN (0x7FC00000) and sets its quality bit; its integer copy reads",
        "  0x8000 (-32768) for a signed field, 0xFFFF for an unsigned one.",
        "- Values come from the gateway's latest telemetry: a read never waits on the bus.",
        "- Holding registers are written only when the plant file's `[gateway]` table has",
        "  `modbus_writes = true` and the client's address is in `modbus_allow`; otherwise a write",
        "  is answered with exception 0x01 (illegal function). A write is checked as `sxctl set`",
        "  checks it, signed on the bus, and answered after the board confirmed: a refused value",
        "  gets 0x03 (illegal data value), a board that does not answer 0x04 (server device failure).",
        "  Registers of a multi-register write are applied in address order; the first refusal stops it.",
        "",
        "## Input registers (function 4)",
        "",
        "| address | notation | name | type | unit | scale | description |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in INPUT:
        lines.append("| %d | %d | %s | %s | %s | %s | %s |" % (r.address, r.notation, r.name, r.kind, r.unit,
                                                            r.scale, r.doc))
    lines += ["", "## Holding registers (function 3 reads; 6 and 16 write)", "",
              "| address | notation | name | type | unit | scale | description |", "|---|---|---|---|---|---|---|"]
    for r in HOLDING:
        lines.append("| %d | %d | %s | %s | %s | %s | %s |" % (r.address, r.notation, r.name, r.kind, r.unit,
                                                            r.scale, r.doc))
    return "\n".join(lines) + "\n"


def write_docs(folder):
    import pathlib

    folder = pathlib.Path(folder)
    (folder / "modbus.md").write_text(markdown())
    (folder / "modbus.csv").write_text(csv_text())


if __name__ == "__main__":  # from the source tree: python -m sxctl.gateway.registers [docs]
    import sys
    write_docs(sys.argv[1] if len(sys.argv) > 1 else "docs")
