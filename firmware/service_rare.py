"""Bus service for the requests an operator sends now and then: clock sync, reboot, REPL and
the signing state (config writes are service_config.py's). service.py imports this module for
such a request; it is not kept (see the last line), so its code costs no RAM in between."""
import struct
import sys
import time

import proto

_H = proto.HEADER_SIZE


def answer(app, link, msg_type):
    rx = link.rx
    tx = link.tx
    if msg_type == proto.MSG_TIME_SYNC:
        app.time_offset = struct.unpack_from(proto.TIME_SYNC_FMT, rx, _H)[0] - app.uptime_s()
        if rx[0] != proto.BROADCAST:
            struct.pack_into(proto.TIME_ACK_FMT, tx, _H, app.time_s())
            link.reply(proto.MSG_TIME_ACK, proto.TIME_ACK_SIZE)
    elif msg_type == proto.MSG_SIGNING_READ:
        g = link.guard  # None: no plant key, writes need no signature
        struct.pack_into(proto.SIGNING_STATE_FMT, tx, _H, *((0, 0, 0, 0, 0, 0) if g is None else (
            g.key_id, g.counter, g.stored, g.unsigned, g.bad_signature, g.replayed)))
        link.reply(proto.MSG_SIGNING_STATE, proto.SIGNING_STATE_SIZE)
    else:  # REBOOT or TO_REPL, each with its magic number against stray frames
        magic = struct.unpack_from(proto.REBOOT_FMT, rx, _H)[0]  # TO_REPL's is the same
        if magic != (proto.REBOOT_MAGIC if msg_type == proto.MSG_REBOOT else proto.TO_REPL_MAGIC):
            link.reply_error(msg_type, proto.ERR_BAD_MAGIC)
            return
        tx[_H] = msg_type
        link.reply(proto.MSG_ACK, proto.ACK_SIZE)
        app.hal.write_outputs(None, False)
        if msg_type == proto.MSG_TO_REPL:
            with open("/maintenance", "w") as f:  # maintenance.py: outputs off, no watchdog, REPL free
                f.write("600")
        time.sleep_ms(20)  # let the ACK leave the UART before the reset
        app.hal.reset()


del sys.modules[__name__]  # not kept: the importing request holds it until it returns
