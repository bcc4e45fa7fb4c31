"""A plant run: virtual boards driven by a plant model over their plant links, watched over the bus.

    session = Session(plants.load("sx"), duration_s=3600, speed=None)   # None: lock-step
    result = session.run()

The run, as a host and a plant would do it:
1. every board gets a plant link with its first SENSE (t = 0) waiting, then starts; a board
   that answered it runs its loop on the plant's clock;
2. the host checks every board (HELLO), pushes each stage's config items (the `sxctl config
   apply` code path: CONFIG_WRITE, rules kept, read back) and sets the mode: boards boot in off;
3. tick after tick: the plant's true values go through each board's instruments into a SENSE,
   the boards answer ACT with their outputs, the model advances by the tick;
4. every poll_s simulated seconds the host does one round of the `sxctl log` logger
   (logger.py: backlog, events, config snapshots) on every board, which also keeps the boards'
   link_timeout (counted on the plant's clock) from firing. The logger's clock is the simulated
   one (it syncs the boards' clocks to it), and its sink keeps every record in memory and, with
   `store=`, in an `sxctl log` SQLite file. In lock-step the polls sit between ticks; paced,
   they take their share of each tick's time.
Scheduled events (plant disturbances, setpoint changes, the switch from manual to auto) happen
at their simulated time. Lock-step runs are deterministic: the same plant gives the same run.
"""
import dataclasses
import time

from sxproto import messages

from .. import boards as boards_mod
from .. import store as store_mod
from ..buslink import BusClient
from ..errors import SxctlError
from ..logger import Logger
from . import plantlink
from .bus import Bus
from .instruments import Instruments
from .simulator import Simulator

MODE = {name: number for number, name in messages.MODES.items()}
BUMPLESS = 0xFFFF


class Collector(store_mod.Sink):
    """The logger's sink in a plant run: every telemetry record as a dict by board address,
    with time_s in simulated seconds; everything also goes on to `tee` (an SQLiteStore) if given."""

    def __init__(self, addrs, epoch0, tee=None):
        self.records = {addr: [] for addr in addrs}
        self.gaps = []  # (stage, epoch, kind, first, last, time): what the boards no longer held
        self.epoch0 = epoch0
        self.tee = tee
        self._batch = []  # (list, item) appended at flush: a batch the tee refused is written again

    def resume(self):
        return self.tee.resume() if self.tee else {}

    def write_telemetry(self, rows):
        for row in rows:
            rec = dict(zip(store_mod.TELEMETRY_COLUMNS, row))
            rec["time_s"] = rec["time"] - self.epoch0
            self._batch.append((self.records[rec["stage"]], rec))
        self._tee("write_telemetry", rows)

    def _tee(self, name, arg):
        if self.tee is not None:
            getattr(self.tee, name)(arg)

    def write_epoch(self, row):
        self._tee("write_epoch", row)

    def write_events(self, rows):
        self._tee("write_events", rows)

    def write_config(self, rows):
        self._tee("write_config", rows)

    def write_gap(self, row):
        self._batch.append((self.gaps, row))
        self._tee("write_gap", row)

    def flush(self):
        if self.tee is not None:
            self.tee.flush()
        for to, item in self._batch:
            to.append(item)
        self._batch = []

    def rollback(self):
        self._batch = []
        if self.tee is not None:
            self.tee.rollback()


@dataclasses.dataclass
class Trace:
    """What the simulator knows at every tick: true values, setpoints in force, outputs."""

    t_s: list = dataclasses.field(default_factory=list)
    ph: list = dataclasses.field(default_factory=list)  # true pH per board
    ph_read: list = dataclasses.field(default_factory=list)  # what the electrode shows
    setpoint: list = dataclasses.field(default_factory=list)
    dose: list = dataclasses.field(default_factory=list)  # ACT base_dose, mL/min (board units)
    base: list = dataclasses.field(default_factory=list)  # base the model receives (model units)
    mode: list = dataclasses.field(default_factory=list)

    def column(self, name, board):
        return [row[board] for row in getattr(self, name)]


@dataclasses.dataclass
class Result:
    plant: object
    trace: Trace
    telemetry: dict  # addr -> [record dict] as logged, oldest first, time_s in simulated seconds
    names: list
    ports: dict
    wall_s: float
    sim_s: float
    link: dict  # host bus link counters
    polls_failed: int
    plant_link: dict
    faults: dict

    @property
    def speed(self):
        return self.sim_s / self.wall_s if self.wall_s else 0.0


