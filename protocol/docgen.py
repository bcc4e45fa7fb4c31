"""Generate protocol/README.md, the protocol reference, from the declarations.

`make proto` (sxproto.codegen) rewrites it with the firmware codec; a test fails if the
committed file differs from what this produces.
"""
import pathlib
import struct

from . import config_items, fields, framing, link_rules, messages, schema

TARGET = pathlib.Path(__file__).resolve().parent / "README.md"
_TYPES = {"B": "u8", "b": "i8", "H": "u16", "h": "i16", "I": "u32", "i": "i32"}
_ENUMS = (
    ("MODES", "Modes (TELEMETRY.mode, SET_MODE.mode)", "value"),
    ("ALARMS", "Alarm bits (TELEMETRY and ALARM_STATE alarms_active and alarms_unacked, ALARM_ACK.mask, "
               "INFO.alarms; EVENTS records carry the bit number in `alarm`)", "bit"),
    ("EVENT_CODES", "Event codes (EVENTS record code)", "code"),
    ("CAL_SENSORS", "Calibration sensors (CALIBRATE.sensor)", "value"),
    ("CAL_STEPS", "Calibration steps (CALIBRATE.step)", "value"),
    ("CAL_VERDICTS", "Calibration verdicts (CAL_STATUS.verdict)", "value"),
)
CRC_CHECK_INPUT = b"123456789"


def wire_size(message, signed=False):
    """Bytes on the wire for one message: frame, one COBS code byte and the delimiter (a
    frame of at most MAX_FRAME bytes is one COBS block), without a host's leading zero. For a
    trimmed reply: with every record sent."""
    return (framing.HEADER_SIZE + message.body.sizeof() + framing.CRC_SIZE + 2
            + (framing.SIGNATURE_SIZE if signed else 0))


def _sizes(message):
    """(body bytes, wire bytes) as text: numbers, or `head + size × count` for a trimmed reply."""
    trim = schema.trim(message)
    if trim is None:
        return str(message.body.sizeof()), str(wire_size(message))
    unsent = trim.max_count * trim.record_size
    return ("%d + %d × count" % (trim.records_at, trim.record_size),
            "%d + %d × count" % (wire_size(message) - unsent, trim.record_size))


def _cell(text):
    return str(text).replace("|", "\\|").replace("\n", " ")


def _table(head, rows):
    out = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    out += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return out


def _range(f):
    if f.text_len:
        return "ASCII, up to %d chars, NUL-padded to %d bytes" % (f.text_len, f.text_len)
    text = "%d..%d" % (f.lo, f.hi)
    if f.scale != 1:
        text += " (%g..%g %s)" % (f.lo * f.scale, f.hi * f.scale, f.unit)
    return text


def _paragraphs(title, rules):
    out = ["## " + title]
    for head, text in rules:
        out += ["", "**%s.** %s" % (head, text)]
    return out


_CHECKED = [
    "## How the two codecs are kept in step",
    "",
    "- `firmware/proto.py` is generated from these declarations (`make proto`); a test fails on drift.",
    "- Property tests (tests/host/test_protocol_firmware.py) draw values for every message from "
    "the ranges above: host-built frames parse on the firmware (Unix port), firmware-built "
    "replies parse on the host, and both build identical bytes.",
    "- The host's fast decoder is tested against construct's parse on every message "
    "(tests/host/test_protocol_codec.py).",
    "- Golden frames (tests/golden/frames.json, written by `make proto` from protocol/golden.py "
    "with this schema's fingerprint and real config items) pin the bytes of HELLO/INFO, "
    "GET_TELEMETRY/TELEMETRY, CONFIG_READ/CONFIG_VALUE, CONFIG_WRITE/CONFIG_ACK, a CONFIG_WRITE "
    "refused with code 4, BACKLOG_READ/BACKLOG, EVENTS_READ/EVENTS, ALARM_ACK/ALARM_STATE and a "
    "signed SET_MODE with its test key, on both sides.",
    "- tests/host/test_protocol_readme.py parses this file's tables back and compares them with "
    "the declarations, and builds a table-driven codec from this file alone (no sxproto) that "
    "round-trips every golden frame.",
    "- Virtual boards answer exactly the config items in the table above, and refuse a write just "
    "outside each item's range with code 4 naming the item (tests/host/test_protocol_boards.py); "
    "the board's length, unknown-type and count answers are pinned in tests/firmware/test_link.py "
    "and test_service.py.",
    "- The MAC is checked against RFC 4231's HMAC-SHA256 vectors on the board and against "
    "CPython's hmac on signed frames (tests/firmware/test_signing.py).",
    "- The board's parser is fuzzed with noise, bit flips, cuts and runs of frames "
    "(tests/firmware/test_codec_fuzz.py).",
    "- `make bench` measures decode rate, wire bytes, reply cost and bus efficiency "
    "(build/bench.json).",
]


