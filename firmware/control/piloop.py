"""A small fixed-point PI loop for the flow pumps and the ORP reagent pump."""
from fixedpoint import muldiv as _muldiv  # a module name tests can swap for a checking one


class PiLoop:
    """out = clamp(p + i, 0, out_max) with p = error * kp / div and i += p * dt / ti.

    Keep kp * div below 2**30 and |error| * kp / div small (it is clamped to ±out_max); the
    integral carries its remainder, so slow integration is not rounded away. Conditional
    integration is the anti-windup: no integration while the output is held at a limit in the
    direction the error pushes it."""

    def __init__(self, kp, div, ti_s, out_max):
        self.out = 0
        self.i = 0
        self._rem = 0
        self.set(kp, div, ti_s, out_max)

    def set(self, kp, div, ti_s, out_max):
        self.kp = kp
        self.div = div
        self.ti_cs = ti_s * 100  # centiseconds keep p * dt below 2**30
        self.out_max = out_max

    def reset(self):
        self.out = 0
        self.i = 0
        self._rem = 0

    def update(self, error, dt_ms):
        top = self.out_max
        p = _muldiv(error, self.kp, self.div)
        p = top if p > top else (-top if p < -top else p)
        i = self.i
        rem = self._rem
        if self.ti_cs:
            x = p * (dt_ms // 10) + rem
            step = x // self.ti_cs
            rem = x - step * self.ti_cs
            i += step
            i = top if i > top else (-top if i < -top else i)
        u = p + i
        held = u > top or u < 0
        u = top if u > top else (0 if u < 0 else u)
        if not held or (u == top and error < 0) or (u == 0 and error > 0):
            self.i = i
            self._rem = rem
        self.out = u
        return u
