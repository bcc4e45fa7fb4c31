"""Collects firmware tests: each tests/firmware/test_*.py runs on the MicroPython Unix port.

A module runs once, in a fresh interpreter with an explicit `-X heapsize` (the smallest
heap among the supported boards unless the module sets HEAPSIZE = "96K"), its filesystem
root sandboxed to a temporary folder that holds the unix-sim firmware image as `.mpy`
and the test module, built as debug (line numbers in every traceback, asserts kept: image.py).
Each test_* function is its own pytest item with its own result and
MicroPython traceback.
"""
import ast
import os
import pathlib
import subprocess
import tempfile

import pytest

from sxctl import FWLIB_DIR, boards, image, toolchain
from sxctl.sim.vboard import ROM_SOURCE

HERE = pathlib.Path(__file__).parent
MARK = "@@SXTEST@@"
TIMEOUT_S = 300


def pytest_pycollect_makemodule(module_path, parent):
    if module_path.name.startswith("test_"):
        return FirmwareModule.from_parent(parent, path=module_path)
    return None


class FirmwareFailure(Exception):
    pass


class FirmwareModule(pytest.File):
    def collect(self):
        tree = ast.parse(self.path.read_text(), str(self.path))
        self.heapsize = "%dK" % boards.smallest_heap_kb()
        names = []
        for node in tree.body:
            if isinstance(node, ast.FunctionDef) and node.name.startswith("test_"):
                names.append(node.name)
            elif (isinstance(node, ast.Assign) and len(node.targets) == 1
                  and getattr(node.targets[0], "id", None) == "HEAPSIZE"):
                self.heapsize = ast.literal_eval(node.value)
        self.names = names
        self._results = None
        for name in names:
            yield FirmwareItem.from_parent(self, name=name)

    def results(self):
        if self._results is None:
            self._results = self._run()
        return self._results

    def _run(self):
        return run_module(self.path, self.names, self.heapsize)


def run_module(path, names, heapsize):
    """Run the test functions `names` of the firmware test module at `path` on the Unix port,
    beside a debug build of the unix-sim image (tracebacks with line numbers):
    {name: (passed, text)}."""
    with tempfile.TemporaryDirectory(prefix="sxctl-fwtest-") as root:
        root = pathlib.Path(root)
        image.write_tree(image.build("unix-sim", debug=True), root)
        # Support modules: the tests' own here, those the bench and fault campaign share
        # in the package (sxctl/data/fwlib).
        support = ([path, HERE / "fwrunner.py"] + sorted(HERE.glob("fwlib_*.py"))
                   + sorted(FWLIB_DIR.glob("fwlib_*.py")))
        image.write_tree(image.support_files(support), root)
        for board in boards.BOARDS_DIR.glob("*.py"):  # every board definition, as board_<file>
            (root / ("board_%s.mpy" % board.stem)).write_bytes(
                image.compile_source(board.read_bytes(), "board_%s.py" % board.stem, None))
        env = dict(os.environ, SXCTL_ROM_RUN="fwrunner", SXTEST_MODULE=path.stem,
                   SXTEST_NAMES=",".join(names))
        env.pop("SXCTL_BUS", None)
        cmd = [toolchain.micropython_path(), "-X", "heapsize=%s" % heapsize, "-c", ROM_SOURCE]
        try:
            proc = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True,
                                  timeout=TIMEOUT_S, stdin=subprocess.DEVNULL)
            output = proc.stdout + proc.stderr
        except subprocess.TimeoutExpired as e:
            output = (e.stdout or b"").decode(errors="replace") + "\n[timed out after %d s]" % TIMEOUT_S
    return _parse(output)


def _parse(output):
    """{name: (passed, text)}; a module that died mid-way leaves the rest unreported."""
    results = {}
    current = None
    lines = []
    for line in output.splitlines():
        if line.startswith(MARK):
            parts = line.split()
            if parts[1] == "START":
                current, lines = parts[2], []
            elif parts[1] in ("PASS", "FAIL"):
                results[parts[2]] = [parts[1] == "PASS", lines]
                lines = []
            continue
        lines.append(line)
    tail = "\n".join(lines)
    for name, result in results.items():
        result[1] = "\n".join(result[1])
    if current is not None and current not in results:
        results[current] = (False, "MicroPython stopped inside this test:\n" + tail)
    results["__tail__"] = (True, tail)
    return results


class FirmwareItem(pytest.Item):
    def runtest(self):
        results = self.parent.results()
        if self.name not in results:
            raise FirmwareFailure("not run: the module stopped before this test\n%s"
                                  % results["__tail__"][1])
        passed, text = results[self.name]
        if not passed:
            raise FirmwareFailure(text)

    def repr_failure(self, excinfo):
        if isinstance(excinfo.value, FirmwareFailure):
            return "MicroPython (heapsize %s):\n%s" % (self.parent.heapsize, excinfo.value)
        return super().repr_failure(excinfo)

    def reportinfo(self):
        return self.path, 0, "%s [micropython]" % self.name
