"""Generate protocol/README.md, the protocol reference, from the declarations.

`make proto` (sxproto.codegen) rewrites it with the firmware codec; a test fails if the
committed file differs from what this produces.
"""
import pathlib
import struct

from . import fields, framing, messages, schema

TARGET = pathlib.Path(__file__).resolve().parent / "README.md"
_TYPES = {"B": "u8", "b": "i8", "H": "u16", "h": "i16", "I": "u32", "i": "i32"}
_ENUMS = (
    ("MODES", "Modes (TELEMETRY.mode, SET_MODE.mode)", "value"),
    ("ALARMS", "Alarm bits (TELEMETRY.alarms, ALARM_ACK.mask, EVENT.alarm)", "bit"),
    ("EVENT_CODES", "Event codes (EVENTS record code)", "code"),
    ("CAL_SENSORS", "Calibration sensors (CALIBRATE.sensor)", "value"),
    ("CAL_STEPS", "Calibration steps (CALIBRATE.step)", "value"),
    ("CAL_VERDICTS", "Calibration verdicts (CAL_STATUS.verdict)", "value"),
    ("ERROR_CODES", "Error codes (ERROR.code)", "code"),
)


def wire_size(message, signed=False):
    """Bytes on the wire for one message: frame, one COBS code byte and the delimiter (a
    frame of at most MAX_FRAME bytes is one COBS block), without a host's leading zero."""
    return (framing.HEADER_SIZE + message.body.sizeof() + framing.CRC_SIZE + 2
            + (framing.SIGNATURE_SIZE if signed else 0))


def _cell(text):
    return str(text).replace("|", "\\|").replace("\n", " ")


def _table(head, rows):
    out = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    out += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return out


def _range(f):
    if f.text_len:
        return "ASCII, no NUL, up to %d chars" % f.text_len
    text = "%d..%d" % (f.lo, f.hi)
    if f.scale != 1:
        text += " (%g..%g %s)" % (f.lo * f.scale, f.hi * f.scale, f.unit)
    return text


_CHECKED = [
    "## How the two codecs are kept in step",
    "",
    "- `firmware/proto.py` is generated from these declarations (`make proto`); a test fails on drift.",
    "- Property tests (tests/host/test_protocol_firmware.py) draw values for every message from "
    "the ranges above: host-built frames parse on the firmware (Unix port), firmware-built "
    "replies parse on the host, and both build identical bytes.",
    "- The host's fast decoder is tested against construct's parse on every message "
    "(tests/host/test_protocol_codec.py).",
    "- Golden frames (tests/golden/frames.json) pin the bytes of HELLO, INFO, TELEMETRY, "
    "CONFIG_WRITE, BACKLOG and ERROR on both sides, and of a signed SET_MODE with its key.",
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
            rows.append((name, "%d × record (%d B)" % (f.count, size), "", "", "", f.doc))
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
        ("MAX_FRAME", framing.MAX_FRAME, "bytes before COBS, so encoding adds exactly one byte"),
        ("BROADCAST", "0x%02X" % framing.BROADCAST, "address every board listens to; none answers"),
        ("HOST_ADDR", "0x%02X" % framing.HOST_ADDR, "the host's address"),
        ("FLAG_REPLY", "0x%02X" % framing.FLAG_REPLY, "set on every answer from a board"),
        ("FLAG_ERROR", "0x%02X" % framing.FLAG_ERROR, "set on ERROR answers"),
        ("FLAG_SIGNED", "0x%02X" % framing.FLAG_SIGNED, "counter and MAC follow the body"),
        ("MAC_SIZE", framing.MAC_SIZE, "bytes of HMAC-SHA256 kept (96 bits)"),
        ("KEY_ID_TEXT", "`%s`" % framing.KEY_ID_TEXT,
         "a key's id is the first 4 bytes (little-endian u32) of its HMAC of this text"),
    ])
    out += ["", "Writes, signed once a board holds a plant key: %s." % ", ".join(
        "[%s](#%s)" % (m.name, m.name.lower()) for m in messages.WRITES)]
    return out


def _messages_section():
    ordered = sorted(messages.ALL, key=lambda m: (m.type_id & 0x7F, m.type_id))
    out = ["## Messages", "",
           "A request's type id is below 0x80; its reply has the same id with 0x80 set. Integers "
           "are little-endian; a value in engineering units is the raw count times the scale. "
           "Wire bytes count the frame, COBS and the delimiter.", ""]
    out += _table(("id", "message", "body B", "wire B", "what it does"), [
        ("0x%02X" % m.type_id, "[%s](#%s)" % (m.name, m.name.lower()), m.body.sizeof(),
         wire_size(m), m.doc) for m in ordered])
    for m in ordered:
        signed = " A write: %d bytes on the wire when signed." % wire_size(m, True) if m in messages.WRITES else ""
        out += ["", "### %s" % m.name, "",
                "`0x%02X`, %d body bytes, %d on the wire. %s%s" % (
                    m.type_id, m.body.sizeof(), wire_size(m), m.doc, signed), ""]
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
    return out


def generate():
    out = ["# The sxctl wire protocol", "",
           "GENERATED by protocol/docgen.py from the declarations in protocol/: do not edit. "
           "Regenerate with `python -m sxproto.docgen`; a test fails when this file is stale.", "",
           "Schema fingerprint `0x%08x` (INFO.fingerprint): a host and a board built from "
           "different declarations refuse each other." % schema.fingerprint(), ""]
    out += _frame_section() + [""] + _messages_section() + [""] + _enums_section()
    out += [""] + _CHECKED
    return "\n".join(out) + "\n"