def _field_rows(infos, prefix=""):
    rows = []
    for f in infos:
        name = prefix + f.name
        if f.record is not None:
            record = fields.infos(f.record)
            size = struct.calcsize("<" + "".join(r.fmt for r in record))
            if f.trimmed:
                rows.append((name, "count × record (%d B), count ≤ %d" % (size, f.count), "", "", "",
                             "only the `count` records used are sent: the body ends after them"))
            else:
                rows.append((name, "%d × record (%d B)" % (f.count, size), "", "", "",
                             "all %d always sent; the unused ones zero" % f.count))
            rows += _field_rows(record, name + "[].")
        elif f.text_len:
            rows.append((name, "char[%d]" % f.text_len, "", "", _range(f), f.doc))
        else:
            rows.append((name, _TYPES[f.fmt], f.unit, "" if f.scale == 1 else "%g" % f.scale,
                         _range(f), f.doc))
    return rows


def _frame_section():
    # framing.py's docstring: a summary line, then paragraphs; indented ones are the diagram.
    summary, _, rest = framing.__doc__.strip().partition("\n")
    out = ["## Frame", "", summary]
    for para in rest.strip("\n").split("\n\n"):
        lines = para.splitlines()
        if all(line.startswith("    ") for line in lines):
            out += ["", "```"] + [line[4:] for line in lines] + ["```"]
        else:
            out += [""] + lines
    out += [""] + _table(("header field", "type"), [
        (s.name, _TYPES[s.subcon.fmtstr[1:]]) for s in framing.Header.subcons])
    out += [""] + _table(("constant", "value", "meaning"), [
        ("MAX_FRAME", framing.MAX_FRAME, "most bytes of a frame (addr..crc16) before COBS; a board drops "
         "a longer one and counts it in INFO.dropped"),
        ("BROADCAST", "0x%02X" % framing.BROADCAST, "address every board listens to; none answers"),
        ("HOST_ADDR", "0x%02X" % framing.HOST_ADDR, "the host's address: never in a frame (see Addressing)"),
        ("FLAG_REPLY", "0x%02X" % framing.FLAG_REPLY, "set on every answer from a board"),
        ("FLAG_ERROR", "0x%02X" % framing.FLAG_ERROR, "set on ERROR answers"),
        ("FLAG_SIGNED", "0x%02X" % framing.FLAG_SIGNED, "counter and MAC follow the body"),
        ("MAC_SIZE", framing.MAC_SIZE, "bytes of HMAC-SHA256 kept (96 bits)"),
        ("KEY_ID_TEXT", "`%s`" % framing.KEY_ID_TEXT,
         "a key's id is the first 4 bytes (little-endian u32) of its HMAC of this text"),
    ])
    check = framing.crc16(CRC_CHECK_INPUT)
    out += ["", "### Byte order, padding and lengths", "",
            "- Integers in bodies and the header's `seq` are little-endian. The CRC is the one "
            "big-endian field: its high byte comes first. CRC-16/CCITT-FALSE: polynomial 0x1021, "
            "initial value 0xFFFF, no reflection, no final XOR; check value 0x%04X for the ASCII "
            "bytes `%s`." % (check, CRC_CHECK_INPUT.decode()),
            "- Every body has the fixed length its message table gives, and a frame of another "
            "length is refused (a request with ERROR code 2). The one exception is a reply whose "
            "last field is a trimmed record array (BACKLOG, EVENTS): it ends after its `count` "
            "records. A sender zero-fills what it does not use: the unused records of a fixed "
            "array, and every byte of a text field after its last character.",
            "- Text fields are ASCII, NUL-padded to their fixed size; a text of the full size has "
            "no NUL. A receiver strips the trailing NULs.",
            "- COBS: a frame of at most %d bytes is one COBS block, so encoding adds exactly one "
            "byte; with the delimiter a frame of n bytes takes n + 2 on the wire." % framing.MAX_FRAME]
    out += ["", "Writes, signed once a board holds a plant key: %s." % ", ".join(
        "[%s](#%s)" % (m.name, m.name.lower()) for m in messages.WRITES)]
    return out


