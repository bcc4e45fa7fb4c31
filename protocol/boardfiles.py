"""The files on a stage board that are not firmware code, by name (relative to the board's root).

One list for both sides: the firmware gets them as `proto.FILE_*` (codegen), the host's flash,
ports, keys and REPL read them from here.
"""
MANIFEST = "sxctl.manifest"  # what the last flash wrote, with each file's SHA-256
IDENTITY = "identity.json"   # the board's bus address and serial number
CONFIG_SLOTS = ("config.a", "config.b")  # the config's two CRC'd slots (firmware/config.py)
PLANT_KEY = "plant.key"  # the provisioned plant key (docs/security.md)
PLANT_COUNTERS = ("plant.ctr.a", "plant.ctr.b")  # the signing counter's two slots
MAINTENANCE = "maintenance"  # present: the next boot is a maintenance boot (firmware/maintenance.py)
MAINTENANCE_SESSION = "maintenance.on"  # a maintenance session runs, with its time limit (firmware/lease.py)

# firmware name (proto.FILE_<NAME>) -> the file, each as the board opens it: from its root
FIRMWARE_NAMES = {
    "MANIFEST": MANIFEST, "IDENTITY": IDENTITY, "CONFIG_A": CONFIG_SLOTS[0], "CONFIG_B": CONFIG_SLOTS[1],
    "PLANT_KEY": PLANT_KEY, "PLANT_COUNTER_A": PLANT_COUNTERS[0], "PLANT_COUNTER_B": PLANT_COUNTERS[1],
    "MAINTENANCE": MAINTENANCE, "MAINTENANCE_SESSION": MAINTENANCE_SESSION,
}
