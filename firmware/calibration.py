"""Calibration sessions driven over the bus: begin, take points, then commit or abort.

A point uses the mean of the last readings and reports whether they were stable; pH points
go through the electrode's own acceptance limits. Nothing changes the stored calibration
until commit, which writes the calibration config items (atomically, as every config write);
abort puts back the calibration in use before the session began.

The session, this module and the pH math (sensors/ph_cal.py) are loaded by a CALIBRATE request
and unloaded when the session ends: a board that is not being calibrated keeps their RAM.
"""
import gc
import struct
import sys
from array import array
from micropython import const

import config_table as T
import events
import proto
import sensors
from config import ConfigError
from sensors import ph as PH
from sensors.orp import CAL_OK

_WINDOW = const(5)  # readings averaged for a point and checked for stability
_STABLE_UV = const(500)  # pH/ORP readings within 0.5 mV count as stable
_NO_SENSOR = const(255)
_PROBE_TEMPERATURE = const(-32768)


def request(app, link, sensor, step, reference, temperature):
    """Answer a CALIBRATE request, with the session in app.calibration while one runs."""
    if sensor > proto.CAL_SENSOR_FLOW_ORG:
        link.reply_error(proto.MSG_CALIBRATE, proto.ERR_VALUE_OUT_OF_RANGE, sensor)
        return
    cal = app.calibration
    try:
        try:
            if cal is None:
                cal = app.calibration = Calibration(app.controller)
            code = cal.step(sensor, step, reference, temperature)
        except ConfigError as e:
            code = e.code
        except OSError:
            code = proto.ERR_STORAGE_FAILED
        if code:
            link.reply_error(proto.MSG_CALIBRATE, code, sensor)
        else:
            cal.pack_status(link.tx, proto.HEADER_SIZE, sensor)
            link.reply(proto.MSG_CAL_STATUS, proto.CAL_STATUS_SIZE)
    finally:  # a MemoryError too: the caller answers it
        if cal is None or cal.sensor == _NO_SENSOR:
            # No session (any more): the next request makes a new one, which reports the same status.
            app.calibration = None
            sys.modules.pop(__name__, None)
            _unload_ph_cal()


def _unload_ph_cal():
    # Nothing else refers to sensors.ph_cal: dropping these two references frees it.
    sys.modules.pop("sensors.ph_cal", None)
    if hasattr(sensors, "ph_cal"):
        delattr(sensors, "ph_cal")


