"""A virtual board: the firmware on the MicroPython Unix port, with a USB port like a board's.

The Unix port runs on a pty of its own (the console); mpremote talks to a second pty (the
USB port) and the bridge copies between them, because mpremote and the interpreter on one
pty hang each other. A soft reset exits the Unix process, so the bridge restarts it and
prints "soft reboot" as a board does: from the friendly REPL the new process runs main.py,
from the raw REPL it comes back in the raw REPL without main.py, as MicroPython ports do.
"""
import fcntl
import os
import pathlib
import signal
import subprocess
import termios

from .ptys import Pty

ROM_SOURCE = (pathlib.Path(__file__).parent / "board_rom.py").read_text()
RAW_BANNER = b"raw REPL; CTRL-B to exit\r\n"
_CTRL_A, _CTRL_B = 0x01, 0x02


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
        self.plant_path = plant_path  # the plant link pty (SXCTL_PLANT), or None: no sensors
        self.extra_env = env or {}
        self.usb = Pty(backlog=64 << 10)
        self.console = Pty(isig=True)
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
        if self.bus_path:
            env["SXCTL_BUS"] = self.bus_path
        env.pop("SXCTL_PLANT", None)
        if self.plant_path:
            env["SXCTL_PLANT"] = self.plant_path
        self.console.restore_attrs()
        self.proc = subprocess.Popen(
            micropython_command(self.micropython, self.heapsize),
            stdin=self.console.slave, stdout=self.console.slave, stderr=self.console.slave,
            cwd=str(self.root), env=env, preexec_fn=_take_console, close_fds=True)

    def fds(self):
        return (self.usb.master, self.console.master)

    def on_readable(self, fd):
        if fd == self.usb.master:
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

    def service(self):
        """Flush queued bytes and restart the interpreter if it exited (a soft reset)."""
        self.usb.flush()
        self.console.flush()
        if self.proc is None or self.proc.poll() is None:
            return
        self._from_console(self.console.read())
        self.restarts += 1
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
