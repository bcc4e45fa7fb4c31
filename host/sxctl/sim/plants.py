"""Plants for `sxctl sim --plant`: a process model, its boards' settings and a scenario.

`load("sx" | "hs" | PATH.toml)` gives a Plant. A plant file is a plant file of `sxctl config`
(plantfile.py: [defaults], one [[stage]] per board with its config items) plus a [sim] table
naming the model, its parameters and scheduled events; `sx` and `hs` are the shipped files
examples/sx-cascade.toml and examples/hs-benchmark.toml. The config items of every stage are
pushed to its board over the bus before the run starts.

    [sim]
    model = "sx"                  # "sx": mixer-settler cascade, one board per stage
                                  # "hs": Henson–Seborg pH CSTR, one board
    tick_s = 1.0                  # plant link tick (simulated seconds)
    manual_dose = 155.5           # optional: start in manual at this base dose (mL/min) ...
    auto_at_s = 10                # ... and switch to auto at this time (default: auto at once)
    [sim.params]                  # model parameters (each model's KEYS below)
    feed_flow_L_min = 1.0
    [sim.probe]                   # pH electrode dynamics (sim/instruments.py)
    tau_s = 10.0
    dead_time_s = 0.0
    noise_ph = 0.0
    [[sim.event]]                 # at a simulated time: a disturbance or a setpoint change
    at_s = 1800
    feed_flow_L_min = 1.1         # any of the model's LIVE keys: what may change while running
    [[sim.event]]
    at_s = 600
    stage = "E1"                  # setpoint changes name the stage
    ph_setpoint = 1.9
    [[sim.event]]
    at_s = 900
    stage = "E1"
    mode = "hold"                 # a mode by name: off, manual (at its dose), auto, hold

How the board's outputs become plant inputs (the actuator scaling) is each model's:
- sx: base dose (mL/min, 2 M NaOH) → the stage's base flow in L/min; the stage's aqueous and
  organic inflows are the meters' flows. Pump outputs for the flows are logged, not applied:
  the flows are the cascade's.
- hs: q3 [mL/s] = base_dose [mL/min] / 10: the board's base pump full scale of 300 mL/min
  (base_max) stands for the benchmark's 30 mL/s. The aqueous meter measures q1 (the acid feed,
  in its true L/min), so feedforward and dosing interlocks see the feed.
"""
import dataclasses
import re
import tomllib

from sxproto import messages

from .. import EXAMPLES_DIR, plantfile
from ..errors import SxctlError
from ..plant import henson_seborg as hs
from ..plant import mixer_settler as ms
from .instruments import Signals

BUILTIN = {"sx": EXAMPLES_DIR / "sx-cascade.toml", "hs": EXAMPLES_DIR / "hs-benchmark.toml"}
# Events that act on one stage's board over the bus: a setpoint change, a manual dose (mL/min;
# an identification step), a mode by name (mode = "hold"; manual keeps its dose), back to auto
# (`auto`, value ignored: the older spelling of mode = "auto").
STAGE_EVENTS = ("ph_setpoint", "manual_dose", "mode", "auto")
MODE_NUMBERS = {name: number for number, name in messages.MODES.items()}
SIM_KEYS = ("model", "tick_s", "manual_dose", "auto_at_s", "params", "probe", "event", "temperature_c")


