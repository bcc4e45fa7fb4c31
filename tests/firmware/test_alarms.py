"""Tests for control.alarms: each alarm, latching and acknowledge, and the events it reports."""

from control import alarms as A


def _recording(**kw):
    """(alarms, events): every event reported as (now_ms, kind, bits), in order."""
    events = []
    return A.Alarms(lambda kind, bits, now_ms: events.append((now_ms, kind, bits)), **kw), events


def test_deviation_warn_and_alarm():
    al = A.Alarms()  # 0.3 pH warn, 0.5 pH alarm
    assert al.update(0, 2000, True, 2000, 0) == 0
    assert al.update(1000, 2299, True, 2000, 0) == 0
    assert al.update(2000, 2300, True, 2000, 0) == A.AL_DEV_WARN
    assert al.update(3000, 1500, True, 2000, 0) == A.AL_DEV_WARN | A.AL_DEV_ALARM
    assert al.active == A.AL_DEV_WARN | A.AL_DEV_ALARM


def test_deviation_hysteresis():
    al = A.Alarms(hyst=20)
    al.update(0, 2300, True, 2000, 0)
    al.update(1000, 2285, True, 2000, 0)
    assert al.active & A.AL_DEV_WARN  # inside the hysteresis band: still on
    al.update(2000, 2280, True, 2000, 0)
    assert not al.active & A.AL_DEV_WARN


def test_deviation_suppressed_outside_auto():
    al = A.Alarms()
    al.dev_enabled = False
    assert al.update(0, 3000, True, 2000, 0) == 0


def test_absolute_high_and_low():
    al = A.Alarms(high_mph=3000, low_mph=500)
    al.dev_enabled = False
    assert al.update(0, 3000, True, 2000, 0) == A.AL_PH_HIGH
    al.ack(A.AL_PH_HIGH, 0)
    assert al.update(1000, 2990, True, 2000, 0) == A.AL_PH_HIGH  # hysteresis
    assert al.update(2000, 2980, True, 2000, 0) == 0
    assert al.update(3000, 500, True, 2000, 0) == A.AL_PH_LOW
    assert al.update(4000, 515, True, 2000, 0) == A.AL_PH_LOW
    al.ack(A.AL_PH_LOW, 4000)
    assert al.update(5000, 520, True, 2000, 0) == 0


def test_cleared_alarm_stays_unacknowledged_but_not_active():
    al = A.Alarms()
    al.update(0, 2600, True, 2000, 0)
    assert al.update(1000, 2000, True, 2000, 0) == 0  # the condition went: not active
    assert al.active == 0 and al.unacked == A.AL_DEV_WARN | A.AL_DEV_ALARM
    assert al.ack(A.AL_DEV_WARN, 2000) == 0
    assert al.unacked == A.AL_DEV_ALARM
    al.ack(0xFFFF, 3000)
    assert al.unacked == 0


def test_ack_while_active_keeps_it_active():
    al = A.Alarms()
    al.update(0, 2600, True, 2000, 0)
    assert al.ack(0xFFFF, 0) == A.AL_DEV_WARN | A.AL_DEV_ALARM
    assert al.unacked == 0
    assert al.update(1000, 2000, True, 2000, 0) == 0  # acknowledged and gone: cleared
    assert al.unacked == 0


def test_isa_18_2_states_of_one_alarm():
    # normal -> active unacked -> active acked -> normal; then active unacked -> cleared unacked
    # -> normal, and a return while unacknowledged is active unacked again.
    al = A.Alarms(high_mph=3000, low_mph=500)
    al.dev_enabled = False
    hi = A.AL_PH_HIGH
    states = []

    def state():
        states.append((al.active & hi != 0, al.unacked & hi != 0))
    al.update(0, 2000, True, 2000, 0); state()
    al.update(1000, 3500, True, 2000, 0); state()
    al.ack(hi, 1500); state()
    al.update(2000, 2000, True, 2000, 0); state()
    al.update(3000, 3500, True, 2000, 0); state()
    al.update(4000, 2000, True, 2000, 0); state()
    al.update(5000, 3500, True, 2000, 0); state()
    al.update(6000, 2000, True, 2000, 0); state()
    al.ack(hi, 6500); state()
    assert states == [(False, False), (True, True), (True, False), (False, False), (True, True),
                      (False, True), (True, True), (False, True), (False, False)]


def test_sensor_faults_pass_through():
    al = A.Alarms()
    f = A.AL_PH_FAULT | A.AL_FLOW_FAULT | A.AL_TEMP_FAULT | A.AL_ORP_FAULT | A.AL_PH_STUCK
    assert al.update(0, 2000, False, 2000, f) == f
    assert al.update(1000, 2000, True, 2000, A.AL_DOSE_TRIP | A.AL_DOSE_CUT) & A.AL_DOSE_TRIP
    # bits the alarm block computes itself cannot be forced from outside
    al2 = A.Alarms()
    assert al2.update(0, 2000, True, 2000, A.AL_LINK | A.AL_DEV_ALARM) == 0


