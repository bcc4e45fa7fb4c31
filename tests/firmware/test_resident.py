"""What a booted board keeps loaded: the modules of the running stage, and nothing that only
built it (firmware/README.md lists them with the reason for each)."""
import sys

HEAPSIZE = "256K"  # the unix-sim board's heap: a whole application is built here

# Every module a unix-sim board without a plant key holds once startup.start() has returned
# (sensors.temperature joins them on a board configured to read its temperature probe).
RESIDENT = [
    "app", "calibration", "config", "config_ranges", "config_rules", "config_table", "configure",
    "control", "control.alarms", "control.dosing", "control.pid", "control.piloop", "controller",
    "fixedpoint", "hal.chip", "hal.unix_sim", "link", "ring", "sensors", "sensors.checks",
    "sensors.flow", "sensors.orp", "sensors.ph", "service", "stage",
]


def test_what_stays_resident_after_boot():
    import sim_devices
    bus = open("bus.fake", "w+b")  # the link reads nothing from it: no request arrives
    sim_devices.bus = bus
    before = set(sys.modules)
    import startup
    app = startup.start()
    try:
        resident = sorted(set(sys.modules) - before)
        assert resident == RESIDENT, resident
        # what only built the board went: startup, memory, the HAL chooser, the board file, identity
        for gone in ("startup", "memory", "hal", "board", "identity", "signing", "proto", "version"):
            assert gone not in sys.modules, gone
        assert app.link.guard is None  # no plant key: signing was not even loaded
    finally:
        app.hal.write_outputs(None, False)
        sim_devices.bus = None
        bus.close()
