"""Bus service: answers every protocol request from the stage's state, config and records.

A request reaches its handler through one table, HANDLERS (message type -> function), after
on_request has checked its body length against proto.REQUEST_SIZES (generated from
protocol/messages.py) and that only TIME_SYNC acts on a broadcast. Each handler reads the
body from link.rx at proto.HEADER_SIZE and answers with link.reply or link.reply_error;
an error it raises is answered as out-of-memory or firmware-fault and the stage runs on.
"""
import gc
import struct
import time

import calibration
import config
import config_table as T
import proto
from version import MAJOR, MINOR, PATCH

_H = proto.HEADER_SIZE
# SET_SETPOINT loop number -> config item index
_SETPOINT_ITEMS = (T.PH_SETPOINT, T.ORP_SETPOINT, T.FLOW_AQ_SETPOINT, T.FLOW_ORG_SETPOINT)


def on_request(app, link, msg_type, body_len, broadcast):
    """The bus link's handler, a method of the application (App.on_request): answer one request."""
    if link.verified:  # only the host's own frames hold the stage out of its link-loss safe state
        app.controller.link_seen(app.hal.ticks_ms())
    sizes = proto.REQUEST_SIZES
    size = sizes[msg_type] if msg_type < len(sizes) else 255
    handler = HANDLERS.get(msg_type)
    if size == 255 or handler is None or body_len != size:
        if not broadcast:
            if size == 255 or handler is None:
                link.reply_error(msg_type, proto.ERR_UNKNOWN_MESSAGE_TYPE)
            else:
                link.reply_error(msg_type, proto.ERR_BAD_PAYLOAD_LENGTH, body_len)
        return
    if broadcast and msg_type != proto.MSG_TIME_SYNC:
        return  # only time sync acts on a broadcast; answers would collide on the bus
    try:
        handler(app, link, msg_type)
    except MemoryError:
        # A request that needs more heap than is free is refused; the stage keeps running.
        gc.collect()
        if not broadcast:
            link.reply_error(msg_type, proto.ERR_OUT_OF_MEMORY)
    except Exception:
        # A fault in a request's code must not stop the stage's control loop: refused, and the
        # host is told (Ctrl-C, a KeyboardInterrupt, still stops the board).
        if not broadcast:
            link.reply_error(msg_type, proto.ERR_FIRMWARE_FAULT)


# --- reads ------------------------------------------------------------------------------------
def _telemetry(app, link, msg_type):
    app.stage.pack(link.tx, _H, app.backlog.latest, app.time_s())
    link.reply(proto.MSG_TELEMETRY, proto.TELEMETRY_SIZE)


def _hello(app, link, msg_type):
    stage = app.stage
    gc.collect()
    struct.pack_into(proto.INFO_FMT, link.tx, _H, proto.FINGERPRINT, MAJOR, MINOR, PATCH,
                     app.board_name, app.serial, gc.mem_free(), app.uptime_s(), stage.mode,
                     stage.alarms_active | stage.alarms_unacked, stage.cal_id, app.config.version, link.rx_frames,
                     link.crc_errors, link.dropped, link.duplicates)
    link.reply(proto.MSG_INFO, proto.INFO_SIZE)


def _ping(app, link, msg_type):
    link.tx[_H:_H + 4] = link.rx[_H:_H + 4]
    link.reply(proto.MSG_PONG, proto.PONG_SIZE)


def _stream(app, link, msg_type):
    period = struct.unpack_from(proto.STREAM_FMT, link.rx, _H)[0]
    app.stream_ms = 0 if period == 0 else max(period, app.config.get(T.MEASURE_PERIOD))
    struct.pack_into(proto.STREAM_ACK_FMT, link.tx, _H, app.stream_ms)
    link.reply(proto.MSG_STREAM_ACK, proto.STREAM_ACK_SIZE)


def _config_read(app, link, msg_type):
    item = struct.unpack_from(proto.CONFIG_READ_FMT, link.rx, _H)[0]
    i = config.index_of(item)
    if i < 0:
        link.reply_error(msg_type, proto.ERR_UNKNOWN_CONFIG_ITEM, item)
        return
    struct.pack_into(proto.CONFIG_VALUE_FMT, link.tx, _H, item, app.config.get(i), app.config.version)
    link.reply(proto.MSG_CONFIG_VALUE, proto.CONFIG_VALUE_SIZE)


