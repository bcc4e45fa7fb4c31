"""Fault section `link_loss`: the host goes silent; every board must reach its configured safe
state (outputs off, link_lost alarm) within its link timeout, by the board's own clock."""
import time

from sxproto import config_items, messages

from ..buslink import BusClient
from ..sim.simulator import running
from ..bench import Figure

TIMEOUT_S = 3
LINK_LOST_BIT = next(bit for bit, name in messages.ALARMS.items() if name == "link_lost")
EV_RAISED = next(code for code, name in messages.EVENT_CODES.items() if name == "raised")


def _write(bus, addr, name, value):
    items = [dict(item=config_items.BY_NAME[name].id, value=value)] + \
        [dict(item=0, value=0)] * (messages.CONFIG_WRITE_ITEMS - 1)
    bus.request(addr, messages.CONFIG_WRITE, dict(count=1, items=items), expect=messages.CONFIG_ACK)


def run(short):
    stages = 2 if short else 4
    late = unsafe = 0
    worst = 0.0
    with running(stages) as sim:
        with BusClient(sim.bus.path) as bus:
            for b in sim.boards:
                _write(bus, b.addr, "link_timeout", TIMEOUT_S)
                bus.request(b.addr, messages.SET_MODE, dict(mode=2, manual_output=0xFFFF),
                            expect=messages.MODE_ACK)
            last_heard = {}
            for b in sim.boards:
                last_heard[b.addr] = bus.request(b.addr, messages.GET_TELEMETRY,
                                                 expect=messages.TELEMETRY).values["time_s"]
            time.sleep(TIMEOUT_S + 2.5)  # the host is silent: that is the fault under test
            for b in sim.boards:
                tel = bus.request(b.addr, messages.GET_TELEMETRY, expect=messages.TELEMETRY).values
                events = bus.request(b.addr, messages.EVENTS_READ, dict(since=0), expect=messages.EVENTS).values
                raised = [e["time_s"] for e in events["events"][:events["count"]]
                          if e["code"] == EV_RAISED and e["alarm"] == LINK_LOST_BIT]
                safe = tel["mode"] == 0 and tel["base_dose"] == 0 and tel["alarms_active"] >> LINK_LOST_BIT & 1
                unsafe += not safe
                if not raised:
                    late += 1
                    continue
                took = raised[-1] - last_heard[b.addr]
                worst = max(worst, took)
                late += took > TIMEOUT_S + 1  # board time has 1 s resolution
    return [
        Figure("faults.link_loss.boards_not_safe", unsafe, "", ("==", 0),
               "%d boards, link_timeout %d s: mode off, base dose 0, link_lost alarm" % (stages, TIMEOUT_S)),
        Figure("faults.link_loss.late", late, "", ("==", 0), "boards whose link_lost came after timeout + 1 s"),
        Figure("faults.link_loss.worst_s", worst, "s", note="silence until link_lost, board clock (1 s steps)"),
    ]
