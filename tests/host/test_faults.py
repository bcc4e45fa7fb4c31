"""The fault campaign's short form: every "must be 0" figure is 0 and every stated bound holds."""
import json
import subprocess
import sys


def test_short_campaign_meets_every_figure(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "sxctl.faults", "--short"], capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    from sxctl.faults import OUTPUT
    figures = json.loads(OUTPUT.read_text())
    undetected = {k: v for k, v in figures.items() if k.endswith(".undetected")}
    assert undetected and not any(undetected.values()), undetected
    assert figures["faults.sensor.spikes.false_alarms"] == 0
