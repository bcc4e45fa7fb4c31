"""Fuzzing the board's frame parser: noise, bit flips, cuts and runs of frames through Link.poll.

The reference model (fwlib_fuzz, on fwlib_codec's textbook CRC and COBS) says which frames a
board must accept; the Link must accept exactly those, count the rest, and decode the good
frame that follows any damage. The generator is seeded, so a failure repeats.
"""
import random

import fwlib_codec as F
import proto
from fwlib_fuzz import ADDR, Board, mutate, valid_frame

MUTATED_FRAMES = 3000


def test_mutated_frames_are_refused_or_accepted_exactly_as_the_model_says():
    random.seed(20240611)
    board = Board()
    handled = 0
    for i in range(MUTATED_FRAMES):
        board.port.chunk = random.randint(1, 64)  # frames split anywhere across reads
        # What follows the damage: a delimiter (the host's lead zero) and a good frame.
        good = F.frame(ADDR, 0, i & 0xFFFF, proto.MSG_PING, bytes([i & 0xFF, i >> 8, 0xA5, 0x5A]))
        got = board.check(mutate() + b"\x00" + good)
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
    stream = b"".join(valid_frame(addr=ADDR) for _ in range(20))
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
