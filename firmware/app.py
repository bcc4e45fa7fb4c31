"""Stage controller application: answers the bus and runs the board's loop."""
import gc
import struct
import time

import identity
import proto
from board import BOARD
from hal import open_hal
from link import Link
from version import VERSION

_IDLE_MS = 10


class App:
    def __init__(self, hal, addr, serial=""):
        self.hal = hal
        self.serial = serial.encode()
        self.boot_ms = hal.ticks_ms()
        self.board_name = BOARD["name"].encode()
        self.link = Link(hal.bus, addr, self.on_request)

    def on_request(self, link, msg_type, body_len, broadcast):
        if broadcast:
            return  # nobody answers a broadcast: replies would collide on the bus
        if msg_type == proto.MSG_HELLO:
            gc.collect()
            struct.pack_into(proto.INFO_FMT, link.tx, proto.HEADER_SIZE,
                             proto.FINGERPRINT, VERSION[0], VERSION[1], VERSION[2],
                             self.board_name, self.serial, gc.mem_free(),
                             time.ticks_diff(self.hal.ticks_ms(), self.boot_ms) // 1000,
                             proto.MODE_OFF, 0, 0, 0,
                             link.rx_frames, link.crc_errors, link.dropped, 0)
            link.reply(proto.MSG_INFO, proto.INFO_SIZE)
        elif msg_type == proto.MSG_PING:
            if body_len != proto.PING_SIZE:
                link.reply_error(msg_type, proto.ERR_BAD_PAYLOAD_LENGTH, body_len)
                return
            link.tx[proto.HEADER_SIZE:proto.HEADER_SIZE + 4] = link.rx[proto.HEADER_SIZE:proto.HEADER_SIZE + 4]
            link.reply(proto.MSG_PONG, proto.PONG_SIZE)
        else:
            link.reply_error(msg_type, proto.ERR_UNKNOWN_MESSAGE_TYPE)

    def run(self):
        link = self.link
        hal = self.hal
        while True:
            if not link.poll():
                hal.idle(_IDLE_MS)


def main():
    addr, serial = identity.load()
    App(open_hal(BOARD), addr, serial).run()