def _alarms(app, link, msg_type):
    # ALARM_ACK acknowledges, then reports; ALARMS_READ only reads (it needs no signature)
    stage = app.stage
    if msg_type == proto.MSG_ALARM_ACK:
        app.controller.ack(struct.unpack_from(proto.ALARM_ACK_FMT, link.rx, _H)[0], app.hal.ticks_ms())
    struct.pack_into(proto.ALARM_STATE_FMT, link.tx, _H, stage.alarms_active, stage.alarms_unacked)
    link.reply(proto.MSG_ALARM_STATE, proto.ALARM_STATE_SIZE)


def _events(app, link, msg_type):
    _read_ring(link, app.events, proto.EVENTS_EVENTS_OFFSET, proto.EVENTS_EVENTS_COUNT,
               proto.EVENTS_EVENTS_SIZE, proto.MSG_EVENTS)


def _backlog(app, link, msg_type):
    wanted = link.rx[_H + 4]  # BACKLOG_READ.count, after `since`
    if wanted > proto.BACKLOG_RECORDS_COUNT:
        link.reply_error(msg_type, proto.ERR_VALUE_OUT_OF_RANGE, wanted)
        return
    _read_ring(link, app.backlog, proto.BACKLOG_RECORDS_OFFSET, wanted or proto.BACKLOG_RECORDS_COUNT,
               proto.BACKLOG_RECORDS_SIZE, proto.MSG_BACKLOG)


def _read_ring(link, ring, offset, max_count, size, reply_type):
    """EVENTS or BACKLOG: the ring's records numbered above `since`, oldest first. The body ends
    after the records sent (the protocol's trimmed record arrays): a short answer, a short frame."""
    since = struct.unpack_from("<I", link.rx, _H)[0]  # EVENTS_READ.since, BACKLOG_READ.since
    tx = link.tx
    count = ring.read_into(tx, _H + offset, since, max_count)
    if reply_type == proto.MSG_EVENTS:
        struct.pack_into(proto.EVENTS_HEAD_FMT, tx, _H, count, ring.latest)
    else:
        struct.pack_into(proto.BACKLOG_HEAD_FMT, tx, _H, count, ring.oldest, ring.latest)
    link.reply(reply_type, offset + count * size)


def _signing_state(app, link, msg_type):
    g = link.guard  # None: no plant key, writes need no signature
    struct.pack_into(proto.SIGNING_STATE_FMT, link.tx, _H, *((0, 0, 0, 0, 0, 0) if g is None else (
        g.key_id, g.counter, g.stored, g.unsigned, g.bad_signature, g.replayed)))
    link.reply(proto.MSG_SIGNING_STATE, proto.SIGNING_STATE_SIZE)


# --- commands ---------------------------------------------------------------------------------
def _set_mode(app, link, msg_type):
    mode, manual = struct.unpack_from(proto.SET_MODE_FMT, link.rx, _H)
    if mode > proto.MODE_HOLD:
        link.reply_error(msg_type, proto.ERR_VALUE_OUT_OF_RANGE, mode)
        return
    stage = app.stage
    if manual != 0xFFFF:
        stage.manual_output = manual
        app.controller.pid.manual = manual
    app.controller.set_mode(mode)
    struct.pack_into(proto.MODE_ACK_FMT, link.tx, _H, stage.mode, stage.manual_output)
    link.reply(proto.MSG_MODE_ACK, proto.MODE_ACK_SIZE)


def _config_write(app, link, msg_type):
    rx = link.rx
    count = rx[_H]
    if not 1 <= count <= proto.CONFIG_WRITE_ITEMS_COUNT:
        link.reply_error(msg_type, proto.ERR_VALUE_OUT_OF_RANGE, count)
        return
    base = _H + proto.CONFIG_WRITE_ITEMS_OFFSET
    pairs = [struct.unpack_from(proto.CONFIG_WRITE_ITEMS_FMT, rx, base + k * proto.CONFIG_WRITE_ITEMS_SIZE)
             for k in range(count)]
    version = _write_config(app, link, msg_type, pairs)
    if version is not None:
        struct.pack_into(proto.CONFIG_ACK_FMT, link.tx, _H, count, version)
        link.reply(proto.MSG_CONFIG_ACK, proto.CONFIG_ACK_SIZE)


