"""Stage alarms (deviation, pH limits, faults, link loss) in the two states of ISA-18.2 and
EEMUA 191, kept apart: `active`, the condition is present now, and `unacked`, raised and not yet
acknowledged. Normal is neither; a raise sets both; an acknowledge clears unacked (an active
alarm stays active); a condition that goes clears active (an unacknowledged one stays
unacknowledged until acknowledged). Every change is reported as an event to the caller, which
queues it (the board's event ring numbers and keeps events)."""

from micropython import const
from time import ticks_diff

# Alarm bits. The first four and AL_LINK are evaluated here; the rest are reported by the caller
# through update(faults=...) from the sensor checks and the dosing envelope.
# The bit values are the protocol's ALARMS (protocol/messages.py; proto.ALARM_*): telemetry
# carries them unchanged, and a test checks they agree.
AL_DEV_WARN = const(0x0001)  # |pH - setpoint| >= dev_warn (0.3 pH)
AL_DEV_ALARM = const(0x0002)  # |pH - setpoint| >= dev_alarm (0.5 pH)
AL_PH_HIGH = const(0x0004)
AL_PH_LOW = const(0x0008)
AL_PH_FAULT = const(0x0010)  # no valid pH (electrode at the rail, out of range, lost)
AL_PH_STUCK = const(0x0020)
AL_ORP_FAULT = const(0x0040)
AL_FLOW_FAULT = const(0x0080)  # aqueous (feed) flow meter
AL_FLOW_ORG_FAULT = const(0x0100)
AL_NO_FLOW = const(0x0200)  # feed flow below the dosing minimum
AL_DOSE_CUT = const(0x0400)  # a dose request was cut by a cap
AL_LINK = const(0x0800)  # nothing heard from the host for link_timeout_ms
AL_TEMP_FAULT = const(0x1000)  # temperature on its fixed fallback
AL_DOSE_TRIP = const(0x8000)  # dosing envelope high-pH trip latched
AL_CONTROLLER_FAULT = const(0x2000)  # a scan raised: the stage is off until a mode is commanded
AL_WATCHDOG_RESET = const(0x4000)  # the last reset was the watchdog's
FAULT_BITS = const(0xB7F0)  # bits update() accepts from the caller

EV_RAISE = const(1)  # the protocol's EVENT_CODES raised/cleared/acknowledged (a test checks)
EV_CLEAR = const(2)
EV_ACK = const(3)

_PH_BITS = const(0x000F)


def _level(was_on, x, level, hyst):
    # on at x >= level; once on, stays on until x falls to level - hyst
    return x >= level or (was_on and x > level - hyst)


class Alarms:
    """Alarm state of one stage. update() once per scan; ack(); link_seen() on every host message.
    Each change calls on_event(kind, bits, now_ms): EV_RAISE, EV_CLEAR or EV_ACK with the bits that
    changed together. Thresholds in milli-pH."""

    def __init__(self, on_event=None, dev_warn=300, dev_alarm=500, high_mph=5500, low_mph=500, hyst=20,
                 link_timeout_ms=10000):
        if not 0 < dev_warn <= dev_alarm or not low_mph < high_mph or hyst < 0 or link_timeout_ms <= 0:
            raise ValueError("thresholds")
        self.on_event = on_event
        self.dev_warn = dev_warn
        self.dev_alarm = dev_alarm
        self.high_mph = high_mph
        self.low_mph = low_mph
        self.hyst = hyst
        self.link_timeout_ms = link_timeout_ms
        self.dev_enabled = True  # clear it outside auto: no deviation alarms while not controlling
        self.active = 0  # conditions true now
        self.unacked = 0  # raised and not yet acknowledged (latched)
        self._link_ms = 0
        self._link_started = False
        self._link_lost = False  # held until link_seen(), so a wrapped tick counter cannot clear it

    def link_seen(self, now_ms):
        self._link_ms = now_ms
        self._link_started = True
        self._link_lost = False

    def link_lost(self, now_ms):
        """True once nothing was heard for link_timeout_ms; held until link_seen()."""
        if not self._link_started:
            self.link_seen(now_ms)  # the timeout runs from the first scan after reset
        if not self._link_lost and ticks_diff(now_ms, self._link_ms) > self.link_timeout_ms:
            self._link_lost = True
        return self._link_lost

    def update(self, now_ms, ph_mph, ph_ok, setpoint_mph, faults):
        """One scan: pH (milli-pH) and whether it is valid, setpoint, fault bits -> active bits."""
        a = self.active
        new = (faults & FAULT_BITS) | (a & _PH_BITS)  # pH alarms hold while the pH is invalid
        if ph_ok:
            new &= ~_PH_BITS
            h = self.hyst
            if self.dev_enabled:
                dev = ph_mph - setpoint_mph
                if dev < 0:
                    dev = -dev
                if _level(a & AL_DEV_WARN, dev, self.dev_warn, h):
                    new |= AL_DEV_WARN
                if _level(a & AL_DEV_ALARM, dev, self.dev_alarm, h):
                    new |= AL_DEV_ALARM
            if _level(a & AL_PH_HIGH, ph_mph, self.high_mph, h):
                new |= AL_PH_HIGH
            if _level(a & AL_PH_LOW, -ph_mph, -self.low_mph, h):
                new |= AL_PH_LOW
        if self.link_lost(now_ms):
            new |= AL_LINK
        rising = new & ~a
        falling = a & ~new
        self.active = new
        on_event = self.on_event
        if rising:
            self.unacked |= rising
            if on_event is not None:
                on_event(EV_RAISE, rising, now_ms)
        if falling and on_event is not None:
            on_event(EV_CLEAR, falling, now_ms)
        return new

    def ack(self, mask, now_ms):
        """Acknowledge alarm bits in mask (unacked clears; active stays as it is) -> active bits."""
        m = self.unacked & mask
        if m:
            self.unacked &= ~m
            if self.on_event is not None:
                self.on_event(EV_ACK, m, now_ms)
        return self.active
