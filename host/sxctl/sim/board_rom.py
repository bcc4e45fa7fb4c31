"""Virtual board ROM: what a MicroPython port does at power-up, done on the Unix port.

This file runs on MicroPython (passed with `-c`), never on CPython. It mounts the board's
folder (the process's working directory) as `/`, behind a VFS that resolves `..` like a
chroot so nothing outside the folder is reachable, then runs boot.py and main.py as a
board would. `SXCTL_ROM_MAIN=0` skips main.py (a soft reset from the raw REPL).
`SXCTL_ROM_RUN=module` imports that module instead of main.py (the firmware test runner).

The board's peripherals live outside the sandbox, so the ROM opens them first and hands
them over as the module `sim_devices` (`bus`: the bus tty from SXCTL_BUS; `plant`: the plant
link tty from SXCTL_PLANT; None where not given), as a real port's ROM provides its UARTs.

It also stands in for the chip (`machine`, put in sys.modules over the Unix port's nearly
empty one): `Timer` (one-shot, its callback on a thread, as a timer interrupt runs), `WDT`
(cannot be stopped; the virtual board's bridge keeps it across a soft reset
and hard-resets the board when it is not fed in time), `reset()` (a hard reset: the bridge
restarts the interpreter running main.py), `reset_cause()` (SXCTL_RESET_CAUSE, set by the
bridge) and the port's own `soft_reset`, `idle`, `mem*`. They talk to the bridge over the pty
named by SXCTL_CHIP ("<reset cause>:<path>"): "W<ms>\n" starts the watchdog, "F" feeds it, "R" asks for a reset, "H" says the
firmware stopped (the REPL runs; the bridge's pins hold the outputs).

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

    def rename(self, path, name):
        # VfsPosix builds both rooted paths in one buffer, so the second overwrites the first:
        # hand it paths relative to the process's directory, which it leaves as they are.
        return self.fs.rename("../" * self.fs.getcwd().count("/") + self.path(path)[1:],
                              "../" * self.fs.getcwd().count("/") + self.path(name)[1:])

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


import _thread
import machine as _port
import time


class machine:
    # The chip, as a class (no instance): what the Unix port's machine lacks, and what it has.
    # Every name here is interned for good (the qstr budget), so there are few of them.
    WDT_RESET = 3
    chip = None
    soft_reset = _port.soft_reset
    idle = _port.idle
    mem8, mem16, mem32 = _port.mem8, _port.mem16, _port.mem32

    def reset_cause():  # 1 power-on, 2 hard, 3 watchdog, 5 soft: the bridge's count of this start
        return int((os.getenv("SXCTL_CHIP") or "1")[0])

    def reset():
        machine.chip.write(b"R")
        while True:
            time.sleep_ms(10)  # the bridge ends this interpreter and starts the board again

    class Timer:
        # A one-shot timer whose callback runs on a thread of its own, as a chip's timer
        # interrupt runs whatever the interpreter does (its REPL waiting for a key included).
        ONE_SHOT = 0

        def __init__(self, id=-1, mode=0, period=0, callback=None):
            self.id = callback  # None once deinit()
            _thread.start_new_thread(self.run, (period,))

        def run(self, period):
            time.sleep_ms(period)
            if self.id:
                self.id(self)

        def deinit(self):
            self.id = None

    class WDT:
        def __init__(self, id=0, timeout=5000):
            self.id = time.ticks_ms()  # when the bridge last heard of a feed
            self.timeout = timeout // 4  # a feed reaches the bridge at most this often
            machine.chip.write(b"W%d\n" % timeout)

        def feed(self):
            t = time.ticks_ms()
            if time.ticks_diff(t, self.id) >= self.timeout:
                self.id = t
                machine.chip.write(b"F")


def boot():
    for name, var in (("bus", "SXCTL_BUS"), ("plant", "SXCTL_PLANT")):
        path = os.getenv(var)
        setattr(sim_devices, name, open(path, "r+b", buffering=0) if path else None)
    sys.modules["sim_devices"] = sim_devices
    chip = os.getenv("SXCTL_CHIP")  # "<reset cause>:<pty path>"
    machine.chip = open(chip[2:] if chip else "/dev/null", "r+b", buffering=0)
    sys.modules["machine"] = machine
    root = os.getcwd()
    vfs.umount("/")
    vfs.mount(SandboxVfs(root), "/")
    os.chdir("/")
    sys.path[:] = ["", "/lib"]  # as on a board
    run = os.getenv("SXCTL_ROM_RUN")
    if run:
        __import__(run)
        return
    try:
        for name in ("boot.py", "main.py") if os.getenv("SXCTL_ROM_MAIN") != "0" else ("boot.py",):
            try:
                with open(name) as f:
                    code = f.read()
            except OSError:
                continue
            code = compile(code, name, "exec")  # the source is freed before the file runs
            exec(code, {"__name__": "__main__", "__file__": name})
    finally:
        machine.chip.write(b"H")  # at the REPL from here: the pins hold what they were last set to


try:
    boot()
finally:
    # Leave the REPL namespace as clean as a board's (machine's methods need their names).
    del SandboxVfs, sim_devices, boot
