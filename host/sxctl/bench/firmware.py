"""Benchmark section `firmware`: allocation and CPU time of a control scan, and the smallest heap.

`loop_alloc_bytes` and `scan_us` come from one measurement plus control scan on the Unix port
(fw_scan.py, on the test fake HAL). `min_heap_kb` is the smallest `-X heapsize` under which a
board built as `.mpy` runs its full loop for one simulated hour of lock-step plant ticks and
answers GET_TELEMETRY throughout (below it the board falls back to its fail-safe firmware).
"""
import json
import os
import pathlib
import select
import struct
import subprocess
import tempfile
import time

from sxproto import codec, messages, plantlink

from .. import FWLIB_DIR, image, toolchain
from ..sim.ptys import Pty
from ..sim.vboard import ROM_SOURCE
from . import Figure

HOUR_TICKS = 3600
POLL_EVERY = 10  # ticks between GET_TELEMETRY polls


def run(options):
    scan = scan_cost()
    heap = min_heap_kb()
    return [
        Figure("firmware.loop_alloc_bytes", scan["alloc_per_scan"], "B", ("==", 0),
               "heap allocated by one measurement + control scan (gc.mem_alloc, 200 scans)"),
        Figure("firmware.scan_us", round(scan["us_per_scan"], 1), "µs",
               note="one measurement + control scan on the Unix port (this host, not an MCU)"),
        Figure("firmware.min_heap_kb", heap, "KiB", ("<=", 128),
               "smallest -X heapsize running the full loop for 1 simulated hour as .mpy"),
        Figure("firmware.qstrs", qstr_count(), "names",
               note="names interned with every module a unix-sim board can load; the first qstr pools "
                    "hold 620, the next is one contiguous block of about 7 KB"),
    ]


# main runs the board; hal.mcu is the real boards' HAL and hal.off their boot.py's pin reset
NOT_ON_UNIX_SIM = {"main", "hal.mcu", "hal.off"}


def module_names(files):
    """The import names of an image's .mpy modules that a unix-sim board can load."""
    names = []
    for path in files:
        if path.endswith(".mpy"):
            name = path[:-len(".mpy")].replace("/", ".")
            name = name[:-len(".__init__")] if name.endswith(".__init__") else name
            if name not in NOT_ON_UNIX_SIM:
                names.append(name)
    return sorted(names)


def qstrs_after_importing(root, names, heap_kb=512):
    """Interned names after importing `names` from the image written at `root`."""
    import re

    (root / "qstr_probe.py").write_text(
        "import micropython\nfor name in %r:\n    __import__(name)\nmicropython.qstr_info()\n" % names)
    env = dict(os.environ, SXCTL_ROM_RUN="qstr_probe")
    out = subprocess.run([toolchain.micropython_path(), "-X", "heapsize=%dK" % heap_kb, "-c", ROM_SOURCE],
                         cwd=root, env=env, capture_output=True, text=True, timeout=60)
    found = re.search(r"n_qstr=(\d+)", out.stdout)
    if not found:
        raise RuntimeError("qstr probe failed:\n%s%s" % (out.stdout, out.stderr))
    return int(found.group(1))


def qstr_count():
    with tempfile.TemporaryDirectory(prefix="sxctl-qstr-") as root:
        files = image.build("unix-sim")
        image.write_tree(files, pathlib.Path(root))
        return qstrs_after_importing(pathlib.Path(root), module_names(files))


def _stage(root):
    image.write_tree(image.build("unix-sim"), root)
    support = [FWLIB_DIR / "fwlib_stage.py", pathlib.Path(__file__).with_name("fw_scan.py")]
    image.write_tree(image.support_files(support), root)


def scan_cost():
    with tempfile.TemporaryDirectory(prefix="sxctl-bench-") as root:
        _stage(pathlib.Path(root))
        env = dict(os.environ, SXCTL_ROM_RUN="fw_scan")
        out = subprocess.run([toolchain.micropython_path(), "-X", "heapsize=256K", "-c", ROM_SOURCE],
                             cwd=root, env=env, capture_output=True, text=True, timeout=120)
    last = out.stdout.strip().splitlines()[-1] if out.stdout.strip() else ""
    if not last.startswith("{"):
        raise RuntimeError("fw_scan failed:\n%s%s" % (out.stdout, out.stderr))
    return json.loads(last)


def _sense(time_ms, ph_milli):
    uv = (7000 - ph_milli) * 59160 // 1000
    return plantlink.SENSE.build(dict(magic=plantlink.SENSE_MAGIC, flags=0, reserved=0, time_ms=time_ms,
                                      ph_uv=uv, orp_uv=0, rtd_mohm=0, pulses_aq=8, pulses_org=8))


def _read_until(fd, predicate, deadline):
    data = b""
    while time.monotonic() < deadline:
        r, _, _ = select.select([fd], [], [], 0.05)
        if r:
            try:
                data += os.read(fd, 4096)
            except OSError:
                return None
            found = predicate(data)
            if found is not None:
                return found
    return None


def runs_an_hour(heap_kb):
    """True if a board with this heap runs the loop for one simulated hour and keeps answering."""
    with tempfile.TemporaryDirectory(prefix="sxctl-heap-") as root:
        root = pathlib.Path(root)
        image.write_tree(image.build("unix-sim"), root)
        (root / "identity.json").write_text(json.dumps({"addr": 1}))
        bus, plant = Pty(nonblocking_reads=True), Pty(nonblocking_reads=True)
        env = dict(os.environ, SXCTL_BUS=bus.path, SXCTL_PLANT=plant.path, SXCTL_ROM_MAIN="1")
        proc = subprocess.Popen([toolchain.micropython_path(), "-X", "heapsize=%dK" % heap_kb, "-c", ROM_SOURCE],
                                cwd=root, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        os.set_blocking(bus.master, True)
        os.set_blocking(plant.master, True)
        try:
            seq = 0
            for tick in range(1, HOUR_TICKS + 1):
                os.write(plant.master, _sense(tick * 1000, 1500 + tick % 3))
                act = _read_until(plant.master, lambda d: d if len(d) >= plantlink.ACT.sizeof() else None,
                                  time.monotonic() + 5)
                if act is None:
                    return False
                if tick % POLL_EVERY == 0:
                    seq += 1
                    os.write(bus.master, codec.encode(1, 0, seq, messages.GET_TELEMETRY, lead=True))

                    def telemetry(data):
                        # `data` is everything read so far for this poll
                        for raw in codec.FrameSplitter().feed(data):
                            return codec.decode(raw).message is messages.TELEMETRY
                        return None
                    if not _read_until(bus.master, telemetry, time.monotonic() + 5):
                        return False
            return proc.poll() is None
        finally:
            proc.kill()
            proc.wait()
            bus.close()
            plant.close()


def min_heap_kb(low=64, high=512, step=8):
    """Bisection in `step` KiB over [low, high]: the smallest heap that runs the hour."""
    if runs_an_hour(low):
        return low
    if not runs_an_hour(high):
        return None
    while high - low > step:
        mid = (low + high) // 2 // step * step
        if runs_an_hour(mid):
            high = mid
        else:
            low = mid
    return high