class SxModel:
    """The counter-current cascade of plant/mixer_settler.py, one board per stage."""

    name = "sx"
    # the electrode is [sim.probe]'s, so the model's own probe lag is not a key here
    KEYS = {f.name: f.type for f in dataclasses.fields(ms.StageParams) if f.name != "sensor_tau_s"} | {
        "feed_flow_L_min": float, "feed_acid_M": float, "feed_ree_M": float,
        "organic_flow_L_min": float, "organic_ree_M": float}
    LIVE = ("feed_flow_L_min", "feed_acid_M", "feed_ree_M", "organic_flow_L_min", "organic_ree_M")

    def __init__(self, boards, tick_s=1.0, temperature_c=25.0, **p):
        stage_params = {k: v for k, v in p.items() if k in ms.StageParams.__dataclass_fields__}
        self.cascade = ms.Cascade(boards, ms.StageParams(**stage_params),
                                  ms.Aqueous(p.get("feed_flow_L_min", 1.0), p.get("feed_acid_M", 0.01),
                                             p.get("feed_ree_M", 0.5)),
                                  ms.Organic(p.get("organic_flow_L_min", 1.5), p.get("organic_ree_M", 0.0)),
                                  tick_s)
        self.boards = boards
        self.temperature_c = temperature_c

    def signals(self):
        return [Signals(s.ph(), self.temperature_c, s.aqueous_in.flow_L_min, s.organic_in.flow_L_min)
                for s in self.cascade.stages]

    def actuate(self, acts):
        # ACT.base_dose is in 0.01 mL/min of 2 M NaOH: 1e-5 L/min per count
        for stage, act in zip(self.cascade.stages, acts):
            stage.base_dose_L_min = act.base_dose * 1e-5 if act.enabled else 0.0

    def step(self, dt_s):
        self.cascade.step(dt_s)

    def true_ph(self):
        return self.cascade.ph()

    def base_flows(self):
        """Base each stage receives now (after the pump's dead time), L/min."""
        return [s.applied_base_L_min for s in self.cascade.stages]

    def set(self, key, value):
        c = self.cascade
        if key == "feed_flow_L_min":
            c.feed.flow_L_min = value
        elif key == "feed_acid_M":
            c.feed.acid_M = value
        elif key == "feed_ree_M":
            c.feed.ree_M = value
        elif key == "organic_flow_L_min":
            c.fresh_organic.flow_L_min = value
        elif key == "organic_ree_M":
            c.fresh_organic.ree_M = value
        else:
            raise KeyError(key)


class HsModel:
    """The Henson–Seborg CSTR (plant/henson_seborg.py) with its base pump on one board."""

    name = "hs"
    KEYS = {"q1": float, "q2": float, "q3": float}
    LIVE = ("q1", "q2")
    Q3_PER_COUNT = 1e-3  # mL/s per 0.01 mL/min of base_dose: q3 = base_dose[mL/min] / 10

    def __init__(self, boards=1, tick_s=1.0, temperature_c=25.0, q1=16.6, q2=0.55, q3=15.55):
        if boards != 1:
            raise SxctlError("the hs plant is one tank on one board, not %d" % boards)
        self.tank = hs.HensonSeborg(q1=q1, q2=q2, q3=q3)
        self.boards = 1
        self.temperature_c = temperature_c

    def signals(self):
        q1_L_min = self.tank.q1 * 60.0 / 1000.0
        return [Signals(self.tank.ph(), self.temperature_c, q1_L_min, 0.0)]

    def actuate(self, acts):
        act = acts[0]
        self.tank.q3 = act.base_dose * self.Q3_PER_COUNT if act.enabled else 0.0

    def step(self, dt_s):
        self.tank.step(dt_s)

    def true_ph(self):
        return [self.tank.ph()]

    def base_flows(self):
        return [self.tank.q3]

    def set(self, key, value):
        if key not in self.LIVE:
            raise KeyError(key)
        setattr(self.tank, key, value)


class CompositeModel:
    """Several models side by side in one run (a benchmark's scenarios, a controller against a
    reference): boards in the order of the parts, one tick for all."""

    name = "composite"

    def __init__(self, models):
        self.models = models
        self.boards = sum(m.boards for m in models)

    def signals(self):
        return [s for m in self.models for s in m.signals()]

    def actuate(self, acts):
        at = 0
        for m in self.models:
            m.actuate(acts[at:at + m.boards])
            at += m.boards

    def step(self, dt_s):
        for m in self.models:
            m.step(dt_s)

    def true_ph(self):
        return [ph for m in self.models for ph in m.true_ph()]

    def base_flows(self):
        return [q for m in self.models for q in m.base_flows()]

    def set(self, key, value, part=None):
        for k, m in enumerate(self.models):
            if part is None or part == k:
                m.set(key, value)


MODELS = {"sx": SxModel, "hs": HsModel}


@dataclasses.dataclass
class Event:
    """At simulated time at_s: set a model input (stage None) or act on a stage (STAGE_EVENTS)."""

    at_s: float
    key: str
    value: float
    stage: int = None  # board index (0-based) for setpoint changes
    part: int = None  # in a combined plant, the part whose model input changes (None: all)