def _set_setpoint(app, link, msg_type):
    loop, value = struct.unpack_from(proto.SET_SETPOINT_FMT, link.rx, _H)
    if loop >= len(_SETPOINT_ITEMS):
        link.reply_error(msg_type, proto.ERR_VALUE_OUT_OF_RANGE, loop)
        return
    index = _SETPOINT_ITEMS[loop]
    if _write_config(app, link, msg_type, [(T.IDS[index], value)]) is not None:
        struct.pack_into(proto.SETPOINT_ACK_FMT, link.tx, _H, loop, app.config.get(index))
        link.reply(proto.MSG_SETPOINT_ACK, proto.SETPOINT_ACK_SIZE)


def _write_config(app, link, request, pairs):
    """Apply a config write; the new version, or None when refused (the error answered)."""
    try:
        version = app.config.apply(pairs)
    except config.ConfigError as e:
        link.reply_error(request, e.code, e.item)
        return None
    except OSError:
        link.reply_error(request, proto.ERR_STORAGE_FAILED)
        return None
    app.controller.configure()
    app.controller.event(proto.EV_CONFIG, len(pairs), version & 0x7FFF)
    return version


def _calibrate(app, link, msg_type):
    calibration.request(app, link, *struct.unpack_from(proto.CALIBRATE_FMT, link.rx, _H))


def _time_sync(app, link, msg_type):
    app.time_offset = struct.unpack_from(proto.TIME_SYNC_FMT, link.rx, _H)[0] - app.uptime_s()
    if link.rx[0] != proto.BROADCAST:
        struct.pack_into(proto.TIME_ACK_FMT, link.tx, _H, app.time_s())
        link.reply(proto.MSG_TIME_ACK, proto.TIME_ACK_SIZE)


def _restart(app, link, msg_type):
    # REBOOT or TO_REPL, each with its magic number against stray frames
    magic = struct.unpack_from(proto.REBOOT_FMT, link.rx, _H)[0]  # TO_REPL's is the same
    if magic != (proto.REBOOT_MAGIC if msg_type == proto.MSG_REBOOT else proto.TO_REPL_MAGIC):
        link.reply_error(msg_type, proto.ERR_BAD_MAGIC)
        return
    link.tx[_H] = msg_type
    link.reply(proto.MSG_ACK, proto.ACK_SIZE)
    app.hal.write_outputs(None, False)
    if msg_type == proto.MSG_TO_REPL:
        with open(proto.FILE_MAINTENANCE, "w") as f:  # maintenance.py: outputs off, no watchdog, REPL free
            f.write("600")
    time.sleep_ms(20)  # let the ACK leave the UART before the reset
    app.hal.reset()


# Every request the board answers: message type -> handler(app, link, msg_type). Its body size
# is proto.REQUEST_SIZES[type]; a type missing here is answered as unknown.
HANDLERS = {
    proto.MSG_HELLO: _hello,
    proto.MSG_PING: _ping,
    proto.MSG_GET_TELEMETRY: _telemetry,
    proto.MSG_STREAM: _stream,
    proto.MSG_CONFIG_READ: _config_read,
    proto.MSG_CONFIG_WRITE: _config_write,
    proto.MSG_SET_MODE: _set_mode,
    proto.MSG_SET_SETPOINT: _set_setpoint,
    proto.MSG_CALIBRATE: _calibrate,
    proto.MSG_EVENTS_READ: _events,
    proto.MSG_ALARM_ACK: _alarms,
    proto.MSG_ALARMS_READ: _alarms,
    proto.MSG_BACKLOG_READ: _backlog,
    proto.MSG_TIME_SYNC: _time_sync,
    proto.MSG_REBOOT: _restart,
    proto.MSG_TO_REPL: _restart,
    proto.MSG_SIGNING_READ: _signing_state,
}
