"""HAL backend for the Unix-port virtual board: bus and plant link are ptys the simulator hands over.

With a plant link the board's clock, sensor signals and outputs are the simulator's (see
protocol/plantlink.py): each SENSE record sets the clock and the signals, and once the loop
has run every scan due by then, `sync()` answers with an ACT record of the outputs. Without
one the clock is real time and the board has no sensors (every measurement is a fault).
"""
import select
import struct
import time
from micropython import const

import proto
from hal.chip import Chip
import sim_devices  # provided by the virtual board's ROM (host/sxctl/sim/board_rom.py)

_NO_SIGNAL_UV = const(2000000)  # beyond every input range: what an open electrode input reads


def _i32(b, at):
    v = b[at] | (b[at + 1] << 8) | (b[at + 2] << 16) | ((b[at + 3] & 0x7F) << 24)
    return v - 0x80000000 if b[at + 3] & 0x80 else v


class UnixSimHal(Chip):
    has_sensors = False

    def __init__(self, board):
        if sim_devices.bus is None:
            raise OSError("unix-sim board has no bus device: start it with `sxctl sim`")
        # The bus tty is the link's port as it is: set to return at once (VMIN=0), its file
        # reads never block, and write(buf, n) sends n bytes without a slice.
        self.bus = sim_devices.bus
        self._poll = select.poll()
        self._poll.register(sim_devices.bus, select.POLLIN)
        self._plant = sim_devices.plant
        self._sense = bytearray(proto.PLANT_SENSE_SIZE)
        self._sense_len = 0
        self._act = bytearray(proto.PLANT_ACT_SIZE)
        self._pending = False  # a SENSE was taken and awaits its ACT
        self._now = 0
        self._start = time.ticks_ms()
        # Until the first SENSE the inputs read as unconnected: electrodes at the rail (a fault,
        # not pH 7.0 from 0 µV, which would latch the high-pH dosing trip before the plant spoke).
        self.ph_uv = _NO_SIGNAL_UV
        self.orp_uv = _NO_SIGNAL_UV
        self.rtd_mohm = 0
        self.pulses_aq = 0  # pulses since the last sample()
        self.pulses_org = 0
        self.sampled_aq = 0  # pulses latched by the last sample()
        self.sampled_org = 0
        self._stage = None
        self._enabled = False
        self.wdt_ms = board.get("wdt_ms", 0)
        if self._plant is not None:
            self.has_sensors = True
            self._poll.register(self._plant, select.POLLIN)

    def ticks_ms(self):
        if self._plant is None:
            return time.ticks_diff(time.ticks_ms(), self._start) & 0x3FFFFFFF
        return self._now

    def idle(self, timeout_ms):
        """Wait for bus bytes or the next plant tick, at most timeout_ms of real time."""
        self._poll.ipoll(timeout_ms)  # waits as poll() does, without a list of results to collect
        if self._plant is None or self._pending:
            return
        buf = self._sense
        if self._sense_len == 0:
            n = self._plant.readinto(buf)  # the usual case: the whole record at once, no allocation
        else:
            n = self._plant.readinto(memoryview(buf)[self._sense_len:])
        if not n:
            return
        self._sense_len += n
        if buf[0] != proto.PLANT_SENSE_MAGIC:
            self._sense_len = 0  # out of step: drop what we have and wait for a fresh record
            return
        if self._sense_len < proto.PLANT_SENSE_SIZE:
            return
        self._sense_len = 0
        self._now = _i32(buf, proto.PLANT_SENSE_TIME_MS_AT) & 0x3FFFFFFF
        self.ph_uv = _i32(buf, proto.PLANT_SENSE_PH_UV_AT)
        self.orp_uv = _i32(buf, proto.PLANT_SENSE_ORP_UV_AT)
        self.rtd_mohm = _i32(buf, proto.PLANT_SENSE_RTD_MOHM_AT)
        at = proto.PLANT_SENSE_PULSES_AQ_AT
        self.pulses_aq += buf[at] | (buf[at + 1] << 8)  # u16le
        at = proto.PLANT_SENSE_PULSES_ORG_AT
        self.pulses_org += buf[at] | (buf[at + 1] << 8)
        self._pending = True

    def sample(self):
        """Latch the sensor signals for one measurement; pulse counts restart from zero."""
        self.sampled_aq = self.pulses_aq
        self.sampled_org = self.pulses_org
        self.pulses_aq = 0
        self.pulses_org = 0

    def write_outputs(self, stage, enabled):
        was = self._enabled
        self._enabled = enabled
        self._stage = stage
        if stage is None and was and self._plant is not None:
            self._act_now()  # a stop: the plant sees the outputs go off at once, as pins would

    def _act_now(self):
        self._pending = True
        self.sync()

    def sync(self):
        """After the scans due at this tick: answer the plant with the outputs."""
        if not self._pending:
            return
        self._pending = False
        stage = self._stage
        if stage is None or not self._enabled:
            struct.pack_into(proto.PLANT_ACT_FMT, self._act, 0, proto.PLANT_ACT_MAGIC, 0, 0, 0, self._now,
                             0, 0, 0, 0, 0)
        else:
            struct.pack_into(proto.PLANT_ACT_FMT, self._act, 0, proto.PLANT_ACT_MAGIC, 1, stage.valves,
                             stage.mode, self._now, stage.base_dose, stage.reagent_dose, stage.aq_pump,
                             stage.org_pump, 0)
        self._plant.write(self._act, proto.PLANT_ACT_SIZE)

    def set_full_scale(self, *unused):
        pass  # nothing to scale: the plant link carries doses in mL/min