@dataclasses.dataclass
class Plant:
    """A model, the boards that run it (their `sxctl config` settings) and a scenario."""

    model_name: str
    model_params: dict
    stages: list  # plantfile.Stage per board, in bus address order
    tick_s: float = 1.0
    temperature_c: float = 25.0
    probe: dict = dataclasses.field(default_factory=dict)
    events: list = dataclasses.field(default_factory=list)
    manual_dose: float = None  # mL/min: start in manual at this dose ...
    auto_at_s: float = 0.0  # ... until this time
    path: str = ""
    parts: list = None  # a combined plant's parts (combine())

    @property
    def boards(self):
        return len(self.stages)

    def make_model(self):
        if self.parts:
            return CompositeModel([p.make_model() for p in self.parts])
        return MODELS[self.model_name](self.boards, self.tick_s, self.temperature_c, **self.model_params)

    def instruments(self, index):
        """Keyword arguments of sim/instruments.Instruments for board `index`: the electrode and
        meters as the board's own config believes them (calibrated instruments)."""
        if self.parts:
            for part in self.parts:
                if index < part.boards:
                    return part.instruments(index)
                index -= part.boards
        values = self.stages[index].values
        return dict(ph_tau_s=self.probe.get("tau_s", 0.0), ph_dead_s=self.probe.get("dead_time_s", 0.0),
                    ph_noise=self.probe.get("noise_ph", 0.0), seed=self.probe.get("seed", 0) * 1000 + index,
                    ph_offset_uv=values["ph_cal_offset"], ph_slope=_slope(values),
                    k_aq=values["k_factor_aq"] / 10.0, k_org=values["k_factor_org"] / 10.0)

    def setpoint(self, index):
        return self.stages[index].values["ph_setpoint"] / 1000.0


def variant(plant, items=None, **fields):
    """A copy of `plant` with config items ({name: raw}) set on every stage and Plant fields replaced
    (probe=..., events=...): another controller or sensor on the same plant."""
    stages = [plantfile.Stage(s.name, s.address, s.role, dict(s.values), set(s.managed), s.line)
              for s in plant.stages]
    for stage in stages:
        for name, raw in (items or {}).items():
            stage.values[name] = raw
            stage.managed.add(name)
    return dataclasses.replace(plant, stages=stages, **fields)


def combine(parts, labels):
    """One plant of several (each with its own boards, settings and probe), run side by side:
    boards are renumbered 1..N in order, stage names prefixed with each part's label, and each
    part's events kept for it alone. Parts must share the tick and the manual start."""
    if len({p.tick_s for p in parts}) != 1 or len({(p.manual_dose, p.auto_at_s) for p in parts}) != 1:
        raise SxctlError("combined plants need one tick and one manual start")
    stages, events, offset = [], [], 0
    for k, (part, label) in enumerate(zip(parts, labels)):
        for st in part.stages:
            stages.append(plantfile.Stage("%s:%s" % (label, st.name), offset + st.address, st.role, st.values,
                                          st.managed, st.line))
        for ev in part.events:
            events.append(dataclasses.replace(ev, stage=None if ev.stage is None else ev.stage + offset,
                                              part=None if ev.stage is not None else k))
        offset += part.boards
    first = parts[0]
    return Plant("composite", {}, stages, first.tick_s, first.temperature_c, {}, sorted(events, key=lambda e: e.at_s),
                 first.manual_dose, first.auto_at_s, "+".join(labels), parts=list(parts))


def _slope(values):
    if values["ph_cal_slope_acid"] != values["ph_cal_slope_base"]:
        raise SxctlError("the simulated electrode has one slope: set ph_cal_slope_acid = ph_cal_slope_base")
    return values["ph_cal_slope_acid"] / 10000.0


def load(spec, stages=None):
    """The Plant for `sx`, `hs` or a plant file path; `stages`, if given, runs its first N stages."""
    path = BUILTIN.get(spec, spec)
    try:
        text = open(path, encoding="utf-8").read()
    except OSError as e:
        raise SxctlError("cannot read plant %s: %s; give sx, hs or a plant file (see examples/sx-cascade.toml)"
                         % (spec, e.strerror or e)) from None
    plant = parse(text, str(path))
    if stages is not None and not 1 <= stages <= plant.boards:
        raise SxctlError("%s describes %d stage%s, so --stages can be 1..%d, not %d: leave --stages out or give a "
                         "plant file for %d stages" % (path, plant.boards, "" if plant.boards == 1 else "s",
                                                      plant.boards, stages, stages))
    if stages is not None and stages < plant.boards:  # the first N stages of the circuit
        plant = dataclasses.replace(plant, stages=plant.stages[:stages],
                                    events=[e for e in plant.events if e.stage is None or e.stage < stages])
    return plant


