"""Virtual boards for host tests, started through the real `sxctl sim` command."""
import json
import os
import pathlib
import signal
import subprocess
import sys
import time

from sxctl.waiting import wait_for  # noqa: F401  (the tests take it from here)

SXCTL = [sys.executable, "-m", "sxctl"]


class RunningSim:
    def __init__(self, proc, ports, ports_file):
        self.proc = proc
        self.ports = ports
        self.ports_file = ports_file
        self.bus = ports["bus"]
        self.roots = [b["root"] for b in ports["boards"]]

    def usb(self, addr):
        return next(b["usb"] for b in self.ports["boards"] if b["addr"] == addr)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            self.proc.wait(15)
        return self.proc.returncode


def start_sim(tmp_path, *args):
    ports_file = tmp_path / "ports.json"
    proc = subprocess.Popen(SXCTL + ["sim", "--ports-file", str(ports_file), *args],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    # The sim writes the ports file only once every board answers; wait for it or for an exit.
    deadline = time.monotonic() + 60
    while not ports_file.exists():
        if proc.poll() is not None:
            raise AssertionError("sxctl sim exited %s:\n%s" % (proc.returncode, proc.stdout.read()))
        if time.monotonic() > deadline:
            proc.kill()
            raise AssertionError("sxctl sim did not become ready")
        time.sleep(0.02)
    return RunningSim(proc, json.loads(ports_file.read_text()), ports_file)


def processes_under(root):
    """PIDs whose working directory is inside `root` (virtual board interpreters)."""
    found = []
    for proc in pathlib.Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and os.readlink(proc / "cwd").startswith(root):
                found.append(int(proc.name))
        except OSError:
            pass
    return found


def sxctl(*args, timeout=60):
    return subprocess.run(SXCTL + list(args), capture_output=True, text=True, timeout=timeout)


