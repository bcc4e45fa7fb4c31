"""One program per bus: an exclusive lock on a bus port, naming its holder to whoever comes second.

Two programs polling one RS-485 bus take each other's replies, so a bus client locks the port:
- a lock file per port (flock, released by the kernel when the holder exits, however it exits)
  in $XDG_RUNTIME_DIR or the temp folder, holding the holder's pid and program;
- the port itself opened exclusively (pyserial's `exclusive`, also a flock), which also keeps
  out a program of another user or one that does not use the lock file.
URLs other than plain device paths (loop://, socket://) are not locked: nothing else shares them.
"""
import fcntl
import hashlib
import json
import os
import tempfile

from .errors import SxctlError


class BusBusy(SxctlError):
    pass


def lock_path(port):
    folder = os.environ.get("XDG_RUNTIME_DIR") or tempfile.gettempdir()
    device = os.path.realpath(port)
    return os.path.join(folder, "sxctl-bus-%s.lock" % hashlib.sha256(device.encode()).hexdigest()[:16])


def is_device(port):
    return "://" not in port


class BusLock:
    def __init__(self, port, holder):
        self.port = port
        self.fd = None
        self.exclusive = is_device(port) or None
        if not is_device(port):
            return
        path = lock_path(port)
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
        except OSError as e:
            raise SxctlError("cannot open the bus lock %s for %s: %s" % (path, port, e.strerror or e)) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            theirs = _read_holder(fd)
            os.close(fd)
            raise BusBusy(busy_text(port, theirs)) from None
        os.ftruncate(fd, 0)
        os.write(fd, json.dumps({"pid": os.getpid(), "program": holder}).encode())
        self.fd = fd

    def release(self):
        if self.fd is not None:
            os.close(self.fd)  # closing drops the flock; the file stays, for the next holder
            self.fd = None


def _read_holder(fd):
    try:
        data = os.pread(fd, 4096, 0)
        holder = json.loads(data.decode("utf-8", errors="replace"))
        return holder if isinstance(holder, dict) else {}
    except (OSError, ValueError):
        return {}


def busy_text(port, holder):
    program = holder.get("program")
    pid = holder.get("pid")
    if isinstance(program, str) and program.isprintable() and isinstance(pid, int):
        who = "`%s` (pid %d)" % (program, pid)
    else:
        who = "another program"
    return "bus %s is in use by %s: stop it, or use the gateway" % (port, who)


def opened_elsewhere(port):
    """The refusal for a port whose exclusive open failed though its lock file was free."""
    return BusBusy("bus %s is in use by another program (one not sharing sxctl's lock, or another "
                   "user's): stop it, or use the gateway" % port)
