"""Flow meters: pulse turbines (K-factor, pulses/L) over a window. 4-20 mA transmitters are
sensors/flow_loop.py's (a board loads only the sensor kinds it wires)."""

from array import array
from micropython import const
from fixedpoint import muldiv as _muldiv  # a module name tests can swap for a checking one

# Units: flow mL/min, time ms.
FLOW_OK = const(0)
FLOW_RANGE = const(1)  # NE43 out of measuring range: value given, flagged (flow_loop.py)
FLOW_FAULT = const(2)  # not a value: .ml_min is 0

K_YF_S201 = const(450)  # pulses/L, f[Hz] = 7.5 Q[L/min] [S30]
K_SMALL = const(3900)  # pulses/L, small turbines [S31]
K_MIN = const(1)
K_MAX = const(100000)
MAX_HZ = const(1000)  # a Hall turbine never pulses this fast: more is noise
WINDOW_MS_MAX = const(16000)  # window length cap; with MAX_HZ keeps pulses * 60000 below 2**30


class PulseFlow:
    """Pulse meter: add() the pulses counted in each scan; flow is taken over the last `buckets` scans
    (at most WINDOW_MS_MAX). k_factor: pulses per litre, calibrated per meter (units vary ±10 %)."""

    def __init__(self, k_factor=K_YF_S201, buckets=5):
        if not K_MIN <= k_factor <= K_MAX:
            raise ValueError("k_factor")
        if not 1 <= buckets <= 64:
            raise ValueError("buckets")
        self.k_factor = k_factor
        self._n = buckets
        self._pulses = array("i", [0] * buckets)
        self._ms = array("i", [0] * buckets)
        self._head = 0  # oldest bucket
        self._count = 0
        self._sum_pulses = 0
        self._sum_ms = 0
        self.ml_min = 0
        self.fault = False

    def _drop_oldest(self):
        h = self._head
        self._sum_pulses -= self._pulses[h]
        self._sum_ms -= self._ms[h]
        self._head = h + 1 if h + 1 < self._n else 0
        self._count -= 1

    def add(self, pulses, dt_ms):
        """Pulses counted over dt_ms -> FLOW_OK with .ml_min over the window, or FLOW_FAULT."""
        if dt_ms <= 0 or dt_ms > WINDOW_MS_MAX or pulses < 0 or pulses > dt_ms * MAX_HZ // 1000:
            self.fault = True
            self.ml_min = 0
            return FLOW_FAULT
        self.fault = False
        if self._count == self._n:
            self._drop_oldest()
        i = self._head + self._count
        if i >= self._n:
            i -= self._n
        self._pulses[i] = pulses
        self._ms[i] = dt_ms
        self._count += 1
        self._sum_pulses += pulses
        self._sum_ms += dt_ms
        while self._sum_ms > WINDOW_MS_MAX:
            self._drop_oldest()
        # pulses/min in milli-units, then / K (pulses per litre) gives mL/min
        ppm_milli = _muldiv(self._sum_pulses * 60000, 1000, self._sum_ms)
        self.ml_min = _muldiv(ppm_milli, 1, self.k_factor)
        return FLOW_OK

    def calibrate(self, pulses, volume_ml):
        """Set the K-factor from pulses counted while volume_ml passed; returns the new K, or 0 (unchanged)."""
        if volume_ml <= 0 or volume_ml > 1000000 or pulses <= 0:
            return 0
        k = _muldiv(pulses, 1000, volume_ml)
        if not K_MIN <= k <= K_MAX:
            return 0
        self.k_factor = k
        return k
