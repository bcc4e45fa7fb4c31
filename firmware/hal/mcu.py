"""HAL backend for real boards: machine.UART with an RS-485 direction pin."""
import machine
import time


class UartPort:
    def __init__(self, spec):
        self._uart = machine.UART(spec["uart"], baudrate=spec["baud"], tx=machine.Pin(spec["tx"]),
                                  rx=machine.Pin(spec["rx"]), timeout=0) if "tx" in spec else \
            machine.UART(spec["uart"], baudrate=spec["baud"], timeout=0)
        de = spec.get("de")
        self._de = machine.Pin(de, machine.Pin.OUT, value=0) if de is not None else None

    def readinto(self, buf):
        return self._uart.readinto(buf) if self._uart.any() else 0

    def write(self, buf, n):
        de = self._de
        if de is not None:
            de.value(1)  # drive the RS-485 line only while sending
        self._uart.write(memoryview(buf)[:n])
        if de is not None:
            self._uart.flush()
            de.value(0)


class McuHal:
    def __init__(self, board):
        self.bus = UartPort(board["bus"])

    def ticks_ms(self):
        return time.ticks_ms()

    def idle(self, timeout_ms):
        # Short sleeps keep the bus responsive; the UART's FIFO and IRQ buffer hold incoming bytes.
        time.sleep_ms(min(timeout_ms, 2))

    def reset(self):
        machine.reset()
