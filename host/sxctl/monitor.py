"""The live table of `sxctl monitor`: every stage's pH against setpoint, outputs, flows, mode and
alarms, refreshed in place on a terminal; alarms acknowledged from the keyboard or the command line."""
import json
import os
import select
import sys
import textwrap
import time

from sxproto import fields, messages

from . import store as st
from .buslink import NoAnswer, RemoteError, printable
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
    before = bus.request(addr, messages.ALARMS_READ, expect=messages.ALARM_STATE).values
    after = bus.request(addr, messages.ALARM_ACK, {"mask": ALL_ALARMS}, expect=messages.ALARM_STATE).values
    acked = before["alarms_unacked"] & ~after["alarms_unacked"]
    return "stage %d: acknowledged %s; still active: %s" % (
        addr, st.alarm_names(acked, ", ") or "nothing (none unacknowledged)",
        st.alarm_names(after["alarms_active"], ", ") or "none")


FAULT = "FAULT"
NO_VALUE = "--"


def _value(name, decimals=None):
    d = st.decimals(name) if decimals is None else decimals

    def text(t):
        if st.faulted(name, t["alarms_active"]):
            return FAULT
        if not st.in_range(name, t[name]):
            return NO_VALUE
        return "%.*f" % (d, t[name] * st.scale(name))
    return text


def _deviation(t):
    if st.faulted("ph", t["alarms_active"]) or not (st.in_range("ph", t["ph"]) and st.in_range("ph_setpoint", t["ph_setpoint"])):
        return NO_VALUE
    return "%+.*f" % (st.decimals("ph"), (t["ph"] - t["ph_setpoint"]) * st.scale("ph"))


def _mode(t):
    return st.mode_name(t["mode"]) if st.in_range("mode", t["mode"]) else NO_VALUE


# (heading, width, text of a telemetry record), each width with its gap: the row fits 80 columns
# (alarms go on a line of their own). Units are the protocol's field declarations.
COLUMNS = (
    ("pH", 7, _value("ph")), ("setpt", 6, _value("ph_setpoint", 2)), ("dev", 7, _deviation),
    ("ORP", 6, _value("orp_mv")), ("°C", 6, _value("temperature", 1)),
    ("base", 7, _value("base_dose")), ("reag", 7, _value("reagent_dose")),
    ("aq%", 5, _value("aq_pump", 0)), ("org%", 5, _value("org_pump", 0)),
    ("aq", 6, _value("flow_aq", 2)), ("org", 6, _value("flow_org", 2)),
    ("mode", 7, _mode),
)
UNITS = "ORP mV; base, reag mL/min; pumps %; aq, org L/min"
WIDTH = 80


def alarms_text(active, unacked):
    """Active and unacknowledged alarms by name; '*' marks one not yet acknowledged, '(cleared)'
    one no longer present (ISA-18.2's cleared unacknowledged)."""
    bits = active | unacked
    return " ".join(name + ("*" if unacked >> bit & 1 else "") + ("" if active >> bit & 1 else "(cleared)")
                    for bit, name in messages.ALARMS.items() if bits >> bit & 1)


def out_of_range(t):
    return [f.name for f in fields.infos(messages.TelemetryRecord) if not st.in_range(f.name, t[f.name])]


def colour_wanted(out):
    """Colour only on a terminal, and never with NO_COLOR set (https://no-color.org)."""
    return out.isatty() and not os.environ.get("NO_COLOR")


def _paint(text, colour, on):
    return "\x1b[%sm%s\x1b[0m" % (colour, text) if on and text else text


def table(views, colour=False):
    head = "stg" + "".join(h.rjust(w) for h, w, _ in COLUMNS)
    lines = [head, "-" * len(head)]
    for v in views:
        if v.telemetry is None:
            wrapped = textwrap.wrap(printable(v.problem), WIDTH - 6) or [""]
            lines += [("%3d  " % v.addr if i == 0 else "     ") + _paint(part, "33", colour)
                      for i, part in enumerate(wrapped)]
            continue
        t = v.telemetry
        cells = "".join(_paint(fn(t).rjust(w), "1;31", colour) if fn(t) == FAULT else fn(t).rjust(w)
                        for _, w, fn in COLUMNS)
        lines.append("%3d%s" % (v.addr, cells))
        alarms = alarms_text(t["alarms_active"], t["alarms_unacked"])
        if alarms:
            lines += ["     " + _paint(part, "31", colour) for part in textwrap.wrap("alarms: " + alarms, WIDTH - 6)]
        bad = out_of_range(t)
        if bad:
            lines.append("     out of range from the board, not shown: " + ", ".join(bad))
    lines += ["", UNITS + "; * alarm not acknowledged"]
    return lines


def views_json(views):
    """The stages as JSON: values in engineering units (null when faulted or out of range), mode
    and alarms by name."""
    out = []
    for v in views:
        if v.telemetry is None:
            out.append({"stage": v.addr, "answered": False, "problem": v.problem})
            continue
        t = v.telemetry
        values = {f.name: st.reading(f.name, t[f.name], t["alarms_active"]) for f in fields.infos(messages.TelemetryRecord)
                  if f.name not in ("record", "time_s", "mode", "alarms_active", "alarms_unacked", "valves")}
        out.append(dict({"stage": v.addr, "answered": True, "time_s": t["time_s"], "mode": _mode(t)}, **values,
                        alarms=[n for b, n in messages.ALARMS.items() if t["alarms_active"] >> b & 1],
                        unacknowledged=[n for b, n in messages.ALARMS.items() if t["alarms_unacked"] >> b & 1],
                        faulted=[n for n in st.FAULT_ALARMS if n != "ph_deviation" and st.faulted(n, t["alarms_active"])],
                        out_of_range=out_of_range(t)))
    return json.dumps(out, indent=2) + "\n"


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


def screen(port, views, message="", prompt="", colour=False):
    lines = ["sxctl monitor  %s  %s UTC" % (port, time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())), ""]
    lines += table(views, colour)
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
        text = screen(bus.port, views, message, keys.prompt() if keyboard else "", colour_wanted(out))
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
