"""Signed writes on the board: HMAC-SHA256, the link's guard, counters across a reset."""
import gc
import micropython
import os
import struct

import fwlib_codec as F
import proto
import signing
from link import Link

KEY = bytes(range(32))  # the golden frame's test key
OTHER_KEY = bytes(range(100, 132))
ADDR = 3
SET_MODE_BODY = struct.pack("<BH", 2, 0xFFFF)
# tests/golden/frames.json "SET_MODE": signed with KEY, counter 123456789, seq 258.
GOLDEN_SIGNED = "1b030402010702ffff15cd5b071f4d6930b252d01077d20151d5d800"
GOLDEN_COUNTER = 123456789

# RFC 4231 test cases 1-4, 6 and 7 (key, data, HMAC-SHA256), and 5 (truncated to 128 bits).
RFC4231 = (
    (b"\x0b" * 20, b"Hi There", "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"),
    (b"Jefe", b"what do ya want for nothing?", "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"),
    (b"\xaa" * 20, b"\xdd" * 50, "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe"),
    (bytes(range(1, 26)), b"\xcd" * 50, "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b"),
    (b"\x0c" * 20, b"Test With Truncation", "a3b6167473100ee06e0c796c2955552b"),
    (b"\xaa" * 131, b"Test Using Larger Than Block-Size Key - Hash Key First",
     "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"),
    (b"\xaa" * 131, b"This is a test using a larger than block-size key and a larger than block-size data. "
     b"The key needs to be hashed before being used by the HMAC algorithm.",
     "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2"),
)

_slot_no = [0]


def _slots():
    # Fresh counter files per test, in the sandboxed board root.
    _slot_no[0] += 1
    return ("/ctr%d.a" % _slot_no[0], "/ctr%d.b" % _slot_no[0])


class CountingOpener:
    """open() that counts the files opened for writing (flash writes)."""

    def __init__(self):
        self.writes = 0

    def __call__(self, path, mode="r"):
        if "w" in mode:
            self.writes += 1
        return open(path, mode)


def _hex(data):
    return "".join("%02x" % b for b in data)


def signed(seq, counter, key=KEY, msg=proto.MSG_SET_MODE, body=SET_MODE_BODY, addr=ADDR, flip=0):
    """Wire bytes of a signed frame; `flip` xors the MAC's first byte (a forgery)."""
    head = bytes([addr, proto.FLAG_SIGNED, seq & 0xFF, seq >> 8, msg]) + body + struct.pack("<I", counter)
    ipad, opad = signing.pads(key)
    mac = bytearray(signing.hmac_sha256(ipad, opad, head)[:proto.MAC_SIZE])
    mac[0] ^= flip
    return F.frame(addr, proto.FLAG_SIGNED, seq, msg, body + struct.pack("<I", counter) + mac)


def unsigned(seq, msg=proto.MSG_SET_MODE, body=SET_MODE_BODY, addr=ADDR):
    return F.frame(addr, 0, seq, msg, body)


class Board:
    """A Link with a guard; the handler answers every request with an ACK and keeps its body."""

    def __init__(self, key=KEY, slots=None, opener=open):
        self.port = F.RecordingPort()
        self.applied = []
        self.link = Link(self.port, ADDR, self.handler)
        self.slots = slots or _slots()
        self.opener = opener
        self.link.guard = None if key is None else signing.Signing(key, self.slots, opener)

    def handler(self, link, msg_type, body_len, broadcast):
        self.applied.append((msg_type, bytes(link.rx[proto.HEADER_SIZE:proto.HEADER_SIZE + body_len])))
        link.tx[proto.HEADER_SIZE] = msg_type
        link.reply(proto.MSG_ACK, proto.ACK_SIZE)

    def send(self, wire):
        """The answer's (type, ERROR code or None)."""
        self.port.written = []
        self.port.feed(wire)
        while self.port.pending():
            self.link.poll()
        if not self.port.written:
            return None
        raw = F.cobs_decode(self.port.written[-1][:-1])
        return raw[4], (raw[proto.HEADER_SIZE + 1] if raw[4] == proto.MSG_ERROR else None)

    def reset(self):
        """The board after a reset: a new link and guard, the same counter files."""
        return Board(KEY, self.slots, self.opener)


