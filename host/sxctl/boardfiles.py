"""The files on a stage board that are not firmware code, by name: flash writes and keeps them,
ports and keys read them. One list with the firmware's: sxproto/boardfiles.py."""
from sxproto.boardfiles import (  # noqa: F401
    CONFIG_SLOTS, IDENTITY, MAINTENANCE, MAINTENANCE_SESSION, MANIFEST, PLANT_COUNTERS, PLANT_KEY)
