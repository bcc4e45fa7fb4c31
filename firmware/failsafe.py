"""Fail-safe firmware: runs when the stage controller cannot load (too little memory, a broken
file). Outputs stay off; the board still answers HELLO and PING on the bus, with the
controller_fault alarm set, so the host sees what is wrong instead of a silent board."""
import gc
import struct

import identity
import memory
import proto
from board import BOARD
from link import Link
from version import MAJOR, MINOR, PATCH


def main(hal, reason):
    addr, serial = identity.load()
    name = BOARD["name"].encode()
    serial = serial.encode()
    hal.write_outputs(None, False)

    def on_request(link, msg_type, body_len, broadcast):
        if broadcast:
            return
        if msg_type == proto.MSG_HELLO:
            gc.collect()
            struct.pack_into(proto.INFO_FMT, link.tx, proto.HEADER_SIZE, proto.FINGERPRINT, MAJOR, MINOR,
                             PATCH, name, serial, gc.mem_free(), 0, proto.MODE_OFF,
                             proto.ALARM_CONTROLLER_FAULT, 0, 0, link.rx_frames, link.crc_errors,
                             link.dropped, link.duplicates)
            link.reply(proto.MSG_INFO, proto.INFO_SIZE)
        elif msg_type == proto.MSG_PING and body_len == proto.PING_SIZE:
            link.tx[proto.HEADER_SIZE:proto.HEADER_SIZE + 4] = link.rx[proto.HEADER_SIZE:proto.HEADER_SIZE + 4]
            link.reply(proto.MSG_PONG, proto.PONG_SIZE)
        else:
            link.reply_error(msg_type, proto.ERR_NOT_ALLOWED_IN_THIS_MODE)

    print("sxctl firmware: controller not loaded (%s); fail-safe: outputs off, bus answers" % reason)
    link = Link(hal.bus, addr, on_request, memory.link_buffers)
    while True:
        if not link.poll():
            hal.idle(10)
