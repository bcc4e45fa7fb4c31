"""Stage controller application: owns the stage's state and runs the board's loop."""
import time
from micropython import const

import config_table as T
import proto
import service
from config import Config
from controller import StageController
from link import Link
from stage import Stage

_IDLE_MS = 10
# What a scan was doing when it raised: the value of its controller_fault event (docs/security.md).
PART_MEASURE = const(1)
PART_CALIBRATION = const(2)
PART_CONTROL = const(3)
PART_RECORD = const(4)


class App:
    """The running stage. startup.py builds it at reset with the buffers memory.py made."""

    on_request = service.on_request  # the bus service answers each request as a method of the app

    def __init__(self, hal, addr, serial, backlog, events_ring, link_buffers):
        from board import BOARD
        self.backlog = backlog
        self.events = events_ring
        self.hal = hal
        self.board_name = BOARD["name"].encode()
        self.serial = serial.encode()
        self.up_s = 0  # whole seconds since boot, counted on: ticks wrap (ticks_diff spans only ±6.2 days)
        self.up_ms = hal.ticks_ms()  # the tick that up_s counts from
        self.time_offset = 0  # Unix seconds at boot, once the host synced the clock (TIME_SYNC)
        self.stage = Stage()
        self.config = Config()
        self.controller = StageController(hal, self.config, self.stage, self.events, self.time_s)
        self.calibration = None  # the calibration session while one runs (calibration.py)
        hal.write_outputs(self.stage, False)  # a reset leaves every output off
        self.controller.event(proto.EV_BOOT, 0, 0)
        if hal.watchdog_reset():
            self.controller.latch(proto.ALARM_WATCHDOG_RESET, 0)  # the board stopped; the host is told
        self.link = Link(hal.bus, addr, self.on_request, link_buffers)
        self.stream_ms = 0
        self.part = 0  # what the scan is doing (PART_*)
        self.running = True

    # time
    def uptime_s(self):
        # Called every scan, so the ticks never run half their period (2^29 ms) past up_ms.
        seconds = time.ticks_diff(self.hal.ticks_ms(), self.up_ms) // 1000
        if seconds > 0:
            self.up_s += seconds
            self.up_ms = time.ticks_add(self.up_ms, seconds * 1000)
        return self.up_s

    def time_s(self):
        return self.time_offset + self.uptime_s()

    # the loop
    def scan(self, now, scan_no):
        """One measurement scan (and a control scan every control_scans), then a backlog record."""
        period = self.config.get(T.MEASURE_PERIOD)
        ctrl = self.controller
        self.part = PART_MEASURE
        ctrl.measure(now, period)
        if self.calibration:
            self.part = PART_CALIBRATION
            self.calibration.scan(self.hal)
        every = self.config.get(T.CONTROL_SCANS)
        self.part = PART_CONTROL
        if ctrl.link_timed_out(now, period) or scan_no % every == 0:  # the timeout check first: it latches
            ctrl.control(now, period * every)
        self.part = PART_RECORD
        backlog = self.backlog
        self.stage.pack(backlog.ring, backlog.slot(), backlog.latest + 1, self.time_s())
        backlog.commit()

    def run(self):
        """The loop, until Ctrl-C or an error outside the scans; every output is off after it."""
        hal = self.hal
        try:
            hal.start_watchdog()
            self._loop()
        finally:
            hal.write_outputs(None, False)

    def _loop(self):
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
                try:
                    self.scan(next_scan, scan_no)
                except Exception:  # not KeyboardInterrupt: Ctrl-C still stops the board
                    # The stage goes safe and says so; the loop and the bus go on.
                    self.controller.fault(self.part, next_scan)
                next_scan = time.ticks_add(next_scan, self.config.get(T.MEASURE_PERIOD))
            hal.sync()
            if self.stream_ms and time.ticks_diff(now, next_stream) >= 0:
                next_stream = time.ticks_add(now, self.stream_ms)
                self.stage.pack(link.tx, proto.HEADER_SIZE, self.backlog.latest, self.time_s())
                link.send_stream(proto.MSG_TELEMETRY, proto.TELEMETRY_SIZE)

