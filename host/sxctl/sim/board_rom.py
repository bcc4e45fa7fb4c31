"""Virtual board ROM: what a MicroPython port does at power-up, done on the Unix port.

This file runs on MicroPython (passed with `-c`), never on CPython. It mounts the board's
folder (the process's working directory) as `/`, behind a VFS that resolves `..` like a
chroot so nothing outside the folder is reachable, then runs boot.py and main.py as a
board would. `SXCTL_ROM_MAIN=0` skips main.py (a soft reset from the raw REPL).
`SXCTL_ROM_RUN=module` imports that module instead of main.py (the firmware test runner).

The board's peripherals live outside the sandbox, so the ROM opens them first and hands
them over as the module `sim_devices` (`bus`: the bus tty from SXCTL_BUS; `plant`: the plant
link tty from SXCTL_PLANT; None where not given), as a real port's ROM provides its UARTs.

It stands in for a port's C code, so it stays small: its code is in the board's heap for as
long as main.py runs (every method here costs the firmware RAM).
"""
import os
import sys
import vfs


class SandboxVfs:
    # A VFS object over VfsPosix with every path made absolute and normalised, so `..` can
    # never climb above the board's root. stat and open, which every import calls, are methods
    # (little garbage); VfsPosix's others (statvfs, mkdir, rmdir, remove, rename, chdir) are
    # reached through __getattr__ with their paths mapped.
    def __init__(self, root):
        self.fs = vfs.VfsPosix(root)

    def path(self, path):
        if path[:1] != "/":
            path = self.fs.getcwd() + "/" + path  # "" at the root
        if "/." not in path:
            return path  # no "." or ".." in it: nothing to resolve
        parts = []
        for part in path.split("/"):
            if part == "..":
                if parts:
                    parts.pop()
            elif part and part != ".":
                parts.append(part)
        return "/" + "/".join(parts)

    def stat(self, path):
        return self.fs.stat(self.path(path))

    def open(self, path, mode):
        return self.fs.open(self.path(path), mode)

    def __getattr__(self, name):  # statvfs, mkdir, rmdir, remove, rename, chdir: paths only
        f = getattr(self.fs, name)
        return lambda *paths: f(*map(self.path, paths))

    def mount(self, *args):  # and umount: the folder is already there
        pass

    umount = mount

    def ilistdir(self, path):
        path = self.path(path).rstrip("/") + "/"
        for entry in self.fs.ilistdir(path):
            # The Unix port reports size 0 here; tools like mpremote show it, so stat it.
            yield entry[0], entry[1], entry[2], self.fs.stat(path + entry[0])[6]

    def getcwd(self):
        return self.fs.getcwd() or "/"  # VfsPosix gives "" at its root


class sim_devices:
    # The peripherals, opened before the sandbox hides them (class attributes: no instance).
    pass


def boot():
    for name, var in (("bus", "SXCTL_BUS"), ("plant", "SXCTL_PLANT")):
        path = os.getenv(var)
        setattr(sim_devices, name, open(path, "r+b", buffering=0) if path else None)
    sys.modules["sim_devices"] = sim_devices
    root = os.getcwd()
    vfs.umount("/")
    vfs.mount(SandboxVfs(root), "/")
    os.chdir("/")
    sys.path[:] = ["", "/lib"]  # as on a board
    run = os.getenv("SXCTL_ROM_RUN")
    if run:
        __import__(run)
        return
    for name in ("boot.py", "main.py") if os.getenv("SXCTL_ROM_MAIN") != "0" else ("boot.py",):
        try:
            with open(name) as f:
                code = f.read()
        except OSError:
            continue
        code = compile(code, name, "exec")  # the source is freed before the file runs
        exec(code, {"__name__": "__main__", "__file__": name})


try:
    boot()
finally:
    # Leave the REPL namespace as clean as a board's.
    del SandboxVfs, sim_devices, boot
