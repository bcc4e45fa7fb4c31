"""Benchmark section `control`: the firmware's own pH controller, unmodified on the Unix port,
in lock-step against the Henson & Seborg tank and the 4-stage extraction cascade.

Henson–Seborg (examples/hs-benchmark.toml; DOMAIN.md §6), sample time 5 s, q3 limited to
0..30 mL/s, the tank starting at its published steady state under manual control:
- servo: setpoint 7.0 → 8.5 at 10 min → 6.0 at 40 min → 7.0 at 70 min, to 100 min;
- regulatory: setpoint 7.0; q2 +0.65 mL/s at 5 min, q1 +1.5 mL/s at 35 min, to 65 min;
each with an ideal electrode and a realistic one (15 s lag after 10 s dead time), each run by
- the firmware controller with the plant file's settings, all written by `sxctl tune --plant
  examples/hs-benchmark.toml --stage CSTR --ph-range 5.5:9.5` on the benchmark plant (its step
  test, its model, SIMC gains: sxctl/tuning.py); no setting is chosen by scoring these scenarios,
  and
- the reference PI of the literature, Kc = 2 (mL/s)/pH, Ti = 60 s, on the same firmware with no
  curve and no feedforward: Kc in the board's units is 2 (mL/s)/pH × 10 (mL/min on the board per
  mL/s of q3) = 20 mL/min per pH (pid_kp 20.00), Ti 60 s (pid_ti 60), Td 0.
All eight run side by side on eight boards in one lock-step session. IAE counts |setpoint −
true pH| at every 5 s sample, in pH·min; settling is to ±0.1 pH after each step (and after each
disturbance); TV is the total variation of q3 in mL/s; oscillation is metrics.oscillates.

Robustness (`control.robustness`): the servo scenario over electrodes of lag {5, 15, 30, 40} s ×
dead time {5, 10, 20, 30} s, each plant first tuned by the same step test (sxctl/tune.py, all 16
in one lock-step run), then run with those settings beside the reference PI on the same plant:
the worst IAE, how many grid points oscillate and the worst overshoot past a setpoint step.

SX cascade (examples/sx-cascade.toml, every stage's loop settings written by `sxctl tune` on
that stage, the others in auto): a cold start, one simulated hour with the feed turning more
acidic at 30 min, the plant file's controller against a plain PID (same gains and pumps, no
curve, no feedforward), side by side in one run: IAE summed over the stages (2 s samples),
base used, and the worst |setpoint − true pH| of any stage over the last 10 minutes.
"""
import dataclasses

from ..sim import metrics, plants
from ..sim.plants import Event
from ..sim.session import Session
from . import Figure

SAMPLE_S = 5.0
SERVO = dict(events=[Event(600, "ph_setpoint", 8.5, 0), Event(2400, "ph_setpoint", 6.0, 0),
                     Event(4200, "ph_setpoint", 7.0, 0)], steps=[600, 2400, 4200], end=6000)
REGULATORY = dict(events=[Event(300, "q2", 0.55 + 0.65), Event(2100, "q1", 16.6 + 1.5)], steps=[300, 2100], end=3900)
SCENARIOS = {"servo": SERVO, "reg": REGULATORY}
SENSORS = {"ideal": dict(tau_s=0.0, dead_time_s=0.0), "realistic": dict(tau_s=15.0, dead_time_s=10.0)}
# The reference PI in the board's units (see the module docstring).
REFERENCE_PI = dict(pid_kp=2000, pid_ti=60, pid_td=0, titration_points=0, feedforward=0)
SX_LAST_S = 600.0


GRID_LAGS = (5.0, 15.0, 30.0, 40.0)
GRID_DEADS = (5.0, 10.0, 20.0, 30.0)
TUNE_RANGE = (5.5, 9.5)  # pH the step test covers: every setpoint of the servo scenario


def run(options):
    return hs_figures() + robustness_figures() + sx_figures()


def hs_plants():
    """(labels, plants): every scenario × sensor × controller of the Henson–Seborg benchmark."""
    base = plants.load("hs")
    labels, parts = [], []
    for scenario, spec in SCENARIOS.items():
        for sensor, probe in SENSORS.items():
            for controller, items in (("fw", None), ("pi", REFERENCE_PI)):
                labels.append("%s_%s_%s" % (scenario, sensor, controller))
                parts.append(plants.variant(base, items, probe=dict(probe), events=list(spec["events"])))
    return labels, parts


def hs_figures():
    labels, parts = hs_plants()
    result = Session(plants.combine(parts, labels), max(s["end"] for s in SCENARIOS.values())).run()
    figures = []
    for k in range(0, len(labels), 2):
        scenario, sensor, _ = labels[k].split("_")
        spec = SCENARIOS[scenario]
        fw, pi = (_hs_metrics(result, k + j, spec) for j in (0, 1))
        key = "control.hs_%s_%s." % (scenario, sensor)
        goal = {("servo", "realistic"): ("<=", 1.5), ("reg", "realistic"): ("<=", 0.45)}.get((scenario, sensor))
        figures += [
            Figure(key + "iae", round(fw["iae"], 3), "pH·min", goal, "firmware controller, settings by sxctl tune on this plant"),
            Figure(key + "pi_iae", round(pi["iae"], 3), "pH·min", None, "reference PI Kc 2 (mL/s)/pH, Ti 60 s"),
            Figure(key + "iae_ratio", round(pi["iae"] / fw["iae"], 2) if fw["iae"] else 0.0, "×",
                   None, "PI IAE / firmware IAE"),
            Figure(key + "settling_s", _settle_text(fw["settling"]), "", None, "to ±0.1 pH after each step"),
            Figure(key + "pi_settling_s", _settle_text(pi["settling"]), "", None, ""),
            Figure(key + "tv", round(fw["tv"], 2), "mL/s", None, "total variation of q3"),
            Figure(key + "pi_tv", round(pi["tv"], 2), "mL/s", None, ""),
            Figure(key + "oscillates", int(fw["osc"]), "", ("==", 0), "sustained oscillation (1 = yes)"),
            Figure(key + "pi_oscillates", int(pi["osc"]), "", None, ""),
        ]
    return figures


