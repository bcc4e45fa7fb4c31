"""The stage controller on a fake HAL: dosing, interlocks, safe state, calibration, no allocation."""
import micropython

import config_table as T
import proto
from calibration import Calibration
from control import alarms as A
from fwlib_stage import NERNST_25, make, run

ID = T.IDS


def test_boot_leaves_outputs_off():
    ctrl, hal, stage, _ = make()
    hal.set_ph(1000)
    run(ctrl, 0, 10)
    assert stage.mode == proto.MODE_OFF
    assert stage.base_dose == 0 and stage.aq_pump == 0 and stage.org_pump == 0
    assert hal.enabled is False


def test_auto_doses_base_below_setpoint_and_stops_above():
    ctrl, hal, stage, _ = make(mode=proto.MODE_AUTO)
    hal.set_ph(1000)  # setpoint 1.5 by default: too acid, add base
    now = run(ctrl, 0, 20)
    dosing = stage.base_dose
    assert dosing > 0 and hal.enabled
    assert stage.ph == 1000
    hal.set_ph(2500)  # far too high now: the dose winds back to zero
    run(ctrl, now, 200)
    assert stage.base_dose == 0


def test_no_dosing_without_feed_flow():
    ctrl, hal, stage, _ = make(mode=proto.MODE_AUTO)
    hal.set_ph(1000)
    hal.pulses = 0
    run(ctrl, 0, 20)
    assert stage.base_dose == 0
    assert stage.alarms_active & A.AL_NO_FLOW


def test_broken_probe_stops_dosing_within_three_scans():
    ctrl, hal, stage, _ = make(mode=proto.MODE_AUTO)
    hal.set_ph(1000)
    now = run(ctrl, 0, 20)
    assert stage.base_dose > 0
    hal.ph_uv = 1500000  # electrode at the input rail
    now = run(ctrl, now, 3, period=1000)
    now = run(ctrl, now, 1, period=1000)  # the next control scan after the third bad measurement
    assert stage.base_dose == 0
    assert stage.alarms_active & A.AL_PH_FAULT


def test_link_loss_reaches_the_safe_state_within_its_timeout():
    ctrl, hal, stage, config = make([(ID[T.LINK_TIMEOUT], 10)], mode=proto.MODE_AUTO)
    hal.set_ph(1000)
    now = 0
    for n in range(10):  # the host polls for 10 s
        now += 1000
        ctrl.measure(now, 1000)
        ctrl.link_seen(now)
        if n % 2:
            ctrl.control(now, 2000)
    assert stage.mode == proto.MODE_AUTO and stage.base_dose > 0
    silent_from = now
    n = 0
    while stage.mode == proto.MODE_AUTO:
        # the board's loop: a scan a second, control every second scan or when the link expires
        now += 1000
        n += 1
        ctrl.measure(now, 1000)
        if ctrl.link_timed_out(now, 1000) or n % 2 == 0:
            ctrl.control(now, 2000)
        assert now - silent_from <= 10000, "still in auto at the link timeout"
    assert stage.mode == proto.MODE_OFF and stage.base_dose == 0 and hal.enabled is False
    assert stage.alarms_active & A.AL_LINK


def test_dose_cap_per_period_holds_against_a_large_request():
    # 10 mL allowed per 60 s while the loop asks for far more (a peer once pumped 400 mL).
    ctrl, hal, stage, _ = make([(ID[T.DOSE_CAP_PERIOD], 1000), (ID[T.DOSE_PERIOD], 60),
                                (ID[T.PID_KP], 1000000)], mode=proto.MODE_AUTO)
    now = 0
    dosed_ul = 0
    for n in range(300):  # 10 minutes
        hal.set_ph(100 + (n % 3) * 5)  # a live electrode: a still one would be stuck
        now += 2000
        ctrl.measure(now, 2000)
        ctrl.link_seen(now)
        ctrl.control(now, 2000)
        dosed_ul += ctrl.envelope.granted
    assert dosed_ul <= 10 * 10000 + 10000, dosed_ul  # 10 periods of 10 mL (the first may straddle)
    assert dosed_ul >= 5 * 10000, dosed_ul  # the cap limits dosing, it does not stop it
    assert stage.alarms_active & A.AL_DOSE_CUT


