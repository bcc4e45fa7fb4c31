"""Host codec: build and parse frames, and split a byte stream into frames."""
from . import framing, messages


class FrameError(ValueError):
    """A frame that cannot be accepted: bad COBS, too short, bad CRC or unknown type."""

    def __init__(self, kind, text):
        super().__init__(text)
        self.kind = kind  # "crc" or "malformed"


class Decoded:
    __slots__ = ("addr", "flags", "seq", "message", "values")

    def __init__(self, addr, flags, seq, message, values):
        self.addr = addr
        self.flags = flags
        self.seq = seq
        self.message = message
        self.values = values

    def __repr__(self):
        return "Decoded(addr=%d, flags=%d, seq=%d, %s, %r)" % (
            self.addr, self.flags, self.seq, self.message.name, self.values)


def build_frame(addr, flags, seq, message, values=None):
    """The frame bytes (before COBS) for one message."""
    return framing.Frame.build(dict(fields=dict(value=dict(
        header=dict(addr=addr, flags=flags, seq=seq, type=message.type_id),
        body=values or {}))))


def encode(addr, flags, seq, message, values=None, lead=False):
    """Wire bytes for one message; `lead` prefixes a zero to flush a receiver's partial frame."""
    wire = framing.cobs_encode(build_frame(addr, flags, seq, message, values)) + b"\x00"
    return b"\x00" + wire if lead else wire


def decode(cobs_bytes):
    """Parse one COBS-encoded frame (delimiter removed). Raises FrameError."""
    try:
        raw = framing.cobs_decode(cobs_bytes)
    except ValueError as e:
        raise FrameError("malformed", str(e)) from None
    if len(raw) < framing.HEADER_SIZE + framing.CRC_SIZE:
        raise FrameError("malformed", "frame of %d bytes is shorter than a header" % len(raw))
    if framing.crc16(raw[:-2]) != int.from_bytes(raw[-2:], "big"):
        raise FrameError("crc", "CRC mismatch")
    message = messages.BY_ID.get(raw[4])
    if message is None:
        raise FrameError("malformed", "unknown message type 0x%02x" % raw[4])
    body = raw[framing.HEADER_SIZE:-2]
    if len(body) != message.body.sizeof():
        raise FrameError("malformed", "%s body is %d bytes, expected %d" % (
            message.name, len(body), message.body.sizeof()))
    values = plain(message.body.parse(body))
    return Decoded(raw[0], raw[1], int.from_bytes(raw[2:4], "little"), message, values)


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
