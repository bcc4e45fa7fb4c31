"""A board's MicroPython REPL as sxctl uses it: one interface, the serial implementation.

As in mpremote (transport.py / transport_serial.py): `Repl` builds every file operation from
`exec` and `evaluate`, and `SerialRepl` only moves bytes, with mpremote's SerialTransport in
the raw REPL. Flash, ports, key provisioning and the tests of the virtual boards use it.

A live stage is handled with care:
- `at_prompt()` asks, without interrupting anything, whether a REPL answers at all (a board
  running its firmware does not read its USB port, so it says nothing);
- entering, when its Ctrl-C stopped a running program, brings the board into its maintenance
  boot first (outputs off, no watchdog, for as long as the work takes): a running watchdog
  would otherwise hard-reset the board in the middle of it;
- `write()` puts a file under a temporary name and renames it into place only once its hash
  checks on the board, so a reset at any moment leaves the old file or the new one;
- `restart()` (and `close()`, whatever happened) ends maintenance and boots the firmware again.
"""
import ast
import hashlib
import time

import serial
from mpremote.transport import TransportError
from mpremote.transport_serial import SerialTransport

from .boardfiles import MAINTENANCE
from .errors import SxctlError

RAW_BANNER = b"raw REPL; CTRL-B to exit\r\n"
FRIENDLY_PROMPT = b">>> "
MAINTENANCE_BANNER = b"sxctl maintenance"
MAINTENANCE_FLAG = MAINTENANCE  # the file asking for a maintenance boot (firmware/maintenance.py)
MAINTENANCE_S = 600  # a maintenance boot nobody takes over ends after this
TEMP_SUFFIX = ".sxnew"  # a file being written; renamed into place once its hash checks
WRITE_CHUNK = 512  # bytes per exec when writing: repr() of it compiles in a few KiB of heap
HASH_BATCH = 16  # files hashed per eval

# Board-side helpers, defined once per session in the raw REPL's globals.
_BOARD_HELPERS = """\
import os,hashlib
def _sxh1(p,b):
 h=hashlib.sha256()
 with open(p,'rb') as f:
  while 1:
   n=f.readinto(b)
   if not n:break
   h.update(memoryview(b)[:n])
 return h.digest()
def _sxh(ps):
 r=[]
 b=bytearray(256)
 for p in ps:
  try:r.append(_sxh1(p,b))
  except OSError:r.append(None)
 return r
def _sxm(t,p,d):
 try:
  if _sxh1(t,bytearray(256))!=d:return 0
 except OSError:return 0
 os.rename(t,p)
 return 1
def _sxd(ds):
 for d in ds:
  try:os.mkdir(d)
  except OSError:pass
def _sxr(ps):
 for p in ps:
  try:os.remove(p)
  except OSError:pass
 for p in ps:
  while p.count('/')>1:
   p=p[:p.rfind('/')]
   try:os.rmdir(p)
   except OSError:break
"""
_HELPER_NAMES = "_sxh1,_sxh,_sxm,_sxd,_sxr"


def no_repl(port, why=""):
    return SxctlError("no MicroPython REPL answered on %s%s: check the USB cable, that the board is "
                      "running MicroPython (flash it with --interpreter) and the port (`sxctl ports`)"
                      % (port, " (%s)" % why if why else ""))


class PortUnavailable(SxctlError):
    pass


