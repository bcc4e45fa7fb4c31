"""Pseudo-terminals that behave like a board's serial ports."""
import os
import pty
import termios
import tty


class Pty:
    """A pty pair. Others open `path`; we keep the slave open too so the master never sees EIO
    when nobody is connected, and the master is non-blocking so a stalled reader cannot stall us."""

    def __init__(self, isig=False, nonblocking_reads=False, backlog=1 << 20):
        self.master, self.slave = pty.openpty()
        self.pending = bytearray()
        self._backlog = backlog
        tty.setraw(self.slave)
        attrs = termios.tcgetattr(self.slave)
        if isig:
            attrs[3] |= termios.ISIG  # Ctrl-C raises KeyboardInterrupt in a busy program
        if nonblocking_reads:
            attrs[6][termios.VMIN] = 0  # a read returns at once with what is there
            attrs[6][termios.VTIME] = 0
        termios.tcsetattr(self.slave, termios.TCSANOW, attrs)
        self.attrs = attrs
        os.set_blocking(self.master, False)
        self.path = os.ttyname(self.slave)

    def restore_attrs(self):
        """Put back our settings (a program may leave the tty changed when it exits)."""
        termios.tcsetattr(self.slave, termios.TCSANOW, self.attrs)

    def read(self):
        try:
            return os.read(self.master, 4096)
        except (BlockingIOError, OSError):
            return b""

    def write(self, data):
        """Queue data for the reader. Past `backlog` unread bytes the oldest are dropped,
        as a UART drops what nobody reads; below it nothing is lost."""
        self.pending += data
        if len(self.pending) > self._backlog:
            del self.pending[:len(self.pending) - self._backlog]
        self.flush()

    def flush(self):
        while self.pending:
            try:
                n = os.write(self.master, self.pending)
            except (BlockingIOError, OSError):
                return
            del self.pending[:n]

    def close(self):
        for fd in (self.master, self.slave):
            try:
                os.close(fd)
            except OSError:
                pass
