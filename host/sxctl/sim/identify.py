"""Identification run: a stage's titration curve from small step doses, read off its telemetry.

What an engineer does on a plant, done on the simulator: the stage's board is switched to
manual and its base dose is stepped through a staircase; each step is held until the stage has
settled, and the pH and feed flow the board reports over the last part of the step give one
point of the steady-state titration curve. The other stages keep running as the plant file
sets them (in auto, holding their own setpoints). Nothing here looks inside the model: the
points come from the board's telemetry, as `sxctl log` would record them.

    python -m sxctl.sim.identify --plant hs --stage CSTR --doses 115:180:5 --hold 600

prints every step, the settling time of each, and the plant-file lines: `titration` (at most 8
points, chosen so the piecewise-linear curve stays closest to every measured point) and
`feedforward` at the dose nearest the setpoint. Curve base values are in 0.1 mL of base dose
per L of feed (dose in mL/min ÷ feed flow in L/min × 10), the board's unit for the curve: with
a non-zero `feedforward` it doses feed × curve(setpoint), so the curve's unit is the dose's.
"""
import argparse
import dataclasses
import sys

from ..errors import SxctlError
from . import plants
from .plants import Event
from .session import Session

BASE_SCALE = 10.0  # curve base unit: 0.1 mL dose per L feed


@dataclasses.dataclass
class Step:
    dose: float  # mL/min commanded
    start_s: float
    ph: float  # mean reported pH over the end of the step
    flow_L_min: float
    spread: float  # max - min pH over that window: how settled it was
    t63_s: float  # time to 63 % of the step's pH change (None for the first)

    @property
    def base(self):
        return BASE_SCALE * self.dose / self.flow_L_min


def staircase(text):
    """'115:180:5' -> [115, 120, ..., 180]; '1,2,5' -> [1, 2, 5]."""
    if ":" in text:
        lo, hi, step = (float(x) for x in text.split(":"))
        n = int(round((hi - lo) / step))
        return [round(lo + k * step, 6) for k in range(n + 1)]
    return [float(x) for x in text.split(",")]


def run(plant, stage, doses, hold_s=600.0, avg_s=60.0, warmup_s=0.0, heapsize=None):
    """Steps of an identification run of `stage` (its name) through `doses` (mL/min)."""
    names = [s.name for s in plant.stages]
    if stage not in names:
        raise SxctlError("no stage %r in %s; stages: %s" % (stage, plant.path, ", ".join(names)))
    index = names.index(stage)
    if not warmup_s:
        # no warm-up: the stage starts in manual at the first dose and stays in manual
        plant = dataclasses.replace(plant, manual_dose=doses[0], auto_at_s=float("inf"))
    # at steady conditions: the plant file's disturbances and setpoint changes are left out
    events = [Event(warmup_s + k * hold_s, "manual_dose", dose, index) for k, dose in enumerate(doses)]
    result = Session(plant, warmup_s + len(doses) * hold_s, events=events, heapsize=heapsize).run()
    records = result.telemetry[plant.stages[index].address]
    steps = []
    for k, dose in enumerate(doses):
        start = warmup_s + k * hold_s
        end = start + hold_s
        window = [r for r in records if end - avg_s <= r["time_s"] < end]
        if not window:
            raise SxctlError("no telemetry at the end of step %d" % (k + 1))
        ph = [r["ph"] / 1000.0 for r in window]
        flow = sum(r["flow_aq"] for r in window) / len(window) / 1000.0
        if flow <= 0:
            raise SxctlError("stage %s reports no feed flow at step %d: no titration point" % (stage, k + 1))
        steps.append(Step(dose, start, sum(ph) / len(ph), flow, max(ph) - min(ph), None))
        if k:
            before, after = steps[k - 1].ph, steps[k].ph
            target = before + 0.63 * (after - before)
            inside = [r for r in records if start <= r["time_s"] < end]
            for r in inside:
                if (r["ph"] / 1000.0 - target) * (after - before) >= 0:
                    steps[k].t63_s = r["time_s"] - start
                    break
    return steps


def override(plant, settings):
    """Set config items (ITEM=VALUE, in the item's unit) on every stage of the plant."""
    from sxproto import config_items

    from .. import plantfile

    for text in settings:
        name, _, value = text.partition("=")
        item = config_items.BY_NAME.get(name.strip())
        if item is None:
            raise SxctlError("--set %s: no config item %r" % (text, name))
        try:
            raw = plantfile.parse_text(item, value)
        except ValueError as e:
            raise SxctlError("--set %s: %s" % (text, e)) from None
        for stage in plant.stages:
            stage.values[item.name] = raw
            stage.managed.add(item.name)


