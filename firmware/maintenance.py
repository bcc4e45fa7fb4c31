"""Maintenance boot, for work over USB on a live plant: outputs off, the watchdog not started,
the bus answered (INFO: mode off, serial "maintenance") and the REPL free for the first Ctrl-C.

Asked for by /maintenance (written over USB by sxctl flash, key provision and calibrate, or by
the firmware on a TO_REPL from the bus), which holds the time it may last in seconds. The boot
consumes the file, so any reset after it returns to control; a maintenance boot that nobody
interrupts from USB within that time resets back to control on its own."""
import os

FLAG = "/maintenance"
DEFAULT_S = 600


def requested():
    try:
        os.stat(FLAG)
        return True
    except OSError:
        return False


def request(seconds=DEFAULT_S):
    """Ask for a maintenance boot at the next reset."""
    with open(FLAG, "w") as f:
        f.write("%d\n" % seconds)


def boot():
    """The maintenance boot, from main.py before anything else loads."""
    import memory
    from board import BOARD
    from hal import open_hal
    memory.reserve_link()
    run(open_hal(BOARD))


def run(hal):
    import machine

    import failsafe
    try:
        with open(FLAG) as f:
            seconds = int(f.read().strip() or DEFAULT_S)
    except (OSError, ValueError):
        seconds = DEFAULT_S
    seconds = min(max(seconds, 10), 3600)
    try:
        os.remove(FLAG)  # consumed: the next reset, whatever its cause, returns to control
    except OSError:
        pass
    print("sxctl maintenance: outputs off, no watchdog; Ctrl-C for the REPL; back to control after "
          "%d s without it, or at reset" % seconds)
    failsafe.serve(hal, "maintenance", 0, seconds * 1000)
    machine.reset()


del __import__("sys").modules[__name__]  # not kept: main.py and TO_REPL use it once
