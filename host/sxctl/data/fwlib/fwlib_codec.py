"""Test support ON MicroPython: message bodies by name, a reference CRC, COBS, a fake port.

Bodies are packed and unpacked from proto's constants alone (looked up by name in
proto_table, since the board's proto has its integer constants folded away); the CRC here is
the plain textbook version, independent of link.py's table; COBS is link.py's, whose oracle is
the `cobs` package from PyPI (tests/host/test_cobs_oracle.py); the port records what a Link writes.

A body travels as a flat list in declaration order: a number or text per field, and a list of
record lists for a record array. Text is str here; the firmware packs bytes.
"""
import struct

from link import cobs_decode_in_place as _cobs_decode_in_place, cobs_encode as _cobs_encode
from proto_table import VALUES as _P

_layouts = {}


def layout(name):
    """(head format, arrays) of a message; arrays are (offset, count, format, size, trimmed) per
    record array, read from proto's NAME_FIELD_OFFSET/_COUNT/_FMT/_SIZE/_TRIMMED constants. A
    trimmed array is sent up to its used records, the number in the body's first field."""
    found = _layouts.get(name)
    if found is not None:
        return found
    fmt = _P.get(name + "_FMT")
    arrays = []
    if fmt is None:
        fmt = _P[name + "_HEAD_FMT"]
        prefix = name + "_"
        for attr in _P:
            if attr.startswith(prefix) and attr.endswith("_OFFSET"):
                base = attr[:-len("_OFFSET")]
                arrays.append((_P[attr], _P[base + "_COUNT"], _P[base + "_FMT"], _P[base + "_SIZE"],
                               _P.get(base + "_TRIMMED", 0)))
        arrays.sort()
    found = _layouts[name] = (fmt, arrays)
    return found


def name_of(msg_type):
    for attr in _P:
        if attr.startswith("MSG_") and _P[attr] == msg_type:
            return attr[4:]
    raise KeyError(msg_type)


def size_of(name):
    return _P[name + "_SIZE"]


def _text_out(values):
    return [v.rstrip(b"\x00").decode() if isinstance(v, bytes) else v for v in values]


def _text_in(values):
    return [v.encode() if isinstance(v, str) else v for v in values]


def unpack(name, buf, offset, body_len=None):
    """The flat list of a message body at buf[offset:]; records past `body_len` (a trimmed
    array's unsent ones) read as zeros."""
    fmt, arrays = layout(name)
    flat = _text_out(struct.unpack_from(fmt, buf, offset))
    zero = bytes(256)
    for at, count, rec_fmt, rec_size, _trimmed in arrays:
        recs = []
        for i in range(count):
            start = at + i * rec_size
            sent = body_len is None or start + rec_size <= body_len
            recs.append(_text_out(struct.unpack_from(rec_fmt, buf if sent else zero, offset + start if sent else 0)))
        flat.append(recs)
    return flat


def pack(name, buf, offset, flat):
    """Pack a flat list as the message body at buf[offset:]; returns the body size."""
    fmt, arrays = layout(name)
    head = len(flat) - len(arrays)
    struct.pack_into(fmt, buf, offset, *_text_in(flat[:head]))
    for (at, count, rec_fmt, rec_size, trimmed), recs in zip(arrays, flat[head:]):
        for i in range(count):
            struct.pack_into(rec_fmt, buf, offset + at + i * rec_size, *_text_in(recs[i]))
        if trimmed:
            return at + flat[0] * rec_size
    return size_of(name)


def crc16_bitwise(data):
    """CRC-16/CCITT-FALSE the textbook way: an oracle independent of the firmware's table."""
    crc = 0xFFFF
    for b in data:
        crc ^= b << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) & 0xFFFF if crc & 0x8000 else (crc << 1) & 0xFFFF
    return crc


def cobs_decode(data):
    """COBS decode of one frame without its delimiter; None if malformed. The firmware's own
    (link.py), which tests/host/test_cobs_oracle.py checks against the `cobs` package."""
    buf = bytearray(data)
    n = _cobs_decode_in_place(buf, len(buf))
    return None if n < 0 else bytes(buf[:n])


def cobs_encode(data):
    """COBS encode, with the zero delimiter (link.py's, checked as cobs_decode is)."""
    out = bytearray(len(data) + len(data) // 254 + 2)
    return bytes(out[:_cobs_encode(data, len(data), out)])


def frame(addr, flags, seq, msg_type, body=b"", crc_flip=0):
    """Wire bytes of one frame, built with the reference CRC."""
    raw = bytes([addr, flags, seq & 0xFF, seq >> 8, msg_type]) + body
    crc = crc16_bitwise(raw) ^ crc_flip
    return cobs_encode(raw + bytes([crc >> 8, crc & 0xFF]))


class RecordingPort:
    """A bus port: reads hand out `incoming` in chunks of at most `chunk` bytes; writes are kept."""

    def __init__(self, chunk=64):
        self.incoming = b""
        self._at = 0
        self.chunk = chunk
        self.written = []

    def feed(self, data):
        self.incoming = self.incoming[self._at:] + data
        self._at = 0

    def pending(self):
        return len(self.incoming) - self._at

    def readinto(self, buf):
        n = min(len(buf), self.chunk, len(self.incoming) - self._at)
        buf[:n] = self.incoming[self._at:self._at + n]
        self._at += n
        return n

    def write(self, buf, n):
        self.written.append(bytes(buf[:n]))
