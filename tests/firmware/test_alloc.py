"""Zero-allocation proof for every per-scan method: run it under micropython.heap_lock()."""

import gc
from array import array
import micropython

from control import alarms, dosing, pid
from sensors import checks, flow, flow_loop, orp, ph, temperature

_CALLS = 300


def _no_alloc(scan, calls=_CALLS):
    # warm up (first calls may intern or grow nothing, but make sure), then any allocation raises
    scan(0)
    scan(1)
    gc.collect()
    micropython.heap_lock()
    try:
        for k in range(calls):
            scan(k)
    finally:
        micropython.heap_unlock()


def _mem_delta(scan, calls=50):
    # the same measured with gc.mem_alloc() (16-byte blocks), for the report
    scan(0)
    gc.collect()
    gc.disable()
    try:
        before = gc.mem_alloc()
        for k in range(calls):
            scan(k)
        return gc.mem_alloc() - before
    finally:
        gc.enable()


def test_ph_conversion():
    p = ph.Probe()
    p.cal.acid_slope = 9800
    p.cal.base_slope = 9600
    p.cal.offset_uv = 5000
    inputs = (-400000, -59160, 0, 5000, 177480, 2000000, -1020000)

    def scan(k):
        p.ph(inputs[k % 7], 15000 + (k & 31) * 1000)
        ph.nernst_uv(k * 1000)

    _no_alloc(scan)
    assert _mem_delta(scan) == 0


def test_ph_calibration_and_buffers():
    p = ph.Probe()
    bufs = (ph.BUF_7, ph.BUF_4, ph.BUF_10)
    es = (3000, 176000, -176000)

    def scan(k):
        i = k % 3
        p.calibrate(bufs[i], es[i] + (k & 7), 20000 + i * 1000, k, (7020, 4000, 10060)[i])
        p.calibrate(bufs[i], es[i] + (k & 7), 20000 + i * 1000, k)

    _no_alloc(scan)


def test_orp_read():
    o = orp.Orp()
    inputs = (680000, -680000, 1019000, 0, 2000000)

    def scan(k):
        o.read(inputs[k % 5])

    _no_alloc(scan)


def test_flow_pulse_and_loop():
    m = flow.PulseFlow(450, buckets=5)
    f = flow_loop.LoopFlow(10000)
    pulses = (0, 7, 8, 15, 2000, -1)
    uas = (0, 3700, 4000, 12000, 20500, 20800, 22000)

    def scan(k):
        m.add(pulses[k % 6], 1000 + (k & 3) * 500)
        f.read(uas[k % 7])

    _no_alloc(scan)
    assert _mem_delta(scan) == 0


def test_temperature_read():
    t = temperature.Temperature(1000)
    t100 = temperature.Temperature(100)
    rs = (1000000, 1097347, 0, 10 ** 9, 1385055)

    def scan(k):
        t.read(rs[k % 5])
        t100.read(rs[k % 5] // 10)

    _no_alloc(scan)


def test_signal_checks():
    c = checks.SignalCheck(stuck_ms=20000)
    values = (7000, 7001, 7000, 9000, 7001, 20000, 7000)

    def scan(k):
        c.update(values[k % 7], k % 11 != 0, k * 1000, k)

    _no_alloc(scan, 600)


def test_pid_all_modes():
    c = pid.Pid(kp=2000, ti_ms=60000, td_ms=5000, rate_max=300, ff_gain=1000)
    pvs = (1500, 2000, 2600, 1970, -5000, 30000)
    modes = (pid.MODE_AUTO, pid.MODE_MANUAL, pid.MODE_HOLD, pid.MODE_OFF)
    c.set_setpoint(2000)

    def scan(k):
        if k % 50 == 0:
            c.set_mode(modes[(k // 50) & 3])
            c.set_setpoint(1900 + (k & 255))
        c.update(pvs[k % 6], 1000 + (k & 7) * 500, 1000 + k)

    _no_alloc(scan, 800)
    assert _mem_delta(scan) == 0


def test_pid_with_titration_curve():
    curve = pid.TitrationCurve(((690, 0), (1180, 4000), (2060, 7000), (7000, 7600)))
    c = pid.Pid(kp=2000, ti_ms=60000, curve=curve, ff_gain=1)
    c.mix_s = 90
    c.wait_ms = 20000
    c.set_setpoint(2000)
    c.set_mode(pid.MODE_AUTO)
    pvs = (1000, 1900, 2000, 4000, 8000, 100)

    def scan(k):
        if k % 40 == 0:
            c.set_setpoint(1500 + (k & 511))  # steps in auto: the step base and the wait run too
        c.update(pvs[k % 6], 2000, 1000)
        curve.base_at(k * 37)

    _no_alloc(scan)
    assert _mem_delta(scan) == 0


def test_dosing_grant_every_path():
    e = dosing.Envelope(10000, 300000, 600000, min_off_ms=500, min_flow_ml_min=100,
                        bucket_ms=10000, window_ms=60000)
    e.enabled = True

    def scan(k):
        now = k * 1000
        if k % 97 == 0:
            e.reset_trip(2000)
        ph_mph = 6000 if k % 89 == 0 else 2000
        e.grant(400000 if k & 1 else 3000, now, ph_mph, k % 13 != 0, now - (k % 7) * 1000,
                (k % 17) * 100, k % 19 != 0)
        dosing.rate_to_dose(k * 10, 120000, 2000)

    _no_alloc(scan, 1000)
    assert _mem_delta(scan) == 0


def test_alarm_update_ack_events():
    seen = array("i", [0])

    def on_event(kind, bits, now_ms):
        seen[0] += 1

    al = alarms.Alarms(on_event)
    phs = (2000, 2400, 2600, 6000, 300, 2000)

    def scan(k):
        al.update(k * 1000, phs[k % 6], k % 5 != 0, 2000, alarms.AL_FLOW_FAULT if k & 8 else 0)
        if k % 3 == 0:
            al.ack(0xFFFF, k * 1000)
        if k % 40 == 0:
            al.link_seen(k * 1000)

    _no_alloc(scan, 600)
    assert seen[0] > 100  # events were reported while the heap was locked
    assert _mem_delta(scan) == 0


def test_heap_lock_catches_allocation():
    # the harness itself: an allocating scan must fail under the lock
    box = [0]

    def scan(k):
        box[0] = [k]

    try:
        _no_alloc(scan, 3)
    except MemoryError:
        return
    assert False
