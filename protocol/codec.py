"""Host codec: build and parse frames, and split a byte stream into frames.

Frames are built by the construct declarations. They are parsed on a fast path: struct
formats derived from the same declarations, tested against construct's own parse. A signed
frame decodes with its counter and MAC; checking the MAC is the board's job.
"""
import binascii
import struct

import construct as c

from . import fields, framing, messages, schema

_MIN_FRAME = framing.HEADER_SIZE + framing.CRC_SIZE
_SIG = framing.SIGNATURE_SIZE


class FrameError(ValueError):
    """A frame that cannot be accepted: bad COBS, too short, bad CRC or unknown type."""

    def __init__(self, kind, text):
        super().__init__(text)
        self.kind = kind  # "crc" or "malformed"


class Decoded:
    __slots__ = ("addr", "flags", "seq", "message", "values", "counter", "mac")

    def __init__(self, addr, flags, seq, message, values, counter=None, mac=None):
        self.addr = addr
        self.flags = flags
        self.seq = seq
        self.message = message
        self.values = values
        self.counter = counter  # a signed frame's counter and MAC; None on an unsigned one
        self.mac = mac

    def __repr__(self):
        return "Decoded(addr=%d, flags=%d, seq=%d, %s, %r%s)" % (
            self.addr, self.flags, self.seq, self.message.name, self.values,
            "" if self.counter is None else ", counter=%d" % self.counter)


def build_frame(addr, flags, seq, message, values=None, key=None, counter=None, mac=None):
    """The frame bytes (before COBS) for one message. With a `counter` the frame is signed
    (FLAG_SIGNED): its MAC is computed with `key`, or taken as given in `mac`."""
    if counter is not None:
        flags |= framing.FLAG_SIGNED
    signed = dict(header=dict(addr=addr, flags=flags, seq=seq, type=message.type_id),
                  body=values or {}, counter=counter)
    frame = framing.Frame.build(dict(fields=dict(value=dict(signed=dict(value=signed), mac=mac))),
                                key=key if counter is not None else None)
    trim = _TRIMS.get(message.type_id)
    if trim is None or counter is not None:
        return frame
    # A trimmed reply ends after its used records: cut the body there and CRC it again.
    used = frame[framing.HEADER_SIZE + trim.count_at]
    if used > trim.max_count:
        raise FrameError("malformed", "%s count %d is above %d" % (message.name, used, trim.max_count))
    data = frame[:framing.HEADER_SIZE + trim.body_size(used)]
    return data + framing.crc16(data).to_bytes(2, "big")


def encode(addr, flags, seq, message, values=None, lead=False, key=None, counter=None):
    """Wire bytes for one message; `lead` prefixes a zero to flush a receiver's partial frame.
    With `key` and `counter` the frame is signed."""
    wire = framing.cobs_encode(build_frame(addr, flags, seq, message, values, key, counter)) + b"\x00"
    return b"\x00" + wire if lead else wire


class _Layout:
    """One message body as a precompiled struct, derived from its declarations: the fast path
    unpacks with it and names the values as construct would."""

    def __init__(self, message):
        self.message = message
        self.struct = struct.Struct(schema.struct_format(message))
        self.frame_size = framing.HEADER_SIZE + self.struct.size + framing.CRC_SIZE
        infos = fields.infos(message.body)
        self.names = tuple(f.name for f in infos)
        self.flat = not any(f.text_len or f.record is not None for f in infos)
        # For bodies with text or records: (name, converter) pairs, each converter taking the
        # values it needs from an iterator over the unpacked tuple.
        self.plan = [(f.name, _converter(f)) for f in infos]

    def values(self, frame):
        flat = self.struct.unpack_from(frame, framing.HEADER_SIZE)
        if self.flat:
            return dict(zip(self.names, flat))
        it = iter(flat)
        return {name: convert(it) for name, convert in self.plan}


def _converter(info):
    if info.text_len:
        return _text
    if info.record is not None:
        sub = [(f.name, _converter(f)) for f in fields.infos(info.record)]
        count = info.count
        return lambda it: [{name: convert(it) for name, convert in sub} for _ in range(count)]
    return next


def _text(it):
    # As construct's PaddedString: strip the NUL padding, then ASCII.
    try:
        return next(it).rstrip(b"\x00").decode("ascii")
    except UnicodeDecodeError:
        raise FrameError("malformed", "text field is not ASCII") from None


_LAYOUTS = {m.type_id: _Layout(m) for m in messages.ALL}
_TRIMS = {m.type_id: schema.trim(m) for m in messages.ALL if schema.trim(m) is not None}