ACK = (proto.MSG_ACK, None)


def refused(code):
    return (proto.MSG_ERROR, code)


def test_hmac_matches_rfc4231():
    for key, data, expected in RFC4231:
        ipad, opad = signing.pads(key)
        mac = signing.hmac_sha256(ipad, opad, data)
        assert _hex(mac)[:len(expected)] == expected, key


def test_golden_signed_frame_is_accepted_and_its_body_applied():
    board = Board()
    wire = bytes(int(GOLDEN_SIGNED[i:i + 2], 16) for i in range(0, len(GOLDEN_SIGNED), 2))
    assert board.send(wire) == ACK
    assert board.applied == [(proto.MSG_SET_MODE, SET_MODE_BODY)]
    assert board.link.guard.counter == GOLDEN_COUNTER


def test_no_key_file_means_no_guard_and_signed_frames_still_apply():
    assert signing.load("/no-such.key", _slots()) is None
    board = Board(key=None)
    assert board.send(signed(1, 5)) == ACK and board.send(unsigned(2)) == ACK
    assert board.applied == [(proto.MSG_SET_MODE, SET_MODE_BODY)] * 2


def test_key_file_is_loaded_with_its_id():
    with open("/test.key", "wb") as f:
        f.write(KEY)
    guard = signing.load("/test.key", _slots())
    ipad, opad = signing.pads(KEY)
    expected = struct.unpack("<I", signing.hmac_sha256(ipad, opad, b"sxctl key id")[:4])[0]
    assert guard.key_id == expected and guard.key_id not in (0, signing.UNUSABLE)
    os.remove("/test.key")


def test_unsigned_write_refused_and_counted_reads_stay_open():
    board = Board()
    assert board.send(unsigned(1)) == refused(proto.ERR_SIGNATURE_REQUIRED)
    assert board.send(unsigned(2, proto.MSG_PING, b"abcd")) == ACK
    assert board.send(unsigned(3, proto.MSG_HELLO, b"")) == ACK
    assert board.applied == [(proto.MSG_PING, b"abcd"), (proto.MSG_HELLO, b"")]
    assert board.link.guard.unsigned == 1


def test_forged_and_wrong_key_refused_and_counted():
    board = Board()
    assert board.send(signed(1, 100, flip=0x01)) == refused(proto.ERR_BAD_SIGNATURE)
    assert board.send(signed(2, 100, key=OTHER_KEY)) == refused(proto.ERR_BAD_SIGNATURE)
    # A body changed after signing (CRC made good again) is a forgery too.
    good = F.cobs_decode(signed(3, 100)[:-1])
    body_changed = bytearray(good[:-2])
    body_changed[proto.HEADER_SIZE] = 1  # mode
    assert board.send(F.frame(ADDR, proto.FLAG_SIGNED, 3, proto.MSG_SET_MODE,
                              bytes(body_changed[proto.HEADER_SIZE:]))) == refused(proto.ERR_BAD_SIGNATURE)
    assert board.applied == [] and board.link.guard.bad_signature == 3
    assert board.send(signed(4, 100)) == ACK  # the forgeries used up nothing


def test_replay_refused_but_a_retry_is_answered_as_a_duplicate():
    board = Board()
    first = signed(10, 1000)
    assert board.send(first) == ACK
    assert board.send(first) == ACK  # the host's retry: same seq, counter, MAC and CRC
    assert len(board.applied) == 1 and board.link.duplicates == 1 and board.link.guard.replayed == 0
    assert board.send(signed(11, 1001)) == ACK
    assert board.send(first) == refused(proto.ERR_REPLAYED)  # no longer the last write: a replay
    assert board.send(signed(12, 1001)) == refused(proto.ERR_REPLAYED)  # a used counter, new seq
    assert board.send(signed(13, 999)) == refused(proto.ERR_REPLAYED)
    assert len(board.applied) == 2 and board.link.guard.replayed == 3


