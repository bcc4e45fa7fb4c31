"""The step test of `sxctl tune`: on a running stage, identify its model and derive its settings.

A Procedure is fed the stage's telemetry (the records `sxctl log` reads, oldest first) once per
poll and acts on the stage through a small interface (set_manual, restore). In order:
1. check: the stage must be stable, in auto or manual without alarms, the pH within
   `stable_band` over `stable_s`; not so within `wait_s`, it refuses;
2. confirm: the caller's confirm() (the user at the prompt, or --yes) sees the state it starts from;
3. steps: manual at the dose it was on, then bounded step doses (each at most `max_step`, the
   dose within 0..base_max): down until the pH is below the range, then up through it until
   above; each step held until the pH has settled (spread within `settle_band` over
   `settle_s`, at most `hold_s`) and the end of it averaged into one titration point;
4. restore: the stage goes back to the mode and dose it had (also on abort(), e.g. Ctrl-C);
5. the model: the titration curve from the points (sim/identify.py's choice of ≤ 8), the
   response of the steps nearest the setpoint fitted (tuning.fit_response), gains by SIMC.
"""
import dataclasses
import statistics

from . import tuning
from .errors import SxctlError
from .sim import identify

MODE_MANUAL, MODE_AUTO = 1, 2
KP_MAX = 10000.0  # mL/min per pH: pid_kp's range (protocol/config_items.py)


class TuneRefused(SxctlError):
    pass


@dataclasses.dataclass
class Options:
    ph_lo: float
    ph_hi: float
    base_max: float  # mL/min: the pump's full scale, no step doses above
    measure_s: float
    control_s: float
    max_step: float = None  # mL/min per step (default base_max / 10)
    steps: int = 8  # aimed-at steps across the pH range
    stable_band: float = 0.02
    stable_s: float = 300.0
    wait_s: float = 4 * 3600.0
    settle_band: float = 0.005
    settle_s: float = 120.0
    hold_s: float = 1800.0
    min_hold_s: float = 120.0
    avg_s: float = 60.0


@dataclasses.dataclass
class Point:
    dose: float  # mL/min
    ph: float
    flow_L_min: float
    settled: bool
    start_s: float
    end_s: float
    ph_before: float


