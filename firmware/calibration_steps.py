"""The parts of a calibration session (calibration.py) it does not keep between requests:
begin, take a point, abort, and the status every answer reports. Loaded by the request that
needs them; calibration.request drops them when it returns."""
import struct
from micropython import const

import config_table as T
import proto
from calibration import NO_SENSOR
from sensors import ph as PH
from sensors.orp import CAL_OK

_PROBE_TEMPERATURE = const(-32768)


def begin(cal, sensor):
    if cal.sensor != NO_SENSOR:
        abort(cal)
    ctrl = cal.ctrl
    if sensor == proto.CAL_SENSOR_PH:
        import sensors.ph_cal
        sensors.ph_cal.copy(cal.backup, ctrl.probe.cal)
    cal.orp_backup = ctrl.orp.offset_uv
    cal.sensor = sensor  # begun: nothing above failed
    cal.points = 0
    cal.verdict = proto.CAL_VERDICT_NONE
    cal.n = 0
    cal.pulses = 0
    cal.k_factor = 0
    return 0


def point(cal, reference, temperature):
    ctrl = cal.ctrl
    s = cal.sensor
    if s == proto.CAL_SENSOR_PH:
        buf = PH.BUF_7 if reference == 7000 else (PH.BUF_4 if reference == 4000 else
                                                  (PH.BUF_10 if reference == 10010 else 0))
        if not buf:
            return proto.ERR_VALUE_OUT_OF_RANGE  # buffers are 4.00, 7.00 and 10.01 (at 25 °C)
        t_mc = ctrl.t_mc if temperature == _PROBE_TEMPERATURE else temperature * 10
        flags = ctrl.probe.calibrate(buf, cal.window()[0], t_mc)
        cal.verdict = (proto.CAL_VERDICT_REJECT if flags & PH.CAL_REJECT else
                       proto.CAL_VERDICT_WARN if flags else proto.CAL_VERDICT_OK)
    elif s == proto.CAL_SENSOR_ORP:
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
        import sensors.ph_cal
        sensors.ph_cal.copy(ctrl.probe.cal, cal.backup)
    ctrl.orp.offset_uv = cal.orp_backup
    cal.sensor = NO_SENSOR


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
