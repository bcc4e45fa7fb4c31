"""pH electrode: temperature-compensated Nernst conversion through the calibration in use, and
its 1/2/3-point calibration with the acceptance limits (the buffers' pH at their temperature
comes from the host's one table, sxproto/buffers.py, with each point: the board keeps none).
"""

from micropython import const
import proto
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

# Without a buffer value (Probe.calibrate from code), a slot's buffer is its nominal 25 °C value.
_NOMINAL_7 = const(7000)
_NOMINAL_4 = const(4000)
_NOMINAL_10 = const(10010)

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
    A conversion reads the slopes and the offset only; the rest is the calibration's."""

    def __init__(self):
        for name, value in zip(FIELDS, _DEFAULTS):
            setattr(self, name, value)


# A CalRecord's fields, in this order wherever one is copied, saved or restored: id, time (the
# caller's clock, e.g. epoch s, recorded only), points, the slopes, the offset, the CAL_WARN_*
# bits it was accepted with, and the raw points (electrode µV, buffer milli-pH at that
# temperature, m°C) a new point re-solves with.
FIELDS = ("cal_id", "time", "points", "acid_slope", "base_slope", "offset_uv", "flags",
          "mid_uv", "mid_mph", "mid_mc", "low_uv", "low_mph", "low_mc", "high_uv", "high_mph", "high_mc")
_DEFAULTS = (0, 0, 0, SLOPE_FULL, SLOPE_FULL, 0, 0,  # factory default: 100 % both sides, 0 mV offset
             0, _NOMINAL_7, _T_25, 0, _NOMINAL_4, _T_25, 0, _NOMINAL_10, _T_25)


def copy(dst, src):
    """Copy one CalRecord into another (allocates nothing)."""
    for name in FIELDS:
        setattr(dst, name, getattr(src, name))


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
        # calibration: the candidate record, swapped in when accepted (None after a commit
        # until the next point), the last result and solved candidate, the next id
        self.spare = None
        self.last_flags = 0
        self.last = self.cal
        self.next_id = 1

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
        buffer of pH mph (milli-pH at t_mc; -1: the slot's nominal 7.00/4.00/10.01 at 25 °C);
        returns CAL_* bits (0 = clean accept). BUF_7 (mid) comes first and clears the other
        points (as Atlas EZO `Cal,mid`). Sets .last (the solved candidate, accepted or not) and
        .last_flags. Allocates only at its first call."""
        if self.spare is None:  # None again after a commit (calibration.py)
            self.spare = CalRecord()  # candidate; swapped in only when accepted
        if e_uv > E_MAX:
            e_uv = E_MAX
        elif e_uv < -E_MAX:
            e_uv = -E_MAX
        if mph < 0:
            mph = _NOMINAL_7 if buf == BUF_7 else (_NOMINAL_4 if buf == BUF_4 else _NOMINAL_10)
        new = self.spare
        copy(new, self.cal)
        if buf == BUF_7:
            new.points = BUF_7
            new.mid_uv = e_uv
            new.mid_mph = mph
            new.mid_mc = t_mc
        elif not new.points & BUF_7:
            self.last_flags = CAL_REJECT_NO_MID
            return CAL_REJECT_NO_MID
        elif buf == BUF_4:
            new.points |= BUF_4
            new.low_uv = e_uv
            new.low_mph = mph
            new.low_mc = t_mc
        else:
            new.points |= BUF_10
            new.high_uv = e_uv
            new.high_mph = mph
            new.high_mc = t_mc
        flags = _solve(new)
        self.last_flags = flags
        self.last = new  # the solved candidate, accepted or not, for reporting
        if flags & CAL_REJECT:
            return flags
        new.cal_id = self.next_id
        new.time = time
        new.flags = flags
        self.next_id += 1
        self.spare = self.cal
        self.cal = new
        return flags


def _slope(de_uv, dph_mph, t_mc):
    # measured µV per pH between two buffers, as 0.01 % of the Nernst slope at their temperature
    return _muldiv(_muldiv(de_uv, 1000, dph_mph), SLOPE_FULL, nernst_uv(t_mc))


def _solve(rec):
    # slopes from the mid point to each side point; one side point serves both sides (2-point)
    acid = base = SLOPE_FULL
    if rec.points & BUF_4:
        acid = _slope(rec.low_uv - rec.mid_uv, rec.mid_mph - rec.low_mph, (rec.mid_mc + rec.low_mc) >> 1)
    if rec.points & BUF_10:
        base = _slope(rec.mid_uv - rec.high_uv, rec.high_mph - rec.mid_mph, (rec.mid_mc + rec.high_mc) >> 1)
        if not rec.points & BUF_4:
            acid = base
    elif rec.points & BUF_4:
        base = acid
    rec.acid_slope = acid
    rec.base_slope = base
    # the 7.00 buffer is not exactly pH 7 away from 25 °C: move its potential to pH 7.000
    side = base if rec.mid_mph > 7000 else acid
    rec.offset_uv = rec.mid_uv + _muldiv(rec.mid_mph - 7000, _muldiv(nernst_uv(rec.mid_mc), side, SLOPE_FULL), 1000)
    lo = acid if acid < base else base
    hi = base if acid < base else acid
    # acceptance (protocol/buffers.py): warn outside 95-105 %, ±30 mV; reject outside 85-105 %, ±60 mV
    flags = 0
    if lo < proto.PH_SLOPE_REJECT_LO or hi > proto.PH_SLOPE_REJECT_HI:
        flags |= CAL_REJECT_SLOPE
    elif lo < proto.PH_SLOPE_WARN_LO or hi > proto.PH_SLOPE_WARN_HI:
        flags |= CAL_WARN_SLOPE
    off = rec.offset_uv if rec.offset_uv >= 0 else -rec.offset_uv
    if off > proto.PH_OFFSET_REJECT_UV:
        flags |= CAL_REJECT_OFFSET
    elif off > proto.PH_OFFSET_WARN_UV:
        flags |= CAL_WARN_OFFSET
    return flags