def test_refused_frames_do_not_displace_the_answer_kept_for_a_retry():
    board = Board()
    write = signed(20, 2000)
    assert board.send(write) == ACK
    assert board.send(signed(21, 2001, flip=0x80)) == refused(proto.ERR_BAD_SIGNATURE)
    assert board.send(unsigned(22)) == refused(proto.ERR_SIGNATURE_REQUIRED)
    assert board.send(write) == ACK  # still the retry of the last write applied
    assert len(board.applied) == 1 and board.link.duplicates == 1


def test_broadcast_writes_are_checked_and_refusals_not_answered():
    board = Board()
    sync = struct.pack("<I", 1718000000)
    assert board.send(unsigned(30, proto.MSG_TIME_SYNC, sync, addr=proto.BROADCAST)) is None
    assert board.send(signed(31, 3000, msg=proto.MSG_TIME_SYNC, body=sync, addr=proto.BROADCAST)) == ACK
    assert board.applied == [(proto.MSG_TIME_SYNC, sync)] and board.link.guard.unsigned == 1


def test_counter_floor_is_stored_once_per_reserve_and_survives_a_reset():
    opener = CountingOpener()
    board = Board(opener=opener)
    for k in range(50):
        assert board.send(signed(100 + k, 5000 + k)) == ACK
    assert opener.writes == 1 and board.link.guard.stored == 5000 + signing.RESERVE
    after = board.reset()
    guard = after.link.guard
    assert guard.counter == guard.stored == 5000 + signing.RESERVE
    assert after.send(signed(200, 5049)) == refused(proto.ERR_REPLAYED)  # accepted before the reset
    assert after.send(signed(201, 5050)) == refused(proto.ERR_REPLAYED)  # reserved: may have been used
    assert after.send(signed(202, guard.stored + 1)) == ACK
    assert opener.writes == 2 and guard.stored == 5001 + 2 * signing.RESERVE
    # A write far ahead stores a new floor before it is applied.
    assert after.send(signed(203, 10 ** 9)) == ACK and guard.stored == 10 ** 9 + signing.RESERVE


def test_a_torn_counter_slot_leaves_the_other():
    board = Board()
    assert board.send(signed(1, 100)) == ACK  # slot 0 holds 100 + RESERVE
    assert board.send(signed(2, 100 + signing.RESERVE + 1)) == ACK  # slot 1 holds more
    with open(board.slots[1], "wb") as f:
        f.write(b"\x01\x02")  # a reset while slot 1 was written
    after = board.reset()
    assert after.link.guard.stored == 100 + signing.RESERVE
    assert after.send(signed(3, 100 + signing.RESERVE)) == refused(proto.ERR_REPLAYED)


def test_counter_at_the_top_is_the_last_one():
    board = Board()
    assert board.send(signed(1, 0xFFFFFFFF)) == ACK
    assert board.link.guard.stored == 0xFFFFFFFF
    assert board.send(signed(2, 0xFFFFFFFF)) == refused(proto.ERR_REPLAYED)


def test_an_unusable_key_file_refuses_every_write():
    with open("/short.key", "wb") as f:
        f.write(b"too short")
    guard = signing.load("/short.key", _slots())
    assert guard.key_id == signing.UNUSABLE
    board = Board()
    board.link.guard = guard
    assert board.send(signed(1, 5)) == refused(proto.ERR_BAD_SIGNATURE)
    assert board.send(unsigned(2)) == refused(proto.ERR_SIGNATURE_REQUIRED)
    assert board.send(unsigned(3, proto.MSG_PING, b"abcd")) == ACK
    os.remove("/short.key")


def test_signed_frame_too_short_for_its_signature_is_dropped():
    board = Board()
    assert board.send(F.frame(ADDR, proto.FLAG_SIGNED, 1, proto.MSG_HELLO, b"\x01\x02")) is None
    assert board.link.dropped == 1 and board.applied == []


