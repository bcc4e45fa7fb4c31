"""Benchmark section `host`: the wall time of `sxctl flash` when the board is already up to date.

A virtual board is flashed once, then reflashed: every run hashes the whole image on the board,
finds nothing to write, restarts the board and exits. The figure is the whole command, Python
start-up included, as an operator waits for it.
"""
import statistics
import subprocess
import sys
import time

from .. import boards
from ..sim.simulator import Simulator
from . import Figure

RUNS = 5


def _flash(usb):
    proc = subprocess.run([sys.executable, "-m", "sxctl", "flash", "--port", usb, "--board", "unix-sim",
                           "--addr", "1"], capture_output=True, text=True, timeout=120)
    if proc.returncode:
        raise RuntimeError("sxctl flash failed on the virtual board:\n" + proc.stderr)
    return proc.stdout


def run(options):
    sim = Simulator(1, heapsize="%dK" % boards.load("unix-sim")["heap_kb"], blank=True)
    try:
        sim.start()
        halt = sim.run_in_background()
        try:
            usb = sim.boards[0].usb.path
            _flash(usb)  # the first flash writes the whole image
            times = []
            for _ in range(RUNS):
                t = time.perf_counter()
                out = _flash(usb)
                times.append(time.perf_counter() - t)
                if " 0 files changed" not in out:
                    raise RuntimeError("a reflash of an unchanged board changed files:\n" + out)
        finally:
            halt()
    finally:
        sim.close()
    return [Figure("host.reflash_unchanged_s", round(statistics.median(times), 3), "s", ("<=", 1.0),
                   "`sxctl flash` finding nothing to change on a virtual board; median of %d" % RUNS)]