def _untrim(raw, message, signed):
    """A trimmed reply's frame with its body padded back to full size, or FrameError if its
    length does not match its count; any other frame as it is."""
    trim = _TRIMS.get(message.type_id)
    if trim is None or signed or len(raw) <= framing.HEADER_SIZE + trim.count_at + framing.CRC_SIZE:
        return raw
    used = raw[framing.HEADER_SIZE + trim.count_at]
    if used > trim.max_count:
        raise FrameError("malformed", "%s count %d is above %d" % (message.name, used, trim.max_count))
    size = trim.body_size(used)
    if len(raw) != _MIN_FRAME + size:
        raise FrameError("malformed", "%s body is %d bytes, expected %d for %d records" % (
            message.name, len(raw) - _MIN_FRAME, size, used))
    pad = (trim.max_count - used) * trim.record_size
    return raw[:framing.HEADER_SIZE + size] + bytes(pad) + raw[-framing.CRC_SIZE:]


def _cobs_decode(data):
    """COBS decode without a per-byte loop: each block's code byte marks where a zero was, so
    overwrite the codes with zeros and drop the first. Blocks of 254 (code 255) carry no zero
    and a zero byte is no code at all: neither occurs in a frame of MAX_FRAME from a
    FrameSplitter, so those take the general decoder."""
    buf = bytearray(data)
    if b"\x00" in buf:
        return framing.cobs_decode(data)
    n = len(buf)
    i = 0
    while i < n:
        code = buf[i]
        if code == 255:
            return framing.cobs_decode(data)
        buf[i] = 0
        i += code
    if i != n:
        raise ValueError("malformed COBS block: the last one runs past the end")
    del buf[:1]
    return buf


def decode(cobs_bytes):
    """Parse one COBS-encoded frame (delimiter removed) on the fast path. Raises FrameError."""
    try:
        raw = _cobs_decode(cobs_bytes)
    except ValueError as e:
        raise FrameError("malformed", str(e)) from None
    if len(raw) < _MIN_FRAME:
        raise FrameError("malformed", "frame of %d bytes is shorter than a header" % len(raw))
    # CRC-16/CCITT-FALSE run over a frame with its big-endian CRC appended leaves zero.
    if binascii.crc_hqx(raw, 0xFFFF):
        raise FrameError("crc", "CRC mismatch")
    layout = _LAYOUTS.get(raw[4])
    if layout is None:
        raise FrameError("malformed", "unknown message type 0x%02x" % raw[4])
    signed = raw[1] & framing.FLAG_SIGNED
    raw = _untrim(raw, layout.message, signed)
    if len(raw) != layout.frame_size + (_SIG if signed else 0):
        raise FrameError("malformed", "%s body is %d bytes, expected %d" % (
            layout.message.name, len(raw) - _MIN_FRAME - (_SIG if signed else 0), layout.struct.size))
    decoded = Decoded(raw[0], raw[1], raw[2] | raw[3] << 8, layout.message, layout.values(raw))
    if signed:
        _signature(decoded, raw)
    return decoded


def _signature(decoded, raw):
    at = len(raw) - framing.CRC_SIZE - _SIG
    decoded.counter = int.from_bytes(raw[at:at + 4], "little")
    decoded.mac = bytes(raw[at + 4:at + _SIG])


def decode_construct(cobs_bytes):
    """`decode` the plain way: the general COBS decoder and construct's parse of the body. The
    reference the fast path is tested against; it refuses the same frames for the same reason."""
    try:
        raw = framing.cobs_decode(cobs_bytes)
    except ValueError as e:
        raise FrameError("malformed", str(e)) from None
    if len(raw) < _MIN_FRAME:
        raise FrameError("malformed", "frame of %d bytes is shorter than a header" % len(raw))
    if framing.crc16(raw[:-2]) != int.from_bytes(raw[-2:], "big"):
        raise FrameError("crc", "CRC mismatch")
    message = messages.BY_ID.get(raw[4])
    if message is None:
        raise FrameError("malformed", "unknown message type 0x%02x" % raw[4])
    signed = raw[1] & framing.FLAG_SIGNED
    raw = _untrim(raw, message, signed)
    body = raw[framing.HEADER_SIZE:-2 - (_SIG if signed else 0)]
    if len(body) != message.body.sizeof():
        raise FrameError("malformed", "%s body is %d bytes, expected %d" % (
            message.name, len(body), message.body.sizeof()))
    try:
        values = plain(message.body.parse(body))
    except (c.ConstructError, UnicodeDecodeError) as e:
        raise FrameError("malformed", str(e)) from None
    decoded = Decoded(raw[0], raw[1], int.from_bytes(raw[2:4], "little"), message, values)
    if signed:
        _signature(decoded, raw)
    return decoded


def plain(value):
    """construct's Containers and ListContainers as plain dicts and lists."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items() if not k.startswith("_")}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


class FrameSplitter:
    """Turns a byte stream into COBS frames at each zero byte; keeps the partial tail."""

    def __init__(self, max_frame=framing.MAX_FRAME + 2):
        self._buf = bytearray()
        self._max = max_frame
        self.overruns = 0

    def feed(self, data):
        self._buf += data
        frames = []
        while True:
            end = self._buf.find(b"\x00")
            if end < 0:
                break
            if end:
                frames.append(bytes(self._buf[:end]))
            del self._buf[:end + 1]
        if len(self._buf) > self._max:
            # Noise with no delimiter: drop it rather than grow without bound.
            self.overruns += 1
            self._buf.clear()
        return frames
