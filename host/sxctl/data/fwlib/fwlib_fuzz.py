"""The fuzz model of the board's frame parser, run on MicroPython beside the firmware.

A plain reference model (fwlib_codec's textbook CRC and COBS) says which frames a board must
accept: `expected(stream)` is the model, `Board` a Link whose `check` asserts it did exactly
that, `mutate()` draws damaged input (noise, bit flips, cuts, runs of frames). Shared by the
firmware tests (tests/firmware/test_codec_fuzz.py) and the fault campaign (faults/fw_fuzz.py).
"""
import random

import fwlib_codec as F
import proto
from link import Link
from proto_table import VALUES as _P

ADDR = 5
OTHER = 9
_SIZES = [(_P["MSG_" + n], _P[n + "_SIZE"])
          for n in ("HELLO", "PING", "GET_TELEMETRY", "CONFIG_WRITE", "SET_MODE", "TIME_SYNC",
                    "TELEMETRY", "BACKLOG", "ERROR")]


def rand_bytes(n, zeros=True):
    return bytes(random.getrandbits(8) if zeros else random.randint(1, 255) for _ in range(n))


def valid_frame(addr=None, flags=0):
    msg_type, size = _SIZES[random.randrange(len(_SIZES))]
    if addr is None:
        addr = (ADDR, ADDR, ADDR, OTHER, proto.BROADCAST)[random.randrange(5)]
    return F.frame(addr, flags, random.getrandbits(16), msg_type, rand_bytes(size))


def mutate():
    kind = random.randrange(7)
    if kind == 0:  # line noise, with and without zeros
        return rand_bytes(random.randrange(1, 300), zeros=random.randrange(2) == 0)
    wire = bytearray(valid_frame())
    if kind == 1:  # bit flips
        for _ in range(random.randint(1, 3)):
            wire[random.randrange(len(wire))] ^= 1 << random.randrange(8)
    elif kind == 2:  # cut short, delimiter lost
        wire = wire[:random.randrange(len(wire))]
    elif kind == 3:  # frames back to back, sometimes with a delimiter lost between them
        for _ in range(random.randint(1, 3)):
            if random.randrange(2):
                wire = wire[:-1]
            wire += valid_frame()
    elif kind == 4:  # a byte lost or a byte inserted
        at = random.randrange(len(wire))
        wire = wire[:at] + wire[at + 1:] if random.randrange(2) else \
            wire[:at] + bytes([random.getrandbits(8)]) + wire[at:]
    elif kind == 5:  # another board's answer, or a reply flag set by a glitch
        wire = bytearray(valid_frame(flags=proto.FLAG_REPLY | random.getrandbits(1) << 1))
    else:  # the same write twice (the board takes it for a retry)
        wire = F.frame(ADDR, 0, random.getrandbits(16), proto.MSG_TIME_SYNC, b"\x01\x02\x03\x04") * 2
    return bytes(wire)


def expected(stream):
    """(frames a board at ADDR must hand to its handler, CRC errors, dropped) for a stream that
    starts at a frame boundary, by the reference model."""
    frames = []
    crc_errors = dropped = 0
    for chunk in stream.split(b"\x00"):
        if not chunk:
            continue
        if len(chunk) > proto.MAX_FRAME + 2:
            dropped += 1  # overran the receive buffer
            continue
        raw = F.cobs_decode(chunk)
        if raw is None or len(raw) < proto.HEADER_SIZE + proto.CRC_SIZE:
            dropped += 1
        elif F.crc16_bitwise(raw[:-2]) != raw[-2] << 8 | raw[-1]:
            crc_errors += 1
        elif raw[0] in (ADDR, proto.BROADCAST) and not raw[1] & proto.FLAG_REPLY:
            frames.append(raw[:-2])
    return frames, crc_errors, dropped


class Board:
    """A Link at ADDR whose handler keeps what it was given and checks each frame's CRC again."""

    def __init__(self, chunk=64):
        self.port = F.RecordingPort(chunk)
        self.got = []
        self.link = Link(self.port, ADDR, self.handler)

    def handler(self, link, msg_type, body_len, broadcast):
        end = proto.HEADER_SIZE + body_len
        rx = link.rx
        assert F.crc16_bitwise(rx[:end]) == rx[end] << 8 | rx[end + 1], "accepted a bad CRC"
        assert rx[4] == msg_type and broadcast == (rx[0] == proto.BROADCAST)
        self.got.append(bytes(rx[:end]))
        if not broadcast:
            link.reply_error(msg_type, proto.ERR_UNKNOWN_MESSAGE_TYPE)  # exercise the reply path

    def feed(self, data):
        self.port.feed(data)
        while self.port.pending():
            self.link.poll()

    def check(self, stream):
        """Feed `stream`; assert the Link did what the reference model says."""
        link = self.link
        before = (link.crc_errors, link.dropped, link.duplicates)
        self.got = []
        self.port.written = []  # replies are not what is checked here; keep the heap small
        self.feed(stream)
        frames, crc_errors, dropped = expected(stream)
        assert link.crc_errors - before[0] == crc_errors, (stream, link.crc_errors, before, crc_errors)
        assert link.dropped - before[1] == dropped, (stream, link.dropped, before, dropped)
        # A write repeated with the same sequence number and CRC is answered, not handled again.
        skipped = 0
        got = iter(self.got)
        nxt = next(got, None)
        for frame in frames:
            if frame == nxt:
                nxt = next(got, None)
            else:
                assert frame[4] in proto.WRITE_TYPES, ("frame not handled", frame, stream)
                skipped += 1
        assert nxt is None, ("handled a frame the model refuses", nxt, stream)
        assert link.duplicates - before[2] == skipped
        return self.got
