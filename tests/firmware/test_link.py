"""Link layer on the board: CRC, COBS and the frame state machine."""
import micropython

import proto
from link import Link, cobs_decode_in_place, cobs_encode, crc16


class FakePort:
    def __init__(self):
        self.incoming = bytearray()
        self.out = bytearray(300)  # preallocated, so writing allocates nothing
        self.out_len = 0

    def readinto(self, buf):
        n = min(len(buf), len(self.incoming))
        buf[:n] = self.incoming[:n]
        self.incoming = self.incoming[n:]
        return n

    def write(self, buf, n):
        for i in range(n):
            self.out[i] = buf[i]
        self.out_len = n


def test_crc16_check_value():
    # CRC-16/CCITT-FALSE check value from the catalogue of CRC parameters.
    assert crc16(b"123456789", 9) == 0x29B1


def test_cobs_round_trip_with_zeros():
    src = bytes([0, 1, 0, 0, 255, 7, 0])
    dst = bytearray(20)
    n = cobs_encode(src, len(src), dst)
    assert dst[n - 1] == 0
    for i in range(n - 1):
        assert dst[i] != 0
    buf = bytearray(dst[:n - 1])
    assert cobs_decode_in_place(buf, len(buf)) == len(src)
    assert bytes(buf[:len(src)]) == src


def test_cobs_rejects_block_past_end():
    buf = bytearray([5, 1, 2])
    assert cobs_decode_in_place(buf, 3) == -1


def _frame(addr, seq, msg, body=b"", crc_flip=0):
    raw = bytearray([addr, 0, seq & 0xFF, seq >> 8, msg]) + body
    crc = crc16(raw, len(raw)) ^ crc_flip
    raw += bytes([crc >> 8, crc & 0xFF])
    out = bytearray(len(raw) + 4)
    n = cobs_encode(raw, len(raw), out)
    return bytes(out[:n])


def _link(addr=3):
    got = []
    port = FakePort()

    def handler(link, msg_type, body_len, broadcast):
        got.append((msg_type, body_len, broadcast, link._seq))
    return Link(port, addr, handler), port, got


def test_frame_for_this_board_is_handled():
    link, port, got = _link()
    port.incoming += _frame(3, 0x1234, proto.MSG_PING, b"\x01\x02\x03\x04")
    link.poll()
    assert got == [(proto.MSG_PING, 4, False, 0x1234)]
    assert link.rx_frames == 1


def test_other_addresses_ignored_broadcast_flagged():
    link, port, got = _link()
    port.incoming += _frame(4, 1, proto.MSG_HELLO) + _frame(proto.BROADCAST, 2, proto.MSG_HELLO)
    link.poll()
    assert got == [(proto.MSG_HELLO, 0, True, 2)]


def test_bad_crc_counted_and_next_frame_decodes():
    link, port, got = _link()
    port.incoming += _frame(3, 1, proto.MSG_HELLO, crc_flip=0x0400) + _frame(3, 2, proto.MSG_HELLO)
    link.poll()
    assert link.crc_errors == 1
    assert got == [(proto.MSG_HELLO, 0, False, 2)]


def test_overlong_noise_dropped_then_resync():
    link, port, got = _link()
    port.incoming += bytes([7] * 600) + b"\x00" + _frame(3, 9, proto.MSG_HELLO)
    while port.incoming:
        link.poll()
    assert link.dropped == 1
    assert got == [(proto.MSG_HELLO, 0, False, 9)]


def test_reply_frame_is_valid_and_allocation_free():
    link, port, got = _link()
    port.incoming += _frame(3, 0x0102, proto.MSG_PING, b"abcd")
    link.poll()
    link.tx[proto.HEADER_SIZE:proto.HEADER_SIZE + 4] = b"abcd"
    link.reply(proto.MSG_PONG, 4)  # warm up
    micropython.heap_lock()
    try:
        link.reply(proto.MSG_PONG, 4)
    finally:
        micropython.heap_unlock()
    wire = bytearray(port.out[:port.out_len - 1])
    n = cobs_decode_in_place(wire, len(wire))
    assert n == proto.HEADER_SIZE + 4 + proto.CRC_SIZE
    assert wire[0] == 3 and wire[1] & proto.FLAG_REPLY and wire[4] == proto.MSG_PONG
    assert wire[2] == 0x02 and wire[3] == 0x01
    assert crc16(wire, n - 2) == (wire[n - 2] << 8) | wire[n - 1]
