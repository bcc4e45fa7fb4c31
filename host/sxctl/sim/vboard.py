"""A virtual board: the firmware on the MicroPython Unix port, with a USB port like a board's.

The Unix port runs on a pty of its own (the console); mpremote talks to a second pty (the
USB port) and the bridge copies between them, because mpremote and the interpreter on one
pty hang each other. A soft reset exits the Unix process, so the bridge restarts it and
prints "soft reboot" as a board does: from the friendly REPL the new process runs main.py,
from the raw REPL it comes back in the raw REPL without main.py, as MicroPython ports do.

The bridge is also the board's chip (the ROM's `machine` talks to it over a third pty): a
watchdog that, once started, cannot be stopped, keeps running across a soft reset and
hard-resets the board when not fed within its timeout; `machine.reset()`, a hard reset that
runs main.py whatever REPL the board was in; and the cause of the last reset, for
`machine.reset_cause()`.

And it holds the board's output pins: the plant link passes through it (the simulator's end
on one side, a pty of the interpreter's own on the other), and it keeps the outputs of the
last ACT. Whenever the firmware is not running (the interpreter at its REPL, which the ROM
reports as "H"), it answers each SENSE itself with those held outputs, as real pins keep
driving a pump after the program stops; every (re)start of the interpreter sets them off.
"""
import fcntl
import os
import pathlib
import signal
import subprocess
import termios
import time

from sxproto.plantlink import SENSE_MAGIC

from .plantlink import ACT, OFF, SENSE
from .ptys import Pty

ROM_SOURCE = (pathlib.Path(__file__).parent / "board_rom.py").read_text()
RAW_BANNER = b"raw REPL; CTRL-B to exit\r\n"
_CTRL_A, _CTRL_B = 0x01, 0x02
# machine.reset_cause() values, as the MicroPython ports number them
PWRON_RESET, HARD_RESET, WDT_RESET, SOFT_RESET = 1, 2, 3, 5


def _take_console():
    # Give the interpreter the console as its controlling terminal, so the tty turns Ctrl-C
    # into SIGINT while it runs code (its REPL switches that off while it reads a line).
    os.setsid()
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


def micropython_command(micropython, heapsize):
    return [micropython, "-X", "heapsize=%s" % heapsize, "-i", "-c", ROM_SOURCE]


