"""Stage controller application: owns the stage's state and runs the board's loop."""
import time

import config_table as T
import events
import identity
import memory
import proto
from board import BOARD
from config import Config
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
        events.push(self.events, 0, events.EV_BOOT, 0, 0)
        self.link = Link(hal.bus, addr, Service(self).on_request)
        self.stream_ms = 0
        self.running = True
        self._last_heard = self.boot_ms
        self.config_changed()

    # time
    def uptime_s(self):
        return time.ticks_diff(self.hal.ticks_ms(), self.boot_ms) // 1000

    def time_s(self):
        return self.time_offset + self.uptime_s()

    def set_time(self, unix_s):
        self.time_offset = unix_s - self.uptime_s()

    # requests that change the stage
    def link_seen(self):
        self._last_heard = self.hal.ticks_ms()

    def config_changed(self):
        self.stage.ph_setpoint = self.config.get(T.PH_SETPOINT)

    def set_mode(self, mode, manual_output):
        stage = self.stage
        stage.mode = mode
        if manual_output != 0xFFFF:
            stage.manual_output = manual_output
        return stage

    def calibrate(self, link, sensor, step, reference, temperature):
        # Calibration needs the sensor front ends of the stage controller; until a board has
        # them it refuses, rather than pretending to calibrate.
        link.reply_error(proto.MSG_CALIBRATE, proto.ERR_NOT_ALLOWED_IN_THIS_MODE, sensor)

    def reboot(self):
        self.hal.reset()

    def stop(self):
        self.running = False

    # the loop
    def _record(self, now):
        backlog = self.backlog
        self.stage.pack(backlog.ring, backlog.slot(), backlog.latest + 1, self.time_s())
        backlog.commit()

    def run(self):
        link = self.link
        hal = self.hal
        next_scan = hal.ticks_ms()
        next_stream = next_scan
        while self.running:
            if not link.poll():
                hal.idle(_IDLE_MS)
            now = hal.ticks_ms()
            if time.ticks_diff(now, next_scan) >= 0:
                next_scan = time.ticks_add(next_scan, self.config.get(T.MEASURE_PERIOD))
                self._record(now)
            if self.stream_ms and time.ticks_diff(now, next_stream) >= 0:
                next_stream = time.ticks_add(now, self.stream_ms)
                self.stage.pack(link.tx, proto.HEADER_SIZE, self.backlog.latest, self.time_s())
                link.reply(proto.MSG_TELEMETRY, proto.TELEMETRY_SIZE)


def main():
    addr, serial = identity.load()
    App(open_hal(BOARD), addr, serial).run()