class Procedure:
    def __init__(self, stage, options, say=print, confirm=lambda text: True):
        self.stage = stage  # .set_manual(dose), .restore(mode, dose) -> text
        self.o = options
        self.say = say
        self.confirm = confirm
        self.state = "check"
        self.records = []  # (t_s, ph, dose mL/min, flow L/min, mode, alarms active or unacknowledged)
        self.points = []
        self.prev_mode = None
        self.prev_dose = None
        self.dose = None
        self.direction = -1  # down first, then up (1), then filling gaps (0)
        self.fills = 0
        self.step_start = None
        self.ph_start = None
        self.restored = None
        self.t_s = 0.0
        self.t0 = None

    @property
    def done(self):
        return self.state in ("done", "aborted")

    # --- feeding --------------------------------------------------------------------------------
    def feed(self, t_s, records):
        """New telemetry records (dicts with time_s, ph, base_dose, flow_aq, mode, alarms_active, alarms_unacked)."""
        for r in records:
            self.records.append((r["time_s"], r["ph"] / 1000.0, r["base_dose"] / 100.0, r["flow_aq"] / 1000.0,
                                 r["mode"], r["alarms_active"] | r["alarms_unacked"]))
        self.t_s = t_s
        if self.t0 is None:
            self.t0 = t_s
        getattr(self, "_" + self.state)()

    def window(self, seconds, since=None):
        lo = self.t_s - seconds if since is None else max(since, self.t_s - seconds)
        return [r for r in self.records if r[0] >= lo]

    def abort(self, why):
        if self.state not in ("done", "aborted") and self.prev_mode is not None:
            self.restored = self.stage.restore(self.prev_mode, self.prev_dose)
            self.say("%s: %s" % (why, self.restored))
        self.state = "aborted"

    # --- states ---------------------------------------------------------------------------------
    def _check(self):
        o = self.o
        w = self.window(o.stable_s)
        covered = self.t_s - self.t0 >= o.stable_s
        if covered and w:
            phs = [r[1] for r in w]
            mode, alarms = w[-1][4], w[-1][5]
            spread = max(phs) - min(phs)
            if mode in (MODE_MANUAL, MODE_AUTO) and not alarms and spread <= o.stable_band and w[-1][3] > 0:
                self.prev_mode = mode
                self.prev_dose = round(statistics.fmean(r[2] for r in w), 2)
                text = ("stage stable: %s, pH %.3f (spread %.3f over %.0f s), dose %.2f mL/min, feed %.3f L/min"
                        % ("auto" if mode == MODE_AUTO else "manual", statistics.fmean(phs), spread, o.stable_s,
                           self.prev_dose, w[-1][3]))
                self.say(text)
                if not self.confirm(text):
                    self.prev_mode = None
                    raise TuneRefused("not confirmed: the stage was left as it was")
                self.dose = self.prev_dose
                self.stage.set_manual(self.dose)
                self._begin_step(self.dose, statistics.fmean(phs))
                self.state = "steps"
                return
        if self.t_s - self.t0 > o.wait_s:
            if not w:
                raise TuneRefused("the stage sends no telemetry")
            phs = [r[1] for r in w]
            raise TuneRefused("stage not stable after %.0f s: mode %s, alarms 0x%04x, pH spread %.3f over the last "
                              "%.0f s (needs %s, no alarms, within %.3f); let it settle, acknowledge its alarms, and "
                              "run sxctl tune again" % (o.wait_s, w[-1][4], w[-1][5], max(phs) - min(phs),
                                                        o.stable_s, "auto or manual", o.stable_band))

    def _begin_step(self, dose, ph_before):
        self.step_start = self.t_s
        self.ph_start = ph_before
        self.dose = dose

    def _steps(self):
        o = self.o
        since = self.step_start
        held = self.t_s - since
        w = self.window(o.settle_s, since)
        if held < max(o.min_hold_s, o.settle_s) or not w:
            return
        # settled: the mean of the window's second half within settle_band / 2 of its first
        # half's (means, so electrode noise does not keep a settled stage "moving")
        half = len(w) // 2
        settled = half >= 2 and abs(statistics.fmean(r[1] for r in w[half:]) -
                                    statistics.fmean(r[1] for r in w[:half])) <= o.settle_band / 2
        if not settled and held < o.hold_s:
            return
        avg = self.window(o.avg_s, since)
        ph = statistics.fmean(r[1] for r in avg)
        flow = statistics.fmean(r[3] for r in avg)
        if flow <= 0:
            raise TuneRefused("the stage reports no feed flow: no titration point")
        point = Point(self.dose, ph, flow, settled, since, self.t_s, self.ph_start)
        self.points.append(point)
        self.say("step %d: dose %.2f mL/min -> pH %.3f (%s after %.0f s)" % (
            len(self.points), self.dose, ph, "settled" if settled else "NOT settled", held))
        nxt = self._next_dose(point)
        if nxt is None:
            self.restored = self.stage.restore(self.prev_mode, self.prev_dose)
            self.say("step test done: %s" % self.restored)
            self.state = "done"
        else:
            self.stage.set_manual(nxt)
            self._begin_step(nxt, ph)

    def _next_dose(self, point):
        o = self.o
        target = (o.ph_hi - o.ph_lo) / o.steps  # pH per step aimed at
        max_step = o.max_step or o.base_max / 10.0
        if self.direction < 0 and (point.ph <= o.ph_lo or point.dose <= 0):
            self.direction = 1  # up again, through the range
        elif self.direction > 0 and (point.ph >= o.ph_hi or point.dose >= o.base_max):
            self.direction = 0  # swept: fill the gaps where the curve is steep
        if self.direction == 0:
            return self._fill_gap(point, target, max_step)
        # the local gain from the last two points (the first step: a small probe)
        if len(self.points) >= 2:
            a, b = self.points[-2], self.points[-1]
            gain = abs(b.ph - a.ph) / max(abs(b.dose - a.dose), 1e-6)
            step = target / gain if gain > 1e-9 else max_step
            step = min(step, 2.0 * abs(b.dose - a.dose))  # let the step grow at most twice per step
        else:
            step = max(0.02 * max(point.dose, o.base_max / 20.0), 0.01)
        step = max(min(step, max_step), 0.01)
        dose = round(min(max(point.dose + self.direction * step, 0.0), o.base_max), 2)
        return None if dose == point.dose else dose

    def _fill_gap(self, point, target, max_step):
        # the widest pH gap between neighbouring doses inside the range, halved; at most
        # `steps` fills, none closer than 0.05 mL/min to a dose already held
        if self.fills >= self.o.steps:
            return None
        pts = sorted(self.points, key=lambda p: p.dose)
        gaps = [(b.ph - a.ph, a, b) for a, b in zip(pts, pts[1:])
                if b.dose - a.dose > 0.1 and b.ph > self.o.ph_lo - target and a.ph < self.o.ph_hi + target]
        gaps = [g for g in gaps if g[0] > 1.5 * target]
        if not gaps:
            return None
        _, a, b = max(gaps, key=lambda g: g[0])
        self.fills += 1
        dose = round((a.dose + b.dose) / 2.0, 2)
        jump = dose - point.dose
        if abs(jump) > max_step:  # a bounded step towards it; the gap is looked at again from there
            dose = round(point.dose + (max_step if jump > 0 else -max_step), 2)
        return dose

    # --- results --------------------------------------------------------------------------------
    def model(self, setpoint):
        """The StageModel of the finished run."""
        pts = [p for p in self.points]
        if len(pts) < 3:
            raise SxctlError("the step test ended after %d steps: too few for a titration curve" % len(pts))
        steps = [identify.Step(p.dose, p.start_s, p.ph, p.flow_L_min, 0.0, None) for p in pts]
        measured = identify.monotone(steps)
        if len(measured) < 2 or measured[-1][0] - measured[0][0] < 0.1:
            raise SxctlError("the step test moved the pH by less than 0.1: widen --ph-range or allow larger doses")
        chosen = identify.choose(measured)
        points = [(round(ph, 3), int(round(b))) for ph, b in chosen]
        # responses: every settled step that moved the pH clearly, each mapped through the
        # measured curve to base (where mixing is linear) and normalised 0..1, fitted together
        least = max(0.01, 0.25 * (self.o.ph_hi - self.o.ph_lo) / self.o.steps)
        clear = [p for p in pts[1:] if abs(p.ph - p.ph_before) >= least and p.settled]
        responses = []
        for p in clear:
            rec = [r for r in self.records if p.start_s <= r[0] <= p.end_s]
            b0, b1 = identify.base_at(measured, p.ph_before), identify.base_at(measured, p.ph)
            if abs(b1 - b0) < 1e-9 or len(rec) < 4:
                continue
            t = [r[0] - p.start_s for r in rec]
            y = [(identify.base_at(measured, r[1]) - b0) / (b1 - b0) for r in rec]
            responses.append((t, y, (b1 - b0) ** 2))
        if not responses:
            raise SxctlError("no settled step moved the pH by %.3f or more: nothing to fit the stage's response to; "
                             "allow larger steps (--max-step) or hold them longer" % least)
        fit = tuning.fit_responses(responses)
        fits = [fit]
        feed = statistics.fmean(p.flow_L_min for p in pts)
        return tuning.StageModel(points, feed, setpoint, fit.tau1, fit.tau2, fit.theta, self.o.control_s,
                                 self.o.measure_s), fits, measured