class Calibration:
    def __init__(self, ctrl):
        self.ctrl = ctrl  # the StageController: its sensors, config and clock
        self.sensor = _NO_SENSOR
        self.points = 0
        self.verdict = proto.CAL_VERDICT_NONE
        self._backup = PH.CalRecord()
        self._orp_backup = 0
        self._uv = array("i", [0] * _WINDOW)
        self._n = 0
        self.pulses = 0
        self.k_factor = 0

    def scan(self, hal):
        """Every measurement scan: remember the live signal of the sensor being calibrated."""
        s = self.sensor
        if s == proto.CAL_SENSOR_FLOW_AQ:
            self.pulses += hal.sampled_aq
        elif s == proto.CAL_SENSOR_FLOW_ORG:
            self.pulses += hal.sampled_org
        elif s != _NO_SENSOR:
            uv = hal.ph_uv if s == proto.CAL_SENSOR_PH else hal.orp_uv
            n = self._n
            if n and abs(uv - self._uv[(n - 1) % _WINDOW]) > _STABLE_UV:
                n = 0  # the reading moved (the probe went into the next buffer): start over
            self._uv[n % _WINDOW] = uv
            self._n = n + 1

    def window(self):
        """(mean µV of the readings kept, True when a full window of them lies within 0.5 mV)."""
        n = self._n if self._n < _WINDOW else _WINDOW
        uv = self._uv
        lo = hi = uv[0]
        total = 0
        for k in range(n):
            lo = min(lo, uv[k])
            hi = max(hi, uv[k])
            total += uv[k]
        return (total // n if n else 0), n == _WINDOW and hi - lo <= _STABLE_UV

    def step(self, sensor, step, reference, temperature):
        """One CALIBRATE request; returns 0 or a protocol error code."""
        if step == proto.CAL_STEP_STATUS:
            return 0
        if step == proto.CAL_STEP_BEGIN:
            return self._begin(sensor)
        if sensor != self.sensor:
            return proto.ERR_NOT_ALLOWED_IN_THIS_MODE  # no session for this sensor: begin first
        if step == proto.CAL_STEP_POINT:
            return self._point(reference, temperature)
        if step == proto.CAL_STEP_COMMIT:
            return self._commit()
        self._abort()
        return 0

    def _begin(self, sensor):
        if self.sensor != _NO_SENSOR:
            self._abort()
        ctrl = self.ctrl
        if sensor == proto.CAL_SENSOR_PH:
            import sensors.ph_cal
            sensors.ph_cal.copy(self._backup, ctrl.probe.cal)
        self._orp_backup = ctrl.orp.offset_uv
        self.sensor = sensor  # begun: nothing above failed
        self.points = 0
        self.verdict = proto.CAL_VERDICT_NONE
        self._n = 0
        self.pulses = 0
        self.k_factor = 0
        return 0

    def _point(self, reference, temperature):
        ctrl = self.ctrl
        s = self.sensor
        if s == proto.CAL_SENSOR_PH:
            buf = PH.BUF_7 if reference == 7000 else (PH.BUF_4 if reference == 4000 else
                                                      (PH.BUF_10 if reference == 10010 else 0))
            if not buf:
                return proto.ERR_VALUE_OUT_OF_RANGE  # buffers are 4.00, 7.00 and 10.01 (at 25 °C)
            t_mc = ctrl.temperature.mc if temperature == _PROBE_TEMPERATURE else temperature * 10
            flags = ctrl.probe.calibrate(buf, self.window()[0], t_mc)
            self.verdict = (proto.CAL_VERDICT_REJECT if flags & PH.CAL_REJECT else
                            proto.CAL_VERDICT_WARN if flags else proto.CAL_VERDICT_OK)
        elif s == proto.CAL_SENSOR_ORP:
            ok = ctrl.orp.calibrate(self.window()[0], reference * 1000) == CAL_OK
            self.verdict = proto.CAL_VERDICT_OK if ok else proto.CAL_VERDICT_REJECT
        else:
            flow = ctrl.flow_aq if s == proto.CAL_SENSOR_FLOW_AQ else ctrl.flow_org
            old = flow.k_factor
            self.k_factor = flow.calibrate(self.pulses, reference)
            flow.k_factor = old  # in use only after commit
            self.verdict = proto.CAL_VERDICT_OK if self.k_factor else proto.CAL_VERDICT_REJECT
        self.points += 1
        return 0

    def _commit(self):
        if self.points == 0 or self.verdict == proto.CAL_VERDICT_REJECT:
            return proto.ERR_CALIBRATION_REJECTED
        ctrl = self.ctrl
        s = self.sensor
        if s == proto.CAL_SENSOR_PH:
            cal = ctrl.probe.cal
            pairs = [(T.IDS[T.PH_CAL_OFFSET], cal.offset_uv), (T.IDS[T.PH_CAL_SLOPE_ACID], cal.acid_slope),
                     (T.IDS[T.PH_CAL_SLOPE_BASE], cal.base_slope),
                     (T.IDS[T.PH_CAL_ID], (ctrl.config.get(T.PH_CAL_ID) % 65535) + 1),
                     (T.IDS[T.PH_CAL_TIME], ctrl.time_s())]
        elif s == proto.CAL_SENSOR_ORP:
            pairs = [(T.IDS[T.ORP_CAL_OFFSET], ctrl.orp.offset_uv)]
        else:
            item = T.K_FACTOR_AQ if s == proto.CAL_SENSOR_FLOW_AQ else T.K_FACTOR_ORG
            pairs = [(T.IDS[item], self.k_factor * 10)]
        _unload_ph_cal()  # the points are taken: make room for the config write
        gc.collect()
        ctrl.config.apply(pairs)  # raises ConfigError: the caller answers with its code
        ctrl.configure()
        events.push(ctrl.events, ctrl.time_s(), proto.EV_CALIBRATION, s, ctrl.config.get(T.PH_CAL_ID))
        self.sensor = _NO_SENSOR
        return 0

    def _abort(self):
        ctrl = self.ctrl
        if self.sensor == proto.CAL_SENSOR_PH:
            import sensors.ph_cal
            sensors.ph_cal.copy(ctrl.probe.cal, self._backup)
        ctrl.orp.offset_uv = self._orp_backup
        self.sensor = _NO_SENSOR

    def pack_status(self, buf, offset, sensor):
        ctrl = self.ctrl
        hal = ctrl.hal
        if sensor == proto.CAL_SENSOR_PH:
            live_uv, live = hal.ph_uv, ctrl.probe.mph
            cal = ctrl.probe.last if self.sensor == sensor and self.points else ctrl.probe.cal
            acid, base, offset_uv = cal.acid_slope, cal.base_slope, cal.offset_uv
        elif sensor == proto.CAL_SENSOR_ORP:
            live_uv, live = hal.orp_uv, ctrl.orp.mv
            acid = base = 0
            offset_uv = ctrl.orp.offset_uv
        else:
            live_uv, live = 0, self.pulses if self.sensor == sensor else 0
            acid = base = 0
            offset_uv = 0
        struct.pack_into(proto.CAL_STATUS_FMT, buf, offset, sensor,
                         self.points if self.sensor == sensor else 0, live_uv, live,
                         1 if self.sensor == sensor and self.window()[1] else 0, acid, base, offset_uv,
                         self.verdict if self.sensor == sensor else proto.CAL_VERDICT_NONE,
                         ctrl.config.get(T.PH_CAL_ID))
