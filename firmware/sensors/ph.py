"""pH electrode: temperature-compensated Nernst conversion, buffer tables and 1/2/3-point calibration."""

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

# Acceptance [S23-S26]: warn outside 95-105 % or ±30 mV, reject outside 85-105 % or ±60 mV.
_SLOPE_REJECT_LO = const(8500)
_SLOPE_WARN_LO = const(9500)
_SLOPE_HI = const(10500)
_OFFSET_WARN = const(30000)
_OFFSET_REJECT = const(60000)

# Buffer pH against temperature (DOMAIN.md §3), interpolated linearly, clamped to 0-50 °C.
_BUF_T = (0, 10000, 20000, 25000, 30000, 40000, 50000)
_BUF_7_MPH = (7120, 7060, 7020, 7000, 6990, 6980, 6970)
_BUF_10_MPH = (10320, 10180, 10060, 10010, 9970, 9890, 9830)
_BUF_4_MPH = (4000, 4000, 4000, 4000, 4010, 4030, 4060)


def nernst_uv(t_mc):
    """Ideal electrode slope in µV per pH at t_mc (m°C): 54199 at 0 °C, 59160 at 25, 62136 at 40."""
    if t_mc < T_MIN:
        t_mc = T_MIN
    elif t_mc > T_MAX:
        t_mc = T_MAX
    return NERNST_25 + _muldiv(t_mc - _T_25, _NERNST_PER_K, _T_ABS_25)


def buffer_ph(buf, t_mc):
    """pH (milli-pH) of buffer BUF_4, BUF_7 or BUF_10 at t_mc (m°C), e.g. 10.01 reads 10060 at 20 °C."""
    if buf == BUF_7:
        table = _BUF_7_MPH
    elif buf == BUF_4:
        table = _BUF_4_MPH
    elif buf == BUF_10:
        table = _BUF_10_MPH
    else:
        raise ValueError("buffer")
    if t_mc <= 0:
        return table[0]
    if t_mc >= 50000:
        return table[6]
    i = 1
    while t_mc > _BUF_T[i]:
        i += 1
    t0 = _BUF_T[i - 1]
    return table[i - 1] + _muldiv(table[i] - table[i - 1], t_mc - t0, _BUF_T[i] - t0)


class CalRecord:
    """One calibration: id, time, points (BUF_* bits), slopes (0.01 %), offset (µV) and raw points."""

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

    def copy_from(self, other):
        self.cal_id = other.cal_id
        self.time = other.time
        self.points = other.points
        self.acid_slope = other.acid_slope
        self.base_slope = other.base_slope
        self.offset_uv = other.offset_uv
        self.flags = other.flags
        self.mid_uv = other.mid_uv
        self.mid_mph = other.mid_mph
        self.mid_mc = other.mid_mc
        self.low_uv = other.low_uv
        self.low_mph = other.low_mph
        self.low_mc = other.low_mc
        self.high_uv = other.high_uv
        self.high_mph = other.high_mph
        self.high_mc = other.high_mc


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
    flags = 0
    if lo < _SLOPE_REJECT_LO or hi > _SLOPE_HI:
        flags |= CAL_REJECT_SLOPE
    elif lo < _SLOPE_WARN_LO:
        flags |= CAL_WARN_SLOPE
    off = rec.offset_uv if rec.offset_uv >= 0 else -rec.offset_uv
    if off > _OFFSET_REJECT:
        flags |= CAL_REJECT_OFFSET
    elif off > _OFFSET_WARN:
        flags |= CAL_WARN_OFFSET
    return flags


class Probe:
    """A pH electrode: ph() per scan, calibrate() per buffer. rail_uv: input range, at/beyond is a fault."""

    def __init__(self, rail_uv=1020000):
        if rail_uv <= 0 or rail_uv > E_MAX:
            raise ValueError("rail_uv")
        self.rail_uv = rail_uv
        self.cal = CalRecord()  # factory default: 100 % both sides, 0 mV offset
        self._spare = CalRecord()  # candidate; swapped in only when accepted
        self._next_id = 1
        self.last_flags = 0  # result bits of the last calibrate()
        self.last = self.cal  # candidate of the last calibrate()
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

    def calibrate(self, buf, e_uv, t_mc, time=0):
        """Record buffer BUF_7/BUF_4/BUF_10 read as e_uv at t_mc; returns CAL_* bits (0 = clean accept).

        BUF_7 (mid) comes first and clears the other points (as Atlas EZO `Cal,mid`).
        """
        if e_uv > E_MAX:
            e_uv = E_MAX
        elif e_uv < -E_MAX:
            e_uv = -E_MAX
        mph = buffer_ph(buf, t_mc)
        new = self._spare
        new.copy_from(self.cal)
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
        new.cal_id = self._next_id
        new.time = time
        new.flags = flags
        self._next_id += 1
        self._spare = self.cal
        self.cal = new
        return flags
