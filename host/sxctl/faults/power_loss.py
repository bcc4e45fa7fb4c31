"""Fault section `power_loss`: a board's power cut (SIGKILL of its interpreter) at random moments,
many of them while a config write is being stored. After it comes back, every config item is
the old or the new value, the board is in its safe state (mode off, no dose), and it then
takes the host's command back to control."""
import random
import signal
import time

from sxproto import codec, config_items, messages

from ..bench import Figure
from ..buslink import BusClient, NoAnswer
from ..sim.simulator import running

ADDR = 1
# items whose whole range satisfies the cross-field rules, so any value is a valid write
ITEMS = [config_items.BY_NAME[n] for n in ("pid_kp", "pid_ti", "base_max", "flow_aq_setpoint",
                                          "orp_setpoint", "temperature_fixed", "k_factor_aq", "dose_cap_hour")]


def _read_all(bus):
    return [bus.request(ADDR, messages.CONFIG_READ, dict(item=i.id), expect=messages.CONFIG_VALUE).values["value"]
            for i in ITEMS]


def _hello(bus, timeout=20.0):
    deadline = time.monotonic() + timeout
    while True:
        try:
            return bus.hello(ADDR)
        except NoAnswer:
            if time.monotonic() > deadline:
                raise


def run(short):
    cuts = 10 if short else 60
    rng = random.Random(3)
    corrupt = unsafe = uncontrolled = kept_new = 0
    with running(1) as sim:
        board = sim.boards[0]
        with BusClient(sim.bus.path, timeout=0.3, retries=1) as bus:
            for n in range(cuts):
                bus.request(ADDR, messages.SET_MODE, dict(mode=2, manual_output=0xFFFF), expect=messages.MODE_ACK)
                old = _read_all(bus)
                new = [rng.randint(i.lo, i.hi) for i in ITEMS]
                items = [dict(item=i.id, value=v) for i, v in zip(ITEMS, new)]
                wire = codec.encode(ADDR, 0, bus._next_seq(), messages.CONFIG_WRITE,
                                    dict(count=len(items), items=items), lead=True)
                pid = board.proc.pid
                bus.serial.write(wire)
                time.sleep(rng.uniform(0.0, 0.012))  # the write is being stored about now
                board.proc.send_signal(signal.SIGKILL)
                while board.proc is None or board.proc.pid == pid:  # the bridge powers it up again
                    time.sleep(0.01)
                info = _hello(bus)
                got = _read_all(bus)
                corrupt += got != old and got != new
                kept_new += got == new
                tel = bus.request(ADDR, messages.GET_TELEMETRY, expect=messages.TELEMETRY).values
                unsafe += tel["mode"] != 0 or tel["base_dose"] != 0 or tel["aq_pump"] != 0
                ack = bus.request(ADDR, messages.SET_MODE, dict(mode=2, manual_output=0xFFFF),
                                  expect=messages.MODE_ACK).values
                uncontrolled += ack["mode"] != 2 or info["alarms"] >> 13 & 1  # controller_fault
    return [
        Figure("faults.power_cuts", cuts, "", note="SIGKILL within 12 ms of a config write of %d items: "
               "%d came back with the new config, %d with the old" % (len(ITEMS), kept_new, cuts - kept_new)),
        Figure("faults.power_cut_config_corrupt", corrupt, "", ("==", 0), "configs neither the old nor the new"),
        Figure("faults.power_cut_not_safe", unsafe, "", ("==", 0), "boards not in mode off with outputs off after power-up"),
        Figure("faults.power_cut_not_controlled", uncontrolled, "", ("==", 0),
               "boards that did not take auto again (or ran their fail-safe firmware)"),
    ]
