"""Reset: makes the board's large buffers, opens its HAL with every output off and builds the
stage application (app.py); if that does not fit in the heap, runs the fail-safe firmware.
It runs once and is not kept, like the modules that only built the board (memory, hal, board)."""
import gc
import os
import sys

import memory
import proto  # its file names only, folded in


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
    return app


def _signing():
    """The check of signed writes once a plant key is provisioned (signing.py), else None:
    without a key the module is not even imported."""
    try:
        os.stat(proto.FILE_PLANT_KEY)
    except OSError:
        return None
    import signing
    return signing.load()


del sys.modules[__name__]  # not kept: main.py drops its reference once the application is built
