"""The firmware's RAM budget on the Unix port, as far as it is exact.

MicroPython interns every name a loaded module uses in a chain of qstr pools, each twice the
size of the last. On this port the first pools hold 620 names; the 621st needs a new pool of
640 entries, one contiguous block of about 7 KB, allocated in the middle of the imports when
the heap is already fragmented. That block is what once made a board need 168 KB of heap
(`make bench`, firmware.min_heap_kb). So the whole firmware, every module a unix-sim board can
load (fail-safe and signing included), must intern no more than the pools hold.
"""
import os
import re
import subprocess

from sxctl import image, toolchain
from sxctl.sim.vboard import ROM_SOURCE

QSTR_POOL_CAPACITY = 620
# main runs the board; hal.mcu is the real boards' HAL and hal.off their boot.py's pin reset
NOT_ON_THIS_BOARD = {"main", "hal.mcu", "hal.off"}


def _import_names(files):
    names = []
    for path in files:
        if path.endswith(".mpy"):
            name = path[:-len(".mpy")].replace("/", ".")
            name = name[:-len(".__init__")] if name.endswith(".__init__") else name
            if name not in NOT_ON_THIS_BOARD:
                names.append(name)
    return sorted(names)


def _qstrs_after_importing(root, names):
    (root / "qstr_probe.py").write_text(
        "import micropython\nfor name in %r:\n    __import__(name)\nmicropython.qstr_info()\n" % names)
    env = dict(os.environ, SXCTL_ROM_RUN="qstr_probe")
    out = subprocess.run([toolchain.micropython_path(), "-X", "heapsize=512K", "-c", ROM_SOURCE],
                         cwd=root, env=env, capture_output=True, text=True, timeout=60)
    found = re.search(r"n_qstr=(\d+)", out.stdout)
    assert found, out.stdout + out.stderr
    return int(found.group(1))


def test_the_whole_firmware_fits_the_first_qstr_pools(tmp_path):
    files = image.build("unix-sim")
    image.write_tree(files, tmp_path)
    names = _import_names(files)
    assert {"app", "controller", "signing", "failsafe", "calibration", "hal.unix_sim"} <= set(names)
    n_qstr = _qstrs_after_importing(tmp_path, names)
    assert n_qstr <= QSTR_POOL_CAPACITY, (
        "the firmware interns %d names, more than the %d the first qstr pools hold: the next pool "
        "needs a contiguous 7 KB block and raises the board's minimum heap; use fewer distinct "
        "names (attributes, globals, string constants) or fold them as constants" % (n_qstr, QSTR_POOL_CAPACITY))


def test_the_probe_counts_what_a_module_interns(tmp_path):
    # The budget test means something only if importing more modules counts more names.
    files = image.build("unix-sim")
    image.write_tree(files, tmp_path)
    assert _qstrs_after_importing(tmp_path, ["ring"]) < _qstrs_after_importing(tmp_path, ["ring", "controller"])
