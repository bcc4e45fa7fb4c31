"""Bus service: answers every protocol request from the stage's state, config and records.

The requests an operator sends now and then are answered by modules imported for the request
and not kept: config and setpoint writes by service_config.py, clock sync, reboot, REPL and the
signing state by service_rare.py, calibration by calibration.py. Their code costs the board no
RAM between those requests.
"""
import gc
import struct

import config
import config_table as T
import proto
from version import MAJOR, MINOR, PATCH

_H = proto.HEADER_SIZE


def on_request(app, link, msg_type, body_len, broadcast):
    """The bus link's handler, a method of the application (App.on_request): answer one request."""
    if link.verified:  # only the host's own frames hold the stage out of its link-loss safe state
        app.controller.link_seen(app.hal.ticks_ms())
    sizes = proto.REQUEST_SIZES
    size = sizes[msg_type] if msg_type < len(sizes) else 255
    if size == 255 or body_len != size:
        if not broadcast:
            if size == 255:
                link.reply_error(msg_type, proto.ERR_UNKNOWN_MESSAGE_TYPE)
            else:
                link.reply_error(msg_type, proto.ERR_BAD_PAYLOAD_LENGTH, body_len)
        return
    if broadcast and msg_type != proto.MSG_TIME_SYNC:
        return  # only time sync acts on a broadcast; answers would collide on the bus
    try:
        if msg_type == proto.MSG_GET_TELEMETRY:
            app.stage.pack(link.tx, _H, app.backlog.latest, app.time_s())
            link.reply(proto.MSG_TELEMETRY, proto.TELEMETRY_SIZE)
        elif msg_type == proto.MSG_HELLO:
            stage = app.stage
            gc.collect()
            struct.pack_into(proto.INFO_FMT, link.tx, _H, proto.FINGERPRINT, MAJOR, MINOR, PATCH,
                             app.board_name, app.serial, gc.mem_free(), app.uptime_s(), stage.mode,
                             stage.alarms_active | stage.alarms_unacked, stage.cal_id, app.config.version, link.rx_frames,
                             link.crc_errors, link.dropped, link.duplicates)
            link.reply(proto.MSG_INFO, proto.INFO_SIZE)
        elif msg_type == proto.MSG_PING:
            link.tx[_H:_H + 4] = link.rx[_H:_H + 4]
            link.reply(proto.MSG_PONG, proto.PONG_SIZE)
        elif msg_type == proto.MSG_STREAM:
            period = struct.unpack_from(proto.STREAM_FMT, link.rx, _H)[0]
            app.stream_ms = 0 if period == 0 else max(period, app.config.get(T.MEASURE_PERIOD))
            struct.pack_into(proto.STREAM_ACK_FMT, link.tx, _H, app.stream_ms)
            link.reply(proto.MSG_STREAM_ACK, proto.STREAM_ACK_SIZE)
        elif msg_type == proto.MSG_CONFIG_READ:
            item = struct.unpack_from(proto.CONFIG_READ_FMT, link.rx, _H)[0]
            i = config.index_of(item)
            if i < 0:
                link.reply_error(msg_type, proto.ERR_UNKNOWN_CONFIG_ITEM, item)
                return
            struct.pack_into(proto.CONFIG_VALUE_FMT, link.tx, _H, item, app.config.get(i), app.config.version)
            link.reply(proto.MSG_CONFIG_VALUE, proto.CONFIG_VALUE_SIZE)
        elif msg_type == proto.MSG_SET_MODE:
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
        elif msg_type == proto.MSG_ALARM_ACK or msg_type == proto.MSG_ALARMS_READ:
            stage = app.stage
            if msg_type == proto.MSG_ALARM_ACK:  # ALARMS_READ only reads: it needs no signature
                app.controller.ack(struct.unpack_from(proto.ALARM_ACK_FMT, link.rx, _H)[0], app.hal.ticks_ms())
            struct.pack_into(proto.ALARM_STATE_FMT, link.tx, _H, stage.alarms_active, stage.alarms_unacked)
            link.reply(proto.MSG_ALARM_STATE, proto.ALARM_STATE_SIZE)
        elif msg_type == proto.MSG_EVENTS_READ:
            _read_ring(link, app.events, proto.EVENTS_EVENTS_OFFSET, proto.EVENTS_EVENTS_COUNT,
                       proto.EVENTS_EVENTS_SIZE, proto.MSG_EVENTS)
        elif msg_type == proto.MSG_BACKLOG_READ:
            wanted = link.rx[_H + 4]  # BACKLOG_READ.count, after `since`
            if wanted > proto.BACKLOG_RECORDS_COUNT:
                link.reply_error(msg_type, proto.ERR_VALUE_OUT_OF_RANGE, wanted)
                return
            _read_ring(link, app.backlog, proto.BACKLOG_RECORDS_OFFSET, wanted or proto.BACKLOG_RECORDS_COUNT,
                       proto.BACKLOG_RECORDS_SIZE, proto.MSG_BACKLOG)
        elif msg_type == proto.MSG_CALIBRATE:
            import calibration
            calibration.request(app, link, *struct.unpack_from(proto.CALIBRATE_FMT, link.rx, _H))
        elif msg_type == proto.MSG_CONFIG_WRITE or msg_type == proto.MSG_SET_SETPOINT:
            import service_config
            service_config.answer(app, link, msg_type)
        else:
            import service_rare
            service_rare.answer(app, link, msg_type)
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
