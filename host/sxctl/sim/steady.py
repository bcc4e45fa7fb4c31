"""A steady plant in real time, for the web view's tests and bench: writes each virtual board's
SENSE records over its plant link (docs/plant-link.md) from signals a caller sets and changes,
e.g. a pH electrode taken to the rail. Boards from `sxctl sim --plant-link`."""
import os
import threading
import time
import tty

from . import instruments
from .plantlink import sense_record

RAIL_UV = 1_100_000  # beyond the ±1020 mV input range: the board reads a pH sensor fault
TICK_S = 0.1


class Stage:
    def __init__(self, ph, orp_mv=250.0, temp_c=25.0, flow_aq=1.2, flow_org=0.9):
        self.ph, self.orp_mv, self.temp_c = ph, orp_mv, temp_c
        self.flow_aq, self.flow_org = flow_aq, flow_org
        self.ph_fault = False
        self.paused = False  # no SENSE: the board's clock stops, so it records nothing new
        self.meters = instruments.FlowMeter(450.0), instruments.FlowMeter(450.0)


class PlantDriver:
    """One thread ticking every TICK_S: a SENSE to every board (its clock is ours), its ACTs read
    and dropped."""

    def __init__(self, ports, stages):
        self.stages = stages  # addr -> Stage
        self.fds = {}
        for b in ports["boards"]:
            fd = os.open(b["plant"], os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
            tty.setraw(fd)
            self.fds[b["addr"]] = fd
        self.stop_event = threading.Event()
        self.start = time.monotonic()
        self.thread = threading.Thread(target=self._run, name="plant", daemon=True)
        self.thread.start()

    def _run(self):
        first = True
        while not self.stop_event.is_set():
            t_ms = int((time.monotonic() - self.start) * 1000)
            for addr, fd in self.fds.items():
                s = self.stages[addr]
                if s.paused:
                    continue
                dt = 0.0 if first else TICK_S
                ph_uv = RAIL_UV if s.ph_fault else instruments.electrode_uv(s.ph, s.temp_c)
                record = sense_record(t_ms, ph_uv=ph_uv, orp_uv=s.orp_mv * 1000, rtd_mohm=instruments.pt1000_mohm(s.temp_c),
                                      pulses_aq=s.meters[0].count(s.flow_aq, dt), pulses_org=s.meters[1].count(s.flow_org, dt))
                try:
                    os.write(fd, record)
                    os.read(fd, 4096)
                except BlockingIOError:
                    pass
                except OSError:  # the boards are gone (the sim stopped first)
                    return
            first = False
            self.stop_event.wait(TICK_S)

    def stop(self):
        self.stop_event.set()
        self.thread.join(5)
        for fd in self.fds.values():
            os.close(fd)
