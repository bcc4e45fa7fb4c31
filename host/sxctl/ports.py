"""Which serial port is which: the system's ports, `--port auto`, and a careful REPL probe."""
import json
import os
import pathlib

import serial.tools.list_ports

from .errors import SxctlError


def comports():
    return sorted(serial.tools.list_ports.comports(), key=lambda p: p.device)


def usb_id(port):
    return "%04x:%04x" % (port.vid, port.pid or 0) if port.vid is not None else "-"


def describe(port):
    return "%s (%s%s%s)" % (port.device, usb_id(port),
                            " serial " + port.serial_number if port.serial_number else "",
                            ", " + port.description if port.description and port.description != "n/a" else "")


def candidates():
    """Ports `--port auto` may pick: USB serial ports (those with a USB vendor id)."""
    return [p for p in comports() if p.vid is not None]


def resolve_port(spec):
    """`spec` itself, or for "auto" the one USB serial port there is."""
    if spec != "auto":
        return spec
    found = candidates()
    if len(found) == 1:
        return found[0].device
    if not found:
        others = [p.device for p in comports()]
        raise SxctlError("--port auto found no USB serial port%s: check the USB cable (a data cable, not a "
                         "charge-only one), that the board is powered, and that you may open serial ports "
                         "(group dialout); `sxctl ports` lists what the system sees"
                         % (" (only %s, not USB)" % ", ".join(others) if others else ""))
    raise SxctlError("--port auto found %d USB serial ports: %s; name one with --port (`sxctl ports --probe` "
                     "shows which answers as a board)" % (len(found), "; ".join(describe(p) for p in found)))


def holders(device):
    """PIDs of other processes that have `device` open (Linux /proc; those we may see). A pty
    is always held by the program that emulates the device, so for one this says nothing."""
    if device.startswith("/dev/pts/"):
        return []
    try:
        target = os.path.realpath(device)
    except OSError:
        return []
    found = []
    for proc in pathlib.Path("/proc").glob("[0-9]*"):
        if int(proc.name) == os.getpid():
            continue
        try:
            if any(os.readlink(fd) == target for fd in (proc / "fd").iterdir()):
                found.append(int(proc.name))
        except OSError:
            continue
    return found


def probe(device, timeout=1.0):
    """(repl, firmware) of the board on `device`: whether a MicroPython REPL answers, and which
    sxctl firmware it holds. A port another program holds is left alone, and so is a board
    whose REPL does not answer a prompt: it runs its firmware, which the probe never stops."""
    from .boardfiles import IDENTITY, MANIFEST
    from .repl import PortUnavailable, SerialRepl

    busy = holders(device)
    if busy:
        return "busy (pid %s)" % ",".join(map(str, busy)), "?"
    try:
        if not SerialRepl.at_prompt(device, timeout=min(timeout, 0.5)):
            return "running (not interrupted)", "? (ask it on the bus: sxctl info)"
        repl = SerialRepl(device, timeout=timeout)
    except PortUnavailable:
        if not os.path.exists(device):
            return "gone", "?"
        if not os.access(device, os.R_OK | os.W_OK):
            return "no permission (group dialout?)", "?"
        return "busy (locked)", "?"  # held by a program that locks it, as mpremote does
    except SxctlError:
        return "no", "-"
    with repl:
        version = _firmware_version(repl)
        ident = _read_json(repl, IDENTITY)
        header = _first_line(repl, MANIFEST)
    if version is None:
        return "yes", "-"
    board = header.split("board ", 1)[1].split(",")[0] if "board " in header else ident.get("board")
    firmware = "sxctl %s" % version
    if board:
        firmware += ", board %s" % board
    if "addr" in ident:
        firmware += ", addr %s" % ident["addr"]
    return "yes", firmware


def _firmware_version(repl):
    # Importing the firmware's version module proves its .mpy loads on this interpreter.
    try:
        return "%d.%d.%d" % tuple(repl.evaluate("__import__('version').VERSION"))
    except (SxctlError, TypeError, ValueError):
        return None


def _read_json(repl, path):
    try:
        value = json.loads(repl.read(path))
        return value if isinstance(value, dict) else {}
    except (OSError, ValueError, SxctlError):
        return {}


def _first_line(repl, path):
    try:
        return repl.read(path).decode(errors="replace").splitlines()[0]
    except (OSError, IndexError, SxctlError):
        return ""