class VirtualBoard:
    def __init__(self, addr, root, micropython, heapsize, bus_path=None, env=None, plant_path=None):
        self.addr = addr
        self.root = pathlib.Path(root)
        self.micropython = micropython
        self.heapsize = heapsize
        self.bus_path = bus_path
        self.plant_path = plant_path  # the simulator's plant link pty, or None: no sensors
        self.extra_env = env or {}
        self.usb = Pty(backlog=64 << 10)
        self.console = Pty(isig=True)
        self.chip = Pty()
        self.pins = OFF  # the outputs as the last ACT left them
        self.halted = False  # the firmware stopped: the interpreter sits at its REPL
        self._sense_rx = b""
        self._act_rx = b""
        self._awaiting = None  # the time of a SENSE handed to the firmware and not yet answered
        self.plant = None  # the interpreter's end of the plant link, and our end of the simulator's
        self._plant_fd = None
        if plant_path:
            self.plant = Pty(nonblocking_reads=True, backlog=64 << 10)
            self._plant_fd = os.open(plant_path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
        self._chip_rx = b""
        self.wdt_ms = None  # the running watchdog's timeout, None while it is not started
        self.wdt_deadline = 0.0
        self.reset_cause = PWRON_RESET
        self.resets = {HARD_RESET: 0, WDT_RESET: 0, SOFT_RESET: 0}
        self.proc = None
        self.raw_repl = False
        self.restarts = 0
        self._await_raw_banner = False
        self._held = b""
        self.console_tail = b""  # the last lines the interpreter printed, for error messages

    def start(self, run_main=True):
        env = dict(os.environ)
        env.update(self.extra_env)
        env["SXCTL_ROM_MAIN"] = "1" if run_main else "0"
        env["SXCTL_CHIP"] = "%d:%s" % (self.reset_cause, self.chip.path)
        if self.bus_path:
            env["SXCTL_BUS"] = self.bus_path
        env.pop("SXCTL_PLANT", None)
        if self.plant is not None:
            env["SXCTL_PLANT"] = self.plant.path
        self.pins = OFF._replace(time_ms=self.pins.time_ms)  # a reset: every output off
        self.halted = False
        self._act_rx = b""
        self.console.restore_attrs()
        if self.plant is not None:
            # A SENSE the simulator already wrote (the preloaded first one) waits in the firmware's
            # pty before it starts: its first scan measures the plant whenever our byte-moving loop
            # gets to run, not the unconnected inputs of a board that came up first.
            self._from_plant(self._read_plant())
        self.proc = subprocess.Popen(
            micropython_command(self.micropython, self.heapsize),
            stdin=self.console.slave, stdout=self.console.slave, stderr=self.console.slave,
            cwd=str(self.root), env=env, preexec_fn=_take_console, close_fds=True)

    def fds(self):
        plant = (self.plant.master, self._plant_fd) if self.plant is not None else ()
        return (self.usb.master, self.console.master, self.chip.master) + plant

    def on_readable(self, fd):
        if fd == self._plant_fd:
            self._from_plant(self._read_plant())
        elif self.plant is not None and fd == self.plant.master:
            self._from_firmware(self.plant.read())
        elif fd == self.chip.master:
            self._from_chip(self.chip.read())
        elif fd == self.usb.master:
            data = self.usb.read()
            for byte in data:
                if byte == _CTRL_A:
                    self.raw_repl = True
                elif byte == _CTRL_B:
                    self.raw_repl = False
            self.console.write(data)
        else:
            self._from_console(self.console.read())

    def _from_console(self, data):
        if not data:
            return
        self.console_tail = (self.console_tail + data)[-600:]
        if self._await_raw_banner:
            # Swallow the restarted interpreter's banner until it is back in the raw REPL.
            self._held += data
            at = self._held.find(RAW_BANNER)
            if at < 0:
                return
            data = self._held[at:]
            self._held = b""
            self._await_raw_banner = False
        self.usb.write(data)

    def _read_plant(self):
        try:
            return os.read(self._plant_fd, 4096)
        except (BlockingIOError, OSError):
            return b""

    def _from_plant(self, data):
        """SENSE records from the simulator: to the firmware, or answered from the pins."""
        if not self.halted:
            self.plant.write(data)
        self._sense_rx += data
        while len(self._sense_rx) >= SENSE.size:
            if self._sense_rx[0] != SENSE_MAGIC:
                self._sense_rx = self._sense_rx[1:]
                continue
            time_ms = SENSE.unpack_from(self._sense_rx)[3]
            self._sense_rx = self._sense_rx[SENSE.size:]
            if self.halted:
                self._answer_from_pins(time_ms)
            else:
                self._awaiting = time_ms  # until the firmware's ACT comes (or it stops first)

    def _answer_from_pins(self, time_ms):
        self.pins = self.pins._replace(time_ms=time_ms)
        self._to_plant(ACT.pack(*self.pins))

    def _from_firmware(self, data):
        """ACT records from the firmware: to the simulator, and the pins follow them."""
        self._to_plant(data)
        self._act_rx += data
        while len(self._act_rx) >= ACT.size:
            if self._act_rx[0] != OFF.magic:
                self._act_rx = self._act_rx[1:]
                continue
            self.pins = OFF._make(ACT.unpack_from(self._act_rx))
            self._act_rx = self._act_rx[ACT.size:]
            if self.pins.time_ms == self._awaiting:
                self._awaiting = None

    def _to_plant(self, data):
        try:
            os.write(self._plant_fd, data)
        except (BlockingIOError, OSError):
            pass  # nobody drains the simulator's end: dropped, as a UART would

    def _from_chip(self, data):
        self._chip_rx += data
        while self._chip_rx:
            op = self._chip_rx[:1]
            if op == b"F":
                self._chip_rx = self._chip_rx[1:]
                if self.wdt_ms:
                    self.wdt_deadline = time.monotonic() + self.wdt_ms / 1000.0
            elif op == b"W":
                end = self._chip_rx.find(b"\n")
                if end < 0:
                    return
                ms, self._chip_rx = self._chip_rx[1:end], self._chip_rx[end + 1:]
                if self.wdt_ms is None:  # started once; later calls change nothing, as on rp2/stm32
                    self.wdt_ms = max(1, int(ms or 5000))
                self.wdt_deadline = time.monotonic() + self.wdt_ms / 1000.0
            elif op == b"H":
                self._chip_rx = self._chip_rx[1:]
                if self.plant is not None:
                    self._from_firmware(self.plant.read())  # what it sent before it stopped
                self.halted = True
                if self._awaiting is not None:  # handed over, never answered: the pins answer
                    self._answer_from_pins(self._awaiting)
                    self._awaiting = None
            elif op == b"R":
                self._chip_rx = b""
                self.hard_reset(HARD_RESET)
                return
            else:
                self._chip_rx = self._chip_rx[1:]  # not the ROM's: ignored

    def hard_reset(self, cause=HARD_RESET):
        """What the reset pin does: the interpreter ends wherever it was, the watchdog stops,
        and the board boots into main.py from the friendly REPL."""
        self._from_console(self.console.read())
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._from_console(self.console.read())
        self.resets[cause] += 1
        self.wdt_ms = None
        self.raw_repl = False
        self._await_raw_banner = False
        self._held = b""
        self._chip_rx = b""
        self.reset_cause = cause
        self.start(run_main=True)

    def service(self):
        """Flush queued bytes, hard-reset a board whose watchdog ran out, and restart the
        interpreter if it exited (a soft reset)."""
        self.usb.flush()
        self.console.flush()
        if self.plant is not None:
            self.plant.flush()
        self._from_chip(self.chip.read())
        if self.wdt_ms is not None and time.monotonic() > self.wdt_deadline and self.proc is not None:
            self.hard_reset(WDT_RESET)
            return
        if self.proc is None or self.proc.poll() is None:
            return
        self._from_console(self.console.read())
        self._from_chip(self.chip.read())
        if self.proc is None or self.proc.poll() is None:
            return  # it had asked for a hard reset, done just now
        self.restarts += 1
        self.resets[SOFT_RESET] += 1
        self.reset_cause = SOFT_RESET
        self.usb.write(b"MPY: soft reboot\r\n")
        if self.raw_repl:
            self.start(run_main=False)
            self._await_raw_banner = True
            self.console.write(bytes([_CTRL_A]))
        else:
            self.start(run_main=True)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(2)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def close(self):
        self.stop()
        self.usb.close()
        self.console.close()
        self.chip.close()
        if self.plant is not None:
            self.plant.close()
            os.close(self._plant_fd)
            self.plant = None
