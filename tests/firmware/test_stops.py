"""Every stop leaves every output off, on the real-board HAL against test_hal_mcu's fake
`machine`: Ctrl-C in the loop, an exception inside a scan, and the watchdog_reset alarm."""
import struct
import sys

import fwlib_machine as fake
from fwlib_machine import _hal

HEAPSIZE = "256K"  # the whole application, as on a board


def _app_on(module):
    """The stage application on the real-board HAL (fake machine), its outputs driven on."""
    import proto
    from app import App
    from link import make_buffers
    from ring import RecordRing
    hal, board = _hal(module)
    app = App(hal, 1, "T-1", RecordRing(8, proto.BACKLOG_RECORDS_SIZE),
              RecordRing(8, proto.EVENTS_EVENTS_SIZE), make_buffers())
    st = app.stage
    st.base_dose, st.aq_pump, st.org_pump, st.valves = 2000, 120, 100, 1
    hal.write_outputs(st, True)
    return app, hal, board


def _outputs(board):
    """(enable, valve, base, acid, aq, org) as the pins are now."""
    out = board["digital_out"]
    pwm = board["pwm_out"]
    return (fake.LOG.pins[out["outputs_enable"]].level, fake.LOG.pins[out["valve"]].level) + tuple(
        fake.LOG.pwms[pwm[n]].duty for n in ("base_pump", "acid_pump", "aq_pump", "org_pump"))


def test_ctrl_c_in_the_loop_leaves_every_output_off():
    app, hal, board = _app_on("board_rp2_pico")
    assert _outputs(board)[0] == 1 and max(_outputs(board)[2:]) > 0  # dosing, as before the stop

    def interrupted():
        raise KeyboardInterrupt
    app.link.poll = interrupted
    try:
        app.run()
        assert False, "run() returned"
    except KeyboardInterrupt:
        pass
    assert _outputs(board) == (0, 0, 0, 0, 0, 0)


def test_an_exception_in_a_scan_puts_the_stage_off_with_controller_fault_and_the_loop_goes_on():
    import proto
    app, hal, board = _app_on("board_esp32_devkitc")
    app.controller.set_mode(proto.MODE_AUTO)
    seen = []

    def broken(now, period):
        raise ValueError("a damaged sensor module")

    def poll():
        seen.append(_outputs(board))
        if len(seen) == 3:
            raise KeyboardInterrupt  # end the test's run: the loop went on after the fault
        return 0
    app.controller.measure = broken
    app.link.poll = poll
    try:
        app.run()
    except KeyboardInterrupt:
        pass
    assert seen[1] == (0, 0, 0, 0, 0, 0) and seen[2] == seen[1]  # off within the scan, and held
    assert app.stage.mode == proto.MODE_OFF
    assert app.stage.alarms_active & proto.ALARM_CONTROLLER_FAULT and app.stage.alarms_unacked & proto.ALARM_CONTROLLER_FAULT
    buf = bytearray(proto.EVENTS_EVENTS_SIZE * 8)
    n = app.events.read_into(buf, 0, 0, 8)
    events = [tuple(struct.unpack_from(proto.EVENTS_EVENTS_FMT, buf, i * proto.EVENTS_EVENTS_SIZE))
              for i in range(n)]
    faults = [e for e in events if e[2] == proto.EV_RAISED and e[3] == 13]
    assert len(faults) == 1 and faults[0][4] == 1, events  # once, naming the measurement scan (app.PART_MEASURE)
    # A mode commanded by the host clears the fault (latched until acknowledged).
    app.controller.set_mode(proto.MODE_AUTO)
    assert not app.controller.faulted


def test_a_watchdog_reset_raises_its_alarm_at_boot():
    import proto
    sys.modules["machine"].cause = 3
    try:
        app, hal, board = _app_on("board_pyboard_v11")
    finally:
        sys.modules["machine"].cause = 1
    # a reset is an event, not a standing condition: raised and unacknowledged, never active
    assert app.stage.alarms_unacked & proto.ALARM_WATCHDOG_RESET and not app.stage.alarms_active & proto.ALARM_WATCHDOG_RESET
    app.controller.ack(proto.ALARM_WATCHDOG_RESET, 0)
    assert not app.stage.alarms_unacked & proto.ALARM_WATCHDOG_RESET


def test_the_maintenance_lease_resets_the_board_once_its_time_is_up():
    import lease
    fake.LOG.timers = []
    lease.arm(600)
    timer = fake.LOG.timers[-1]
    assert (timer.id, timer.mode, timer.period, timer.running) == (-1, fake.Timer.ONE_SHOT, 600000, True)
    try:
        timer.callback(timer)  # its time is up
        assert False, "no reset"
    except SystemExit:  # the fake machine.reset()
        pass
    lease.arm(10)  # a soft reset's renewal starts it again
    assert not timer.running and fake.LOG.timers[-1].period == 10000 and fake.LOG.timers[-1].running
    lease.cancel()  # main.py ends the session
    assert not fake.LOG.timers[-1].running
    fake.Timer.hardware_only = True
    try:
        lease.arm(5)
        assert fake.LOG.timers[-1].id == 0 and fake.LOG.timers[-1].running  # a hardware timer there
    finally:
        fake.Timer.hardware_only = False
        lease.cancel()


def test_uptime_counts_on_past_the_tick_wrap():
    # ticks_ms wraps every 2^30 ms (12.4 days) and ticks_diff spans only half that: a month of
    # uptime read hour by hour (scans read it every second) must still count every second.
    import time
    app, hal, board = _app_on("board_rp2_pico")
    now = [app.up_ms]
    hal.ticks_ms = lambda: now[0]
    for day in range(1, 31):
        for _ in range(24):
            now[0] = time.ticks_add(now[0], 3600 * 1000 + 7)  # 7 ms more each hour: kept, not lost
            app.uptime_s()
        assert app.uptime_s() == day * 86400 + day * 24 * 7 // 1000, (day, app.uptime_s())
