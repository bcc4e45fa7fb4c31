"""Are the firmware's files the ones the last flash wrote? /sxctl.manifest lists each with its
SHA-256. main.py asks before importing anything: a truncated .mpy can hang the interpreter's
loader instead of failing, so a damaged module must be found by its hash, not by importing it.
(Its names are few and mostly the firmware's own: every name a module uses is interned.)"""
import sys

import proto  # its file names only, folded in: the board does not load it here


def check():
    """The first listed file that is missing or differs from its hash, as a module name
    ("sensors.ph"); None when every file checks or there is no manifest (not flashed by sxctl)."""
    import hashlib
    from binascii import hexlify

    b = bytearray(256)
    try:
        with open(proto.FILE_MANIFEST) as f:
            lines = f.read().split("\n")
    except OSError:
        return None
    for line in lines:
        line = line.split()
        if len(line) != 2 or line[0][0] == "#":
            continue
        h = hashlib.sha256()
        try:
            with open("/" + line[0], "rb") as f:
                while True:
                    n = f.readinto(b)
                    if not n:
                        break
                    h.update(memoryview(b)[:n])
            if hexlify(h.digest()).decode() == line[1]:
                continue
        except OSError:
            pass
        return line[0].rsplit(".", 1)[0].replace("/", ".")
    return None


del sys.modules[__name__]  # asked once at reset: not kept