class Session:
    """One run of a plant against virtual boards; see the module docstring."""

    def __init__(self, plant, duration_s, speed=None, poll_s=5.0, heapsize=None, baud=None, ber=0.0, drop=0.0,
                 seed=0, timeout_s=5.0, events=None, on_poll=None, root=None, bus_timeout_s=0.1,
                 should_stop=lambda: False, store=None, say=None, epoch0=None, acknowledge=False, host=True):
        if speed is not None and speed <= 0:
            raise SxctlError("--speed must be above 0")
        if not host and speed is None:
            raise SxctlError("a plant run that leaves the bus to other programs must be paced (--speed): in "
                             "lock-step nothing else could keep up with it")
        self.plant = plant
        self.duration_s = duration_s
        self.speed = speed
        self.poll_s = poll_s
        self.heapsize = heapsize or "%dK" % boards_mod.load("unix-sim")["heap_kb"]
        self.baud = baud
        self.ber = ber
        self.drop = drop
        self.seed = seed
        self.timeout_s = timeout_s
        self.bus_timeout_s = bus_timeout_s
        self.events = sorted(plant.events if events is None else events, key=lambda e: e.at_s)
        self.on_poll = on_poll  # called with (session, t_s) after each round of polls
        self.should_stop = should_stop  # checked every tick: end the run early (Ctrl-C)
        self.root = root
        self.names = [s.name for s in plant.stages]
        self.setpoints = [plant.setpoint(i) for i in range(plant.boards)]
        self.acknowledge = acknowledge  # acknowledge alarms at every poll, as an operator at the screen
        # host=False: commission the boards (and switch a manual start to auto), then close the
        # bus and leave it to other programs, as a plant's own host (sxctl serve, log, tune) has it
        self.host = host
        if not host:
            needs = [e for e in self.events if e.key in _HOST_EVENTS]
            if needs:
                raise SxctlError("%s: the plant's scheduled %s at %.0f s is a host action; a run that leaves the bus "
                                 "to other programs has only plant events" % (plant.path, needs[0].key, needs[0].at_s))
        self.store = store  # an SQLiteStore to log into (sxctl sim --log), or None
        self.say = say or (lambda text: None)  # the logger's remarks (a stage offline...)
        # Unix time of simulated t = 0: the logger's clock, and the boards' after TIME_SYNC
        self.epoch0 = int(time.time()) if epoch0 is None else epoch0
        self.sink = Collector([s.address for s in plant.stages], self.epoch0, store)
        self.telemetry = self.sink.records  # addr -> [record dict], oldest first
        self.latest = {}  # addr -> newest telemetry record
        self.polls_failed = 0  # stage-rounds without an answer
        self.logger = None
        self.t_s = 0.0
        self.model = None
        self.sim = None
        self.bus = None

    # --- the run --------------------------------------------------------------------------------
    def run(self):
        plant = self.plant
        tick_ms = int(round(plant.tick_s * 1000))
        self.model = model = plant.make_model()
        true = model.true_ph()
        instruments = [Instruments(plant.tick_s, initial_ph=true[i], **plant.instruments(i))
                       for i in range(plant.boards)]
        bus = Bus(self.baud)
        self.sim = sim = Simulator(plant.boards, heapsize=self.heapsize, root=self.root, plant_link=True, bus=bus)
        links = [sim.plant_links[s.address] for s in plant.stages]
        signals = model.signals()
        for i, link in enumerate(links):
            link.preload(instruments[i].sense(0, signals[i], first=True))
        trace = Trace()
        halt = None
        host_ = self.host
        try:
            sim.start()
            halt = sim.run_in_background()
            plantlink.ready(links, 0, why=sim.board_status)
            sim.wait_ready()
            link = plantlink.PlantLink(links, self.timeout_s, why=sim.board_status)
            with BusClient(sim.bus.path, timeout=self.bus_timeout_s, retries=3) as client:
                self.bus = client
                # Commissioning is on a clean bus: a slow answer (a config write stores files,
                # a loaded host) is waited for, not taken for a lost frame; the run's polls then
                # use the short timeout.
                client.timeout = max(self.bus_timeout_s, _COMMISSION_TIMEOUT_S)
                self._configure(client)
                client.timeout = self.bus_timeout_s
                self.logger = Logger(client, self.sink, [s.address for s in plant.stages], period=self.poll_s,
                                     clock=lambda: self.epoch0 + self.t_s, say=self.say)
                self.logger.retry_s = 0.0  # a stage that missed a round is asked again the next one
                # Faults start once the boards are set up: they test running, not commissioning.
                bus.inject(self.ber, self.drop, self.seed)
                acts = {a: l.act for a, l in link.boards.items()}
                pending = list(self.events)
                if plant.manual_dose is not None:
                    pending.append(_Mode(plant.auto_at_s))
                    pending.sort(key=lambda e: e.at_s)
                t_ms = 0
                next_poll_ms = 0
                release_s = None if host_ else (plant.auto_at_s if plant.manual_dose is not None else 0.0)
                wall0 = time.monotonic()
                while True:
                    t_s = self.t_s = t_ms / 1000.0
                    while pending and pending[0].at_s <= t_s + 1e-9:
                        self._event(pending.pop(0), client, model)
                    if release_s is not None and t_s >= release_s - 1e-9:
                        client.close()  # the bus is the plant's host's from now on
                        self.bus = release_s = None
                    trace.t_s.append(t_s)
                    trace.ph.append(model.true_ph())
                    trace.ph_read.append([inst.ph_read for inst in instruments])
                    trace.setpoint.append(list(self.setpoints))
                    trace.dose.append([acts[s.address].base_dose / 100.0 for s in plant.stages])
                    trace.mode.append([acts[s.address].mode for s in plant.stages])
                    if t_ms >= next_poll_ms:
                        self._poll(client)
                        next_poll_ms += int(self.poll_s * 1000)
                    if (self.duration_s is not None and t_ms >= self.duration_s * 1000) or self.should_stop():
                        break
                    ordered = [acts[s.address] for s in plant.stages]
                    model.actuate(ordered)
                    trace.base.append(model.base_flows())
                    model.step(plant.tick_s)
                    t_ms += tick_ms
                    signals = model.signals()
                    records = {s.address: instruments[i].sense(t_ms, signals[i]) for i, s in enumerate(plant.stages)}
                    deadline = None
                    if self.speed:
                        _sleep_until(wall0 + t_ms / 1000.0 / self.speed)
                        # until the next tick is due; behind schedule (after a poll round), still
                        # one tick's worth of wall time, so the boards are not all counted late
                        tick_wall = tick_ms / 1000.0 / self.speed
                        deadline = max(wall0 + t_ms / 1000.0 / self.speed + tick_wall, time.monotonic() + tick_wall)
                    acts = link.exchange(t_ms, records, deadline)
                trace.base.append(model.base_flows())
                wall = time.monotonic() - wall0
                stats = client.stats.as_dict()
        finally:
            if halt is not None:
                halt()
            plant_stats = {link_.addr: dict(sent=link_.sent, received=link_.received, late=link_.late,
                                            skipped=link_.skipped) for link_ in sim.plant_links.values()}
            faults = bus.fault_stats()
            ports = sim.ports()
            sim.close()
        return Result(plant, trace, self.telemetry, self.names, ports, wall, trace.t_s[-1], stats,
                      self.polls_failed, plant_stats, faults)

    # --- host side ------------------------------------------------------------------------------
    def _configure(self, client):
        from ..configapply import apply_stage  # the `sxctl config apply` code path

        for stage in self.plant.stages:
            status, text = apply_stage(client, stage)
            if status not in ("applied", "up to date"):
                raise SxctlError("%s: config not applied: %s" % (stage.label(), text))
        for stage in self.plant.stages:
            if self.plant.manual_dose is not None:
                self.set_mode(client, stage.address, "manual", int(round(self.plant.manual_dose * 100)))
            else:
                self.set_mode(client, stage.address, "auto")

    def set_mode(self, client, addr, mode, manual_output=BUMPLESS):
        ack = client.request(addr, messages.SET_MODE, dict(mode=MODE[mode], manual_output=manual_output),
                             expect=messages.MODE_ACK).values
        if ack["mode"] != MODE[mode]:
            raise SxctlError("board %d stayed in mode %s when set to %s" % (addr, messages.MODES[ack["mode"]], mode))

    def _event(self, event, client, model):
        if isinstance(event, _Mode):
            for stage in self.plant.stages:
                self.set_mode(client, stage.address, "auto")
        elif event.key == "ph_setpoint":
            addr = self.plant.stages[event.stage].address
            client.request(addr, messages.SET_SETPOINT, dict(loop=0, value=int(round(event.value * 1000))),
                           expect=messages.SETPOINT_ACK)
            self.setpoints[event.stage] = event.value
        elif event.key == "manual_dose":  # an identification step: manual at this dose, mL/min
            self.set_mode(client, self.plant.stages[event.stage].address, "manual", int(round(event.value * 100)))
        elif event.key == "auto":
            self.set_mode(client, self.plant.stages[event.stage].address, "auto")
        elif event.key == "mode":
            self.set_mode(client, self.plant.stages[event.stage].address, messages.MODES[int(event.value)])
        elif event.part is not None:
            model.set(event.key, event.value, event.part)
        else:
            model.set(event.key, event.value)

    def _poll(self, client):
        """One logger round over every board: new telemetry records, events, config snapshots."""
        if self.bus is None:  # the bus was left to the plant's host
            if self.on_poll is not None:
                self.on_poll(self, self.t_s)
            return
        self.logger.poll_round()
        self.polls_failed += sum(1 for st in self.logger.stages if st.online is False)
        for addr, got in self.telemetry.items():
            if got:
                self.latest[addr] = got[-1]
                if self.acknowledge and got[-1]["alarms_unacked"]:
                    client.request(addr, messages.ALARM_ACK, dict(mask=0xFFFF), expect=messages.ALARM_STATE)
        if self.on_poll is not None:
            self.on_poll(self, self.t_s)


_COMMISSION_TIMEOUT_S = 1.0
_HOST_EVENTS = ("ph_setpoint", "manual_dose", "auto")  # what the host does over the bus, not the plant


class _Mode:
    """Scheduled switch of every board from its manual start to auto."""

    def __init__(self, at_s):
        self.at_s = at_s


def _sleep_until(when):
    left = when - time.monotonic()
    if left > 0:
        time.sleep(left)
