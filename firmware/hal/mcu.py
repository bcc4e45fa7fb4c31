"""HAL backend for real boards: ADC inputs, pulse counters, PWM pumps, digital outputs, RS-485
UART with a direction pin, and the watchdog. Pins and scaling come from the board definition.

Signal conventions (the board keys, with units and defaults: host/sxctl/boards.py SCHEMA):
  - pH and ORP front ends shift the electrode to mid-rail: E = (V - offset) / gain;
  - the temperature input is a Pt1000 in a divider with `rtd_series_ohm` to Vref;
  - flow meters pulse a GPIO, counted by an interrupt that only increments a counter;
  - pumps are PWM duty 0..65535 of full scale; `outputs_enable` gates every output stage and
    is driven low at reset by the hardware pull-down and by this HAL.
"""
import time
from array import array

import machine

from fixedpoint import muldiv
from hal.chip import Chip

_U16 = 65536


class UartPort:
    """The bus UART. `de` is the RS-485 driver-enable pin, high only while sending."""

    def __init__(self, spec):
        if "tx" in spec:
            self._uart = machine.UART(spec["uart"], baudrate=spec["baud"], tx=machine.Pin(spec["tx"]),
                                      rx=machine.Pin(spec["rx"]), timeout=0)
        else:
            self._uart = machine.UART(spec["uart"], baudrate=spec["baud"], timeout=0)
        de = spec.get("de")
        self._de = machine.Pin(de, machine.Pin.OUT, value=0) if de is not None else None

    def readinto(self, buf):
        return self._uart.readinto(buf) if self._uart.any() else 0

    def write(self, buf, n):
        de = self._de
        if de is not None:
            de.value(1)
        self._uart.write(buf, n)  # a stream write with a length: no slice to allocate
        if de is not None:
            self._uart.flush()  # the last stop bit must leave before the line is released
            de.value(0)


class McuHal(Chip):
    has_sensors = True

    def __init__(self, board):
        M = machine
        self.bus = UartPort(board["bus"])
        adc = board["adc"]
        self._vref_uv = adc["vref_mv"] * 1000
        self._ph = M.ADC(M.Pin(adc["ph"]))
        self._orp = M.ADC(M.Pin(adc["orp"]))
        self._temp = M.ADC(M.Pin(adc["temperature"]))
        self._offset_uv = adc.get("electrode_offset_mv", adc["vref_mv"] // 2) * 1000
        self._gain = adc.get("electrode_gain", 1)
        self._rtd_series_ohm = adc.get("rtd_series_ohm", 1000)
        # Pulse counts, written only by the interrupt handlers (an increment allocates nothing).
        self._pulses = array("i", [0, 0])
        pins = board["pulse_in"]
        self._meters = (M.Pin(pins["flow_aq"], M.Pin.IN), M.Pin(pins["flow_org"], M.Pin.IN))
        self._meters[0].irq(self._count_aq, M.Pin.IRQ_RISING)
        self._meters[1].irq(self._count_org, M.Pin.IRQ_RISING)
        pwm = board["pwm_out"]
        self._base = M.PWM(M.Pin(pwm["base_pump"]), freq=1000, duty_u16=0)
        self._reagent = M.PWM(M.Pin(pwm["acid_pump"]), freq=1000, duty_u16=0)
        self._aq = M.PWM(M.Pin(pwm["aq_pump"]), freq=1000, duty_u16=0)
        self._org = M.PWM(M.Pin(pwm["org_pump"]), freq=1000, duty_u16=0)
        out = board["digital_out"]
        self._valve = M.Pin(out["valve"], M.Pin.OUT, value=0)
        self._enable = M.Pin(out["outputs_enable"], M.Pin.OUT, value=0)
        self.wdt_ms = board["wdt_ms"]
        self.base_full = 1  # set by set_full_scale(): dose (0.01 mL/min) at 100 % duty
        self.reagent_full = 1
        self.ph_uv = 0
        self.orp_uv = 0
        self.rtd_mohm = 0
        self.sampled_aq = 0
        self.sampled_org = 0

    def _count_aq(self, pin):
        self._pulses[0] += 1

    def _count_org(self, pin):
        self._pulses[1] += 1

    def ticks_ms(self):
        return time.ticks_ms()

    def idle(self, timeout_ms):
        # Short sleeps keep the bus responsive; the UART's buffer holds what arrives meanwhile.
        time.sleep_ms(timeout_ms if timeout_ms < 2 else 2)

    def _uv(self, adc):
        return muldiv(adc.read_u16(), self._vref_uv, _U16)

    def sample(self):
        """Latch every input for one measurement; pulse counters restart from zero."""
        self.ph_uv = (self._uv(self._ph) - self._offset_uv) // self._gain
        self.orp_uv = (self._uv(self._orp) - self._offset_uv) // self._gain
        v = self._temp.read_u16()
        self.rtd_mohm = muldiv(v, self._rtd_series_ohm * 1000, _U16 - v) if v < _U16 - 1 else 0
        state = machine.disable_irq()
        self.sampled_aq = self._pulses[0]
        self.sampled_org = self._pulses[1]
        self._pulses[0] = 0
        self._pulses[1] = 0
        machine.enable_irq(state)

    def set_full_scale(self, base_full, reagent_full):
        self.base_full = base_full if base_full > 0 else 1
        self.reagent_full = reagent_full if reagent_full > 0 else 1

    def _duty(self, value, full):
        if value <= 0:
            return 0
        return 65535 if value >= full else muldiv(value, 65535, full)

    def write_outputs(self, stage, enabled):
        if stage is None or not enabled:
            self._enable.value(0)
            self._base.duty_u16(0)
            self._reagent.duty_u16(0)
            self._aq.duty_u16(0)
            self._org.duty_u16(0)
            self._valve.value(0)
            return
        self._base.duty_u16(self._duty(stage.base_dose, self.base_full))
        self._reagent.duty_u16(self._duty(stage.reagent_dose, self.reagent_full))
        self._aq.duty_u16(self._duty(stage.aq_pump, 200))
        self._org.duty_u16(self._duty(stage.org_pump, 200))
        self._valve.value(stage.valves & 1)
        self._enable.value(1)

    def sync(self):
        pass

