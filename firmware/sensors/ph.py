"""pH electrode: temperature-compensated Nernst conversion through the calibration in use.

1/2/3-point calibration is sensors/ph_cal.py's (buffer values come from the host), loaded by calibrate():
a board that is not being calibrated spends no RAM on them.
"""

from micropython import const
from fixedpoint import muldiv as _muldiv  # a module name tests can swap for a checking one

# Units: electrode potential µV, temperature m°C, pH milli-pH, slope 0.01 % (10000 = 100 %).
# pH = 7 + (offset - E) / (Nernst(T) * slope): the offset is the potential at pH 7.00.

# Calibration buffers by nominal value; the same bits record which points a calibration holds.
BUF_7 = const(1)
BUF_4 = const(2)
BUF_10 = const(4)

# Calibration result bits: 0 is a clean accept, any CAL_REJECT bit leaves the old calibration.
CAL_WARN_SLOPE = const(1)
CAL_WARN_OFFSET = const(2)
CAL_REJECT_SLOPE = const(4)
CAL_REJECT_OFFSET = const(8)
CAL_REJECT_NO_MID = const(16)
CAL_REJECT = const(28)

SLOPE_FULL = const(10000)  # 100.00 %
NERNST_25 = const(59160)  # µV per pH at 25 °C [S20]
E_MAX = const(2000000)  # µV; inputs are clamped here so every product stays below 2**30
T_MIN = const(-30000)  # m°C; temperatures are clamped to this range
T_MAX = const(150000)

_T_25 = const(25000)
_T_ABS_25 = const(29815)  # 298.15 K in 0.01 K (the slope is proportional to absolute temperature)
_NERNST_PER_K = const(5916)  # 59.16 mV / 298.15 K, scaled to match _T_ABS_25 (0.1984 mV/K)


def nernst_uv(t_mc):
    """Ideal electrode slope in µV per pH at t_mc (m°C): 54199 at 0 °C, 59160 at 25, 62136 at 40."""
    if t_mc < T_MIN:
        t_mc = T_MIN
    elif t_mc > T_MAX:
        t_mc = T_MAX
    return NERNST_25 + _muldiv(t_mc - _T_25, _NERNST_PER_K, _T_ABS_25)


class CalRecord:
    """One calibration: id, time, points (BUF_* bits), slopes (0.01 %), offset (µV) and raw points.
    A conversion reads the slopes and the offset only; the rest is sensors/ph_cal.py's."""

    def __init__(self):
        self.cal_id = 0
        self.time = 0  # caller's clock (e.g. epoch s), recorded only
        self.points = 0
        self.acid_slope = SLOPE_FULL
        self.base_slope = SLOPE_FULL
        self.offset_uv = 0
        self.flags = 0  # CAL_WARN_* bits it was accepted with
        # Raw points (electrode µV, buffer milli-pH at that temperature, m°C) to re-solve on a new point.
        self.mid_uv = 0
        self.mid_mph = 7000
        self.mid_mc = _T_25
        self.low_uv = 0
        self.low_mph = 4000
        self.low_mc = _T_25
        self.high_uv = 0
        self.high_mph = 10010
        self.high_mc = _T_25


class Probe:
    """A pH electrode: ph() per scan, calibrate() per buffer. rail_uv: input range, at/beyond is a fault."""

    def __init__(self, rail_uv=1020000):
        if rail_uv <= 0 or rail_uv > E_MAX:
            raise ValueError("rail_uv")
        self.rail_uv = rail_uv
        self.cal = CalRecord()  # factory default: 100 % both sides, 0 mV offset
        self.mph = 7000  # last converted pH (held while faulted)
        self.slope_uv = NERNST_25  # effective µV per pH used by the last conversion
        self.fault = False

    def ph(self, e_uv, t_mc):
        """Electrode potential e_uv (µV) at t_mc (m°C) -> milli-pH; at the input rail sets .fault and holds."""
        if e_uv >= self.rail_uv or e_uv <= -self.rail_uv:
            self.fault = True
            return self.mph
        self.fault = False
        cal = self.cal
        d = cal.offset_uv - e_uv
        s = _muldiv(nernst_uv(t_mc), cal.base_slope if d > 0 else cal.acid_slope, SLOPE_FULL)
        self.slope_uv = s
        self.mph = 7000 + _muldiv(d, 1000, s)
        return self.mph

    def calibrate(self, buf, e_uv, t_mc, time=0, mph=-1):
        """Record slot BUF_7 (mid)/BUF_4 (acid side)/BUF_10 (base side) read as e_uv at t_mc in a
        buffer of pH mph (milli-pH at t_mc; -1: the slot's nominal 7.00/4.00/10.01); returns CAL_*
        bits (0 = clean accept). BUF_7 (mid) comes first and clears the other points (as Atlas EZO
        `Cal,mid`). Sets .last (the solved candidate, accepted or not) and .last_flags
        (sensors/ph_cal.py)."""
        import sensors.ph_cal  # this form allocates nothing while the module is loaded
        return sensors.ph_cal.calibrate(self, buf, e_uv, t_mc, time, mph)
