# Runs at every reset, as on any MicroPython board; Ctrl-C stops it and leaves the REPL.
import gc
import sys

# Collect every KB allocated: garbage of loading (and of rare requests that load code) is then
# reused before it splits the heap. The control scans allocate nothing, so they never pay for it.
gc.threshold(1024)
import memory

memory.reserve()  # big buffers first, while the heap is still in one piece

from board import BOARD
from hal import open_hal

hal = open_hal(BOARD)  # outputs are off until the controller says otherwise
loaded = set(sys.modules)
try:
    import app
    controller = app.create(hal)
except MemoryError as e:
    # Too little memory for the controller: drop what was half loaded and run fail-safe.
    for name in list(sys.modules):
        if name not in loaded:
            del sys.modules[name]
    app = controller = memory.backlog = memory.events_ring = None  # the link's buffers stay
    gc.collect()
    import failsafe
    failsafe.main(hal, "out of memory: %s" % e)
del loaded, open_hal, BOARD
controller.run()
