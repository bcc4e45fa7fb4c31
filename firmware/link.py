"""Bus link: the board's side of the framing (COBS, CRC-16, addressing), allocation-free.

Bytes arrive through `poll()`; each complete frame addressed to this board (or broadcast)
with a good CRC is handed to `handler(link, msg_type, body_len)`, which reads the body from
`link.rx` at `proto.HEADER_SIZE` and answers with `reply()`. Everything else is counted and
dropped, and a zero byte always starts a fresh frame, so noise costs at most one frame.

A write request that arrives again with the same sequence number and CRC (the host retried
because our answer was lost) gets the stored answer again and is not applied twice.

A signed frame (proto.FLAG_SIGNED) has its counter and MAC after the body; the handler sees
the body only. With a `guard` (signing.Signing: a plant key is provisioned) a write is applied
only if the guard passes it; a refused write is answered with the guard's ERROR code and not
remembered, so a forged or replayed frame cannot displace the answer kept for a retry. A
retried signed write is the same frame (same seq, counter, MAC, CRC): it gets the kept
answer and counts as a duplicate, not as a replay. Unsigned reads never reach the guard.

`verified` tells the handler whether the frame may feed the link watchdog (the link-loss
safe state): one addressed to this board, never a broadcast, and with a guard only one whose
signature passed it (a signed write, or the host's signed PING keepalive), so nobody without
the plant key can hold a stage out of its safe state (docs/security.md).

Streamed frames (`send_stream`) carry a sequence number of their own and never touch the
answer kept for a retry.
"""
import struct
from array import array
from micropython import const

import proto

_POLY = const(0x1021)


def _crc_table():
    # CRC of each 4-bit value: a 16-entry table (32 bytes) where a byte-wide one takes 512 of
    # RAM for a few µs less per frame, which the bus never notices.
    table = array("H", bytearray(32))
    for i in range(16):
        crc = i << 12
        for _ in range(4):
            crc = ((crc << 1) ^ _POLY) & 0xFFFF if crc & 0x8000 else (crc << 1) & 0xFFFF
        table[i] = crc
    return table


_TABLE = _crc_table()
del _crc_table  # run once at import


def crc16(buf, n):
    """CRC-16/CCITT-FALSE of buf[0:n], a nibble at a time."""
    table = _TABLE
    crc = 0xFFFF
    for i in range(n):
        b = buf[i]
        crc = ((crc << 4) & 0xFFFF) ^ table[(crc >> 12) ^ (b >> 4)]
        crc = ((crc << 4) & 0xFFFF) ^ table[(crc >> 12) ^ (b & 0x0F)]
    return crc


def cobs_decode_in_place(buf, n):
    """Decode buf[0:n] in place; the decoded length, or -1 if the COBS blocks are malformed."""
    r = 0
    w = 0
    while r < n:
        code = buf[r]
        if code == 0 or r + code > n:
            return -1
        r += 1
        for _ in range(code - 1):
            buf[w] = buf[r]
            w += 1
            r += 1
        if code < 255 and r < n:
            buf[w] = 0
            w += 1
    return w


def cobs_encode(src, n, dst):
    """Encode src[0:n] into dst, followed by the zero delimiter; the number of bytes written."""
    code_pos = 0
    w = 1
    code = 1
    for i in range(n):
        b = src[i]
        if b == 0:
            dst[code_pos] = code
            code_pos = w
            w += 1
            code = 1
        else:
            dst[w] = b
            w += 1
            code += 1
            if code == 255:
                dst[code_pos] = code
                code_pos = w
                w += 1
                code = 1
    dst[code_pos] = code
    dst[w] = 0
    return w + 1


def make_buffers():
    """(rx, chunk, wire, last reply): memory.py makes them once at reset, before the heap fragments."""
    size = proto.MAX_FRAME + 2
    return (bytearray(size), bytearray(64), bytearray(size + 2), bytearray(size + 2))


