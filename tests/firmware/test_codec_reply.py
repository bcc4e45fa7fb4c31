"""A TELEMETRY reply, built the firmware's way (pack_into + Link.reply), allocates nothing."""
import micropython
import struct

import fwlib_codec as F
import proto
from link import Link

# Every field at the top and at the bottom of its type (u32 fields at 2^32 - 1 stay small ints
# on this 64-bit port only; on a 32-bit board anything above 2^30 is a heap object).
_HIGH = (0xFFFFFFFF, 0xFFFFFFFF, 0x7FFF, 0x7FFF, 0x7FFF, 0x7FFF, 0xFFFF, 0xFFFF, 0xFFFF, 0xFFFF,
         0xFF, 0xFF, 0xFF, 0xFF, 0xFFFF, 0xFFFF)
_LOW = (0, 0, -0x8000, -0x8000, -0x8000, -0x8000, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)


def _reply(link, v):
    struct.pack_into(proto.TELEMETRY_FMT, link.tx, proto.HEADER_SIZE, v[0], v[1], v[2], v[3],
                     v[4], v[5], v[6], v[7], v[8], v[9], v[10], v[11], v[12], v[13], v[14], v[15])
    link.reply(proto.MSG_TELEMETRY, proto.TELEMETRY_SIZE)


class LastWritePort:
    """Keeps the last write in a buffer made once, as a UART's FIFO: writing allocates nothing."""

    def __init__(self):
        self.out = bytearray(proto.MAX_FRAME + 4)
        self.n = 0

    def write(self, buf, n):
        for i in range(n):
            self.out[i] = buf[i]
        self.n = n


def test_telemetry_reply_allocates_nothing_and_decodes():
    port = LastWritePort()
    link = Link(port, 3, None)
    for values in (_HIGH, _LOW):
        _reply(link, values)  # warm up
        micropython.heap_lock()
        try:
            _reply(link, values)
        finally:
            micropython.heap_unlock()
        assert port.out[port.n - 1] == 0
        raw = F.cobs_decode(bytes(port.out[:port.n - 1]))
        assert F.crc16_bitwise(raw[:-2]) == raw[-2] << 8 | raw[-1]
        assert raw[4] == proto.MSG_TELEMETRY
        assert tuple(F.unpack("TELEMETRY", raw, proto.HEADER_SIZE)) == values