def test_control_scan_allocates_nothing():
    ctrl, hal, stage, _ = make(mode=proto.MODE_AUTO)
    hal.set_ph(1200)
    now = run(ctrl, 0, 10)
    micropython.heap_lock()
    try:
        for _ in range(20):
            now += 1000
            ctrl.measure(now, 1000)
            ctrl.link_seen(now)
            ctrl.control(now, 2000)
    finally:
        micropython.heap_unlock()
    assert stage.base_dose > 0


def _feed(cal, hal, uv, scans=5):
    hal.ph_uv = uv
    for _ in range(scans):
        cal.scan(hal)


def test_two_point_ph_calibration_commits_slope_and_offset():
    ctrl, hal, stage, config = make()
    cal = Calibration(ctrl)
    assert cal.step(proto.CAL_SENSOR_PH, proto.CAL_STEP_BEGIN, 0, 0) == 0
    # An electrode 12 mV off at pH 7 with a 97 % slope, in buffers at 25 °C.
    _feed(cal, hal, 12000)
    assert cal.window()[1]  # stable
    assert cal.step(proto.CAL_SENSOR_PH, proto.CAL_STEP_POINT, 7000, 2500) == 0
    _feed(cal, hal, 12000 + 3 * NERNST_25 * 97 // 100)
    assert cal.step(proto.CAL_SENSOR_PH, proto.CAL_STEP_POINT, 4000, 2500) == 0
    assert cal.verdict == proto.CAL_VERDICT_OK
    assert cal.step(proto.CAL_SENSOR_PH, proto.CAL_STEP_COMMIT, 0, 0) == 0
    assert config.get(T.PH_CAL_OFFSET) == 12000
    assert abs(config.get(T.PH_CAL_SLOPE_ACID) - 9700) <= 2
    assert config.get(T.PH_CAL_ID) == 1 and stage.cal_id == 1
    hal.ph_uv = 12000 + 2 * NERNST_25 * 97 // 100
    assert abs(ctrl.probe.ph(hal.ph_uv, 25000) - 5000) <= 2


def test_rejected_calibration_cannot_be_committed_and_abort_restores():
    ctrl, hal, stage, config = make()
    cal = Calibration(ctrl)
    cal.step(proto.CAL_SENSOR_PH, proto.CAL_STEP_BEGIN, 0, 0)
    _feed(cal, hal, 80000)  # 80 mV at pH 7: beyond the ±60 mV reject limit
    cal.step(proto.CAL_SENSOR_PH, proto.CAL_STEP_POINT, 7000, 2500)
    assert cal.verdict == proto.CAL_VERDICT_REJECT
    assert cal.step(proto.CAL_SENSOR_PH, proto.CAL_STEP_COMMIT, 0, 0) == proto.ERR_CALIBRATION_REJECTED
    cal.step(proto.CAL_SENSOR_PH, proto.CAL_STEP_ABORT, 0, 0)
    assert ctrl.probe.cal.offset_uv == 0 and config.get(T.PH_CAL_ID) == 0


def test_flow_meter_calibration_sets_the_k_factor():
    ctrl, hal, stage, config = make()
    cal = Calibration(ctrl)
    cal.step(proto.CAL_SENSOR_FLOW_AQ, proto.CAL_STEP_BEGIN, 0, 0)
    hal.pulses = 50
    for _ in range(10):
        hal.sample()
        cal.scan(hal)
    cal.step(proto.CAL_SENSOR_FLOW_AQ, proto.CAL_STEP_POINT, 1000, 0)  # 500 pulses for 1000 mL
    assert cal.step(proto.CAL_SENSOR_FLOW_AQ, proto.CAL_STEP_COMMIT, 0, 0) == 0
    assert config.get(T.K_FACTOR_AQ) == 5000  # 500 pulses/L in 0.1 units


def test_flow_loops_drive_the_pumps_and_hold_the_oa_ratio():
    # Feed meter reads ~1.07 L/min (8 pulses/s at 450 pulses/L); setpoint 2 L/min: pump up.
    ctrl, hal, stage, config = make([(ID[T.FLOW_AQ_SETPOINT], 2000), (ID[T.OA_RATIO], 1500)],
                                    mode=proto.MODE_AUTO)
    hal.set_ph(1500)
    run(ctrl, 0, 20)
    assert stage.flow_aq > 1000 and stage.aq_pump > 0
    rising = stage.aq_pump
    run(ctrl, 20000, 20)
    assert stage.aq_pump > rising  # the integral keeps pushing while the flow stays low
    # The organic setpoint is 1.5 x the measured aqueous flow, above the ~1.07 L/min it reads.
    assert stage.org_pump > 0


def test_a_faulted_organic_meter_raises_its_alarm_and_holds_its_pump():
    ctrl, hal, stage, config = make([(ID[T.FLOW_AQ_SETPOINT], 2000), (ID[T.OA_RATIO], 1500)],
                                    mode=proto.MODE_AUTO)
    hal.set_ph(1500)
    now = run(ctrl, 0, 20)
    assert not stage.alarms_active & A.AL_FLOW_ORG_FAULT
    held = stage.org_pump
    assert held > 0
    hal.org_pulses = 1000000  # far beyond any meter's pulse rate: a wiring fault, not a flow
    now = run(ctrl, now, 20)
    assert stage.alarms_active & A.AL_FLOW_ORG_FAULT and not stage.alarms_active & A.AL_FLOW_FAULT
    assert stage.org_pump == held  # not wound up on a reading of no flow
    assert stage.aq_pump > 0  # the feed loop, on its own meter, carries on
    hal.org_pulses = None
    run(ctrl, now, 20)
    assert stage.org_pump != held  # the loop acts again on a good reading


def test_orp_loop_doses_reagent_below_its_setpoint_only_when_enabled():
    ctrl, hal, stage, config = make(mode=proto.MODE_AUTO)
    hal.set_ph(1500)
    hal.orp_uv = 500000  # 500 mV, setpoint 680 mV
    run(ctrl, 0, 10)
    assert stage.orp_mv == 500 and stage.reagent_dose == 0  # orp_kp 0: no ORP loop
    config.apply([(ID[T.ORP_KP], 100)])
    ctrl.configure()
    run(ctrl, 10000, 10)
    assert stage.reagent_dose > 0
    hal.orp_uv = 1100000  # at the input rail: a fault, not a value
    run(ctrl, 20000, 4)
    assert stage.reagent_dose == 0 and stage.alarms_active & A.AL_ORP_FAULT


def test_manual_mode_doses_the_manual_output_within_the_caps():
    ctrl, hal, stage, config = make(mode=proto.MODE_MANUAL)
    ctrl.pid.manual = 1000  # 10 mL/min
    hal.set_ph(1500)
    run(ctrl, 0, 40)
    assert stage.base_dose == 1000
    hal.pulses = 0  # no feed flow: the envelope still refuses, whatever the mode
    run(ctrl, 40000, 6)
    assert stage.base_dose == 0


def test_alarms_are_queued_as_numbered_events_and_latch_until_acknowledged():
    ctrl, hal, stage, config = make(mode=proto.MODE_AUTO)
    hal.set_ph(1500)
    now = run(ctrl, 0, 6)
    before = ctrl.events.latest
    hal.set_ph(2300)  # 0.8 pH above setpoint: deviation warn and alarm
    now = run(ctrl, now, 4)
    assert stage.alarms_active & A.AL_DEV_ALARM
    assert ctrl.events.latest > before
    hal.set_ph(1500)
    now = run(ctrl, now, 6)
    assert not stage.alarms_active & A.AL_DEV_ALARM  # gone: no longer active,
    assert stage.alarms_unacked & A.AL_DEV_ALARM  # but not yet acknowledged
    ctrl.ack(A.AL_DEV_WARN | A.AL_DEV_ALARM, now)
    assert not stage.alarms_unacked & (A.AL_DEV_WARN | A.AL_DEV_ALARM)


def test_setpoint_change_keeps_the_running_controller_and_its_integral():
    ctrl, hal, stage, config = make(mode=proto.MODE_AUTO)
    hal.set_ph(1400)
    now = run(ctrl, 0, 30)
    pid = ctrl.pid
    integral = pid.i
    assert integral != 0
    config.apply([(ID[T.PH_SETPOINT], 1700)])
    ctrl.configure()
    assert ctrl.pid is pid and pid.i == integral and pid.setpoint == 1700
    before = pid.p
    run(ctrl, now, 2)
    assert pid.p > before  # the proportional kick of the larger error comes through, not tracked away


def test_setpoint_step_with_a_curve_doses_the_base_for_it_and_waits_for_the_electrode():
    # curve 1.0 -> 2.0 pH over 10 -> 30 mL/L feed (0.1 mL units); a 60 s holdup, a 10 s electrode
    curve = [(ID[T.TITRATION_POINTS], 2), (ID[T.TITRATION_PH_0], 1000), (ID[T.TITRATION_BASE_0], 100),
             (ID[T.TITRATION_PH_0 + 1], 2000), (ID[T.TITRATION_BASE_0 + 1], 300),
             (ID[T.FEEDFORWARD], 1), (ID[T.PH_DEADBAND], 0), (ID[T.BASE_RATE_LIMIT], 65535)]
    for mix in (60, 0):
        ctrl, hal, stage, config = make(curve + [(ID[T.MIX_TIME], mix), (ID[T.PH_RESPONSE], 10)],
                                        mode=proto.MODE_AUTO)
        hal.set_ph(1500)
        now = run(ctrl, 0, 40)
        before = stage.base_dose
        ff = ctrl.pid.ff
        assert abs(ff - stage.flow_aq * 200 // 100) <= 2  # the curve's dose at the setpoint
        config.apply([(ID[T.PH_SETPOINT], 1800)])
        ctrl.configure()
        now = run(ctrl, now, 2)
        step = stage.base_dose - before
        moved = ctrl.pid.ff - ff
        assert abs(moved - stage.flow_aq * 60 // 100) <= 2  # the dose follows the setpoint at once
        if mix:
            # 6 mL/L more at ~1 L/min for 60 s: ~6 mL within this 2 s scan, ~170 mL/min on top
            assert step > moved + 15000 and ctrl.pid.error == 0
            now = run(ctrl, now, 2)
            assert stage.base_dose - before == moved and ctrl.pid.error == 0  # waiting
            run(ctrl, now, 10)
            assert ctrl.pid.error > 0  # 10 s on, the electrode (still at 1.5) is acted on
        else:
            assert step < moved + 5000 and ctrl.pid.error > 0  # the new dose and a P kick only


def test_acknowledging_a_dose_trip_rearms_dosing_only_below_the_trip():
    ctrl, hal, stage, config = make(mode=proto.MODE_AUTO)
    now = 0
    for k in range(6):
        hal.set_ph(6000 + k)  # above the 5.5 trip
        now = run(ctrl, now, 2)
    assert ctrl.envelope.tripped and stage.alarms_active & A.AL_DOSE_TRIP
    ctrl.ack(A.AL_DOSE_TRIP, now)
    assert ctrl.envelope.tripped  # still above the trip: stays latched
    hal.set_ph(1400)
    for k in range(8):
        hal.set_ph(1400 + k % 3)
        now = run(ctrl, now, 2)
    ctrl.ack(A.AL_DOSE_TRIP, now)
    assert not ctrl.envelope.tripped
