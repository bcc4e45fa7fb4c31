"""Run a MicroPython program of the fault campaign on the Unix port, beside the firmware image."""
import json
import os
import pathlib
import subprocess
import tempfile

from .. import FWLIB_DIR, image, toolchain
from ..sim.vboard import ROM_SOURCE


def run_program(program, support=(), env=None, heap="256K", timeout=600):
    """The JSON the program prints last; `support` names modules of sxctl/data/fwlib."""
    with tempfile.TemporaryDirectory(prefix="sxctl-faults-") as root:
        root = pathlib.Path(root)
        image.write_tree(image.build("unix-sim"), root)
        files = [FWLIB_DIR / name for name in support] + [pathlib.Path(__file__).with_name(program)]
        image.write_tree(image.support_files(files), root)
        proc = subprocess.run([toolchain.micropython_path(), "-X", "heapsize=" + heap, "-c", ROM_SOURCE],
                              cwd=root, env=dict(os.environ, SXCTL_ROM_RUN=program[:-3], **(env or {})),
                              capture_output=True, text=True, timeout=timeout)
    last = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else ""
    if not last[:1] in "[{":
        raise RuntimeError("%s failed:\n%s%s" % (program, proc.stdout, proc.stderr))
    return json.loads(last)
