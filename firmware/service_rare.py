"""Bus service for the requests an operator sends now and then: config and setpoint writes,
clock sync, reboot, REPL and the signing state. service.py imports this module for such a
request; it is not kept (see the last line), so its code costs no RAM in between."""
import struct
import sys
import time

import config_table as T
import events
import proto
from config import ConfigError

_H = proto.HEADER_SIZE
# SET_SETPOINT loop number -> config item index
_SETPOINT_ITEMS = (T.PH_SETPOINT, T.ORP_SETPOINT, T.FLOW_AQ_SETPOINT, T.FLOW_ORG_SETPOINT)


def answer(app, link, msg_type):
    rx = link.rx
    tx = link.tx
    if msg_type == proto.MSG_CONFIG_WRITE:
        count = rx[_H]
        if not 1 <= count <= proto.CONFIG_WRITE_ITEMS_COUNT:
            link.reply_error(msg_type, proto.ERR_BAD_PAYLOAD_LENGTH, count)
            return
        base = _H + proto.CONFIG_WRITE_ITEMS_OFFSET
        pairs = [struct.unpack_from(proto.CONFIG_WRITE_ITEMS_FMT, rx, base + k * proto.CONFIG_WRITE_ITEMS_SIZE)
                 for k in range(count)]
        version = _write_config(app, link, msg_type, pairs)
        if version is not None:
            struct.pack_into(proto.CONFIG_ACK_FMT, tx, _H, count, version)
            link.reply(proto.MSG_CONFIG_ACK, proto.CONFIG_ACK_SIZE)
    elif msg_type == proto.MSG_SET_SETPOINT:
        loop, value = struct.unpack_from(proto.SET_SETPOINT_FMT, rx, _H)
        if loop >= len(_SETPOINT_ITEMS):
            link.reply_error(msg_type, proto.ERR_VALUE_OUT_OF_RANGE, loop)
            return
        index = _SETPOINT_ITEMS[loop]
        if _write_config(app, link, msg_type, [(T.IDS[index], value)]) is not None:
            struct.pack_into(proto.SETPOINT_ACK_FMT, tx, _H, loop, app.config.get(index))
            link.reply(proto.MSG_SETPOINT_ACK, proto.SETPOINT_ACK_SIZE)
    elif msg_type == proto.MSG_TIME_SYNC:
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
        app.hal.write_outputs(app.stage, False)
        if msg_type == proto.MSG_REBOOT:
            time.sleep_ms(20)  # let the ACK leave the UART before the reset
            app.hal.reset()
        app.running = False


def _write_config(app, link, request, pairs):
    """Apply a config write; the new version, or None when refused (the error answered)."""
    try:
        version = app.config.apply(pairs)
    except ConfigError as e:
        link.reply_error(request, e.code, e.item)
        return None
    except OSError:
        link.reply_error(request, proto.ERR_STORAGE_FAILED)
        return None
    app.controller.configure()
    events.push(app.events, app.time_s(), proto.EV_CONFIG, len(pairs), version & 0x7FFF)
    return version


del sys.modules[__name__]  # not kept: the importing request holds it until it returns
