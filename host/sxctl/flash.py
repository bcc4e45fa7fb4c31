"""Putting the firmware onto a board over its USB REPL, copying only what differs.

The board is driven with mpremote's SerialTransport in the raw REPL: entering it interrupts
the running firmware with Ctrl-C, as mpremote does. The board hashes its own files with
hashlib.sha256, so an unchanged file is never sent and never rewritten.

What flash may delete is decided by one rule: /sxctl.manifest lists the files the last
flash wrote; a file it listed that the new image lacks is removed, and so is the other
form of every module in the image (a stale `x.py` would shadow `x.mpy`). Nothing else is
touched: identity.json, config.a/config.b and any other data stay.
"""
import ast
import hashlib
import json
import pathlib
import sys
import time

import serial
from mpremote.transport import TransportError
from mpremote.transport_serial import SerialTransport

from . import boards, constfold, image
from .errors import SxctlError

MANIFEST = "sxctl.manifest"
IDENTITY = "identity.json"
# Never removed, whatever a manifest says: the board's own data.
# Board data a flash never removes: identity, config slots, the plant key and its counter floor.
KEEP = frozenset((IDENTITY, "config.a", "config.b", MANIFEST, "plant.key", "plant.ctr.a", "plant.ctr.b"))
RAW_BANNER = b"raw REPL; CTRL-B to exit\r\n"
WRITE_CHUNK = 512  # bytes per exec when writing: repr() of it compiles in a few KiB of heap
HASH_BATCH = 16  # files hashed per eval

# Board-side helpers, defined once per session in the raw REPL's globals.
_BOARD_HELPERS = """\
import os,hashlib
def _sxh(ps):
 r=[]
 b=bytearray(256)
 for p in ps:
  try:
   h=hashlib.sha256()
   with open(p,'rb') as f:
    while 1:
     n=f.readinto(b)
     if not n:break
     h.update(memoryview(b)[:n])
   r.append(h.digest())
  except OSError:
   r.append(None)
 return r
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


def no_repl(port, why=""):
    return SxctlError("no MicroPython REPL answered on %s%s: check the USB cable, that the board is "
                      "running MicroPython (flash it with --interpreter) and the port (`sxctl ports`)"
                      % (port, " (%s)" % why if why else ""))


class PortUnavailable(SxctlError):
    pass


class Repl:
    """A board's raw REPL over its USB serial port."""

    def __init__(self, port, timeout=5.0):
        self.port = port
        try:
            self.transport = SerialTransport(port, baudrate=115200, timeout=0.5)
        except (TransportError, serial.SerialException, OSError) as e:
            raise PortUnavailable("cannot open %s: %s; check the path (`sxctl ports`) and that no other "
                             "program (mpremote, a terminal) holds it" % (port, e)) from None
        self.interrupted = False
        self.helpers = False
        try:
            self._enter_raw(timeout)
        except BaseException:
            self.transport.close()
            raise

    def _enter_raw(self, timeout):
        # mpremote's enter_raw_repl(soft_reset=True), keeping what the board said so we know
        # whether Ctrl-C stopped a running program. The soft reset frees the heap the firmware
        # held, and in the raw REPL it does not run main.py.
        t = self.transport
        t.serial.write(b"\r\x03")
        t.serial.write(b"\r\x01")
        data = t.read_until(1, RAW_BANNER + b">", timeout=timeout, timeout_overall=timeout)
        if not data.endswith(RAW_BANNER + b">"):
            raise no_repl(self.port, "nothing answered Ctrl-C, Ctrl-A within %g s" % timeout if not data
                          else "it answered %r" % data[-60:])
        self.interrupted = b"KeyboardInterrupt" in data
        t.serial.write(b"\x04")
        data = t.read_until(1, b"soft reboot\r\n", timeout=timeout, timeout_overall=timeout)
        if data.endswith(b"soft reboot\r\n"):
            data = t.read_until(1, RAW_BANNER, timeout=timeout, timeout_overall=timeout)
        if not data.endswith(RAW_BANNER):
            raise SxctlError("the board on %s did not come back to the raw REPL after a soft reset (%r): "
                             "press its reset button and try again" % (self.port, data[-60:]))
        t.in_raw_repl = True

    def exec(self, code):
        try:
            return self.transport.exec(code)
        except TransportError as e:
            last = (str(e).strip().splitlines() or ["no output"])[-1]
            raise SxctlError("the board on %s failed running flash's code (%s); try again, and if it "
                             "repeats reset the board" % (self.port, last)) from None

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

    def read(self, path):
        """The file's bytes; OSError if the board has no such file."""
        try:
            return bytes(self.transport.fs_readfile("/" + path))
        except TransportError as e:
            raise SxctlError("the board on %s failed reading /%s (%s); try again, and if it repeats reset "
                             "the board" % (self.port, path, (str(e).strip().splitlines() or ["?"])[-1])) from None

    def write(self, path, data, progress=None):
        try:
            self.transport.fs_writefile("/" + path, data, chunk_size=WRITE_CHUNK, progress_callback=progress)
        except (OSError, TransportError) as e:
            raise SxctlError("writing /%s on %s failed (%s): the board's filesystem may be full (check "
                             "`mpremote connect %s df`); flash again to finish" % (path, self.port, e, self.port)) from None

    def mkdirs(self, dirs):
        if dirs:
            self._helpers()
            self.exec("_sxd(%r)" % (tuple("/" + d for d in dirs),))

    def remove(self, paths):
        if paths:
            self._helpers()
            self.exec("_sxr(%r)" % (tuple("/" + p for p in paths),))

    def mpy_version(self):
        """sys.implementation._mpy of the board (None if it does not say)."""
        return self.evaluate("getattr(__import__('sys').implementation,'_mpy',None)")

    def restart(self, timeout=5.0):
        """Soft reset from the friendly REPL, so main.py runs as at power-up; True once the
        board said "soft reboot"."""
        t = self.transport
        if self.helpers:
            self.exec("del _sxh,_sxd,_sxr")
            self.helpers = False
        t.exit_raw_repl()
        t.serial.write(b"\x04")
        return t.read_until(1, b"soft reboot", timeout=timeout, timeout_overall=timeout).endswith(b"soft reboot")

    def close(self):
        try:
            if self.transport.in_raw_repl:
                self.transport.exit_raw_repl()
        except (OSError, serial.SerialException):
            pass  # the port went away; nothing to leave tidy
        try:
            self.transport.close()
        except (OSError, serial.SerialException):
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def firmware_version():
    """MAJOR.MINOR.PATCH, the constants of firmware/version.py."""
    consts = constfold.tables().get("version", {})
    if not {"MAJOR", "MINOR", "PATCH"} <= consts.keys():
        return "unknown"
    return "%s.%s.%s" % (consts["MAJOR"], consts["MINOR"], consts["PATCH"])