class Link:
    def __init__(self, port, addr, handler, buffers=None):
        self.port = port
        self.addr = addr
        self.handler = handler
        buffers = buffers or make_buffers()
        self.rx = buffers[0]  # the frame being received, decoded in place
        self._rx_len = 0
        self._discard = False  # overran: skip to the next delimiter
        self._chunk = buffers[1]
        self._wire = buffers[2]  # the reply as it goes out
        # The reply being built, one byte into the wire buffer: COBS encodes it in place, each
        # byte staying where it is and each zero's place taking a code byte (only a run of 254
        # non-zero bytes would need more room, and a frame is shorter), so no buffer of its own.
        self.tx = memoryview(self._wire)[1:]
        self._seq = 0
        self._last_write = -1  # (seq << 16 | crc) of the last write answered
        self._last_reply = buffers[3]
        self._last_reply_len = 0
        self._keeping = False
        self.verified = False
        self.stream_seq = 0
        self.guard = None  # signing.Signing once a plant key is provisioned
        self.rx_frames = 0
        self.crc_errors = 0
        self.dropped = 0
        self.tx_frames = 0
        self.duplicates = 0

    def poll(self):
        """Read what the port has and handle every complete frame. Returns bytes read."""
        n = self.port.readinto(self._chunk)
        if not n:
            return 0
        chunk = self._chunk
        rx = self.rx
        size = len(rx)
        for i in range(n):
            b = chunk[i]
            if b == 0:
                if self._discard:
                    self._discard = False
                elif self._rx_len:
                    self._frame(self._rx_len)
                self._rx_len = 0
            elif not self._discard:
                if self._rx_len == size:
                    self.dropped += 1
                    self._discard = True
                    self._rx_len = 0
                else:
                    rx[self._rx_len] = b
                    self._rx_len += 1
        return n

    def _frame(self, n):
        rx = self.rx
        n = cobs_decode_in_place(rx, n)
        if n < proto.HEADER_SIZE + proto.CRC_SIZE or n > proto.MAX_FRAME:  # the buffer holds one byte more: a longer frame is refused here
            self.dropped += 1
            return
        crc_at = n - proto.CRC_SIZE
        if crc16(rx, crc_at) != (rx[crc_at] << 8) | rx[crc_at + 1]:
            self.crc_errors += 1
            return
        addr = rx[0]
        if addr != self.addr and addr != proto.BROADCAST:
            return  # another board's frame: a multi-drop bus carries them all
        if rx[1] & proto.FLAG_REPLY:
            return  # another board's answer
        signed = rx[1] & proto.FLAG_SIGNED
        body_end = crc_at - proto.SIGNATURE_SIZE if signed else crc_at
        if body_end < proto.HEADER_SIZE:
            self.dropped += 1  # too short to hold its signature
            return
        self.rx_frames += 1
        self._seq = rx[2] | (rx[3] << 8)
        msg_type = rx[4]
        self._keeping = False
        guard = self.guard
        self.verified = addr != proto.BROADCAST and guard is None
        if msg_type in proto.WRITE_TYPES:  # a request that changes state
            key = (self._seq << 16) | (rx[crc_at] << 8) | rx[crc_at + 1]
            if key == self._last_write:
                self.duplicates += 1
                if addr != proto.BROADCAST:
                    self.port.write(self._last_reply, self._last_reply_len)
                return
            if guard is not None:
                refused = guard.check(rx, body_end, signed)
                if refused:
                    if addr != proto.BROADCAST:
                        self.reply_error(msg_type, refused)
                    return
                self.verified = addr != proto.BROADCAST
            self._last_write = key
            self._last_reply_len = 0
            self._keeping = True
        elif signed and guard is not None and addr != proto.BROADCAST:
            # A signed read (the host's keepalive) is checked as a write is, so the host learns
            # when it failed (a stale counter); unsigned reads stay open.
            refused = guard.check(rx, body_end, signed)
            if refused:
                self.reply_error(msg_type, refused)
                return
            self.verified = True
        self.handler(self, msg_type, body_end - proto.HEADER_SIZE, addr == proto.BROADCAST)

    def send_stream(self, msg_type, body_len):
        """Send a streamed frame packed into `tx`: its own sequence number, nothing kept."""
        keeping = self._keeping
        self._keeping = False
        self.stream_seq = (self.stream_seq + 1) & 0xFFFF
        self._send(msg_type, body_len, 0, self.stream_seq)
        self._keeping = keeping

    def reply(self, msg_type, body_len, flags=0):
        """Send the reply whose body the handler packed into `tx` at HEADER_SIZE."""
        self._send(msg_type, body_len, flags, self._seq)

    def _send(self, msg_type, body_len, flags, seq):
        tx = self.tx
        struct.pack_into(proto.HEADER_FMT, tx, 0, self.addr, flags | proto.FLAG_REPLY, seq, msg_type)
        end = proto.HEADER_SIZE + body_len
        crc = crc16(tx, end)
        tx[end] = crc >> 8
        tx[end + 1] = crc & 0xFF
        wire = self._wire
        n = cobs_encode(tx, end + proto.CRC_SIZE, wire)  # in place (see __init__)
        self.port.write(wire, n)
        self.tx_frames += 1
        if self._keeping:
            self._last_reply[:n] = wire[:n]
            self._last_reply_len = n

    def reply_error(self, request_type, code, detail=0):
        struct.pack_into(proto.ERROR_FMT, self.tx, proto.HEADER_SIZE, request_type, code, detail)
        self.reply(proto.MSG_ERROR, proto.ERROR_SIZE, proto.FLAG_ERROR)
