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

# A buffer's pH at its temperature comes with the point, from the host's one buffer table
# (sxproto/buffers.py): the board keeps none. Without one (Probe.calibrate from code), a slot's
# buffer is taken at its nominal 25 °C value.
_NOMINAL_7 = const(7000)
_NOMINAL_4 = const(4000)
_NOMINAL_10 = const(10010)
_PH_MAX = const(14000)


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
    """A pH point of a calibration session (calibration.py): the mean of its window in a buffer
    of pH `reference` (milli-pH at the buffer's temperature), the verdict in cal. The session's
    first point is its mid point; later ones lie below it (acid side) or above (base side), so
    any two buffers make a calibration (1.68 and 4.00 for a stage at pH 2). Returns 0 or a
    protocol error."""
    if reference <= 0 or reference >= _PH_MAX:
        return proto.ERR_VALUE_OUT_OF_RANGE
    ctrl = cal.ctrl
    mid = ctrl.probe.cal
    if cal.points == 0 or not mid.points & PH.BUF_7:
        buf = PH.BUF_7
    elif reference < mid.mid_mph:
        buf = PH.BUF_4
    elif reference > mid.mid_mph:
        buf = PH.BUF_10
    else:
        return proto.ERR_VALUE_OUT_OF_RANGE  # the mid point's buffer again
    t_mc = ctrl.t_mc if temperature == _PROBE_TEMPERATURE else temperature * 10
    flags = calibrate(ctrl.probe, buf, cal.window()[0], t_mc, 0, reference)
    cal.verdict = (proto.CAL_VERDICT_REJECT if flags & PH.CAL_REJECT else
                   proto.CAL_VERDICT_WARN if flags else proto.CAL_VERDICT_OK)
    cal.points += 1
    return 0


def calibrate(probe, buf, e_uv, t_mc, time, mph=-1):
    """Probe.calibrate(): slot `buf` (BUF_7 mid, BUF_4 acid side, BUF_10 base side) read as e_uv
    in a buffer of pH mph (milli-pH at t_mc; -1: the slot's nominal buffer at 25 °C)."""
    _prepare(probe)
    if e_uv > PH.E_MAX:
        e_uv = PH.E_MAX
    elif e_uv < -PH.E_MAX:
        e_uv = -PH.E_MAX
    if mph < 0:
        mph = _NOMINAL_7 if buf == PH.BUF_7 else (_NOMINAL_4 if buf == PH.BUF_4 else _NOMINAL_10)
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
