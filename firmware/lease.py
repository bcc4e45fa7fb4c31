"""The maintenance lease: a board in its maintenance boot (no watchdog) resets itself back to
control once its time has passed without USB activity, even while someone holds its REPL.

A chip timer does it, so it runs whatever the interpreter is doing (the REPL waiting for a key,
a copy in the raw REPL). /maintenance.on marks the session and holds its time in seconds:
maintenance.py writes it when the boot starts and boot.py arms the lease again at every
reset while it is there. A soft reset (Ctrl-D: every mpremote command and every sxctl session
starts with one) is the USB activity that renews it, since timers do not outlive one; main.py
ends the session, so a hard reset or a soft reset from the friendly REPL returns to control."""
import machine

import proto

SESSION = proto.FILE_MAINTENANCE_SESSION
_timer = None


def arm(seconds):
    """Reset the board `seconds` from now unless cancel() comes first (arming again restarts it)."""
    global _timer
    cancel()
    try:
        _timer = machine.Timer(-1, mode=machine.Timer.ONE_SHOT, period=seconds * 1000, callback=_expire)
    except ValueError:  # ESP32: hardware timers only
        _timer = machine.Timer(0, mode=machine.Timer.ONE_SHOT, period=seconds * 1000, callback=_expire)


def _expire(timer):
    machine.reset()  # allocates nothing: safe in a timer interrupt


def cancel():
    global _timer
    if _timer is not None:
        _timer.deinit()
        _timer = None


def session_seconds():
    """The running session's time in seconds, or 0 when the board is not in maintenance."""
    try:
        with open(SESSION) as f:
            return int(f.read())
    except (OSError, ValueError):
        return 0
