"""Measurement dynamics shared by the plant models: first-order lag, dead time, both composed."""

import math


def lag(value, target, tau_s, dt_s):
    """First-order approach of value toward a held target over dt_s (exact, so any dt is stable)."""
    if tau_s == 0:
        return target
    return target + (value - target) * math.exp(-dt_s / tau_s)


class FirstOrderSensor:
    """A probe that follows its input with time constant tau_s (tau·dy/dt = x − y)."""

    def __init__(self, tau_s, initial=0.0):
        if tau_s < 0:
            raise ValueError("tau_s must be >= 0")
        self.tau_s = tau_s
        self.value = initial

    def update(self, true_value, dt_s):
        """Advance by dt_s holding true_value constant; return the new reading."""
        self.value = lag(self.value, true_value, self.tau_s, dt_s)
        return self.value


class DeadTime:
    """A transport delay of delay_s for a signal sampled every dt_s (ring buffer, made once)."""

    def __init__(self, delay_s, dt_s, initial=0.0):
        if delay_s < 0 or dt_s <= 0:
            raise ValueError("delay_s must be >= 0 and dt_s > 0")
        self.dt_s = dt_s
        self._buffer = [initial] * round(delay_s / dt_s)
        self._next = 0

    @property
    def delay_s(self):
        """The delay actually applied: delay_s rounded to whole samples."""
        return len(self._buffer) * self.dt_s

    def push(self, value):
        """Take this sample's input and return the input from delay_s ago."""
        if not self._buffer:
            return value
        delayed = self._buffer[self._next]
        self._buffer[self._next] = value
        self._next = (self._next + 1) % len(self._buffer)
        return delayed


class Probe:
    """A realistic probe: the process value reaches the electrode after a dead time, then lags.

    Probe(tau_s=15, delay_s=10, dt_s=1) is the sluggish pH loop used to stress controllers.
    measure() must be called once every dt_s.
    """

    def __init__(self, tau_s, delay_s, dt_s, initial=0.0):
        self.dt_s = dt_s
        self._transport = DeadTime(delay_s, dt_s, initial)
        self._lag = FirstOrderSensor(tau_s, initial)

    @property
    def value(self):
        return self._lag.value

    def measure(self, true_value):
        """Feed one sample of the true value; return the reading."""
        return self._lag.update(self._transport.push(true_value), self.dt_s)
