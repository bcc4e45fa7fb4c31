"""Fault campaign, run ON MicroPython: each sensor fault against a dosing stage controller.

For every fault the stage first doses normally; then the fault starts and the scans until
(a) the alarm and (b) zero base dose are counted. Noise spikes are the exception: they must
be rejected (no alarm, no pH jump, dosing goes on).
"""
import json

import proto
from control import alarms as A
from fwlib_stage import make

SCAN_MS = 1000
LIMIT = 200  # scans before a fault counts as undetected


def _normal(k):
    return 1400 + (k % 3) * 4  # a live electrode below setpoint: the stage doses


def _settle(ctrl, hal, now):
    for k in range(60):
        hal.set_ph(_normal(k))
        now += SCAN_MS
        ctrl.measure(now, SCAN_MS)
        ctrl.link_seen(now)
        if k % 2:
            ctrl.control(now, 2 * SCAN_MS)
    return now


def run_fault(name, signal, alarm_bit):
    ctrl, hal, stage, config = make(mode=proto.MODE_AUTO)
    now = _settle(ctrl, hal, 0)
    dosing_before = stage.base_dose
    alarm_scan = stop_scan = -1
    max_ph = 0
    for k in range(1, LIMIT + 1):
        signal(hal, k)
        now += SCAN_MS
        ctrl.measure(now, SCAN_MS)
        ctrl.link_seen(now)
        if k % 2 == 0:
            ctrl.control(now, 2 * SCAN_MS)
        max_ph = max(max_ph, stage.ph)
        if alarm_scan < 0 and stage.alarms_active & alarm_bit:
            alarm_scan = k
        if stop_scan < 0 and stage.base_dose == 0:
            stop_scan = k
        if alarm_scan > 0 and stop_scan > 0:
            break
    return {"fault": name, "dosing_before": dosing_before, "alarm_scan": alarm_scan,
            "stop_scan": stop_scan, "dosing_after": stage.base_dose, "max_ph": max_ph}


def open_probe(hal, k):
    hal.ph_uv = 2000000  # an open input floats to the rail


def rail(hal, k):
    hal.ph_uv = -2000000


def stuck(hal, k):
    hal.set_ph(1404)  # frozen while the loop keeps changing its output


def broken_glass(hal, k):
    hal.ph_uv = (k % 3) * 300  # ~0 mV: reads pH 7 whatever the solution


def spikes(hal, k):
    hal.set_ph(_normal(k) + (2000 if k % 10 == 0 else 0))


results = [
    run_fault("open_probe", open_probe, A.AL_PH_FAULT),
    run_fault("rail", rail, A.AL_PH_FAULT),
    run_fault("stuck", stuck, A.AL_PH_STUCK),
    run_fault("broken_glass", broken_glass, A.AL_PH_FAULT | A.AL_PH_HIGH),
    run_fault("spikes", spikes, A.AL_PH_FAULT | A.AL_PH_STUCK | A.AL_PH_HIGH),
]
print(json.dumps(results))