# --- on a live stage, over the bus ---------------------------------------------------------------
BUMPLESS = 0xFFFF  # SET_MODE.manual_output: keep the output the board has


class BusStage:
    """The Procedure's hands on one board over the bus (a BusClient, or a gateway's): SET_MODE,
    checked against the board's MODE_ACK."""

    def __init__(self, bus, addr):
        self.bus = bus
        self.addr = addr

    def _set(self, mode, manual_output=BUMPLESS):
        from sxproto import messages

        ack = self.bus.request(self.addr, messages.SET_MODE, dict(mode=mode, manual_output=manual_output),
                               expect=messages.MODE_ACK).values
        if ack["mode"] != mode:
            raise SxctlError("board %d stayed in mode %s when set to %s" % (
                self.addr, messages.MODES.get(ack["mode"], ack["mode"]), messages.MODES[mode]))

    def set_manual(self, dose):
        self._set(MODE_MANUAL, int(round(dose * 100)))

    def restore(self, mode, dose):
        from sxproto import messages

        # the dose first (in manual), then the mode: auto takes over from that dose bumplessly
        self._set(MODE_MANUAL, int(round(dose * 100)))
        if mode != MODE_MANUAL:
            self._set(mode)
        return "stage back in %s at %.2f mL/min (board confirmed)" % (messages.MODES[mode], dose)


