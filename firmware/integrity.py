"""Are the firmware's files the ones the last flash wrote? /sxctl.manifest lists each with its
SHA-256. main.py asks before importing anything: a truncated .mpy can hang the interpreter's
loader instead of failing, so a damaged module must be found by its hash, not by importing it."""
import sys

MANIFEST = "/sxctl.manifest"


def damaged():
    """The first listed file that is missing or differs from its hash, as a module name
    ("sensors.ph"); None when every file checks or there is no manifest (not flashed by sxctl)."""
    import hashlib
    from binascii import hexlify

    buf = bytearray(256)
    try:
        with open(MANIFEST) as f:
            lines = f.read().split("\n")
    except OSError:
        return None
    for line in lines:
        parts = line.split()
        if len(parts) != 2 or line.startswith("#"):
            continue
        path, want = parts
        h = hashlib.sha256()
        try:
            with open("/" + path, "rb") as f:
                while True:
                    n = f.readinto(buf)
                    if not n:
                        break
                    h.update(memoryview(buf)[:n])
        except OSError:
            return _module(path)
        if hexlify(h.digest()).decode() != want:
            return _module(path)
    return None


def _module(path):
    return path.rsplit(".", 1)[0].replace("/", ".")


del sys.modules[__name__]  # asked once at reset: not kept
