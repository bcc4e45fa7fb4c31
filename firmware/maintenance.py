"""Maintenance boot, for work over USB on a live plant: outputs off, the watchdog not started,
the bus answered (INFO: mode off, serial "maintenance") and the REPL free for the first Ctrl-C.

Asked for by /maintenance (written over USB by sxctl flash and key provision, or by the
firmware on a TO_REPL from the bus), which holds the time it may last in seconds. The boot
consumes the file, so any reset that runs main.py afterwards returns to control; the lease
(lease.py) resets the board back to control once that time passes without USB activity, at
its REPL too."""
import os
import sys
from micropython import const

import proto  # its file names only, folded in: the board does not load it here

_DEFAULT_S = const(600)


def boot():
    """From main.py before anything else loads: the maintenance boot if /maintenance asks for
    one (it does not return: the REPL for USB at Ctrl-C, or a reset back to control), else the
    end of any maintenance session (main.py goes on to control)."""
    try:
        with open(proto.FILE_MAINTENANCE) as f:
            n = int(f.read().strip() or _DEFAULT_S)
    except OSError:
        _end()
        return
    except ValueError:
        n = _DEFAULT_S
    n = min(max(n, 2), 3600)
    import lease
    with open(lease.SESSION, "w") as f:  # before the request goes: a reset never loses both
        f.write("%d\n" % n)
    try:
        os.remove(proto.FILE_MAINTENANCE)  # consumed: the next reset that runs main.py returns to control
    except OSError:
        pass
    lease.arm(n)
    import machine

    import failsafe
    import memory
    from board import BOARD
    from hal import open_hal
    memory.reserve_link()
    print("sxctl maintenance: outputs off, no watchdog; Ctrl-C for the REPL; back to control after "
          "%d s without USB activity, or at reset" % n)
    failsafe.serve(open_hal(BOARD), "maintenance", 0, n * 1000)
    machine.reset()


def _end():
    lease = sys.modules.pop("lease", None)  # armed by boot.py if a session was running
    if lease is not None:
        lease.cancel()
    try:
        os.remove(proto.FILE_MAINTENANCE_SESSION)  # the session lease.py keeps
    except OSError:
        pass


del sys.modules[__name__]  # not kept: main.py runs it once
