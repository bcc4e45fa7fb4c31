"""pH calibration: buffer pH against temperature, 1/2/3-point solve and acceptance limits.

Loaded by Probe.calibrate() (sensors/ph.py), and by a calibration session's pH point
(point(), without Probe.calibrate or calibration_steps). Nothing outside this module refers to it, so a
calibration session (calibration.py) can unload it when it no longer needs it.
"""

from micropython import const
import proto
from fixedpoint import muldiv as _muldiv  # a module name tests can swap for a checking one
from sensors import ph as PH
from sensors.ph import CalRecord, nernst_uv

# Acceptance [S23-S26]: warn outside 95-105 % or ±30 mV, reject outside 85-105 % or ±60 mV.
_SLOPE_REJECT_LO = const(8500)
_SLOPE_WARN_LO = const(9500)
_SLOPE_HI = const(10500)
_OFFSET_WARN = const(30000)
_OFFSET_REJECT = const(60000)
_PROBE_TEMPERATURE = const(-32768)  # a CALIBRATE point's temperature: the probe's reading

# Buffer pH against temperature (DOMAIN.md §3), interpolated linearly, clamped to 0-50 °C: the
# rows of BUF_7 (7.12 7.06 7.02 7.00 6.99 6.98 6.97), BUF_4 (4.00 4.00 4.00 4.00 4.01 4.03 4.06) and
# BUF_10 (10.32 10.18 10.06 10.01 9.97 9.89 9.83) as 100 + 0.01 pH from the nominal pH, then the
# temperatures (0 10 20 25 30 40 50 °C). One bytes object: a tuple of ints costs 8 bytes an entry.
_TABLE = b"\x70\x6a\x66\x64\x63\x62\x61\x64\x64\x64\x64\x65\x67\x6a\x83\x75\x69\x64\x60\x58\x52\x00\x0a\x14\x19\x1e\x28\x32"
_T_ROW = const(21)


def buffer_ph(buf, t_mc):
    """pH (milli-pH) of buffer BUF_4, BUF_7 or BUF_10 at t_mc (m°C), e.g. 10.01 reads 10060 at 20 °C."""
    if buf == PH.BUF_7:
        nominal, row = 7000, 0
    elif buf == PH.BUF_4:
        nominal, row = 4000, 7
    elif buf == PH.BUF_10:
        nominal, row = 10010, 14
    else:
        raise ValueError("buffer")
    tab = _TABLE
    if t_mc <= 0:
        return nominal + (tab[row] - 100) * 10
    if t_mc >= 50000:
        return nominal + (tab[row + 6] - 100) * 10
    i = 1
    while t_mc > tab[_T_ROW + i] * 1000:
        i += 1
    t0 = tab[_T_ROW + i - 1] * 1000
    lo = tab[row + i - 1]
    return nominal + (lo - 100) * 10 + _muldiv((tab[row + i] - lo) * 10, t_mc - t0, tab[_T_ROW + i] * 1000 - t0)


def copy(dst, src):
    """Copy one CalRecord into another."""
    dst.cal_id = src.cal_id
    dst.time = src.time
    dst.points = src.points
    dst.acid_slope = src.acid_slope
    dst.base_slope = src.base_slope
    dst.offset_uv = src.offset_uv
    dst.flags = src.flags
    dst.mid_uv = src.mid_uv
    dst.mid_mph = src.mid_mph
    dst.mid_mc = src.mid_mc
    dst.low_uv = src.low_uv
    dst.low_mph = src.low_mph
    dst.low_mc = src.low_mc
    dst.high_uv = src.high_uv
    dst.high_mph = src.high_mph
    dst.high_mc = src.high_mc


def _prepare(probe):
    # The probe's calibration state, made by its first calibration.
    if getattr(probe, "next_id", None) is None:
        probe.next_id = 1
        probe.last_flags = 0  # result bits of the last calibrate()
        probe.last = probe.cal  # candidate of the last calibrate()
    if getattr(probe, "spare", None) is None:  # None again after a commit (calibration.py)
        probe.spare = CalRecord()  # candidate; swapped in only when accepted


def _slope(de_uv, dph_mph, t_mc):
    # measured µV per pH between two buffers, as 0.01 % of the Nernst slope at their temperature
    return _muldiv(_muldiv(de_uv, 1000, dph_mph), PH.SLOPE_FULL, nernst_uv(t_mc))


