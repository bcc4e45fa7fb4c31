"""Virtual board ROM: what a MicroPython port does at power-up, done on the Unix port.

This file runs on MicroPython (passed with `-c`), never on CPython. It mounts the board's
folder (the process's working directory) as `/`, behind a VFS that resolves `..` like a
chroot so nothing outside the folder is reachable, then runs boot.py and main.py as a
board would. `SXCTL_ROM_MAIN=0` skips main.py (a soft reset from the raw REPL).
`SXCTL_ROM_RUN=module` imports that module instead of main.py (the firmware test runner).

The board's peripherals live outside the sandbox, so the ROM opens them first and hands
them over as the module `sim_devices` (`bus`: the bus tty from SXCTL_BUS; `plant`: the plant
link tty from SXCTL_PLANT; None where not given), as a real port's ROM provides its UARTs.
"""
import os
import sys
import vfs


class SandboxVfs:
    # A VFS object that forwards to VfsPosix with every path made absolute and normalised,
    # so `..` can never climb above the board's root.
    def __init__(self, root):
        self._fs = vfs.VfsPosix(root)
        self._cwd = "/"

    def _path(self, path):
        if not path.startswith("/"):
            path = self._cwd + "/" + path
        parts = []
        for part in path.split("/"):
            if part == "..":
                if parts:
                    parts.pop()
            elif part and part != ".":
                parts.append(part)
        return "/" + "/".join(parts)

    def mount(self, readonly, mkfs):
        pass

    def umount(self):
        pass

    def ilistdir(self, path):
        path = self._path(path)
        base = path if path.endswith("/") else path + "/"
        for entry in self._fs.ilistdir(path):
            # The Unix port reports size 0 here; tools like mpremote show it, so stat it.
            size = self._fs.stat(base + entry[0])[6]
            yield (entry[0], entry[1], entry[2], size)

    def chdir(self, path):
        path = self._path(path)
        if not self._fs.stat(path)[0] & 0x4000:
            raise OSError(20)  # ENOTDIR
        self._cwd = path

    def getcwd(self):
        return self._cwd

    def mkdir(self, path):
        self._fs.mkdir(self._path(path))

    def remove(self, path):
        self._fs.remove(self._path(path))

    def rename(self, old, new):
        self._fs.rename(self._path(old), self._path(new))

    def rmdir(self, path):
        self._fs.rmdir(self._path(path))

    def stat(self, path):
        return self._fs.stat(self._path(path))

    def statvfs(self, path):
        return self._fs.statvfs(self._path(path))

    def open(self, path, mode):
        return self._fs.open(self._path(path), mode)


def _exists(name):
    try:
        os.stat(name)
        return True
    except OSError:
        return False


def _run_file(name):
    with open(name) as f:
        source = f.read()
    exec(source, {"__name__": "__main__", "__file__": name})


class _Devices:
    pass


def _open_devices():
    devices = _Devices()
    for name, var in (("bus", "SXCTL_BUS"), ("plant", "SXCTL_PLANT")):
        path = os.getenv(var)
        setattr(devices, name, open(path, "r+b", buffering=0) if path else None)
    sys.modules["sim_devices"] = devices


def boot():
    _open_devices()
    root = os.getcwd()
    vfs.umount("/")
    vfs.mount(SandboxVfs(root), "/")
    os.chdir("/")
    sys.path[:] = ["", "/lib", "/"]
    run = os.getenv("SXCTL_ROM_RUN")
    if run:
        __import__(run)
        return
    if _exists("boot.py"):
        _run_file("boot.py")
    if os.getenv("SXCTL_ROM_MAIN") != "0" and _exists("main.py"):
        _run_file("main.py")


try:
    boot()
finally:
    # Leave the REPL namespace as clean as a board's.
    del SandboxVfs, _Devices, _open_devices, _exists, _run_file, boot
