"""Applying the config items to a StageController (controller.py): at reset and after every
accepted config write. Allocates; the scans never call it."""
from micropython import const

import config_table as T
from control.dosing import Envelope
from control.pid import Pid, TitrationCurve
from fixedpoint import muldiv
from sensors.orp import Orp

_NEVER_MS = const(0x1FFFFFFF)  # a link timeout of "never": the largest span ticks can compare
_FLOW_DIV = const(50000)  # flow_kp (0.01 % per L/min) * error (mL/min) / 50000 = 0.5 % steps
_PUMP_FULL = const(200)  # pump outputs in 0.5 % steps


def apply(ctrl):
    """StageController.configure(), in three parts."""
    c = ctrl.config.get
    _sensors(ctrl, c)
    _ph_controller(ctrl, c)
    _dosing_and_alarms(ctrl, c)
    ctrl.set_mode(ctrl.stage.mode)


def _sensors(ctrl, c):
    stage = ctrl.stage
    stage.ph_setpoint = c(T.PH_SETPOINT)
    cal = ctrl.probe.cal
    cal.offset_uv = c(T.PH_CAL_OFFSET)
    cal.acid_slope = c(T.PH_CAL_SLOPE_ACID)
    cal.base_slope = c(T.PH_CAL_SLOPE_BASE)
    cal.cal_id = c(T.PH_CAL_ID)
    stage.cal_id = cal.cal_id
    ctrl.orp = Orp(rail_uv=c(T.ORP_RANGE) * 1000)
    ctrl.orp.offset_uv = c(T.ORP_CAL_OFFSET)
    ctrl.t_mc = c(T.TEMPERATURE_FIXED) * 10  # until a probe reads
    if c(T.TEMPERATURE_SOURCE):
        from sensors.temperature import Temperature  # loaded only on a board that uses its probe
        ctrl.temperature = Temperature(1000, fixed_mc=ctrl.t_mc)
    else:
        ctrl.temperature = None
        ctrl.temp_fault = False
    ctrl.flow_aq.k_factor = max(1, c(T.K_FACTOR_AQ) // 10)
    ctrl.flow_org.k_factor = max(1, c(T.K_FACTOR_ORG) // 10)
    # Checks, envelope and alarms keep their history across a config change: a config
    # write must not reset a dose cap's accounting or forget a latched alarm.
    ctrl.check.stuck_ms = c(T.STUCK_WINDOW) * 1000
    ctrl.check.response_ms = c(T.PH_RESPONSE) * 1000
    ctrl.check.invalid_limit = c(T.INVALID_SCANS_TO_STOP)
    base_max = c(T.BASE_MAX)
    ctrl.hal.set_full_scale(base_max, c(T.REAGENT_MAX))
    # the loop "acts" when its output moves by 1 % of full scale: smaller steps are noise,
    # and counting them would let a quiet steady state look like a stuck electrode
    ctrl.check.output_move = max(1, base_max // 100)


def _ph_controller(ctrl, c):
    stage = ctrl.stage
    base_max = c(T.BASE_MAX)
    n = c(T.TITRATION_POINTS)
    points = tuple((c(T.TITRATION_PH_0 + k), c(T.TITRATION_BASE_0 + k)) for k in range(n)) if n >= 2 else ()
    tuning = (c(T.PID_KP), c(T.PID_TI) * 1000, c(T.PID_TD) * 100)
    limits = (base_max, c(T.BASE_RATE_LIMIT), c(T.PH_DEADBAND), c(T.FEEDFORWARD))
    mix = (c(T.MIX_TIME), c(T.PH_RESPONSE) * 1000)
    pid = ctrl.pid
    if pid is None or points != ctrl.curve_points:
        # a new curve changes what the error means: a fresh controller, bumpless from the old
        new = Pid(tuning[0], tuning[1], tuning[2], 0, limits[0], limits[1], limits[2], limits[3],
                  TitrationCurve(points) if points else None)
        new.set_setpoint(stage.ph_setpoint)
        if pid is not None:
            new.out = pid.out if pid.out < base_max else base_max
            new.manual = pid.manual
            new.set_mode(pid.mode)
        new.mix_s, new.wait_ms = mix
        ctrl.pid = new
        ctrl.curve_points = points
    else:
        # The running controller is kept: a setpoint change keeps its integral and gets its
        # proportional kick (or, with mix_time, its base dose); only a tuning or limit change
        # re-tracks (bumplessly).
        pid.rate_max, pid.dead_band, pid.ff_gain = limits[1], limits[2], limits[3]
        if tuning != (pid.kp, pid.ti_ms, pid.td_ms) or base_max != pid.out_max:
            pid.out_max = base_max
            pid.set_tuning(*tuning)
        pid.mix_s, pid.wait_ms = mix
        if pid.setpoint != stage.ph_setpoint:
            pid.set_setpoint(stage.ph_setpoint)


def _dosing_and_alarms(ctrl, c):
    base_max = c(T.BASE_MAX)
    env = ctrl.envelope
    if env is None:
        env = ctrl.envelope = Envelope(c(T.DOSE_CAP_PERIOD) * 10, c(T.DOSE_CAP_HOUR) * 10, base_max * 10)
    env.pump_ul_min = base_max * 10
    env.period_ms = c(T.DOSE_PERIOD) * 1000
    capacity = muldiv(env.pump_ul_min, env.period_ms // 10, 6000)
    env.period_ul = min(c(T.DOSE_CAP_PERIOD) * 10, capacity)
    env.hour_ul = c(T.DOSE_CAP_HOUR) * 10
    env.min_off_ms = c(T.DOSE_MIN_OFF) * 1000
    env.min_flow_ml_min = c(T.MIN_FLOW_FOR_DOSING)
    env.stale_ms = 3 * c(T.MEASURE_PERIOD)
    env.trip_mph = c(T.PH_HIGH_TRIP)
    ctrl.aq_loop.set(c(T.FLOW_KP), _FLOW_DIV, c(T.FLOW_TI), _PUMP_FULL)
    ctrl.org_loop.set(c(T.FLOW_KP), _FLOW_DIV, c(T.FLOW_TI), _PUMP_FULL)
    ctrl.orp_loop.set(c(T.ORP_KP), 1, c(T.ORP_TI), c(T.REAGENT_MAX))
    timeout = c(T.LINK_TIMEOUT) * 1000
    al = ctrl.alarms
    al.dev_warn = c(T.PH_DEV_WARN)
    al.dev_alarm = c(T.PH_DEV_ALARM)
    al.high_mph = c(T.PH_HIGH_TRIP)
    al.low_mph = c(T.PH_LOW_ALARM)
    al.link_timeout_ms = timeout if 0 < timeout < _NEVER_MS else _NEVER_MS