def _solve(rec):
    # slopes from the mid point to each side point; one side point serves both sides (2-point)
    acid = base = PH.SLOPE_FULL
    if rec.points & PH.BUF_4:
        acid = _slope(rec.low_uv - rec.mid_uv, rec.mid_mph - rec.low_mph, (rec.mid_mc + rec.low_mc) >> 1)
    if rec.points & PH.BUF_10:
        base = _slope(rec.mid_uv - rec.high_uv, rec.high_mph - rec.mid_mph, (rec.mid_mc + rec.high_mc) >> 1)
        if not rec.points & PH.BUF_4:
            acid = base
    elif rec.points & PH.BUF_4:
        base = acid
    rec.acid_slope = acid
    rec.base_slope = base
    # the 7.00 buffer is not exactly pH 7 away from 25 °C: move its potential to pH 7.000
    side = base if rec.mid_mph > 7000 else acid
    rec.offset_uv = rec.mid_uv + _muldiv(rec.mid_mph - 7000, _muldiv(nernst_uv(rec.mid_mc), side, PH.SLOPE_FULL), 1000)
    lo = acid if acid < base else base
    hi = base if acid < base else acid
    flags = 0
    if lo < _SLOPE_REJECT_LO or hi > _SLOPE_HI:
        flags |= PH.CAL_REJECT_SLOPE
    elif lo < _SLOPE_WARN_LO:
        flags |= PH.CAL_WARN_SLOPE
    off = rec.offset_uv if rec.offset_uv >= 0 else -rec.offset_uv
    if off > _OFFSET_REJECT:
        flags |= PH.CAL_REJECT_OFFSET
    elif off > _OFFSET_WARN:
        flags |= PH.CAL_WARN_OFFSET
    return flags


def point(cal, reference, temperature):
    """A pH point of a calibration session (calibration.py): the mean of its window in the
    buffer `reference` (milli-pH at 25 °C), the verdict in cal. Returns 0 or a protocol error."""
    buf = PH.BUF_7 if reference == 7000 else (PH.BUF_4 if reference == 4000 else
                                              (PH.BUF_10 if reference == 10010 else 0))
    if not buf:
        return proto.ERR_VALUE_OUT_OF_RANGE  # buffers are 4.00, 7.00 and 10.01 (at 25 °C)
    ctrl = cal.ctrl
    t_mc = ctrl.t_mc if temperature == _PROBE_TEMPERATURE else temperature * 10
    flags = calibrate(ctrl.probe, buf, cal.window()[0], t_mc, 0)
    cal.verdict = (proto.CAL_VERDICT_REJECT if flags & PH.CAL_REJECT else
                   proto.CAL_VERDICT_WARN if flags else proto.CAL_VERDICT_OK)
    cal.points += 1
    return 0


def calibrate(probe, buf, e_uv, t_mc, time):
    """Probe.calibrate()."""
    _prepare(probe)
    if e_uv > PH.E_MAX:
        e_uv = PH.E_MAX
    elif e_uv < -PH.E_MAX:
        e_uv = -PH.E_MAX
    mph = buffer_ph(buf, t_mc)
    new = probe.spare
    copy(new, probe.cal)
    if buf == PH.BUF_7:
        new.points = PH.BUF_7
        new.mid_uv = e_uv
        new.mid_mph = mph
        new.mid_mc = t_mc
    elif not new.points & PH.BUF_7:
        probe.last_flags = PH.CAL_REJECT_NO_MID
        return PH.CAL_REJECT_NO_MID
    elif buf == PH.BUF_4:
        new.points |= PH.BUF_4
        new.low_uv = e_uv
        new.low_mph = mph
        new.low_mc = t_mc
    else:
        new.points |= PH.BUF_10
        new.high_uv = e_uv
        new.high_mph = mph
        new.high_mc = t_mc
    flags = _solve(new)
    probe.last_flags = flags
    probe.last = new  # the solved candidate, accepted or not, for reporting
    if flags & PH.CAL_REJECT:
        return flags
    new.cal_id = probe.next_id
    new.time = time
    new.flags = flags
    probe.next_id += 1
    probe.spare = probe.cal
    probe.cal = new
    return flags
