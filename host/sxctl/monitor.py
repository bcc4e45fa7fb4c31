"""The live table of `sxctl monitor`: every stage's pH against setpoint, outputs, flows, mode and
alarms, refreshed in place on a terminal; alarms acknowledged from the keyboard or the command line."""
import os
import select
import sys
import time

from sxproto import messages

from . import store as st
from .buslink import NoAnswer, RemoteError
from .errors import SxctlError

ALL_ALARMS = 0xFFFF


class StageView:
    """One stage as last read: its telemetry (alarms active and unacknowledged), or why there is none."""

    def __init__(self, addr, telemetry=None, problem=""):
        self.addr = addr
        self.telemetry = telemetry
        self.problem = problem

    @property
    def unacked(self):
        return self.telemetry["alarms_unacked"] if self.telemetry else 0


def read_stage(bus, addr):
    try:
        tel = bus.request(addr, messages.GET_TELEMETRY, expect=messages.TELEMETRY).values
    except NoAnswer:
        return StageView(addr, problem="no answer")
    except (RemoteError, SxctlError) as e:
        return StageView(addr, problem=str(e))
    return StageView(addr, tel)


def acknowledge(bus, addr):
    """Acknowledge every latched alarm of a stage; one line saying what was acknowledged."""
    before = bus.request(addr, messages.ALARM_ACK, {"mask": 0}, expect=messages.ALARM_STATE).values
    after = bus.request(addr, messages.ALARM_ACK, {"mask": ALL_ALARMS}, expect=messages.ALARM_STATE).values
    acked = before["alarms_unacked"] & ~after["alarms_unacked"]
    return "stage %d: acknowledged %s; still active: %s" % (
        addr, st.alarm_names(acked, ", ") or "nothing (none unacknowledged)",
        st.alarm_names(after["alarms_active"], ", ") or "none")


def _value(name):
    d = st.decimals(name)
    return lambda t: "%.*f" % (d, t[name] * st.scale(name))


def _deviation(t):
    return "%+.*f" % (st.decimals("ph"), (t["ph"] - t["ph_setpoint"]) * st.scale("ph"))


# (heading, width, text of a telemetry record); units from the protocol's field declarations.
COLUMNS = (
    ("pH", 6, _value("ph")), ("setpt", 6, _value("ph_setpoint")), ("dev", 6, _deviation),
    ("ORP mV", 6, _value("orp_mv")), ("°C", 6, _value("temperature")),
    ("base mL/min", 11, _value("base_dose")), ("reag mL/min", 11, _value("reagent_dose")),
    ("aq pump%", 8, _value("aq_pump")), ("org pump%", 9, _value("org_pump")),
    ("aq L/min", 8, _value("flow_aq")), ("org L/min", 9, _value("flow_org")),
    ("mode", 6, lambda t: st.mode_name(t["mode"])),
)


def alarms_text(active, unacked):
    """Active and unacknowledged alarms by name; '*' marks one not yet acknowledged, '(cleared)'
    one no longer present (ISA-18.2's cleared unacknowledged)."""
    bits = active | unacked
    return " ".join(name + ("*" if unacked >> bit & 1 else "") + ("" if active >> bit & 1 else "(cleared)")
                    for bit, name in messages.ALARMS.items() if bits >> bit & 1) or "-"


def table(views):
    head = "stage " + " ".join(h.rjust(w) for h, w, _ in COLUMNS) + "  alarms (* not acknowledged)"
    lines = [head, "-" * len(head)]
    for v in views:
        if v.telemetry is None:
            lines.append("%5d  %s" % (v.addr, v.problem))
            continue
        t = v.telemetry
        cells = " ".join(fn(t).rjust(w) for _, w, fn in COLUMNS)
        lines.append("%5d %s  %s" % (v.addr, cells, alarms_text(t["alarms_active"], t["alarms_unacked"])))
    return lines


class Keys:
    """The keyboard: `a`, a stage number and Enter acknowledge that stage's alarms; Esc cancels;
    `q` quits. feed() takes one character and returns ("ack", stage), ("quit",) or None."""

    HELP = "keys: a <stage> Enter acknowledge alarms, q quit"

    def __init__(self):
        self.typing = None  # the stage number being typed after `a`

    def prompt(self):
        return self.HELP if self.typing is None else "acknowledge alarms of stage: " + self.typing

    def feed(self, ch):
        if self.typing is None:
            if ch in "aA":
                self.typing = ""
            elif ch in "qQ":
                return ("quit",)
            return None
        if ch.isdigit():
            self.typing += ch
        elif ch in "\x7f\b":
            self.typing = self.typing[:-1]
        elif ch in "\r\n":
            typed, self.typing = self.typing, None
            if typed:
                return ("ack", int(typed))
        else:  # Esc or anything else
            self.typing = None
        return None


class Terminal:
    """stdin in cbreak mode (keys come one at a time, unechoed), restored on exit."""

    def __init__(self, stream=sys.stdin):
        self.fd = stream.fileno()
        self.saved = None

    def __enter__(self):
        import termios
        import tty
        self.saved = termios.tcgetattr(self.fd)
        tty.setcbreak(self.fd)
        return self

    def __exit__(self, *exc):
        import termios
        termios.tcsetattr(self.fd, termios.TCSADRAIN, self.saved)

    def read_keys(self, timeout):
        if not select.select([self.fd], [], [], max(0.0, timeout))[0]:
            return ""
        return os.read(self.fd, 64).decode(errors="replace")


def screen(port, views, message="", prompt=""):
    lines = ["sxctl monitor  %s  %s" % (port, time.strftime("%Y-%m-%d %H:%M:%S")), ""]
    lines += table(views)
    if message:
        lines += ["", message]
    if prompt:
        lines += ["", prompt]
    return "\n".join(lines) + "\n"


def live(bus, addrs, period=1.0, out=sys.stdout, keyboard=None):
    """Refresh the table every `period` s until `q` (or Ctrl-C). On a terminal the table is redrawn
    in place; elsewhere each refresh is printed below the last one. A key redraws at once."""
    keys = Keys()
    message = ""
    in_place = out.isatty()
    views, next_read = None, 0.0
    while True:
        if time.monotonic() >= next_read:
            views = [read_stage(bus, a) for a in addrs]
            next_read = time.monotonic() + period
        text = screen(bus.port, views, message, keys.prompt() if keyboard else "")
        out.write("\x1b[H\x1b[J" + text if in_place else text + "\n")
        out.flush()
        if keyboard is None:
            time.sleep(max(0.0, next_read - time.monotonic()))
            continue
        for ch in keyboard.read_keys(next_read - time.monotonic()):
            action = keys.feed(ch)
            if action == ("quit",):
                return
            if action:
                try:
                    message = acknowledge(bus, action[1])
                except SxctlError as e:
                    message = "stage %d: %s" % (action[1], e)
                next_read = 0.0  # show the acknowledged state now
