"""Fault campaign, run ON MicroPython: the board's frame parser against mutated frames.

Uses the fuzz model of fwlib_fuzz.py (a textbook CRC and COBS say what
must be accepted). An exception leaving Link.poll is an escape; a frame handed to the
handler that the model refuses (or the reverse) is a mismatch; a good frame lost after the
damage is a resync failure.
"""
import json
import os
import random

import proto
import fwlib_fuzz as Z

FRAMES = int(os.getenv("SXFAULT_FRAMES", "100000"))

random.seed(int(os.getenv("SXFAULT_SEED", "1")))
board = Z.Board()
escapes = mismatches = lost = 0
for i in range(FRAMES):
    board.port.chunk = random.randint(1, 64)
    good = Z.F.frame(Z.ADDR, 0, i & 0xFFFF, proto.MSG_PING, bytes([i & 0xFF, (i >> 8) & 0xFF, 0xA5, 0x5A]))
    try:
        got = board.check(Z.mutate() + b"\x00" + good)
        if not got or got[-1] != Z.F.cobs_decode(good[:-1])[:-2]:
            lost += 1
    except AssertionError:
        mismatches += 1
        board = Z.Board()  # a fresh link: the next frames are judged from a clean state
    except Exception:
        escapes += 1
        board = Z.Board()
link = board.link
print(json.dumps({"frames": FRAMES, "escapes": escapes, "mismatches": mismatches, "lost": lost}))
