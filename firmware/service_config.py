"""Bus service for the requests that write config: CONFIG_WRITE and SET_SETPOINT. service.py
imports this module for such a request and it is not kept (see the last line); the check and
store are config_store.py's, loaded by Config.apply for just that part of the request."""
import struct
import sys

import config_table as T
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
            link.reply_error(msg_type, proto.ERR_VALUE_OUT_OF_RANGE, count)
            return
        base = _H + proto.CONFIG_WRITE_ITEMS_OFFSET
        pairs = [struct.unpack_from(proto.CONFIG_WRITE_ITEMS_FMT, rx, base + k * proto.CONFIG_WRITE_ITEMS_SIZE)
                 for k in range(count)]
        version = _write_config(app, link, msg_type, pairs)
        if version is not None:
            struct.pack_into(proto.CONFIG_ACK_FMT, tx, _H, count, version)
            link.reply(proto.MSG_CONFIG_ACK, proto.CONFIG_ACK_SIZE)
    else:  # SET_SETPOINT
        loop, value = struct.unpack_from(proto.SET_SETPOINT_FMT, rx, _H)
        if loop >= len(_SETPOINT_ITEMS):
            link.reply_error(msg_type, proto.ERR_VALUE_OUT_OF_RANGE, loop)
            return
        index = _SETPOINT_ITEMS[loop]
        if _write_config(app, link, msg_type, [(T.IDS[index], value)]) is not None:
            struct.pack_into(proto.SETPOINT_ACK_FMT, tx, _H, loop, app.config.get(index))
            link.reply(proto.MSG_SETPOINT_ACK, proto.SETPOINT_ACK_SIZE)


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
    app.controller.event(proto.EV_CONFIG, len(pairs), version & 0x7FFF)
    return version


del sys.modules[__name__]  # not kept: the importing request holds it until it returns
