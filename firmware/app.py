"""Stage controller application: owns the stage's state and runs the board's loop."""
import time

import config_table as T
import events
import identity
import memory
import proto
from board import BOARD
from config import Config, ConfigError
from controller import StageController
from hal import open_hal
from link import Link
from service import Service
from stage import Stage

_IDLE_MS = 10


class App:
    def __init__(self, hal, addr, serial=""):
        if memory.backlog is None:
            memory.reserve()
        self.backlog = memory.backlog
        self.events = memory.events_ring
        self.hal = hal
        self.board_name = BOARD["name"].encode()
        self.serial = serial.encode()
        self.boot_ms = hal.ticks_ms()
        self.time_offset = 0  # Unix seconds at boot, once the host synced the clock
        self.stage = Stage()
        self.config = Config()
        self.controller = StageController(hal, self.config, self.stage, self.events, self.time_s)
        self.calibration = None  # made by the first CALIBRATE: a board that never calibrates saves its RAM
        hal.write_outputs(self.stage, False)  # a reset leaves every output off
        events.push(self.events, 0, proto.EV_BOOT, 0, 0)
        self.link = Link(hal.bus, addr, Service(self).on_request, memory.link_buffers)
        self.link.guard = _signing()
        self.stream_ms = 0
        self.running = True

    # time
    def uptime_s(self):
        return time.ticks_diff(self.hal.ticks_ms(), self.boot_ms) // 1000

    def time_s(self):
        return self.time_offset + self.uptime_s()

    def set_time(self, unix_s):
        self.time_offset = unix_s - self.uptime_s()

    # requests that change the stage
    def link_seen(self):
        self.controller.link_seen(self.hal.ticks_ms())

    def config_changed(self):
        self.controller.configure()

    def set_mode(self, mode, manual_output):
        ctrl = self.controller
        if manual_output != 0xFFFF:
            self.stage.manual_output = manual_output
            ctrl.set_manual(manual_output)
        ctrl.set_mode(mode)
        return self.stage

    def ack_alarms(self, mask):
        return self.controller.ack(mask, self.hal.ticks_ms())

    def calibrate(self, link, sensor, step, reference, temperature):
        if sensor > proto.CAL_SENSOR_FLOW_ORG:
            link.reply_error(proto.MSG_CALIBRATE, proto.ERR_VALUE_OUT_OF_RANGE, sensor)
            return
        try:
            if self.calibration is None:
                from calibration import Calibration
                self.calibration = Calibration(self.controller, self.config, self.time_s)
            code = self.calibration.step(sensor, step, reference, temperature)
        except ConfigError as e:
            code = e.code
        except OSError:
            code = proto.ERR_STORAGE_FAILED
        if code:
            link.reply_error(proto.MSG_CALIBRATE, code, sensor)
            return
        self.calibration.pack_status(link.tx, proto.HEADER_SIZE, sensor)
        link.reply(proto.MSG_CAL_STATUS, proto.CAL_STATUS_SIZE)

    def reboot(self):
        self.hal.write_outputs(self.stage, False)
        self.hal.reset()

    def stop(self):
        self.hal.write_outputs(self.stage, False)
        self.running = False

    # the loop
    def scan(self, now, scan_no):
        """One measurement scan (and a control scan every control_scans), then a backlog record."""
        period = self.config.get(T.MEASURE_PERIOD)
        ctrl = self.controller
        ctrl.measure(now, period)
        if self.calibration:
            self.calibration.scan(self.hal)
        every = self.config.get(T.CONTROL_SCANS)
        if ctrl.link_timed_out(now, period) or scan_no % every == 0:  # the timeout check first: it latches
            ctrl.control(now, period * every)
        backlog = self.backlog
        self.stage.pack(backlog.ring, backlog.slot(), backlog.latest + 1, self.time_s())
        backlog.commit()

    def run(self):
        link = self.link
        hal = self.hal
        next_scan = hal.ticks_ms()
        next_stream = next_scan
        scan_no = 0
        while self.running:
            hal.feed_watchdog()
            if not link.poll():
                hal.idle(_IDLE_MS)
            now = hal.ticks_ms()
            while time.ticks_diff(now, next_scan) >= 0:
                scan_no += 1
                self.scan(next_scan, scan_no)
                next_scan = time.ticks_add(next_scan, self.config.get(T.MEASURE_PERIOD))
            hal.sync()
            if self.stream_ms and time.ticks_diff(now, next_stream) >= 0:
                next_stream = time.ticks_add(now, self.stream_ms)
                self.stage.pack(link.tx, proto.HEADER_SIZE, self.backlog.latest, self.time_s())
                link.reply(proto.MSG_TELEMETRY, proto.TELEMETRY_SIZE)


def _signing():
    """The check of signed writes once a plant key is provisioned (signing.py), else None:
    without a key the module is not even imported, which saves its RAM (~4 KB on the Unix port)."""
    import os
    try:
        os.stat("/plant.key")  # signing.KEY_PATH
    except OSError:
        return None
    import signing
    return signing.load()


def create(hal=None):
    """The application for this board, its outputs off; `run()` starts the loop."""
    addr, serial = identity.load()
    return App(hal or open_hal(BOARD), addr, serial)