def manifest(board_name, files):
    lines = ["# sxctl flash: board %s, firmware %s" % (board_name, firmware_version())]
    return ("\n".join(lines + sorted(files)) + "\n").encode()


def manifest_paths(data):
    paths = {line.strip().lstrip("/") for line in data.decode(errors="replace").splitlines()
             if not line.startswith("#")}
    return {p for p in paths if p and ".." not in p.split("/")}


def other_form(path):
    """The module that would shadow or be shadowed by `path`: x.py for x.mpy and back."""
    if path.endswith(".mpy"):
        return path[:-4] + ".py"
    if path.endswith(".py"):
        return path[:-3] + ".mpy"
    return None


def check_mpy(repl, files, board_name):
    """Refuse an image the board's MicroPython cannot import (another .mpy version or arch)."""
    sys_mpy = repl.mpy_version()
    sample = next((data for path, data in sorted(files.items()) if path.endswith(".mpy")), None)
    if sys_mpy is None or sample is None:
        return
    version, arch, sub = sample[1], sample[2] >> 2, sample[2] & 3
    if version != sys_mpy & 0xFF or (arch and (arch != sys_mpy >> 10 or sub != sys_mpy >> 8 & 3)):
        raise SxctlError(
            "the board on %s runs MicroPython that loads .mpy v%d (arch %d), but board %s builds .mpy v%d "
            "(arch %d): check --board, or update its MicroPython (--interpreter IMAGE)"
            % (repl.port, sys_mpy & 0xFF, sys_mpy >> 10, board_name, version, arch))


class Plan:
    """What a flash changes: files to write (path -> bytes), files to remove, files kept."""

    def __init__(self, write, remove, unchanged, identity):
        self.write = write
        self.remove = remove
        self.unchanged = unchanged
        self.identity = identity

    def changes(self):
        return len(self.write) + len(self.remove)


def _identity(repl, board_name, addr, serial_number):
    """(current identity dict, new one or None when nothing to write). An existing identity
    always names the board flashed; addr and serial change only when given."""
    try:
        current = json.loads(repl.read(IDENTITY))
        if not isinstance(current, dict):
            current = {}
    except (OSError, ValueError):
        current = {}
    new = dict(current)
    if current or addr is not None or serial_number is not None:
        new["board"] = board_name
    if addr is not None:
        new["addr"] = addr
    if serial_number is not None:
        new["serial"] = serial_number
    return current, (None if new == current else new)


