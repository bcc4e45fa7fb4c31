"""Bench, run ON MicroPython: bytes allocated and time taken by one steady-state stage scan."""
import gc
import json
import time

import proto
from fwlib_stage import make

ctrl, hal, stage, config = make(mode=proto.MODE_AUTO)
now = 0
N = 200
for k in range(N + 50):  # warm up into a steady state: dosing, alarms settled
    hal.set_ph(1450 + (k % 3) * 4)
    now += 1000
    ctrl.measure(now, 1000)
    ctrl.link_seen(now)
    ctrl.control(now, 2000)
gc.collect()
gc.disable()
before = gc.mem_alloc()
t0 = time.ticks_us()
for k in range(N):
    hal.set_ph(1450 + (k % 3) * 4)  # a live electrode: a still one would be flagged stuck
    now += 1000
    ctrl.measure(now, 1000)
    ctrl.link_seen(now)
    ctrl.control(now, 2000)
elapsed = time.ticks_diff(time.ticks_us(), t0)
allocated = gc.mem_alloc() - before
gc.enable()
print(json.dumps({"alloc_per_scan": allocated // N, "us_per_scan": elapsed / N, "dosing": stage.base_dose}))