class _StillPort:
    """A port replaying one frame from a preallocated buffer: reading allocates nothing."""

    def __init__(self, wire):
        self.wire = bytearray(wire)
        self.pos = len(wire)

    def rewind(self):
        self.pos = 0

    def readinto(self, buf):
        n = 0
        while self.pos < len(self.wire) and n < len(buf):
            buf[n] = self.wire[self.pos]
            n += 1
            self.pos += 1
        return n

    def write(self, buf, n):
        pass


def test_unsigned_reads_allocate_nothing_with_a_key():
    port = _StillPort(unsigned(7, proto.MSG_PING, b"abcd"))

    def handler(link, msg_type, body_len, broadcast):
        link.reply(proto.MSG_PONG, proto.PONG_SIZE)
    link = Link(port, ADDR, handler)
    link.guard = signing.Signing(KEY, _slots())
    for _ in range(2):  # warm up
        port.rewind()
        link.poll()
    gc.collect()
    micropython.heap_lock()
    try:
        for _ in range(20):
            port.rewind()
            link.poll()
    finally:
        micropython.heap_unlock()
    assert link.rx_frames == 22 and link.tx_frames == 22


def _feeds(board, wire):
    """Whether the frame would feed the link watchdog (link.verified when its handler ran)."""
    seen = []
    handler = board.handler

    def spy(link, msg_type, body_len, broadcast):
        seen.append(link.verified)
        handler(link, msg_type, body_len, broadcast)
    board.link.handler = spy
    board.send(wire)
    board.link.handler = handler
    return seen == [True]


def test_only_the_hosts_verified_frames_feed_the_link_watchdog_on_a_keyed_board():
    b = Board()
    # Unsigned reads and writes, broadcast or not, and forgeries hold nothing off.
    assert not _feeds(b, unsigned(1, msg=proto.MSG_HELLO, body=b""))
    assert not _feeds(b, unsigned(2, msg=proto.MSG_HELLO, body=b"", addr=proto.BROADCAST))
    assert not _feeds(b, unsigned(3))
    assert not _feeds(b, signed(4, 10, flip=1))
    assert not _feeds(b, signed(5, 11, addr=proto.BROADCAST))
    assert not _feeds(b, signed(6, 12, msg=proto.MSG_PING, body=b"abcd", key=b"another key of 32 bytes........."))
    # The host's signed write and its signed PING keepalive do; a replayed keepalive does not.
    assert _feeds(b, signed(7, 20))
    keepalive = signed(8, 21, msg=proto.MSG_PING, body=b"abcd")
    assert _feeds(b, keepalive)
    assert not _feeds(b, keepalive)
    assert b.send(keepalive) == refused(proto.ERR_REPLAYED)  # told, so the host can learn the counter
    # Without a key, any frame addressed to the board feeds it; a broadcast never does.
    open_board = Board(key=None)
    assert _feeds(open_board, unsigned(9, msg=proto.MSG_HELLO, body=b""))
    assert not _feeds(open_board, unsigned(10, msg=proto.MSG_TIME_SYNC, body=b"\0\0\0\0", addr=proto.BROADCAST))


def test_streamed_frames_have_their_own_sequence_and_leave_the_retry_answer_alone():
    b = Board(key=None)
    stream = unsigned(0x0501, msg=proto.MSG_STREAM, body=b"\xe8\x03")
    assert b.send(stream) == ACK
    kept = b.port.written[-1]
    b.port.written = []
    for _ in range(2):
        b.link.send_stream(proto.MSG_TELEMETRY, 0)
    seqs = [F.cobs_decode(w[:-1])[2] | F.cobs_decode(w[:-1])[3] << 8 for w in b.port.written]
    assert seqs == [1, 2]  # not the request's 0x0501
    b.port.written = []
    b.port.feed(stream)  # the host's retry of its STREAM
    while b.port.pending():
        b.link.poll()
    assert b.port.written == [kept]  # the kept answer, not a TELEMETRY
