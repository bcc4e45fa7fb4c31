"""Maintenance boot, for work over USB on a live plant: outputs off, the watchdog not started,
the bus answered (INFO: mode off, serial "maintenance") and the REPL free for the first Ctrl-C.

Asked for by /maintenance (written over USB by sxctl flash and key provision, or by the
firmware on a TO_REPL from the bus), which holds the time it may last in seconds. The boot
consumes the file, so any reset after it returns to control; a maintenance boot that nobody
interrupts from USB within that time resets back to control on its own."""
import os
import sys
from micropython import const

import proto  # its file names only, folded in: the board does not load it here

_DEFAULT_S = const(600)


def boot():
    """From main.py before anything else loads: the maintenance boot if /maintenance asks for
    one (it does not return: the REPL for USB at Ctrl-C, or a reset back to control), else nothing."""
    try:
        with open(proto.FILE_MAINTENANCE) as f:
            n = int(f.read().strip() or _DEFAULT_S)
    except OSError:
        return
    except ValueError:
        n = _DEFAULT_S
    n = min(max(n, 10), 3600)
    try:
        os.remove(proto.FILE_MAINTENANCE)  # consumed: the next reset, whatever its cause, returns to control
    except OSError:
        pass
    import machine

    import failsafe
    import memory
    from board import BOARD
    from hal import open_hal
    memory.reserve_link()
    print("sxctl maintenance: outputs off, no watchdog; Ctrl-C for the REPL; back to control after "
          "%d s without it, or at reset" % n)
    failsafe.serve(open_hal(BOARD), "maintenance", 0, n * 1000)
    machine.reset()


del sys.modules[__name__]  # not kept: main.py runs it once