class Repl:
    """What sxctl does on a board through its raw REPL, built from exec() and evaluate()."""

    port = "?"
    helpers = False

    def exec(self, code):
        raise NotImplementedError

    def evaluate(self, expression):
        return ast.literal_eval(self.exec("print(repr(%s))" % expression).strip().decode())

    def _helpers(self):
        if not self.helpers:
            self.exec(_BOARD_HELPERS)
            self.helpers = True

    def hashes(self, paths):
        """{path: sha256 digest, or None where no such file}, hashed on the board."""
        self._helpers()
        paths = list(paths)
        found = {}
        for i in range(0, len(paths), HASH_BATCH):
            batch = paths[i:i + HASH_BATCH]
            found.update(zip(batch, self.evaluate("_sxh(%r)" % (tuple("/" + p for p in batch),))))
        return found

    def mkdirs(self, dirs):
        if dirs:
            self._helpers()
            self.exec("_sxd(%r)" % (tuple("/" + d for d in dirs),))

    def remove(self, paths):
        if paths:
            self._helpers()
            self.exec("_sxr(%r)" % (tuple("/" + p for p in paths),))

    def write(self, path, data, progress=None):
        """Write a file so that a reset at any moment leaves either its old or its new bytes:
        under a temporary name first, renamed over the old one once its hash checks."""
        temp = path + TEMP_SUFFIX
        self.write_raw(temp, data, progress)
        self._helpers()
        if not self.evaluate("_sxm(%r,%r,%r)" % ("/" + temp, "/" + path, hashlib.sha256(data).digest())):
            self.remove([temp])
            raise SxctlError("writing /%s on %s failed: the copy on the board differs from what was sent "
                             "(its filesystem may be full: check `mpremote connect %s df`); the old file is "
                             "still in place, flash again to finish" % (path, self.port, self.port))

    def platform(self):
        """(sys.platform, sys.implementation._machine) of the board."""
        return tuple(self.evaluate("(__import__('sys').platform,getattr(__import__('sys').implementation,"
                                   "'_machine',''))"))

    def mpy_version(self):
        """sys.implementation._mpy of the board (None if it does not say)."""
        return self.evaluate("getattr(__import__('sys').implementation,'_mpy',None)")

    def request_maintenance(self, seconds=MAINTENANCE_S):
        self.exec("f=open('/%s','w')\nf.write('%d\\n')\nf.close()\ndel f" % (MAINTENANCE_FLAG, seconds))

    def end_maintenance(self):
        self._helpers()
        self.exec("_sxr(('/%s',))" % MAINTENANCE_FLAG)