class BacklogReader:
    """A stage's telemetry records as the board stores them (BACKLOG_READ after the last one read),
    with t in seconds from the board's record numbers: one record per measure period, so the
    step test's clock is the board's scan clock, whatever TIME_SYNC does to its wall clock."""

    def __init__(self, bus, addr, measure_s):
        self.bus = bus
        self.addr = addr
        self.measure_s = measure_s
        self.last = None  # record number of the newest record read
        self.lost = 0  # records the board no longer held when asked

    def read(self):
        """The records stored since the last read (from the newest one, the first time)."""
        if self.last is None:  # start at the newest record: the past is not this test's
            reply = self._read(0, 1)
            self.last = max(0, reply["latest"] - 1)
        out = []
        for _ in range(64):  # a bounded catch-up: at most 64 replies per poll
            reply = self._read(self.last, 0)
            if reply["latest"] < self.last:
                raise SxctlError("board %d reset during the step test (its newest record is %d, %d read): the "
                                 "stage is in its boot mode; check it and run sxctl tune again"
                                 % (self.addr, reply["latest"], self.last))
            fresh = [r for r in reply["records"][:reply["count"]] if r["record"] > self.last]
            if not fresh:
                return out
            if fresh[0]["record"] > self.last + 1:
                self.lost += fresh[0]["record"] - self.last - 1
            out += [dict(_checked(self.addr, r), time_s=r["record"] * self.measure_s) for r in fresh]
            self.last = fresh[-1]["record"]
            if self.last >= reply["latest"]:
                return out
        return out

    def _read(self, since, count):
        from sxproto import messages

        return self.bus.request(self.addr, messages.BACKLOG_READ, {"since": since, "count": count},
                                expect=messages.BACKLOG).values


def _checked(addr, r):
    """A record's values as the Procedure uses them, refused when not believable."""
    from sxproto import messages

    if r["mode"] not in messages.MODES or not 0 <= r["ph"] <= 14000 or r["base_dose"] < 0 or r["flow_aq"] < 0:
        raise SxctlError("board %d sent an unbelievable record %d (mode %s, pH %d milli-pH, dose %d, flow %d): "
                         "check the board (sxctl info) and run sxctl tune again"
                         % (addr, r["record"], r["mode"], r["ph"], r["base_dose"], r["flow_aq"]))
    return {k: r[k] for k in ("ph", "base_dose", "flow_aq", "mode", "alarms_active", "alarms_unacked")}


def run_live(bus, addr, proc, measure_s, poll_s=1.0, interrupted=lambda: False, status=None, status_s=600.0,
             sleep=None):
    """Run the Procedure on the live stage at `addr` over `bus`: its records every `poll_s`
    seconds of wall time, its hands SET_MODE. Ctrl-C (`interrupted()`) or an error on the way
    restores the stage's mode and dose."""
    import time

    sleep = sleep or time.sleep
    proc.stage = BusStage(bus, addr)
    reader = BacklogReader(bus, addr, measure_s)
    next_status = None
    try:
        while not proc.done:
            if interrupted():
                proc.abort("interrupted")
                break
            records = reader.read()
            if records:
                t_s = records[-1]["time_s"]
                proc.feed(t_s, records)
                if status and next_status is None:
                    next_status = t_s + status_s
                if status and t_s >= next_status:
                    next_status += status_s
                    status(t_s)
            if not proc.done:
                sleep(poll_s)
    except BaseException:
        if not proc.done:
            proc.abort("stopped by an error")
        raise
    return proc


# --- on a virtual plant, lock-step ----------------------------------------------------------------
def setpoint_of(stage):
    """The stage's pH setpoint in the plant file, pH."""
    return stage.values["ph_setpoint"] / 1000.0


