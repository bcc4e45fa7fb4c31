"""Fault campaign, run ON MicroPython: power lost at random moments inside config writes.

Each trial writes a random set of items, cuts the power after a random number of write calls
(half of that write reaching the flash), then boots the store again: every item must equal
either the old config or the new one, never a mix, never a corrupt read.
"""
import json
import os
import random
import struct

import config_table as T
from config import Config, index_of
from config_ranges import HI, LO
from fwlib_fakefs import Crash, FakeFs

TRIALS = int(os.getenv("SXFAULT_TRIALS", "300"))
# Items whose whole range passes the cross-field rules, so any value is a valid write.
FREE = (T.PID_KP, T.PID_TI, T.BASE_MAX, T.DOSE_CAP_HOUR, T.LINK_TIMEOUT, T.FLOW_AQ_SETPOINT,
        T.K_FACTOR_AQ, T.ORP_SETPOINT, T.TEMPERATURE_FIXED)


def random_pairs():
    chosen = [FREE[i] for i in range(len(FREE)) if random.getrandbits(1)] or [FREE[0]]
    return [(T.IDS[i], random.randint(struct.unpack_from("<i", LO, 4 * i)[0], struct.unpack_from("<i", HI, 4 * i)[0])) for i in chosen]


random.seed(7)
tested = corrupt = crashed = 0
for trial in range(TRIALS):
    fs = FakeFs()
    cfg = Config(slots=("a", "b"), opener=fs.open)
    for _ in range(random.randint(0, 3)):  # some history, so both slots are in use
        cfg.apply(random_pairs())
    old = list(cfg.values)
    pairs = random_pairs()
    fs.writes = 0
    fs.crash_after = random.randint(0, 70)
    try:
        cfg.apply(pairs)
    except Crash:
        crashed += 1
    fs.crash_after = -1
    new = list(old)
    for item, value in pairs:
        new[index_of(item)] = value
    loaded = list(Config(slots=("a", "b"), opener=fs.open).values)
    tested += 1
    if loaded != old and loaded != new:
        corrupt += 1
print(json.dumps({"tested": tested, "crashed": crashed, "corrupt": corrupt}))
