"""Henson & Seborg pH neutralisation CSTR benchmark (DOMAIN.md §6), for testing pH controllers.

Units are the benchmark's own: cm, mL/s, s. Three streams mix in a tank that drains through a
valve: q1 acid (disturbance), q2 buffer (disturbance), q3 base (manipulated, 0..30 mL/s). The
state is liquid level h and the reaction invariants Wa (charge-related) and Wb (carbonate), which
mix linearly, so the chemistry only appears in the algebraic pH equation.
"""

import math
from collections import namedtuple

AREA_CM2 = 207.0
VALVE_CV = 4.59
VALVE_EXPONENT = 0.607
OUTLET_DEPTH_CM = 11.5  # z: the outlet sits below the tank bottom
PK1 = 6.35
PK2 = 10.25
BASE_FLOW_MAX_ML_S = 30.0
PH_BRACKET = (-2.0, 16.0)

# Reaction invariants (Wa, Wb) of the three inlet streams.
Stream = namedtuple("Stream", "wa wb")
ACID = Stream(3e-3, 0.0)
BUFFER = Stream(-3e-2, 3e-2)
BASE = Stream(-3.05e-3, 5e-5)

SteadyState = namedtuple("SteadyState", "h wa wb ph")


def charge_balance(ph, wa, wb):
    """Residual of the electroneutrality equation; increases with pH, zero at the solution."""
    carbonate = (1.0 + 2.0 * 10.0 ** (ph - PK2)) / (1.0 + 10.0 ** (PK1 - ph) + 10.0 ** (ph - PK2))
    return wa + 10.0 ** (ph - 14.0) - 10.0 ** (-ph) + wb * carbonate


def solve_ph(wa, wb, tol=1e-10):
    """pH from the invariants by bisection on [-2, 16] (robust on the steep part of the curve)."""
    lo, hi = PH_BRACKET
    while hi - lo > tol:
        mid = 0.5 * (lo + hi)
        if charge_balance(mid, wa, wb) > 0.0:
            hi = mid
        else:
            lo = mid
    return 0.5 * (lo + hi)


def clamp_base_flow(q3):
    return min(max(q3, 0.0), BASE_FLOW_MAX_ML_S)


def outflow(h):
    """Valve outflow in mL/s at level h cm."""
    return VALVE_CV * max(h + OUTLET_DEPTH_CM, 0.0) ** VALVE_EXPONENT


def steady_state(q3, q1=16.6, q2=0.55):
    """Level, invariants and pH the tank settles to for constant flows (mL/s)."""
    flows = (q1, q2, clamp_base_flow(q3))
    total = sum(flows)
    wa = sum(q * s.wa for q, s in zip(flows, (ACID, BUFFER, BASE))) / total
    wb = sum(q * s.wb for q, s in zip(flows, (ACID, BUFFER, BASE))) / total
    # Inflow equals valve outflow: Cv·(h + z)^n = total.
    h = (total / VALVE_CV) ** (1.0 / VALVE_EXPONENT) - OUTLET_DEPTH_CM
    return SteadyState(h, wa, wb, solve_ph(wa, wb))


def derivatives(state, q1, q2, q3):
    """d(h, Wa, Wb)/dt for flows in mL/s."""
    h, wa, wb = state
    flows = (q1, q2, q3)
    holdup = AREA_CM2 * h  # mL of liquid the inlet streams dilute into
    dh = (sum(flows) - outflow(h)) / AREA_CM2
    dwa = sum(q * (s.wa - wa) for q, s in zip(flows, (ACID, BUFFER, BASE))) / holdup
    dwb = sum(q * (s.wb - wb) for q, s in zip(flows, (ACID, BUFFER, BASE))) / holdup
    return (dh, dwa, dwb)


class HensonSeborg:
    """The benchmark tank. Set q1, q2 (disturbances) and q3 (base, clamped) between step() calls."""

    def __init__(self, q1=16.6, q2=0.55, q3=15.6, h=None, wa=None, wb=None, max_substep_s=0.5):
        self.q1 = q1
        self.q2 = q2
        self.q3 = q3
        self.max_substep_s = max_substep_s
        start = steady_state(self.q3, q1, q2)
        self.h = start.h if h is None else h
        self.wa = start.wa if wa is None else wa
        self.wb = start.wb if wb is None else wb
        self.time_s = 0.0

    @property
    def q3(self):
        return self._q3

    @q3.setter
    def q3(self, value):
        self._q3 = clamp_base_flow(value)

    def ph(self):
        return solve_ph(self.wa, self.wb)

    def step(self, dt_s):
        """Advance dt_s seconds with fixed-step RK4, inputs held; return the new pH."""
        if dt_s <= 0:
            raise ValueError("dt_s must be > 0")
        substeps = max(1, math.ceil(dt_s / self.max_substep_s - 1e-9))
        dt = dt_s / substeps
        state = (self.h, self.wa, self.wb)
        flows = (self.q1, self.q2, self.q3)
        for _ in range(substeps):
            state = _rk4(state, flows, dt)
        self.h, self.wa, self.wb = state
        self.time_s += dt_s
        return self.ph()


def _rk4(state, flows, dt):
    def shifted(k, scale):
        return tuple(x + scale * dx for x, dx in zip(state, k))

    k1 = derivatives(state, *flows)
    k2 = derivatives(shifted(k1, dt / 2), *flows)
    k3 = derivatives(shifted(k2, dt / 2), *flows)
    k4 = derivatives(shifted(k3, dt), *flows)
    return tuple(
        x + dt / 6.0 * (a + 2.0 * b + 2.0 * c + d) for x, a, b, c, d in zip(state, k1, k2, k3, k4)
    )
