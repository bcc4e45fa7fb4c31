"""Fail-safe firmware: runs when the stage controller cannot load or stops (a missing, truncated
or corrupt file, too little memory, an error that escaped the loop). Outputs stay off; the board
still answers HELLO and PING on the bus, with the controller_fault alarm set and INFO's serial
naming what failed (the damaged module, or the error), so the host sees what is wrong instead of
a silent board. It does not start the watchdog (a board reset by it would only come back here)
but feeds one the application started."""
import gc
import struct

import identity
import memory
import proto
from board import BOARD
from link import Link
from version import MAJOR, MINOR, PATCH


def main(hal, error):
    """Fail-safe until reset: outputs off, the bus answered, what failed named (12 characters):
    the damaged module, else the error's own words."""
    import integrity
    serial = integrity.check()
    if serial:
        pass
    elif isinstance(error, MemoryError):
        serial = "memory"
    elif isinstance(error, ImportError) and "'" in str(error):
        serial = str(error).split("'")[1]  # "no module named 'x'"
    else:
        serial = type(error).__name__
    print("sxctl firmware: controller not running (%s); fail-safe: outputs off, bus answers" % serial)
    serve(hal, serial, proto.ALARM_CONTROLLER_FAULT)


def serve(hal, serial, alarms, timeout_ms=0):
    """Answer HELLO (INFO: mode off, `alarms`, `serial` naming what it is) and PING, refuse the
    rest, outputs off; for `timeout_ms` of real time when given, else until reset."""
    import time

    if hal is None:
        from hal import open_hal
        hal = open_hal(BOARD)
    hal.write_outputs(None, False)
    try:
        addr = identity.load()[0]
    except ValueError:
        addr = 247  # a damaged identity: answer where an unprovisioned board does
    name = BOARD["name"].encode()
    serial = serial.encode()[:12]

    def on_request(link, msg_type, body_len, broadcast):
        if broadcast:
            return
        if msg_type == proto.MSG_HELLO:
            gc.collect()
            struct.pack_into(proto.INFO_FMT, link.tx, proto.HEADER_SIZE, proto.FINGERPRINT, MAJOR, MINOR,
                             PATCH, name, serial, gc.mem_free(), 0, proto.MODE_OFF, alarms, 0, 0,
                             link.rx_frames, link.crc_errors, link.dropped, link.duplicates)
            link.reply(proto.MSG_INFO, proto.INFO_SIZE)
        elif msg_type == proto.MSG_PING and body_len == proto.PING_SIZE:
            link.tx[proto.HEADER_SIZE:proto.HEADER_SIZE + 4] = link.rx[proto.HEADER_SIZE:proto.HEADER_SIZE + 4]
            link.reply(proto.MSG_PONG, proto.PONG_SIZE)
        else:
            link.reply_error(msg_type, proto.ERR_NOT_ALLOWED_IN_THIS_MODE)

    if memory.link_buffers is None:
        memory.reserve_link()
    link = Link(hal.bus, addr, on_request, memory.link_buffers)
    start = time.ticks_ms()
    try:
        while not timeout_ms or time.ticks_diff(time.ticks_ms(), start) < timeout_ms:
            hal.feed_watchdog()
            if not link.poll():
                hal.idle(10)
    finally:
        hal.write_outputs(None, False)
