"""The real-board HAL against a fake `machine`, with the exact pins of every board definition."""
import sys
from array import array

import stage as stage_module

BOARD_MODULES = ("board_rp2_pico", "board_esp32_devkitc", "board_pyboard_v11")


class Log:
    def __init__(self):
        self.pins = {}
        self.uarts = []
        self.adcs = {}
        self.pwms = {}
        self.wdt = None
        self.irq_state = 0


LOG = Log()


class Pin:
    IN = 0
    OUT = 1
    IRQ_RISING = 4

    def __init__(self, ident, mode=-1, value=None):
        self.ident = ident
        self.mode = mode
        self.level = value
        self.handler = None
        LOG.pins[ident] = self

    def value(self, v=None):
        if v is None:
            return self.level
        self.level = v

    def irq(self, handler, trigger):
        self.handler = handler


class ADC:
    def __init__(self, pin):
        self.pin = pin
        self.counts = 32768
        LOG.adcs[pin.ident] = self

    def read_u16(self):
        return self.counts


class PWM:
    def __init__(self, pin, freq=0, duty_u16=0):
        self.pin = pin
        self.duty = duty_u16
        LOG.pwms[pin.ident] = self

    def duty_u16(self, d):
        self.duty = d


class UART:
    def __init__(self, ident, baudrate=0, tx=None, rx=None, timeout=None):
        self.ident = ident
        self.baudrate = baudrate
        self.tx = tx
        self.rx = rx
        self.sent = b""
        LOG.uarts.append(self)

    def any(self):
        return 0

    def readinto(self, buf):
        return 0

    def write(self, buf, n=None):
        self.sent += bytes(buf[:n])

    def flush(self):
        pass


class WDT:
    def __init__(self, timeout):
        self.timeout = timeout
        self.fed = 0
        LOG.wdt = self

    def feed(self):
        self.fed += 1


class FakeMachine:
    Pin = Pin
    ADC = ADC
    PWM = PWM
    UART = UART
    WDT = WDT

    def disable_irq(self):
        LOG.irq_state += 1
        return 1

    def enable_irq(self, state):
        LOG.irq_state -= 1

    def reset(self):
        raise SystemExit


sys.modules["machine"] = FakeMachine()
from hal.mcu import McuHal  # noqa: E402  imported after the fake machine is in place


def _hal(module):
    global LOG
    LOG = Log()
    board = __import__(module).BOARD
    return McuHal(board), board


def test_every_board_wires_its_own_pins():
    for module in BOARD_MODULES:
        hal, board = _hal(module)
        bus = board["bus"]
        uart = LOG.uarts[-1]
        assert uart.ident == bus["uart"] and uart.baudrate == bus["baud"], module
        if "tx" in bus:
            assert uart.tx.ident == bus["tx"] and uart.rx.ident == bus["rx"], module
        for name in ("ph", "orp", "temperature"):
            assert board["adc"][name] in LOG.adcs, (module, name)
        for name, pin in board["pwm_out"].items():
            assert LOG.pwms[pin].duty == 0, (module, name)
        for name in ("flow_aq", "flow_org"):
            assert LOG.pins[board["pulse_in"][name]].handler is not None, (module, name)
        assert LOG.pins[board["digital_out"]["outputs_enable"]].level == 0, module
        assert LOG.pins[bus["de"]].level == 0, module
        assert LOG.wdt.timeout == board["wdt_ms"], module


def test_outputs_follow_the_stage_and_enable_gates_them():
    hal, board = _hal("board_rp2_pico")
    hal.set_full_scale(50000, 10000)
    st = stage_module.Stage()
    st.base_dose = 25000  # half of full scale
    st.aq_pump = 200
    st.valves = 1
    hal.write_outputs(st, True)
    pwm = board["pwm_out"]
    assert abs(LOG.pwms[pwm["base_pump"]].duty - 32767) <= 1
    assert LOG.pwms[pwm["aq_pump"]].duty == 65535
    assert LOG.pins[board["digital_out"]["outputs_enable"]].level == 1
    hal.write_outputs(st, False)
    assert LOG.pwms[pwm["base_pump"]].duty == 0 and LOG.pwms[pwm["aq_pump"]].duty == 0
    assert LOG.pins[board["digital_out"]["outputs_enable"]].level == 0


def test_inputs_scale_and_pulses_are_counted_by_interrupt():
    hal, board = _hal("board_esp32_devkitc")
    adc = board["adc"]
    LOG.adcs[adc["ph"]].counts = 32768 + 3277  # 3.3 V ref: +165 mV above mid-rail
    LOG.adcs[adc["temperature"]].counts = 32768  # Pt1000 against 1000 ohm: mid-rail = 1000 ohm
    meter = LOG.pins[board["pulse_in"]["flow_aq"]]
    for _ in range(7):
        meter.handler(meter)
    hal.sample()
    assert abs(hal.ph_uv - 165000) < 100
    assert abs(hal.rtd_mohm - 1000000) < 100
    assert hal.sampled_aq == 7 and hal.sampled_org == 0
    assert LOG.irq_state == 0  # interrupts enabled again
    hal.sample()
    assert hal.sampled_aq == 0


def test_bus_drives_the_rs485_direction_pin_only_while_sending():
    hal, board = _hal("board_pyboard_v11")
    de = LOG.pins[board["bus"]["de"]]
    seen = []
    uart = LOG.uarts[-1]
    original = uart.write

    def write(buf, n=None):
        seen.append(de.level)
        original(buf, n)
    uart.write = write
    hal.bus.write(bytearray(b"\x01\x02\x03\x00"), 3)
    assert seen == [1] and de.level == 0 and uart.sent == b"\x01\x02\x03"


def test_watchdog_is_fed_by_the_loop():
    hal, board = _hal("board_rp2_pico")
    hal.feed_watchdog()
    hal.feed_watchdog()
    assert LOG.wdt.fed == 2
