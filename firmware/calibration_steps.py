"""The parts of a calibration session (calibration.py) it does not keep between requests:
begin, take a point, abort, and the status every answer reports. Loaded by the request that
needs them; calibration.request drops them when it returns."""
import struct

import config_table as T
import proto
from calibration import NO_SENSOR
from sensors.orp import CAL_OK


def begin(cal, sensor):
    if cal.sensor != NO_SENSOR:
        abort(cal)
    ctrl = cal.ctrl
    if sensor == proto.CAL_SENSOR_PH:
        _save(cal.backup, ctrl.probe.cal)
    cal.orp_backup = ctrl.orp.offset_uv
    cal.sensor = sensor  # begun: nothing above failed
    cal.points = 0
    cal.verdict = proto.CAL_VERDICT_NONE
    cal.n = 0
    cal.pulses = 0
    cal.k_factor = 0
    return 0


def point(cal, reference, temperature):
    """An ORP or flow point (a pH point is sensors/ph_cal.point's)."""
    ctrl = cal.ctrl
    s = cal.sensor
    if s == proto.CAL_SENSOR_ORP:
        ok = ctrl.orp.calibrate(cal.window()[0], reference * 1000) == CAL_OK
        cal.verdict = proto.CAL_VERDICT_OK if ok else proto.CAL_VERDICT_REJECT
    else:
        flow = ctrl.flow_aq if s == proto.CAL_SENSOR_FLOW_AQ else ctrl.flow_org
        old = flow.k_factor
        cal.k_factor = flow.calibrate(cal.pulses, reference)
        flow.k_factor = old  # in use only after commit
        cal.verdict = proto.CAL_VERDICT_OK if cal.k_factor else proto.CAL_VERDICT_REJECT
    cal.points += 1
    return 0


def abort(cal):
    ctrl = cal.ctrl
    if cal.sensor == proto.CAL_SENSOR_PH:
        _restore(ctrl.probe.cal, cal.backup)
    ctrl.orp.offset_uv = cal.orp_backup
    cal.sensor = NO_SENSOR


def _save(a, r):
    # a CalRecord (sensors/ph.py) into the session's backup array; without sensors/ph_cal.py
    k = 0
    for v in (r.cal_id, r.time, r.points, r.acid_slope, r.base_slope, r.offset_uv, r.flags, r.mid_uv,
              r.mid_mph, r.mid_mc, r.low_uv, r.low_mph, r.low_mc, r.high_uv, r.high_mph, r.high_mc):
        a[k] = v
        k += 1


def _restore(r, a):
    (r.cal_id, r.time, r.points, r.acid_slope, r.base_slope, r.offset_uv, r.flags, r.mid_uv,
     r.mid_mph, r.mid_mc, r.low_uv, r.low_mph, r.low_mc, r.high_uv, r.high_mph, r.high_mc) = a


def pack_status(cal, buf, offset, sensor):
    """A CAL_STATUS body for `sensor` at buf[offset:]."""
    ctrl = cal.ctrl
    hal = ctrl.hal
    if sensor == proto.CAL_SENSOR_PH:
        live_uv, live = hal.ph_uv, ctrl.probe.mph
        rec = ctrl.probe.last if cal.sensor == sensor and cal.points else ctrl.probe.cal
        acid, base, offset_uv = rec.acid_slope, rec.base_slope, rec.offset_uv
    elif sensor == proto.CAL_SENSOR_ORP:
        live_uv, live = hal.orp_uv, ctrl.orp.mv
        acid = base = 0
        offset_uv = ctrl.orp.offset_uv
    else:
        live_uv, live = 0, cal.pulses if cal.sensor == sensor else 0
        acid = base = 0
        offset_uv = 0
    struct.pack_into(proto.CAL_STATUS_FMT, buf, offset, sensor,
                     cal.points if cal.sensor == sensor else 0, live_uv, live,
                     1 if cal.sensor == sensor and cal.window()[1] else 0, acid, base, offset_uv,
                     cal.verdict if cal.sensor == sensor else proto.CAL_VERDICT_NONE,
                     ctrl.config.get(T.PH_CAL_ID))