class SerialRepl(Repl):
    """A board's raw REPL over its USB serial port (mpremote's SerialTransport).

    `maintenance=True`: when entering stops a running program (the firmware), the board is
    first brought into its maintenance boot (outputs off, no watchdog) and entered again."""

    def __init__(self, port, timeout=5.0, maintenance=True):
        self.port = port
        self.timeout = timeout
        self.interrupted = False  # entering stopped a running program
        self.maintenance = False  # the board is in its maintenance boot for us
        self.transport = self._open(port)
        try:
            self._enter_raw(timeout)
            if self.interrupted and maintenance:
                self._enter_maintenance()
        except BaseException:
            self._close_transport()
            raise

    @staticmethod
    def _open(port):
        try:
            return SerialTransport(port, baudrate=115200, timeout=0.5)
        except (TransportError, serial.SerialException, OSError) as e:
            raise PortUnavailable("cannot open %s: %s; check the path (`sxctl ports`) and that no other "
                                  "program (mpremote, a terminal) holds it" % (port, e)) from None

    @staticmethod
    def at_prompt(port, timeout=0.5):
        """True if a REPL answers Ctrl-B on `port` (which stops nothing), False if nothing does:
        a board running its firmware ignores its USB port. PortUnavailable if it cannot be opened."""
        try:
            s = serial.Serial(port, 115200, timeout=0.05, exclusive=True)  # as mpremote opens it
        except (serial.SerialException, OSError) as e:
            raise PortUnavailable("cannot open %s: %s" % (port, e)) from None
        try:
            s.reset_input_buffer()
            s.write(b"\r\x02")  # Ctrl-B: a raw REPL leaves for the friendly one, which prompts
            deadline = time.monotonic() + timeout
            seen = b""
            while time.monotonic() < deadline:
                seen += s.read(256)
                if FRIENDLY_PROMPT in seen:
                    return True
            return False
        finally:
            s.close()

    def _enter_raw(self, timeout):
        # mpremote's enter_raw_repl(soft_reset=True), keeping what the board said so we know
        # whether Ctrl-C stopped a running program. The soft reset frees the heap the firmware
        # held, and in the raw REPL it does not run main.py (boot.py drives the outputs off).
        # Ctrl-C is sent again while nothing answers: one that lands as a board is starting up
        # can be lost, and the program it meant to stop would run on.
        t = self.transport
        deadline = time.monotonic() + timeout
        data = b""
        while not data.endswith(RAW_BANNER + b">") and time.monotonic() < deadline:
            t.serial.write(b"\r\x03")
            t.serial.write(b"\r\x01")
            data += t.read_until(1, RAW_BANNER + b">", timeout=1.0, timeout_overall=timeout)
        if not data.endswith(RAW_BANNER + b">"):
            raise no_repl(self.port, "nothing answered Ctrl-C, Ctrl-A within %g s" % timeout if not data
                          else "it answered %r" % data[-60:])
        self.interrupted = self.interrupted or b"KeyboardInterrupt" in data
        if MAINTENANCE_BANNER in data:
            self.maintenance = True
        t.serial.write(b"\x04")
        data = t.read_until(1, b"soft reboot\r\n", timeout=timeout, timeout_overall=timeout)
        if data.endswith(b"soft reboot\r\n"):
            data = t.read_until(1, RAW_BANNER, timeout=timeout, timeout_overall=timeout)
        if not data.endswith(RAW_BANNER):
            raise SxctlError("the board on %s did not come back to the raw REPL after a soft reset (%r): "
                             "press its reset button and try again" % (self.port, data[-60:]))
        t.in_raw_repl = True
        self.helpers = False

    def _enter_maintenance(self):
        # A stopped firmware leaves its watchdog running: ask for a maintenance boot and
        # hard-reset into it now, well inside the watchdog's timeout. Its banner says it came.
        self.request_maintenance()
        self.transport.serial.write(b"import machine\r\nmachine.reset()\r\n\x04")
        deadline = time.monotonic() + max(self.timeout, 5.0)
        seen = b""
        while MAINTENANCE_BANNER not in seen:
            if time.monotonic() > deadline:
                raise SxctlError("the board on %s did not come back in its maintenance boot after a reset "
                                 "(its firmware may predate it): press its reset button and try again" % self.port)
            try:
                if self.transport is None:  # a real board's USB port goes away at the reset
                    time.sleep(0.1)
                    self.transport = self._open(self.port)
                s = self.transport.serial
                seen = (seen + s.read(max(1, s.in_waiting)))[-256:]  # what came, without waiting for more
            except PortUnavailable:
                pass
            except (OSError, serial.SerialException):
                self._close_transport()
                self.transport = None
        self._enter_raw(self.timeout)
        self.maintenance = True

    def exec(self, code):
        try:
            return self.transport.exec(code)
        except TransportError as e:
            last = (str(e).strip().splitlines() or ["no output"])[-1]
            raise SxctlError("the board on %s failed running sxctl's code (%s); try again, and if it "
                             "repeats reset the board" % (self.port, last)) from None

    def read(self, path):
        """The file's bytes; OSError if the board has no such file."""
        try:
            return bytes(self.transport.fs_readfile("/" + path))
        except TransportError as e:
            raise SxctlError("the board on %s failed reading /%s (%s); try again, and if it repeats reset "
                             "the board" % (self.port, path, (str(e).strip().splitlines() or ["?"])[-1])) from None

    def write_raw(self, path, data, progress=None):
        try:
            self.transport.fs_writefile("/" + path, data, chunk_size=WRITE_CHUNK, progress_callback=progress)
        except (OSError, TransportError) as e:
            raise SxctlError("writing /%s on %s failed (%s): the board's filesystem may be full (check "
                             "`mpremote connect %s df`); flash again to finish" % (path, self.port, e, self.port)) from None

    def restart(self, timeout=5.0):
        """End maintenance and soft-reset from the friendly REPL, so main.py runs as at power-up;
        True once the board said "soft reboot"."""
        t = self.transport
        self.end_maintenance()
        self.exec("del " + _HELPER_NAMES)
        self.helpers = False
        t.exit_raw_repl()
        t.serial.write(b"\x04")
        self.maintenance = False
        return t.read_until(1, b"soft reboot", timeout=timeout, timeout_overall=timeout).endswith(b"soft reboot")

    def _close_transport(self):
        try:
            if self.transport is not None:
                self.transport.close()
        except (OSError, serial.SerialException):
            pass

    def close(self):
        try:
            if self.maintenance:
                self.restart()  # never leave a board out of control
            elif self.transport.in_raw_repl:
                self.transport.exit_raw_repl()
        except (OSError, serial.SerialException, SxctlError):
            pass  # the port went away; nothing to leave tidy
        self._close_transport()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