def test_invalid_ph_holds_ph_alarms():
    al = A.Alarms()
    al.update(0, 6000, True, 2000, 0)
    held = al.active
    assert held & A.AL_PH_HIGH and held & A.AL_DEV_ALARM
    assert al.update(1000, 0, False, 2000, A.AL_PH_FAULT) == held | A.AL_PH_FAULT


def test_link_loss():
    al = A.Alarms(link_timeout_ms=10000)
    al.update(0, 2000, True, 2000, 0)  # the timeout runs from the first scan after reset
    assert al.update(10000, 2000, True, 2000, 0) == 0
    assert al.update(10001, 2000, True, 2000, 0) == A.AL_LINK
    al.link_seen(12000)
    assert al.update(13000, 2000, True, 2000, 0) == 0  # heard again: no longer active
    assert al.unacked == A.AL_LINK  # but not acknowledged yet
    al.ack(A.AL_LINK, 13000)
    assert al.update(14000, 2000, True, 2000, 0) == 0 and al.unacked == 0


def test_link_loss_holds_until_heard_again():
    al = A.Alarms(link_timeout_ms=10000)
    al.update(0, 2000, True, 2000, 0)
    al.update(20000, 2000, True, 2000, 0)
    al.ack(A.AL_LINK, 20000)
    assert al.update(5000, 2000, True, 2000, 0) == A.AL_LINK  # a wrapped clock does not clear it
    al.link_seen(30000)
    assert al.update(31000, 2000, True, 2000, 0) == 0


def test_each_change_is_reported_in_order():
    al, ev = _recording()
    al.update(100, 2400, True, 2000, 0)
    al.update(200, 2000, True, 2000, 0)
    al.ack(A.AL_DEV_WARN, 300)
    al.ack(A.AL_DEV_WARN, 400)  # nothing left to acknowledge: no event
    al.update(500, 2000, True, 2000, 0)  # no change: no event
    assert ev == [(100, A.EV_RAISE, A.AL_DEV_WARN), (200, A.EV_CLEAR, A.AL_DEV_WARN),
                  (300, A.EV_ACK, A.AL_DEV_WARN)]


def test_one_event_carries_all_bits_raised_together():
    al, ev = _recording()
    al.update(0, 6000, True, 2000, A.AL_FLOW_FAULT)
    assert len(ev) == 1 and ev[0][2] == A.AL_DEV_WARN | A.AL_DEV_ALARM | A.AL_PH_HIGH | A.AL_FLOW_FAULT


def test_events_need_no_listener():
    al = A.Alarms()
    assert al.update(0, 6000, True, 2000, 0) and al.ack(0xFFFF, 0)


def test_bad_config_raises():
    for kw in (dict(dev_warn=600, dev_alarm=500), dict(link_timeout_ms=0), dict(high_mph=1, low_mph=2)):
        try:
            A.Alarms(**kw)
        except ValueError:
            continue
        assert False, kw


def test_alarm_bits_are_the_protocol_bits():
    import proto
    assert A.AL_DEV_WARN == proto.ALARM_PH_DEVIATION_WARN and A.AL_DEV_ALARM == proto.ALARM_PH_DEVIATION_ALARM
    assert A.AL_PH_HIGH == proto.ALARM_PH_HIGH and A.AL_PH_LOW == proto.ALARM_PH_LOW
    assert A.AL_PH_FAULT == proto.ALARM_PH_SENSOR_FAULT and A.AL_PH_STUCK == proto.ALARM_PH_STUCK
    assert A.AL_ORP_FAULT == proto.ALARM_ORP_FAULT and A.AL_FLOW_FAULT == proto.ALARM_FLOW_AQ_FAULT
    assert A.AL_FLOW_ORG_FAULT == proto.ALARM_FLOW_ORG_FAULT and A.AL_NO_FLOW == proto.ALARM_NO_FLOW
    assert A.AL_DOSE_CUT == proto.ALARM_DOSE_CAPPED and A.AL_LINK == proto.ALARM_LINK_LOST
    assert A.AL_TEMP_FAULT == proto.ALARM_TEMPERATURE_FAULT and A.AL_DOSE_TRIP == proto.ALARM_DOSE_TRIP


def test_event_kinds_are_the_protocol_event_codes():
    import proto
    assert (A.EV_RAISE, A.EV_CLEAR, A.EV_ACK) == (proto.EV_RAISED, proto.EV_CLEARED, proto.EV_ACKNOWLEDGED)
