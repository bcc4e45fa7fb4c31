"""Calibration sessions driven over the bus: begin, take points, then commit or abort.

A point uses the mean of the last readings and reports whether they were stable; pH points
go through the electrode's own acceptance limits (sensors/ph.py). Nothing changes the stored
calibration until commit, which writes the calibration config items (atomically, as every
config write); abort puts back the calibration in use before the session began.

The service imports this module for a CALIBRATE request; the session lives in app.calibration
while it runs (each measurement scan feeds it its sensor's reading) and goes at its end.
"""
import gc
import struct
from array import array
from micropython import const

import config_table as T
import proto
from config import ConfigError
from sensors import ph as PH
from sensors.orp import CAL_OK

WINDOW = const(5)  # readings averaged for a point and checked for stability
STABLE_UV = const(500)  # pH/ORP readings within 0.5 mV count as stable
NO_SENSOR = const(255)


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
        if cal is None or cal.sensor == NO_SENSOR:
            # No session (any more): the next request makes a new one, which reports the same status.
            app.calibration = None


class Calibration:
    def __init__(self, ctrl):
        self.ctrl = ctrl  # the StageController: its sensors, config and clock
        self.sensor = NO_SENSOR
        self.points = 0
        self.verdict = proto.CAL_VERDICT_NONE
        # the pH calibration in use when the session began, its CalRecord fields (PH.FIELDS)
        self.backup = array("i", bytes(4 * len(PH.FIELDS)))
        self.orp_backup = 0
        self.uv = array("i", [0] * WINDOW)
        self.n = 0
        self.pulses = 0
        self.k_factor = 0

    def scan(self, hal):
        """Every measurement scan: remember the live signal of the sensor being calibrated."""
        s = self.sensor
        if s == proto.CAL_SENSOR_FLOW_AQ:
            self.pulses += hal.sampled_aq
        elif s == proto.CAL_SENSOR_FLOW_ORG:
            self.pulses += hal.sampled_org
        elif s != NO_SENSOR:
            uv = hal.ph_uv if s == proto.CAL_SENSOR_PH else hal.orp_uv
            n = self.n
            if n and abs(uv - self.uv[(n - 1) % WINDOW]) > STABLE_UV:
                n = 0  # the reading moved (the probe went into the next buffer): start over
            self.uv[n % WINDOW] = uv
            self.n = n + 1

    def window(self):
        """(mean µV of the readings kept, True when a full window of them lies within 0.5 mV)."""
        n = self.n if self.n < WINDOW else WINDOW
        uv = self.uv
        lo = hi = uv[0]
        total = 0
        for k in range(n):
            lo = min(lo, uv[k])
            hi = max(hi, uv[k])
            total += uv[k]
        return (total // n if n else 0), n == WINDOW and hi - lo <= STABLE_UV

    def step(self, sensor, step, reference, temperature):
        """One CALIBRATE request; returns 0 or a protocol error code."""
        if step == proto.CAL_STEP_STATUS:
            return 0
        if step == proto.CAL_STEP_BEGIN:
            return self._begin(sensor)
        if sensor != self.sensor:
            return proto.ERR_NOT_ALLOWED_IN_THIS_MODE  # no session for this sensor: begin first
        if step == proto.CAL_STEP_COMMIT:
            return self._commit()
        if step == proto.CAL_STEP_POINT:
            return self._ph_point(reference, temperature) if sensor == proto.CAL_SENSOR_PH else \
                self._point(reference)
        self._abort()
        return 0

    def _begin(self, sensor):
        if self.sensor != NO_SENSOR:
            self._abort()
        ctrl = self.ctrl
        if sensor == proto.CAL_SENSOR_PH:
            rec, backup = ctrl.probe.cal, self.backup
            for k, name in enumerate(PH.FIELDS):
                backup[k] = getattr(rec, name)
        self.orp_backup = ctrl.orp.offset_uv
        self.sensor = sensor  # begun: nothing above failed
        self.points = 0
        self.verdict = proto.CAL_VERDICT_NONE
        self.n = 0
        self.pulses = 0
        self.k_factor = 0
        return 0

    def _ph_point(self, reference, temperature):
        """A pH point: the mean of the window in a buffer of pH `reference` (milli-pH at the
        buffer's temperature). The session's first point is its mid point; later ones lie below
        it (acid side) or above (base side), so any two buffers make a calibration (1.68 and
        4.00 for a stage at pH 2)."""
        if reference <= 0 or reference >= 14000:
            return proto.ERR_VALUE_OUT_OF_RANGE
        ctrl = self.ctrl
        mid = ctrl.probe.cal
        if self.points == 0 or not mid.points & PH.BUF_7:
            buf = PH.BUF_7
        elif reference < mid.mid_mph:
            buf = PH.BUF_4
        elif reference > mid.mid_mph:
            buf = PH.BUF_10
        else:
            return proto.ERR_VALUE_OUT_OF_RANGE  # the mid point's buffer again
        t_mc = ctrl.t_mc if temperature == proto.CAL_PROBE_TEMPERATURE else temperature * 10
        flags = ctrl.probe.calibrate(buf, self.window()[0], t_mc, 0, reference)
        self.verdict = (proto.CAL_VERDICT_REJECT if flags & PH.CAL_REJECT else
                        proto.CAL_VERDICT_WARN if flags else proto.CAL_VERDICT_OK)
        self.points += 1
        return 0

    def _point(self, reference):
        """An ORP point (reference in mV) or a flow point (reference: the measured volume, mL)."""
        ctrl = self.ctrl
        s = self.sensor
        if s == proto.CAL_SENSOR_ORP:
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

    def _abort(self):
        ctrl = self.ctrl
        if self.sensor == proto.CAL_SENSOR_PH:
            rec, backup = ctrl.probe.cal, self.backup
            for k, name in enumerate(PH.FIELDS):
                setattr(rec, name, backup[k])
        ctrl.orp.offset_uv = self.orp_backup
        self.sensor = NO_SENSOR

    def _commit(self):
        if self.points == 0 or self.verdict == proto.CAL_VERDICT_REJECT:
            return proto.ERR_CALIBRATION_REJECTED
        ctrl = self.ctrl
        s = self.sensor
        if s == proto.CAL_SENSOR_PH:
            cal = ctrl.probe.cal
            ctrl.probe.spare = None  # the candidates' record: room for the write
            pairs = [(T.IDS[T.PH_CAL_OFFSET], cal.offset_uv), (T.IDS[T.PH_CAL_SLOPE_ACID], cal.acid_slope),
                     (T.IDS[T.PH_CAL_SLOPE_BASE], cal.base_slope),
                     (T.IDS[T.PH_CAL_ID], (ctrl.config.get(T.PH_CAL_ID) % 65535) + 1),
                     (T.IDS[T.PH_CAL_TIME], ctrl.time_s())]
        elif s == proto.CAL_SENSOR_ORP:
            pairs = [(T.IDS[T.ORP_CAL_OFFSET], ctrl.orp.offset_uv)]
        else:
            item = T.K_FACTOR_AQ if s == proto.CAL_SENSOR_FLOW_AQ else T.K_FACTOR_ORG
            pairs = [(T.IDS[item], self.k_factor * 10)]
        gc.collect()  # make room for the config write
        ctrl.config.apply(pairs)  # raises ConfigError: the caller answers with its code
        ctrl.configure()
        ctrl.event(proto.EV_CALIBRATION, s, ctrl.config.get(T.PH_CAL_ID))
        self.sensor = NO_SENSOR
        return 0

    def pack_status(self, buf, offset, sensor):
        """A CAL_STATUS body for `sensor` at buf[offset:]."""
        ctrl = self.ctrl
        hal = ctrl.hal
        mine = self.sensor == sensor
        if sensor == proto.CAL_SENSOR_PH:
            live_uv, live = hal.ph_uv, ctrl.probe.mph
            rec = ctrl.probe.last if mine and self.points else ctrl.probe.cal
            acid, base, offset_uv = rec.acid_slope, rec.base_slope, rec.offset_uv
        elif sensor == proto.CAL_SENSOR_ORP:
            live_uv, live = hal.orp_uv, ctrl.orp.mv
            acid = base = 0
            offset_uv = ctrl.orp.offset_uv
        else:
            live_uv, live = 0, self.pulses if mine else 0
            acid = base = 0
            offset_uv = 0
        struct.pack_into(proto.CAL_STATUS_FMT, buf, offset, sensor, self.points if mine else 0, live_uv, live,
                         1 if mine and self.window()[1] else 0, acid, base, offset_uv,
                         self.verdict if mine else proto.CAL_VERDICT_NONE, ctrl.config.get(T.PH_CAL_ID))