def _hs_metrics(result, board, spec):
    s = metrics.sample(result.trace, board, SAMPLE_S)
    s = metrics.Samples(*(list(x[:int(spec["end"] / SAMPLE_S) + 1]) for x in dataclasses.astuple(s)))
    return dict(iae=metrics.iae(s), settling=metrics.settling(s, spec["steps"]),
                tv=metrics.total_variation(s), osc=metrics.oscillates(s, spec["steps"]))


def robustness_figures():
    from .. import tune

    base = plants.load("hs")
    labels, probes = [], []
    for lag in GRID_LAGS:
        for dead in GRID_DEADS:
            labels.append("l%dd%d" % (lag, dead))
            probes.append(dict(tau_s=lag, dead_time_s=dead))
    parts = [plants.variant(base, probe=p, events=[]) for p in probes]
    tuned = tune.tune_parts(parts, labels, TUNE_RANGE)
    runs, names = [], []
    for label, probe, (_, _, _, items) in zip(labels, probes, tuned):
        runs.append(plants.variant(base, items, probe=dict(probe), events=list(SERVO["events"])))
        runs.append(plants.variant(base, REFERENCE_PI, probe=dict(probe), events=list(SERVO["events"])))
        names += [label + "_fw", label + "_pi"]
    result = Session(plants.combine(runs, names), SERVO["end"]).run()
    worst = dict(fw=(0.0, ""), pi=(0.0, ""))
    over = dict(fw=0.0, pi=0.0)
    osc = dict(fw=0, pi=0)
    for k, name in enumerate(names):
        m = _hs_metrics(result, k, SERVO)
        who = name.rsplit("_", 1)[1]
        if m["iae"] > worst[who][0]:
            worst[who] = (m["iae"], name.rsplit("_", 1)[0])
        osc[who] += int(m["osc"])
        s = metrics.sample(result.trace, k, SAMPLE_S)
        over[who] = max(over[who], _overshoot(s, SERVO["steps"]))
    key = "control.robustness."
    return [
        Figure(key + "worst_iae", round(worst["fw"][0], 3), "pH·min", None,
               "servo, lag 5-40 s x dead time 5-30 s, each tuned by sxctl tune (worst at %s)" % worst["fw"][1]),
        Figure(key + "pi_worst_iae", round(worst["pi"][0], 3), "pH·min", None,
               "reference PI on the same plants (worst at %s)" % worst["pi"][1]),
        Figure(key + "oscillating", osc["fw"], "of %d" % len(labels), ("==", 0), "grid points that oscillate"),
        Figure(key + "pi_oscillating", osc["pi"], "of %d" % len(labels), None, ""),
        Figure(key + "worst_overshoot", round(over["fw"], 3), "pH", None, "past the new setpoint after a step"),
        Figure(key + "pi_worst_overshoot", round(over["pi"], 3), "pH", None, ""),
    ]


def _overshoot(s, steps_s):
    """Largest excursion past the new setpoint, in the direction of each step, before the next."""
    edges = list(steps_s) + [s.t_s[-1] + 1e-9]
    worst = 0.0
    for start, end in zip(edges, edges[1:]):
        rows = [(ph, sp) for t, ph, sp in zip(s.t_s, s.ph, s.setpoint) if start <= t < end]
        before = [sp for t, sp in zip(s.t_s, s.setpoint) if t < start]
        if not rows or not before:
            continue
        up = rows[0][1] > before[-1]
        worst = max(worst, max((ph - sp) if up else (sp - ph) for ph, sp in rows))
    return worst


def _settle_text(times):
    return "/".join("never" if t is None else "%d" % t for t in times)


def sx_plants():
    fw = plants.load("sx")
    pid = plants.variant(fw, dict(titration_points=0, feedforward=0))
    return ["fw", "pid"], [fw, pid]


def sx_figures():
    labels, parts = sx_plants()
    n = parts[0].boards
    result = Session(plants.combine(parts, labels), 3600.0).run()
    out = {}
    for k, label in enumerate(labels):
        iae = worst = base_L = 0.0
        for board in range(k * n, (k + 1) * n):
            s = metrics.sample(result.trace, board, 2.0)
            iae += metrics.iae(s)
            worst = max(worst, metrics.max_error(s, since_s=s.t_s[-1] - SX_LAST_S))
            # base the stage received, L/min integrated over the ticks
            base_L += sum(row[board] for row in result.trace.base) * parts[0].tick_s / 60.0
        out[label] = dict(iae=iae, worst=worst, base_L=base_L)
    fw, pid = out["fw"], out["pid"]
    key = "control.sx_cascade."
    return [
        Figure(key + "iae", round(fw["iae"], 3), "pH·min", None, "4 stages, cold start + feed acid step, 1 h; settings by sxctl tune"),
        Figure(key + "pid_iae", round(pid["iae"], 3), "pH·min", None,
               "plain PID: same gains, no curve, no feedforward"),
        Figure(key + "base_L", round(fw["base_L"], 2), "L", None, "2 M NaOH used in the hour"),
        Figure(key + "pid_base_L", round(pid["base_L"], 2), "L", None, ""),
        Figure(key + "max_err_last10", round(fw["worst"], 3), "pH", ("<=", 0.1), "worst stage, last 10 min"),
        Figure(key + "pid_max_err_last10", round(pid["worst"], 3), "pH", None, ""),
    ]