def plan(repl, board_name, files, addr=None, serial_number=None):
    desired = dict(files)
    desired[MANIFEST] = manifest(board_name, files)
    others = {other_form(p) for p in files} - set(files) - {None}
    found = repl.hashes(sorted(desired) + sorted(others))
    write = {p: data for p, data in desired.items() if found[p] != hashlib.sha256(data).digest()}
    remove = {p for p in others if found[p] is not None}
    if MANIFEST in write and found[MANIFEST] is not None:
        dropped = sorted(manifest_paths(repl.read(MANIFEST)) - set(desired) - KEEP - others)
        remove |= {p for p, digest in repl.hashes(dropped).items() if digest is not None}
    current, identity = _identity(repl, board_name, addr, serial_number)
    if identity is not None:
        write[IDENTITY] = (json.dumps(identity, sort_keys=True) + "\n").encode()
    unchanged = sorted(set(files) - set(write))
    return Plan(write, sorted(remove - set(write)), unchanged, identity or current)


def write_order(paths):
    # Code first, main.py after it and the manifest last: a flash cut short leaves a board
    # whose main.py (if new) finds its modules, and a manifest that still lists the old files.
    last = {"main.py": 1, MANIFEST: 2}
    return sorted(paths, key=lambda p: (last.get(p, 0), p))


def apply(repl, p, progress):
    if p.remove:
        repl.remove(p.remove)
        for path in p.remove:
            progress.line("removed " + path)
    dirs = sorted({path[:i] for path in p.write for i in range(len(path)) if path[i] == "/"},
                  key=lambda d: d.count("/"))
    repl.mkdirs(dirs)
    for path in write_order(p.write):
        data = p.write[path]
        progress.start(path, len(data))
        repl.write(path, data, progress.update)
        progress.done()


def verify(repl, p):
    found = repl.hashes(list(p.write) + list(p.remove))
    bad = [path for path, data in p.write.items() if found[path] != hashlib.sha256(data).digest()]
    bad += [path for path in p.remove if found[path] is not None]
    if bad:
        raise SxctlError("verification failed on %s: %s differ from the image after writing; the board's "
                         "filesystem may be full or failing: check `mpremote connect %s df`, then flash again"
                         % (repl.port, ", ".join(sorted(bad)), repl.port))


class Progress:
    """A text progress bar per file on stderr; one line per file when stderr is not a terminal."""

    WIDTH = 24

    def __init__(self, total_files, stream=None):
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.total = total_files
        self.index = 0
        self.name = ""
        self.size = 0

    def start(self, name, size):
        self.index += 1
        self.name, self.size = name, size
        if self.tty:
            self.update(0, size)

    def _bar(self, done, total):
        filled = self.WIDTH * done // total if total else self.WIDTH
        return "[%2d/%d] %-28s |%s%s| %6.1f KiB" % (self.index, self.total, self.name, "#" * filled,
                                                   "-" * (self.WIDTH - filled), total / 1024)

    def update(self, done, total):
        if self.tty:
            self.stream.write("\r" + self._bar(done, total))
            self.stream.flush()

    def done(self):
        self.stream.write(("\r" if self.tty else "") + self._bar(self.size, self.size) + "\n")
        self.stream.flush()

    def line(self, text):
        self.stream.write(text + "\n")
        self.stream.flush()


def build_image(board_name):
    try:
        return image.build(board_name)
    except boards.BoardError as e:
        raise SxctlError(str(e)) from None
    except image.ImageError as e:
        raise SxctlError("%s\nfix the firmware source, then flash again" % e) from None


def await_hello(bus, addr, baud=115200, timeout=10.0):
    """INFO of `addr` on the bus once it answers, waiting at most `timeout` seconds."""
    from .buslink import BusClient, NoAnswer

    deadline = time.monotonic() + timeout
    with BusClient(bus, baud=baud, timeout=0.2, retries=0) as client:
        while True:
            try:
                return client.hello(addr)
            except NoAnswer:
                if time.monotonic() > deadline:
                    raise SxctlError(
                        "the board was flashed but no HELLO answer came from address %d on %s within %.0f s: "
                        "check --bus and --addr, look at its console (`mpremote connect <usb port> repl`, "
                        "then Ctrl-D) for a traceback" % (addr, bus, timeout)) from None


