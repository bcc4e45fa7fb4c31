"""HAL backend for the Unix-port virtual board: the bus is a pty the simulator hands over."""
import select
import time

import sim_devices  # provided by the virtual board's ROM (host/sxctl/sim/board_rom.py)


class TtyPort:
    """A serial port on a tty set to return at once (VMIN=0): reads never block."""

    def __init__(self, tty_file):
        self._file = tty_file
        self._poll = select.poll()
        self._poll.register(self._file, select.POLLIN)

    def readinto(self, buf):
        return self._file.readinto(buf)

    def write(self, buf, n):
        self._file.write(buf, n)

    def wait(self, timeout_ms):
        """Idle until bytes arrive or the timeout ends (the board's sleep between scans)."""
        self._poll.poll(timeout_ms)


class UnixSimHal:
    def __init__(self, board):
        if sim_devices.bus is None:
            raise OSError("unix-sim board has no bus device: start it with `sxctl sim`")
        self.bus = TtyPort(sim_devices.bus)

    def ticks_ms(self):
        return time.ticks_ms()

    def idle(self, timeout_ms):
        self.bus.wait(timeout_ms)

    def reset(self):
        # The virtual board's bridge restarts an interpreter that exits, as a board resets.
        import sys
        sys.exit(0)