def parse(text, path="plant.toml"):
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise SxctlError("%s: %s" % (path, e)) from None
    sim = doc.get("sim")
    if not isinstance(sim, dict):
        raise SxctlError("%s has no [sim] table: a plant for `sxctl sim` names its model there, e.g. "
                         "[sim] model = \"sx\" (see examples/sx-cascade.toml)" % path)
    # The rest is an `sxctl config` plant file: checked by plantfile.py, [sim] lines blanked so
    # its line numbers stay right.
    checked, problems = plantfile.check_text(_without_sim(text), path)
    if problems:
        raise plantfile.PlantFileError(path, problems)
    stages = sorted(checked.stages, key=lambda s: s.address)
    if [s.address for s in stages] != list(range(1, len(stages) + 1)):
        raise SxctlError("%s: simulated boards have addresses 1..N; got %s" % (
            path, ", ".join(str(s.address) for s in stages)))

    def bad(key, text):
        return SxctlError("%s: [sim] %s: %s" % (path, key, text))

    unknown = set(sim) - set(SIM_KEYS)
    if unknown:
        raise bad(", ".join(sorted(unknown)), "unknown key; [sim] has %s" % ", ".join(SIM_KEYS))
    model_name = sim.get("model")
    if model_name not in MODELS:
        raise bad("model", "must be one of %s" % ", ".join(MODELS))
    params = _table(sim.get("params", {}), MODELS[model_name].KEYS, bad, "params")
    probe = _table(sim.get("probe", {}), dict(tau_s=float, dead_time_s=float, noise_ph=float, seed=int), bad,
                   "probe")
    names = [s.name for s in stages]
    events = []
    for n, ev in enumerate(sim.get("event", [])):
        ev = dict(ev)
        where = "event %d" % (n + 1)
        at = ev.pop("at_s", None)
        if not isinstance(at, (int, float)) or at < 0:
            raise bad(where, "needs at_s, the simulated time in seconds")
        stage = ev.pop("stage", None)
        if len(ev) != 1:
            raise bad(where, "sets exactly one thing (a model input, or one of %s with stage)"
                      % ", ".join(STAGE_EVENTS))
        (key, value), = ev.items()
        if key in STAGE_EVENTS:
            if stage not in names:
                raise bad(where, "%s needs stage = one of %s" % (key, ", ".join(map(repr, names))))
            if key == "mode":
                value = MODE_NUMBERS.get(value, value) if isinstance(value, str) else value
                if isinstance(value, bool) or value not in messages.MODES:
                    raise bad(where, "mode must be one of %s (or its number)" % ", ".join(map(repr, MODE_NUMBERS)))
            elif isinstance(value, bool) or not isinstance(value, (int, float)):
                raise bad(where, "%s must be a number" % key)
            events.append(Event(float(at), key, float(value), names.index(stage)))
        elif key in MODELS[model_name].LIVE and isinstance(value, (int, float)):
            events.append(Event(float(at), key, float(value)))
        else:
            raise bad(where, "%s cannot change during a run; events set %s, or %s with stage" % (
                key, ", ".join(MODELS[model_name].LIVE), ", ".join(STAGE_EVENTS)))
    tick = sim.get("tick_s", 1.0)
    if not isinstance(tick, (int, float)) or not 0.05 <= tick <= 10:
        raise bad("tick_s", "must be 0.05..10 s")
    return Plant(model_name, params, stages, float(tick), float(sim.get("temperature_c", 25.0)), probe,
                 sorted(events, key=lambda e: e.at_s), sim.get("manual_dose"), float(sim.get("auto_at_s", 0.0)),
                 path)


def _table(table, keys, bad, name):
    if not isinstance(table, dict):
        raise bad(name, "must be a table")
    out = {}
    for key, value in table.items():
        if key not in keys:
            raise bad("%s.%s" % (name, key), "unknown; known: %s" % ", ".join(keys))
        if isinstance(value, bool) or not isinstance(value, (int, float)) or (
                keys[key] is int and not isinstance(value, int)):
            raise bad("%s.%s" % (name, key), "must be a%s number" % (" whole" if keys[key] is int else ""))
        out[key] = keys[key](value)
    return out


_HEADER = re.compile(r"^\s*\[\[?\s*([A-Za-z_][A-Za-z0-9_.\-]*)\s*\]\]?\s*(?:#.*)?$")


def _without_sim(text):
    """The text with every [sim] / [sim.*] / [[sim.*]] table blanked (lines kept, so numbering holds)."""
    out, blank = [], False
    for line in text.splitlines():
        m = _HEADER.match(line)
        if m:
            blank = m.group(1) == "sim" or m.group(1).startswith("sim.")
        out.append("" if blank else line)
    return "\n".join(out) + "\n"
