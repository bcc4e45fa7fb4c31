"""Putting the firmware onto a board over its USB REPL, copying only what differs.

The board is driven through its raw REPL (repl.py). A running board is first brought into its
maintenance boot (outputs off, no watchdog), so a watchdog cannot reset it in the middle of the
copy. The board hashes its own files with hashlib.sha256, so an unchanged file is never sent
and never rewritten; a changed one is written under a temporary name and renamed into place
once its hash checks, so a reset at any moment leaves each file old or new, never cut short.

What flash may delete is decided by one rule: /sxctl.manifest lists the files the last
flash wrote (each with its hash, which the fail-safe firmware checks to name a damaged
module); a file it listed that the new image lacks is removed, and so is the other form of
every module in the image (a stale `x.py` would shadow `x.mpy`). Paths from a manifest are
normalised and compared casefolded (FAT filesystems ignore case), and the board's own data
is never removed, whatever a manifest says: identity.json, config.*, plant.* and any other
file no flash wrote.
"""
import hashlib
import json
import pathlib
import posixpath
import sys
import time

from . import boards, constfold, image
from .boardfiles import IDENTITY, MAINTENANCE, MAINTENANCE_SESSION, MANIFEST
from .errors import SxctlError
from .repl import SerialRepl, no_repl

# Board data a flash never removes: identity, config slots, the plant key and its counter floor.
KEEP = frozenset((IDENTITY, MANIFEST, MAINTENANCE, MAINTENANCE_SESSION))
KEEP_PREFIXES = ("config.", "plant.")


def kept(path):
    """Board data no flash may delete (casefolded: FAT ignores case)."""
    name = path.casefold()
    return name in KEEP or name.startswith(KEEP_PREFIXES)


def firmware_version():
    """MAJOR.MINOR.PATCH, the constants of firmware/version.py."""
    consts = constfold.tables().get("version", {})
    if not {"MAJOR", "MINOR", "PATCH"} <= consts.keys():
        return "unknown"
    return "%s.%s.%s" % (consts["MAJOR"], consts["MINOR"], consts["PATCH"])


def manifest(board_name, files):
    """The manifest: a header, then `path sha256` per file the flash wrote."""
    lines = ["# sxctl flash: board %s, firmware %s" % (board_name, firmware_version())]
    lines += ["%s %s" % (p, hashlib.sha256(files[p]).hexdigest()) for p in sorted(files)]
    return ("\n".join(lines) + "\n").encode()


def normalise(path):
    """A manifest's path as the board's root-relative path, or None if it leaves the root."""
    if ".." in path.split("/"):
        return None  # a manifest never needs one: whatever it names is not flash's to delete
    path = posixpath.normpath("/" + path.strip()).lstrip("/")
    return path if path and path != "." else None


def manifest_paths(data):
    """The paths a manifest lists (with or without hashes), normalised."""
    paths = set()
    for line in data.decode(errors="replace").splitlines():
        if line.startswith("#") or not line.strip():
            continue
        path = normalise(line.split()[0]) if line.split() else None
        if path:
            paths.add(path)
    return paths


def other_form(path):
    """The module that would shadow or be shadowed by `path`: x.py for x.mpy and back."""
    if path.endswith(".mpy"):
        return path[:-4] + ".py"
    if path.endswith(".py"):
        return path[:-3] + ".mpy"
    return None


def check_platform(repl, board_name, force=False):
    """Refuse a board definition for another kind of board (wrong pins, wrong code) before
    anything is written; with `force`, the mismatch is only returned as a warning."""
    board = boards.load(board_name)
    platform, machine = repl.platform()
    if platform == board["platform"] and board["machine"].casefold() in machine.casefold():
        return None
    text = ("the board on %s is %r (sys.platform %r), but --board %s is for %s (%r)"
            % (repl.port, machine, platform, board_name, board["machine"], board["platform"]))
    if force:
        return text
    raise SxctlError(text + ": nothing written; name the board's own definition with --board (`sxctl "
                     "ports --probe` shows what each port holds), or --force if you are sure")


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
        current = {p.casefold() for p in set(desired) | others}
        dropped = sorted(p for p in manifest_paths(repl.read(MANIFEST))
                         if p.casefold() not in current and not kept(p))
        remove |= {p for p, digest in repl.hashes(dropped).items() if digest is not None}
    current, identity = _identity(repl, board_name, addr, serial_number)
    if identity is not None:
        write[IDENTITY] = (json.dumps(identity, sort_keys=True) + "\n").encode()
    unchanged = sorted(set(files) - set(write))
    return Plan(write, sorted(remove - set(write)), unchanged, identity or current)


def write_order(paths):
    # Code first, main.py and boot.py after it and the manifest last: a flash cut short leaves
    # a board whose main.py (if new) finds its modules, and a manifest that still lists the old files.
    last = {"main.py": 1, "boot.py": 1, MANIFEST: 2}
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




def mode_name(mode):
    from sxproto import messages
    return messages.MODES.get(mode, str(mode))


def stage_mode(bus, addr, baud=115200):
    """The stage's mode (INFO), or None if the board does not answer on the bus."""
    from .buslink import BusClient, NoAnswer

    try:
        with BusClient(bus, baud=baud, timeout=0.3, retries=2) as client:
            return client.hello(addr)["mode"]
    except NoAnswer:
        return None


def restore_mode(bus, addr, mode, baud=115200):
    """Once the board answers again, command `mode` (signed on a keyed plant), bumpless."""
    from sxproto import messages

    from .buslink import BusClient

    await_hello(bus, addr, baud)
    with BusClient(bus, baud=baud, timeout=0.3, retries=2) as client:
        client.request(addr, messages.SET_MODE, {"mode": mode, "manual_output": 0xFFFF},
                       expect=messages.MODE_ACK)


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
            with SerialRepl(port, timeout=2.0):
                return port
        except SxctlError as e:
            if time.monotonic() > deadline:
                raise SxctlError("MicroPython was written but the board did not answer within %.0f s: %s"
                                 % (timeout, e)) from None
        time.sleep(0.5)  # a port that is not there yet: look again shortly