# Where an RP2040 in BOOTSEL mode shows up as a USB drive (Linux desktops, macOS).
UF2_DRIVE_GLOBS = ("/media/*/RPI-RP2", "/run/media/*/RPI-RP2", "/media/RPI-RP2", "/Volumes/RPI-RP2")
UF2_MAGIC = b"UF2\n"
ESP32_IMAGE_MAGIC = 0xE9
ESP32_OFFSET = "0x1000"


def interpreter_method(board_name):
    """"esptool" or "uf2": how MicroPython itself is written onto this board."""
    mcu = boards.load(board_name)["mcu"]
    if mcu.startswith("ESP32"):
        return "esptool"
    if mcu == "RP2040":
        return "uf2"
    raise SxctlError("--interpreter handles ESP32 boards (esptool) and RP2040 boards (UF2 drive); write "
                     "MicroPython onto %s (%s) with its own tool (pyboard: DFU with `dfu-util`), then flash "
                     "without --interpreter" % (board_name, mcu))


def esptool_command(port, image_path):
    return [sys.executable, "-m", "esptool", "--port", port, "write_flash", ESP32_OFFSET, str(image_path)]


def write_with_esptool(port, image_path, dry_run=False, out=print):
    import importlib.util
    import shlex
    import subprocess

    data = pathlib.Path(image_path).read_bytes()[:1]
    if data != bytes([ESP32_IMAGE_MAGIC]):
        raise SxctlError("%s is not an ESP32 firmware image (it should start with byte 0xE9): download the "
                         ".bin for ESP32_GENERIC from https://micropython.org/download/" % image_path)
    cmd = esptool_command(port, image_path)
    if dry_run:
        out("would run: " + shlex.join(cmd))
        return
    if importlib.util.find_spec("esptool") is None:
        raise SxctlError("esptool is not installed in this Python: install it with `%s -m pip install esptool`, "
                         "then run this command again" % sys.executable)
    proc = subprocess.run(cmd)
    if proc.returncode:
        raise SxctlError("esptool failed (exit %d) writing %s on %s: check the port, and hold the board's "
                         "BOOT button while esptool connects" % (proc.returncode, image_path, port))


def find_uf2_drive(path=None):
    """The mounted RPI-RP2 drive: `path` if given, else the one found under UF2_DRIVE_GLOBS."""
    import glob

    if path is not None:
        drive = pathlib.Path(path)
        if not (drive / "INFO_UF2.TXT").is_file():
            raise SxctlError("%s is not an RP2 boot drive (no INFO_UF2.TXT): hold BOOTSEL while plugging "
                             "the board in, and pass the folder where RPI-RP2 is mounted" % drive)
        return drive
    found = sorted({p for pattern in UF2_DRIVE_GLOBS for p in glob.glob(pattern)
                    if (pathlib.Path(p) / "INFO_UF2.TXT").is_file()})
    if not found:
        raise SxctlError("no RPI-RP2 drive is mounted (looked in %s): hold BOOTSEL while plugging the board "
                         "in, mount the drive, or pass --uf2-drive PATH" % ", ".join(UF2_DRIVE_GLOBS))
    if len(found) > 1:
        raise SxctlError("several RPI-RP2 drives are mounted (%s): pick one with --uf2-drive" % ", ".join(found))
    return pathlib.Path(found[0])


def write_uf2(image_path, drive=None, dry_run=False, out=print):
    import os

    image_path = pathlib.Path(image_path)
    if image_path.read_bytes()[:4] != UF2_MAGIC:
        raise SxctlError("%s is not a UF2 file: download the .uf2 for RPI_PICO from "
                         "https://micropython.org/download/" % image_path)
    target = find_uf2_drive(drive) / image_path.name
    if dry_run:
        out("would copy %s to %s" % (image_path, target))
        return
    with open(image_path, "rb") as src, open(target, "wb") as dst:
        dst.write(src.read())
        dst.flush()
        os.fsync(dst.fileno())  # the board reboots into it once the last block lands
    out("copied %s to %s; the board restarts into MicroPython" % (image_path.name, target.parent))


def await_repl(port_spec, timeout=30.0):
    """The port once a MicroPython REPL answers there (after writing the interpreter the board
    reboots, and a USB port may appear only then)."""
    import os

    from . import ports

    deadline = time.monotonic() + timeout
    while True:
        try:
            port = ports.resolve_port(port_spec)
            if port.startswith("/dev/") and not os.path.exists(port):
                raise no_repl(port, "no such device yet")
            with Repl(port, timeout=2.0):
                return port
        except SxctlError as e:
            if time.monotonic() > deadline:
                raise SxctlError("MicroPython was written but the board did not answer within %.0f s: %s"
                                 % (timeout, e)) from None
        time.sleep(0.5)  # a port that is not there yet: look again shortly
