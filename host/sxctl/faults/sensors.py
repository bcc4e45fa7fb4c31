"""Fault section `sensors`: open probe, rail, stuck value, broken glass and noise spikes against
a dosing stage controller on the Unix port. Each fault must raise its alarm and stop base
dosing within the scans the firmware states; spikes must be rejected without an alarm."""
from ..bench import Figure
from .board import run_program

# Scans within which each fault must be detected (alarm and dosing stopped), from the firmware's
# settings: 3 invalid scans to stop (+1 for the next control scan), the 120 s stuck window at
# one scan a second (+ the check's own scans); broken glass jumps to pH 7 faster than a real
# solution can (rate check), so it too is invalid for 3 scans.
STATED_SCANS = {"open_probe": 4, "rail": 4, "stuck": 126, "broken_glass": 4}


def campaign():
    return {r["fault"]: r for r in run_program("fw_sensor_faults.py", ["fwlib_stage.py"])}


def run(short):
    results = campaign()
    figures = []
    for fault, stated in STATED_SCANS.items():
        r = results[fault]
        worst = max(r["alarm_scan"], r["stop_scan"]) if min(r["alarm_scan"], r["stop_scan"]) > 0 else -1
        figures.append(Figure("faults.sensor.%s.scans_to_safe" % fault, worst, "scans", ("<=", stated),
                              "alarm at scan %d, dosing 0 at scan %d (dosed %.2f mL/min before); -1: never"
                              % (r["alarm_scan"], r["stop_scan"], r["dosing_before"] / 100)))
        figures.append(Figure("faults.sensor.%s.undetected" % fault, int(worst < 0 or worst > stated), "",
                              ("==", 0)))
    s = results["spikes"]
    figures.append(Figure("faults.sensor.spikes.false_alarms", int(s["alarm_scan"] > 0), "", ("==", 0),
                          "single-scan spikes of +2 pH every 10 scans: median-of-3 rejects them"))
    figures.append(Figure("faults.sensor.spikes.max_reported_ph", s["max_ph"] / 1000, "pH", ("<=", 1.5),
                          "highest pH the stage reported while the spikes came"))
    return figures
