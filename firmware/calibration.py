"""Calibration sessions driven over the bus: begin, take points, then commit or abort.

A point uses the mean of the last readings and reports whether they were stable; pH points
go through the electrode's own acceptance limits. Nothing changes the stored calibration
until commit, which writes the calibration config items (atomically, as every config write);
abort puts back the calibration in use before the session began.

A CALIBRATE request loads this module, the session; it stays loaded while the session runs,
for the readings each measurement scan adds. What a session needs only now and then is loaded
by the request that needs it and dropped after it: beginning, taking a point, aborting and the
status report (calibration_steps.py), the pH math of a point (sensors/ph_cal.py, which a pH
point loads without calibration_steps). A commit's
config write then finds room beside the session alone, and a board that is not being
calibrated keeps none of it.
"""
import gc
import sys
from array import array
from micropython import const

import config_table as T
import proto
import sensors
from config import ConfigError

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
        _unload_ph_cal()  # before the status report loads its code
        if code:
            link.reply_error(proto.MSG_CALIBRATE, code, sensor)
        else:
            import calibration_steps
            calibration_steps.pack_status(cal, link.tx, proto.HEADER_SIZE, sensor)
            link.reply(proto.MSG_CAL_STATUS, proto.CAL_STATUS_SIZE)
    finally:  # a MemoryError too: the caller answers it
        # What the request loaded goes with it: nothing else refers to it once these go.
        _unload_ph_cal()
        sys.modules.pop("calibration_steps", None)
        if cal is None or cal.sensor == NO_SENSOR:
            # No session (any more): the next request makes a new one, which reports the same status.
            app.calibration = None
            sys.modules.pop(__name__, None)


def _unload_ph_cal():
    sys.modules.pop("sensors.ph_cal", None)
    if hasattr(sensors, "ph_cal"):
        delattr(sensors, "ph_cal")


class Calibration:
    def __init__(self, ctrl):
        self.ctrl = ctrl  # the StageController: its sensors, config and clock
        self.sensor = NO_SENSOR
        self.points = 0
        self.verdict = proto.CAL_VERDICT_NONE
        # the pH calibration in use when the session began, its CalRecord fields in order
        # (calibration_steps.py): 16 ints in an array take a third of a CalRecord's RAM
        self.backup = array("i", bytes(4 * 16))
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
        if step == proto.CAL_STEP_COMMIT:  # nothing more loaded: the config write needs the room
            return self._commit() if sensor == self.sensor else proto.ERR_NOT_ALLOWED_IN_THIS_MODE
        if step == proto.CAL_STEP_POINT and sensor == self.sensor == proto.CAL_SENSOR_PH:
            # the pH math alone, without calibration_steps: a point has room for one of them
            import sensors.ph_cal
            return sensors.ph_cal.point(self, reference, temperature)
        import calibration_steps
        if step == proto.CAL_STEP_BEGIN:
            return calibration_steps.begin(self, sensor)
        if sensor != self.sensor:
            return proto.ERR_NOT_ALLOWED_IN_THIS_MODE  # no session for this sensor: begin first
        if step == proto.CAL_STEP_POINT:
            return calibration_steps.point(self, reference, temperature)
        calibration_steps.abort(self)
        return 0

    def _commit(self):
        if self.points == 0 or self.verdict == proto.CAL_VERDICT_REJECT:
            return proto.ERR_CALIBRATION_REJECTED
        ctrl = self.ctrl
        s = self.sensor
        if s == proto.CAL_SENSOR_PH:
            cal = ctrl.probe.cal
            ctrl.probe.spare = None  # the candidates' record (sensors/ph_cal.py): room for the write
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