def _link_section():
    out = ["## Link rules and timing", ""]
    out += _table(("setting", "host default", "board", "meaning"), link_rules.timing_rows())
    for head, text in link_rules.RULES:
        out += ["", "**%s.** %s" % (head, text)]
    return out + [""] + _paragraphs("Addressing, broadcast and counters", link_rules.ADDRESSING)


def _messages_section():
    ordered = sorted(messages.ALL, key=lambda m: (m.type_id & 0x7F, m.type_id))
    out = ["## Messages", "",
           "A request's type id is below 0x80; its reply has the same id with 0x80 set. Integers "
           "are little-endian; a value in engineering units is the raw count times the scale. "
           "Wire bytes count the frame, COBS and the delimiter.", ""]
    out += _table(("id", "message", "body B", "wire B", "what it does"), [
        ("0x%02X" % m.type_id, "[%s](#%s)" % (m.name, m.name.lower())) + _sizes(m) + (m.doc,)
        for m in ordered])
    for m in ordered:
        body, wire = _sizes(m)
        signed = " A write: %d bytes on the wire when signed." % wire_size(m, True) if m in messages.WRITES else ""
        out += ["", "### %s" % m.name, "",
                "`0x%02X`, %s body bytes, %s on the wire. %s%s" % (m.type_id, body, wire, m.doc, signed), ""]
        rows = _field_rows(fields.infos(m.body))
        if rows:
            out += _table(("field", "type", "unit", "scale", "range", "meaning"), rows)
        else:
            out.append("No body.")
    return out


def _enums_section():
    out = ["## Enumerations"]
    for name, title, key in _ENUMS:
        table = getattr(messages, name)
        out += ["", "### %s" % name, "", title + ".", ""]
        out += _table((key, "meaning"), sorted(table.items()))
    out += ["", "### ERROR_CODES", "",
            "Error codes (ERROR.code) and what ERROR.detail holds. A refused request changed nothing. "
            "Every error a CALIBRATE request gets carries `%s` in detail instead." % messages.ERROR_DETAIL_CALIBRATE, ""]
    out += _table(("code", "meaning", "detail", "sent when"), [
        (code, text) + messages.ERROR_DETAILS[code] for code, text in sorted(messages.ERROR_CODES.items())])
    return out


def _alarm_states():
    return ["### Alarm states", "",
            "Each alarm bit has two states, kept apart as ISA-18.2 and EEMUA 191 do: **active** (its "
            "condition is present now: `alarms_active`) and **unacknowledged** (raised since it was "
            "last acknowledged: `alarms_unacked`). Normal is neither; a raise sets both; ALARM_ACK "
            "clears unacknowledged (an active alarm stays active); the condition going clears "
            "active, and an alarm cleared before it was acknowledged stays unacknowledged until it "
            "is. INFO.alarms is the two together (active or unacknowledged)."]


def _config_section():
    out = ["## Configuration items", "",
           "CONFIG_READ and CONFIG_WRITE name items by id; values are raw integers, the engineering "
           "value is raw × scale. A board has exactly these items: any other id is refused with "
           "code 3. A value outside the raw range is refused with code 4, detail the item id; a "
           "CONFIG_WRITE is checked as a whole (all items or none), then the rules below.", ""]
    rows = []
    for i in sorted(config_items.ITEMS, key=lambda i: i.id):
        eng = "" if i.scale == 1 else "%g..%g" % (i.lo * i.scale, i.hi * i.scale)
        rows.append((i.id, i.name, i.unit, "%g" % i.scale, "%d..%d" % (i.lo, i.hi), eng, i.default,
                     i.doc))
    out += _table(("id", "name", "unit", "scale", "raw range", "range in unit", "default (raw)", "meaning"), rows)
    out += ["", "### Configuration rules", "",
            "Cross-field rules, checked on the values after a write; one broken is refused with "
            "code 5, detail the id of the item the rule names.", ""]
    out += _table(("item (ERROR.detail)", "rule"), config_items.rule_texts())
    return out


def generate():
    out = ["# The sxctl wire protocol", "",
           "GENERATED by protocol/docgen.py from the declarations in protocol/: do not edit. "
           "Regenerate with `make proto`; a test fails when this file is stale.", "",
           "Schema fingerprint `0x%08x` (INFO.fingerprint): a host and a board built from "
           "different declarations refuse each other." % schema.fingerprint(), ""]
    out += _frame_section() + [""] + _link_section() + [""] + _messages_section()
    out += [""] + _enums_section() + [""] + _alarm_states() + [""] + _config_section()
    out += [""] + _CHECKED
    return "\n".join(out) + "\n"
