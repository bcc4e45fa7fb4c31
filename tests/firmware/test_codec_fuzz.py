"""Fuzzing the board's frame parser: noise, bit flips, cuts and runs of frames through Link.poll.

A plain reference model (fwlib_codec's textbook CRC and COBS) says which frames a board must
accept; the Link must accept exactly those, count the rest, and decode the good frame that
follows any damage. The generator is seeded, so a failure repeats.
"""
import random

import fwlib_codec as F
import proto
from link import Link
from proto_table import VALUES as _P

ADDR = 5
OTHER = 9
MUTATED_FRAMES = 3000
_SIZES = [(_P["MSG_" + n], _P[n + "_SIZE"])
          for n in ("HELLO", "PING", "GET_TELEMETRY", "CONFIG_WRITE", "SET_MODE", "TIME_SYNC",
                    "TELEMETRY", "BACKLOG", "ERROR")]


def _rand_bytes(n, zeros=True):
    return bytes(random.getrandbits(8) if zeros else random.randint(1, 255) for _ in range(n))


def _valid_frame(addr=None, flags=0):
    msg_type, size = _SIZES[random.randrange(len(_SIZES))]
    if addr is None:
        addr = (ADDR, ADDR, ADDR, OTHER, proto.BROADCAST)[random.randrange(5)]
    return F.frame(addr, flags, random.getrandbits(16), msg_type, _rand_bytes(size))


def _mutate():
    kind = random.randrange(7)
    if kind == 0:  # line noise, with and without zeros
        return _rand_bytes(random.randrange(1, 300), zeros=random.randrange(2) == 0)
    wire = bytearray(_valid_frame())
    if kind == 1:  # bit flips
        for _ in range(random.randint(1, 3)):
            wire[random.randrange(len(wire))] ^= 1 << random.randrange(8)
    elif kind == 2:  # cut short, delimiter lost
        wire = wire[:random.randrange(len(wire))]
    elif kind == 3:  # frames back to back, sometimes with a delimiter lost between them
        for _ in range(random.randint(1, 3)):
            if random.randrange(2):
                wire = wire[:-1]
            wire += _valid_frame()
    elif kind == 4:  # a byte lost or a byte inserted
        at = random.randrange(len(wire))
        wire = wire[:at] + wire[at + 1:] if random.randrange(2) else \
            wire[:at] + bytes([random.getrandbits(8)]) + wire[at:]
    elif kind == 5:  # another board's answer, or a reply flag set by a glitch
        wire = bytearray(_valid_frame(flags=proto.FLAG_REPLY | random.getrandbits(1) << 1))
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


def test_mutated_frames_are_refused_or_accepted_exactly_as_the_model_says():
    random.seed(20240611)
    board = Board()
    handled = 0
    for i in range(MUTATED_FRAMES):
        board.port.chunk = random.randint(1, 64)  # frames split anywhere across reads
        # What follows the damage: a delimiter (the host's lead zero) and a good frame.
        good = F.frame(ADDR, 0, i & 0xFFFF, proto.MSG_PING, bytes([i & 0xFF, i >> 8, 0xA5, 0x5A]))
        got = board.check(_mutate() + b"\x00" + good)
        assert got and got[-1] == F.cobs_decode(good[:-1])[:-2], "the good frame after damage was lost"
        handled += len(got) - 1
    link = board.link
    print("fuzz: %d handled, %d CRC errors, %d dropped, %d duplicates, %d replies" % (
        handled, link.crc_errors, link.dropped, link.duplicates, link.tx_frames))
    # Every outcome was exercised, not only the easy ones.
    assert handled > 500 and link.crc_errors > 500 and link.dropped > 500


def test_every_single_bit_flip_is_refused():
    body = bytes(range(1, proto.TELEMETRY_SIZE + 1))
    wire = F.frame(ADDR, 0, 0x3344, proto.MSG_TELEMETRY, body)
    board = Board()
    for at in range(len(wire) - 1):
        for bit in range(8):
            damaged = bytearray(wire)
            damaged[at] ^= 1 << bit
            assert board.check(bytes(damaged) + b"\x00" + wire)[:-1] == []
    assert board.link.crc_errors + board.link.dropped >= (len(wire) - 1) * 8


def test_every_truncation_is_refused_and_the_next_frame_decodes():
    board = Board()
    for cut in range(1, proto.CONFIG_WRITE_SIZE + 9):
        # A new sequence number each time, or the board would take it for a retry.
        wire = F.frame(ADDR, 0, cut, proto.MSG_CONFIG_WRITE, bytes(proto.CONFIG_WRITE_SIZE))
        got = board.check(wire[:cut] + b"\x00" + wire)
        assert got == [F.cobs_decode(wire[:-1])[:-2]]


def test_frames_back_to_back_in_any_read_size():
    random.seed(7)
    stream = b"".join(_valid_frame(addr=ADDR) for _ in range(20))
    for chunk in (1, 3, 64):
        board = Board(chunk)
        assert len(board.check(stream)) == 20


def test_noise_longer_than_a_frame_is_dropped_once():
    board = Board()
    board.check(b"\x55" * 1000 + b"\x00" + F.frame(ADDR, 0, 1, proto.MSG_HELLO))
    assert board.link.dropped == 1 and len(board.got) == 1


def test_largest_frame_is_accepted_and_a_longer_one_dropped():
    board = Board()
    body = b"\x11" * (proto.MAX_FRAME - proto.HEADER_SIZE - proto.CRC_SIZE)
    largest = F.frame(ADDR, 0, 1, proto.MSG_PING, body)
    assert len(largest) == proto.MAX_FRAME + 2  # one COBS code byte and the delimiter
    assert len(board.check(largest)) == 1
    # Two bytes more no longer fit the receive buffer: dropped whole, though its CRC is good.
    assert board.check(F.frame(ADDR, 0, 2, proto.MSG_PING, body + b"\x11\x11")) == []
    assert board.link.dropped == 1
