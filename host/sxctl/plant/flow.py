"""Dosing flow: a pump following its command through a curve and a lag; a Hall pulse meter."""

import bisect
import math
import random

from .sensor import lag

HALL_K_FACTOR_PULSES_PER_L = 450.0  # YF-S201: f[Hz] = 7.5·Q[L/min]
HALL_UNIT_SPREAD = 0.10  # real meters differ from the datasheet K-factor by up to ±10 %


def interpolate(curve, x):
    """Piecewise-linear y(x) through (x, y) points sorted by x, held flat beyond the ends."""
    xs = [point[0] for point in curve]
    i = bisect.bisect_right(xs, x)
    if i == 0:
        return curve[0][1]
    if i == len(curve):
        return curve[-1][1]
    (x0, y0), (x1, y1) = curve[i - 1], curve[i]
    return y0 + (y1 - y0) * (x - x0) / (x1 - x0)


def default_pump_curve(max_flow_L_min, start_command=0.05):
    """No flow until the command overcomes the pump's start threshold, then linear to full."""
    return ((0.0, 0.0), (start_command, 0.0), (1.0, max_flow_L_min))


class Pump:
    """A dosing pump: command 0..1 maps through its curve to a flow reached with lag tau_s."""

    def __init__(self, max_flow_L_min=1.0, tau_s=2.0, curve=None):
        self.curve = tuple(curve or default_pump_curve(max_flow_L_min))
        if any(b[0] <= a[0] or b[1] < a[1] for a, b in zip(self.curve, self.curve[1:])):
            raise ValueError("pump curve must rise with the command")
        self.tau_s = tau_s
        self.command = 0.0
        self.flow_L_min = 0.0

    @property
    def command(self):
        return self._command

    @command.setter
    def command(self, value):
        self._command = min(max(value, 0.0), 1.0)

    def target_flow_L_min(self):
        return interpolate(self.curve, self.command)

    def step(self, dt_s):
        """Advance dt_s with the command held; return the delivered flow in L/min."""
        self.flow_L_min = lag(self.flow_L_min, self.target_flow_L_min(), self.tau_s, dt_s)
        return self.flow_L_min


class FlowMeter:
    """A Hall turbine meter: whole pulses per interval at its true K-factor.

    The controller only knows the nominal K-factor; unit_error is how far this unit is off
    (0.05 = 5 % more pulses per litre). Fractions of a pulse carry over, so counts over any
    run add up to the true K-factor times the volume, to within one pulse.
    """

    def __init__(self, k_factor_pulses_per_L=HALL_K_FACTOR_PULSES_PER_L, unit_error=0.0):
        self.nominal_k_factor = k_factor_pulses_per_L
        self.unit_error = unit_error
        self._fraction = 0.0

    @classmethod
    def sampled(cls, seed, k_factor_pulses_per_L=HALL_K_FACTOR_PULSES_PER_L,
                spread=HALL_UNIT_SPREAD):
        """A unit drawn from the production spread, reproducibly from seed."""
        return cls(k_factor_pulses_per_L, random.Random(seed).uniform(-spread, spread))

    @property
    def true_k_factor(self):
        return self.nominal_k_factor * (1.0 + self.unit_error)

    def count(self, flow_L_min, dt_s):
        """Pulses seen while flow_L_min runs for dt_s."""
        pulses = self._fraction + self.true_k_factor * max(flow_L_min, 0.0) * dt_s / 60.0
        whole = math.floor(pulses)
        self._fraction = pulses - whole
        return whole