def options_for(plant, index, ph_range=None, **kw):
    """Procedure Options from the stage's own settings (base_max, measure and control periods)."""
    v = plant.stages[index].values
    sp = setpoint_of(plant.stages[index])
    lo, hi = ph_range or (sp - 0.3, sp + 0.3)
    measure = v["measure_period"] / 1000.0
    return Options(lo, hi, v["base_max"] / 100.0, measure, measure * v["control_scans"], **kw)


def run_virtual(plant, procedures, heapsize=None, interrupted=lambda: False, status=None, status_s=600.0):
    """Run `plant` (its file's start, no scheduled events) with the Procedures {board index: proc}
    acting on their stages, until all are done or `interrupted()` (then each is restored)."""
    import dataclasses as dc

    from .sim.session import Session

    plant = dc.replace(plant, events=[])
    seen = {i: 0 for i in procedures}
    state = dict(next_status=status_s, stop=False)

    def on_poll(session, t_s):
        for i, proc in procedures.items():
            addr = plant.stages[i].address
            if proc.stage is None:
                proc.stage = BusStage(session.bus, addr)  # the run's own bus client
            got = session.telemetry[addr]
            new, seen[i] = got[seen[i]:], len(got)
            if interrupted():
                proc.abort("interrupted")
            elif not proc.done:
                try:
                    proc.feed(t_s, new)
                except BaseException:
                    proc.abort("stopped by an error")
                    raise
        if status and t_s >= state["next_status"]:
            state["next_status"] += status_s
            status(t_s)
        state["stop"] = all(p.done for p in procedures.values())

    # an operator at the screen acknowledges the alarms of the start-up (acknowledge=True): a
    # cold-started cascade latches deviation alarms the step test would otherwise wait on
    session = Session(plant, None, events=[], on_poll=on_poll, heapsize=heapsize,
                      should_stop=lambda: state["stop"], acknowledge=True)
    session.run()
    return procedures


def item_values(model, settings, breaks):
    """{plant-file key: TOML value text} of what the step test found."""
    values = {
        "titration": "[%s]" % ", ".join("[%.3f, %d]" % p for p in model.points),
        "feedforward": "%.2f" % (identify.base_at(model.points, model.setpoint) / identify.BASE_SCALE),
        "mix_time": "%d" % round(model.mix_s),
        "ph_response": "%d" % round(model.ph_response_s),
        "pid_kp": "%.2f" % min(settings.kp, KP_MAX),  # the board's range
        "pid_ti": "%d" % max(1, round(settings.ti_s)),
        "pid_td": "%.1f" % settings.td_s,
    }
    for b in breaks:
        for k, v in b.fix.items():
            values[k] = "%d" % v
    return values


def raw_items(model, settings, breaks):
    """The same as item_values, as raw config items {name: raw} (for a plant variant)."""
    import json

    from sxproto import config_items

    from . import plantfile

    out = {}
    for key, text in item_values(model, settings, breaks).items():
        if key == "titration":
            points = json.loads(text)
            out["titration_points"] = len(points)
            for k, (ph, base) in enumerate(points):
                out["titration_ph_%d" % k] = int(round(ph * 1000))
                out["titration_base_%d" % k] = int(base)
        else:
            out[key] = plantfile.parse_text(config_items.BY_NAME[key], text)
    return out


def tune_parts(parts, labels, ph_range, heapsize=None):
    """Tune stage 0 of every plant in `parts` (one board each), all in one lock-step run:
    [(model, settings, breaks, raw items)] in order."""
    from .sim import plants

    combined = plants.combine(parts, labels)
    procs = {i: Procedure(None, options_for(combined, i, ph_range), say=lambda text: None)
             for i in range(len(parts))}
    run_virtual(combined, procs, heapsize=heapsize)
    out = []
    for i, proc in procs.items():
        if proc.state != "done":
            raise SxctlError("tuning %s did not finish (%s)" % (labels[i], proc.state))
        model, _, _ = proc.model(combined.setpoint(i))
        settings = tuning.simc(model)
        values = {"stuck_window": combined.stages[i].values["stuck_window"]}
        breaks = tuning.rule_breaks(model, values)
        out.append((model, settings, breaks, raw_items(model, settings, breaks)))
    return out
