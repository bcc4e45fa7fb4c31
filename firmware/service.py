"""Bus service: answers every protocol request from the stage's state, config and records."""
import gc
import struct
import time

import config_table as T
import proto
from config import ConfigError
import events
from version import VERSION

_H = proto.HEADER_SIZE
# SET_SETPOINT loop number -> config item index
_SETPOINT_ITEMS = (T.PH_SETPOINT, T.ORP_SETPOINT, T.FLOW_AQ_SETPOINT, T.FLOW_ORG_SETPOINT)
class Service:
    def __init__(self, app):
        self.app = app
        # request type -> (handler, body size it must have)
        self.handlers = {
            proto.MSG_HELLO: (self.hello, proto.HELLO_SIZE),
            proto.MSG_PING: (self.ping, proto.PING_SIZE),
            proto.MSG_GET_TELEMETRY: (self.telemetry, proto.GET_TELEMETRY_SIZE),
            proto.MSG_STREAM: (self.stream, proto.STREAM_SIZE),
            proto.MSG_CONFIG_READ: (self.config_read, proto.CONFIG_READ_SIZE),
            proto.MSG_CONFIG_WRITE: (self.config_write, proto.CONFIG_WRITE_SIZE),
            proto.MSG_SET_MODE: (self.set_mode, proto.SET_MODE_SIZE),
            proto.MSG_SET_SETPOINT: (self.set_setpoint, proto.SET_SETPOINT_SIZE),
            proto.MSG_CALIBRATE: (self.calibrate, proto.CALIBRATE_SIZE),
            proto.MSG_EVENTS_READ: (self.events_read, proto.EVENTS_READ_SIZE),
            proto.MSG_ALARM_ACK: (self.alarm_ack, proto.ALARM_ACK_SIZE),
            proto.MSG_BACKLOG_READ: (self.backlog_read, proto.BACKLOG_READ_SIZE),
            proto.MSG_TIME_SYNC: (self.time_sync, proto.TIME_SYNC_SIZE),
            proto.MSG_REBOOT: (self.reboot, proto.REBOOT_SIZE),
            proto.MSG_TO_REPL: (self.to_repl, proto.TO_REPL_SIZE),
            proto.MSG_SIGNING_READ: (self.signing, proto.SIGNING_READ_SIZE),
        }

    def on_request(self, link, msg_type, body_len, broadcast):
        self.app.link_seen()
        entry = self.handlers.get(msg_type)
        if entry is None:
            if not broadcast:
                link.reply_error(msg_type, proto.ERR_UNKNOWN_MESSAGE_TYPE)
            return
        handler, size = entry
        if body_len != size:
            if not broadcast:
                link.reply_error(msg_type, proto.ERR_BAD_PAYLOAD_LENGTH, body_len)
            return
        if broadcast and msg_type != proto.MSG_TIME_SYNC:
            return  # only time sync acts on a broadcast; answers would collide on the bus
        try:
            handler(link)
        except MemoryError:
            # A request that needs more heap than is free is refused; the stage keeps running.
            gc.collect()
            if not broadcast:
                link.reply_error(msg_type, proto.ERR_OUT_OF_MEMORY)

    def _u(self, fmt, link):
        return struct.unpack_from(fmt, link.rx, _H)

    def hello(self, link):
        app = self.app
        stage = app.stage
        gc.collect()
        struct.pack_into(proto.INFO_FMT, link.tx, _H, proto.FINGERPRINT, VERSION[0], VERSION[1],
                         VERSION[2], app.board_name, app.serial, gc.mem_free(), app.uptime_s(),
                         stage.mode, stage.alarms, stage.cal_id, app.config.version,
                         link.rx_frames, link.crc_errors, link.dropped, link.duplicates)
        link.reply(proto.MSG_INFO, proto.INFO_SIZE)

    def ping(self, link):
        link.tx[_H:_H + 4] = link.rx[_H:_H + 4]
        link.reply(proto.MSG_PONG, proto.PONG_SIZE)

    def telemetry(self, link):
        app = self.app
        app.stage.pack(link.tx, _H, app.backlog.latest, app.time_s())
        link.reply(proto.MSG_TELEMETRY, proto.TELEMETRY_SIZE)

    def stream(self, link):
        period = self._u(proto.STREAM_FMT, link)[0]
        app = self.app
        floor = app.config.get(T.MEASURE_PERIOD)
        app.stream_ms = 0 if period == 0 else max(period, floor)
        struct.pack_into(proto.STREAM_ACK_FMT, link.tx, _H, app.stream_ms)
        link.reply(proto.MSG_STREAM_ACK, proto.STREAM_ACK_SIZE)

    def config_read(self, link):
        import config
        item = self._u(proto.CONFIG_READ_FMT, link)[0]
        i = config.index_of(item)
        if i < 0:
            link.reply_error(proto.MSG_CONFIG_READ, proto.ERR_UNKNOWN_CONFIG_ITEM, item)
            return
        cfg = self.app.config
        struct.pack_into(proto.CONFIG_VALUE_FMT, link.tx, _H, item, cfg.get(i), cfg.version)
        link.reply(proto.MSG_CONFIG_VALUE, proto.CONFIG_VALUE_SIZE)

    def _write_config(self, link, request, pairs):
        app = self.app
        try:
            version = app.config.apply(pairs)
        except ConfigError as e:
            link.reply_error(request, e.code, e.item)
            return None
        except OSError:
            link.reply_error(request, proto.ERR_STORAGE_FAILED)
            return None
        app.config_changed()
        events.push(app.events, app.time_s(), proto.EV_CONFIG, len(pairs), version & 0x7FFF)
        return version

    def config_write(self, link):
        rx = link.rx
        count = rx[_H]
        if not 1 <= count <= proto.CONFIG_WRITE_ITEMS_COUNT:
            link.reply_error(proto.MSG_CONFIG_WRITE, proto.ERR_BAD_PAYLOAD_LENGTH, count)
            return
        base = _H + proto.CONFIG_WRITE_ITEMS_OFFSET
        pairs = [struct.unpack_from(proto.CONFIG_WRITE_ITEMS_FMT, rx, base + k * proto.CONFIG_WRITE_ITEMS_SIZE)
                 for k in range(count)]
        version = self._write_config(link, proto.MSG_CONFIG_WRITE, pairs)
        if version is not None:
            struct.pack_into(proto.CONFIG_ACK_FMT, link.tx, _H, count, version)
            link.reply(proto.MSG_CONFIG_ACK, proto.CONFIG_ACK_SIZE)

    def set_mode(self, link):
        mode, manual = self._u(proto.SET_MODE_FMT, link)
        if mode > proto.MODE_HOLD:
            link.reply_error(proto.MSG_SET_MODE, proto.ERR_VALUE_OUT_OF_RANGE, mode)
            return
        stage = self.app.set_mode(mode, manual)
        struct.pack_into(proto.MODE_ACK_FMT, link.tx, _H, stage.mode, stage.manual_output)
        link.reply(proto.MSG_MODE_ACK, proto.MODE_ACK_SIZE)

    def set_setpoint(self, link):
        loop, value = self._u(proto.SET_SETPOINT_FMT, link)
        if loop >= len(_SETPOINT_ITEMS):
            link.reply_error(proto.MSG_SET_SETPOINT, proto.ERR_VALUE_OUT_OF_RANGE, loop)
            return
        index = _SETPOINT_ITEMS[loop]
        if self._write_config(link, proto.MSG_SET_SETPOINT, [(T.IDS[index], value)]) is not None:
            struct.pack_into(proto.SETPOINT_ACK_FMT, link.tx, _H, loop, self.app.config.get(index))
            link.reply(proto.MSG_SETPOINT_ACK, proto.SETPOINT_ACK_SIZE)

    def calibrate(self, link):
        self.app.calibrate(link, *self._u(proto.CALIBRATE_FMT, link))

    def events_read(self, link):
        since = self._u(proto.EVENTS_READ_FMT, link)[0]
        ring = self.app.events
        count = ring.read_into(link.tx, _H + proto.EVENTS_EVENTS_OFFSET, since, proto.EVENTS_EVENTS_COUNT)
        self._pad(link, proto.EVENTS_EVENTS_OFFSET, count, proto.EVENTS_EVENTS_SIZE, proto.EVENTS_SIZE)
        struct.pack_into(proto.EVENTS_HEAD_FMT, link.tx, _H, count, ring.latest)
        link.reply(proto.MSG_EVENTS, proto.EVENTS_SIZE)

    def alarm_ack(self, link):
        mask = self._u(proto.ALARM_ACK_FMT, link)[0]
        stage = self.app.stage
        self.app.ack_alarms(mask)
        struct.pack_into(proto.ALARM_STATE_FMT, link.tx, _H, stage.alarms, stage.latched)
        link.reply(proto.MSG_ALARM_STATE, proto.ALARM_STATE_SIZE)

    def backlog_read(self, link):
        since = self._u(proto.BACKLOG_READ_FMT, link)[0]
        backlog = self.app.backlog
        count = backlog.read_into(link.tx, _H + proto.BACKLOG_RECORDS_OFFSET, since, proto.BACKLOG_RECORDS_COUNT)
        self._pad(link, proto.BACKLOG_RECORDS_OFFSET, count, proto.BACKLOG_RECORDS_SIZE, proto.BACKLOG_SIZE)
        struct.pack_into(proto.BACKLOG_HEAD_FMT, link.tx, _H, count, backlog.oldest, backlog.latest)
        link.reply(proto.MSG_BACKLOG, proto.BACKLOG_SIZE)

    def _pad(self, link, offset, count, size, body_size):
        # Unused records go out as zeros, so equal content always gives equal bytes.
        tx = link.tx
        for i in range(_H + offset + count * size, _H + body_size):
            tx[i] = 0

    def time_sync(self, link):
        app = self.app
        app.set_time(self._u(proto.TIME_SYNC_FMT, link)[0])
        if link.rx[0] != proto.BROADCAST:
            struct.pack_into(proto.TIME_ACK_FMT, link.tx, _H, app.time_s())
            link.reply(proto.MSG_TIME_ACK, proto.TIME_ACK_SIZE)

    def signing(self, link):
        guard = link.guard  # None: no plant key, writes need no signature
        if guard is None:
            struct.pack_into(proto.SIGNING_STATE_FMT, link.tx, _H, 0, 0, 0, 0, 0, 0)
        else:
            struct.pack_into(proto.SIGNING_STATE_FMT, link.tx, _H, guard.key_id, guard.counter,
                             guard.stored, guard.unsigned, guard.bad_signature, guard.replayed)
        link.reply(proto.MSG_SIGNING_STATE, proto.SIGNING_STATE_SIZE)

    def _magic(self, link, fmt, magic, request):
        if self._u(fmt, link)[0] != magic:
            link.reply_error(request, proto.ERR_BAD_MAGIC)
            return False
        link.tx[_H] = request
        link.reply(proto.MSG_ACK, proto.ACK_SIZE)
        return True

    def reboot(self, link):
        if self._magic(link, proto.REBOOT_FMT, proto.REBOOT_MAGIC, proto.MSG_REBOOT):
            time.sleep_ms(20)  # let the ACK leave the UART before the reset
            self.app.reboot()

    def to_repl(self, link):
        if self._magic(link, proto.TO_REPL_FMT, proto.TO_REPL_MAGIC, proto.MSG_TO_REPL):
            self.app.stop()
