"""Test support ON MicroPython: a fake `machine` that records what a real-board HAL does to
its pins (installed in sys.modules on import), and the real-board HAL built on it."""
import sys

class Log:
    def __init__(self):
        self.pins = {}
        self.uarts = []
        self.adcs = {}
        self.pwms = {}
        self.wdt = None
        self.timers = []
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
    def __init__(self, id=0, timeout=0):
        self.timeout = timeout
        self.fed = 0
        LOG.wdt = self

    def feed(self):
        self.fed += 1


class Timer:
    ONE_SHOT = 0
    hardware_only = False  # as on ESP32: no virtual timer (-1)

    def __init__(self, id=-1, mode=1, period=0, callback=None):
        if id == -1 and Timer.hardware_only:
            raise ValueError("invalid Timer number")
        self.id, self.mode, self.period, self.callback = id, mode, period, callback
        self.running = True
        LOG.timers.append(self)

    def deinit(self):
        self.running = False


class FakeMachine:
    Pin = Pin
    ADC = ADC
    PWM = PWM
    UART = UART
    WDT = WDT
    Timer = Timer

    def disable_irq(self):
        LOG.irq_state += 1
        return 1

    def enable_irq(self, state):
        LOG.irq_state -= 1

    WDT_RESET = 3
    cause = 1

    def reset_cause(self):
        return self.cause

    def reset(self):
        raise SystemExit


sys.modules["machine"] = FakeMachine()
from hal.mcu import McuHal  # noqa: E402  imported after the fake machine is in place


def _hal(module):
    LOG.__init__()
    board = __import__(module).BOARD
    return McuHal(board), board
