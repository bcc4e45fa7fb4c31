"""Reset: makes the board's large buffers, opens its HAL with every output off and builds the
stage application (app.py); if that does not fit in the heap, runs the fail-safe firmware.
It runs once and is not kept, like the modules that only built the board (memory, hal, board)."""
import gc
import os
import sys
from micropython import const

import memory

# Free heap below which the names of rare requests are not interned at reset (_intern_rare_names):
# a load cut short by MemoryError leaves part of what it loaded held and the heap split.
_INTERN_ROOM = const(12 * 1024)


def start():
    """The application, its outputs off; `run()` starts the loop. Does not return when the
    application cannot load: the fail-safe firmware runs instead."""
    memory.reserve()  # big buffers first, while the heap is still in one piece
    from board import BOARD
    from hal import open_hal
    hal = open_hal(BOARD)  # outputs are off until the controller says otherwise
    loaded = set(sys.modules)
    try:
        app = _create(hal)
    except MemoryError as e:
        # Too little memory for the controller: drop what was half loaded and run fail-safe.
        for name in list(sys.modules):
            if name not in loaded:
                del sys.modules[name]
        memory.backlog = memory.events_ring = None  # the link's buffers stay
        gc.collect()
        import failsafe
        failsafe.main(hal, e)
    for name in ("memory", "hal", "board"):  # the running stage holds what it needs of them
        del sys.modules[name]
    return app


def _create(hal):
    import identity
    from app import App
    addr, serial = identity.load()
    app = App(hal, addr, serial, memory.backlog, memory.events_ring, memory.link_buffers)
    app.link.guard = _signing()
    _intern_rare_names()
    return app


def _signing():
    """The check of signed writes once a plant key is provisioned (signing.py), else None:
    without a key the module is not even imported, which saves its RAM (~4 KB on the Unix port)."""
    try:
        os.stat("/plant.key")  # signing.KEY_PATH
    except OSError:
        return None
    import signing
    return signing.load()


def _intern_rare_names():
    # Load and drop the code that rare requests load, now while the heap is compact: it costs
    # only the names it interns, which a first load mid-run would leave as small permanent
    # islands in the free space, where the code of the next rare request must find room.
    gc.collect()
    if gc.mem_free() < _INTERN_ROOM:
        return  # no room to spare: the requests intern their names when they come
    import sensors
    rare = ("service_config", "service_rare", "config_store", "config_ranges", "config_rules",
            "calibration", "calibration_steps", "sensors.ph_cal")
    try:
        for name in rare:
            __import__(name)
    except MemoryError:
        pass  # tighter than it looked: the requests will intern the rest
    # Each drops itself once loaded; a load cut short by MemoryError leaves what it imported.
    for name in rare:
        sys.modules.pop(name, None)
    if hasattr(sensors, "ph_cal"):
        del sensors.ph_cal


del sys.modules[__name__]  # not kept: main.py drops its reference once the application is built