def monotone(steps):
    """Points (pH, base) sorted by base with pH rising by at least 0.01 each: what the board takes."""
    points = []
    for s in sorted(steps, key=lambda s: s.base):
        if not points or (s.ph >= points[-1][0] + 0.01 and s.base > points[-1][1]):
            points.append((s.ph, s.base))
    return points


def choose(points, n=8):
    """At most n of the points, first and last kept, whose piecewise-linear curve is closest to
    all of them in the worst case (dynamic programming over subsets). Closeness is in base: the
    board maps a pH to the base it needs, so that is the curve's use."""
    m = len(points)
    if m <= n:
        return list(points)

    def err(i, j):  # worst base miss of the points between i and j on the chord i-j
        (x0, y0), (x1, y1) = points[i], points[j]
        return max((abs(points[k][1] - (y0 + (y1 - y0) * (points[k][0] - x0) / (x1 - x0)))
                    for k in range(i + 1, j)), default=0.0)

    inf = float("inf")
    best = [[inf] * m for _ in range(n + 1)]  # best[c][j]: worst miss using c points ending at j
    prev = [[None] * m for _ in range(n + 1)]
    best[1][0] = 0.0
    for c in range(2, n + 1):
        for j in range(1, m):
            for i in range(j):
                if best[c - 1][i] < inf:
                    e = max(best[c - 1][i], err(i, j))
                    if e < best[c][j]:
                        best[c][j], prev[c][j] = e, i
    # the fewest points within half a unit of the best (the board keeps whole units)
    least = min(best[c][m - 1] for c in range(2, n + 1))
    c = min(c for c in range(2, n + 1) if best[c][m - 1] <= least + 0.5)
    chosen, j = [], m - 1
    while j is not None:
        chosen.append(points[j])
        j, c = prev[c][j], c - 1
    return chosen[::-1]


def base_at(points, ph):
    """Base per feed at `ph` on the measured points (linear between them, the nearest end outside)."""
    if ph <= points[0][0]:
        return points[0][1]
    for (p0, b0), (p1, b1) in zip(points, points[1:]):
        if ph <= p1:
            return b0 + (b1 - b0) * (ph - p0) / (p1 - p0)
    return points[-1][1]


def plant_lines(steps, setpoint):
    measured = monotone(steps)
    points = choose(measured)
    curve = ", ".join("[%.3f, %d]" % (ph, round(base)) for ph, base in points)
    ff = base_at(measured, setpoint) / BASE_SCALE
    return ["titration = [%s]" % curve,
            "feedforward = %.2f   # mL base per L feed: the measured curve at the setpoint, pH %.3f" % (ff, setpoint)]


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m sxctl.sim.identify", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--plant", required=True, help="sx, hs or a plant file (sxctl sim --plant)")
    p.add_argument("--stage", required=True, help="name of the stage to identify")
    p.add_argument("--doses", required=True, type=staircase, help="base doses in mL/min: LO:HI:STEP or a,b,c")
    p.add_argument("--hold", type=float, default=600.0, help="seconds each dose is held (default 600)")
    p.add_argument("--average", type=float, default=60.0, help="seconds at the end of each step averaged (60)")
    p.add_argument("--warmup", type=float, default=0.0,
                   help="seconds the plant runs as its file sets it before the first step (default 0)")
    p.add_argument("--set", nargs="+", default=[], metavar="ITEM=VALUE",
                   help="config items for every stage during the run, e.g. the commissioning settings "
                        "pid_kp=50 pid_ti=300 feedforward=0 titration_points=0")
    p.add_argument("--heapsize", default=None, help="MicroPython heap of each board")
    args = p.parse_args(argv)
    try:
        plant = plants.load(args.plant)
        override(plant, args.set)
        steps = run(plant, args.stage, args.doses, args.hold, args.average, args.warmup, args.heapsize)
    except SxctlError as e:
        print("identify: error: %s" % e, file=sys.stderr)
        return 1
    print("%-4s %10s %8s %10s %8s %8s %8s" % ("step", "dose", "pH", "feed", "base", "spread", "t63"))
    for k, s in enumerate(steps, 1):
        print("%-4d %6.2f mL/min %8.3f %6.3f L/min %6d %8.3f %6s s" % (
            k, s.dose, s.ph, s.flow_L_min, round(s.base), s.spread, "-" if s.t63_s is None else "%d" % s.t63_s))
    setpoint = plant.setpoint([s.name for s in plant.stages].index(args.stage))
    print("\n# %s, stage %s: identified by `python -m sxctl.sim.identify %s`" % (
        plant.path, args.stage, " ".join(argv if argv is not None else sys.argv[1:])))
    print("\n".join(plant_lines(steps, setpoint)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
