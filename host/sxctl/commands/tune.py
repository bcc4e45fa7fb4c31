"""sxctl tune: identify a running stage with step doses and write its loop settings into the plant file."""
import signal
import sys

from . import common

HELP = ("identify a stage with bounded step doses (titration curve, mixing time, electrode response) and "
        "write the loop settings derived from them into the plant file")
EXAMPLE = ("sxctl tune --plant plant.toml --stage E1 --bus /dev/ttyUSB0 --ph-range 1.6:1.8   (a live stage; "
           "without a bus, a plant file's [sim] model on virtual boards: --plant examples/hs-benchmark.toml "
           "--stage CSTR --ph-range 5.5:9.5 --yes)")


def _range(text):
    lo, _, hi = text.partition(":")
    lo, hi = float(lo), float(hi)
    if not lo < hi:
        raise ValueError(text)
    return lo, hi


def add_arguments(p):
    p.add_argument("--plant", required=True, metavar="PLANT.toml",
                   help="the plant file to tune a stage of; the settings are written into it")
    p.add_argument("--stage", required=True, help="the stage: its name or bus address in the plant file")
    p.add_argument("--ph-range", type=_range, default=None, metavar="LO:HI",
                   help="pH range the titration curve must cover (default: the setpoint ± 0.3)")
    p.add_argument("--max-step", type=float, default=None, metavar="ML_MIN",
                   help="largest change of the dose in one step, mL/min (default: base_max / 10)")
    p.add_argument("--yes", action="store_true",
                   help="start without asking and write the settings without asking")
    p.add_argument("--bus", "--port", dest="bus", metavar="PORT",
                   help="the bus the live stage is on (default: the plant file's [bus] port); with neither, a plant "
                        "file's [sim] model is run on virtual boards, lock-step")
    p.add_argument("--baud", type=int, default=None, help="bus baud rate (default: the plant file's, else 115200)")
    p.add_argument("--key-file", metavar="FILE", help="plant key to sign the mode changes with (default: the plant "
                   "file's key_file, else $SXCTL_PLANT_KEY)")
    p.add_argument("--poll", type=float, default=1.0, metavar="S",
                   help="on a live stage: seconds between reads of its records (default 1; the board keeps "
                        "its backlog's worth)")
    p.add_argument("--heapsize", default=None, help="without a bus: MicroPython heap of each virtual board")


def _ask(text):
    if not sys.stdin.isatty():
        return False
    return input(text + " [y/N] ").strip().lower() in ("y", "yes")


def run(args):
    from .. import plantfile, tune
    from ..errors import SxctlError

    text = open(args.plant, encoding="utf-8").read() if _readable(args.plant) else None
    if text is None:
        raise SxctlError("cannot read plant file %s" % args.plant)
    plant = plantfile.load(args.plant)
    live = bool(args.bus or plant.port)
    if not live and "[sim]" not in text:
        raise SxctlError("%s names no bus: give --bus PORT (the stage's bus), or port in its [bus] table"
                         % args.plant)
    index = _stage_index(plant, args.stage)
    stage = plant.stages[index]
    say = _printer()
    opts = tune.options_for(plant, index, args.ph_range, max_step=args.max_step)
    say("tuning stage %s (address %d) of %s %s: pH range %.2f..%.2f, steps of at most %.2f mL/min, dose 0..%.2f"
        % (stage.name, stage.address, args.plant, "on the bus" if live else "on its [sim] model, virtual boards",
           opts.ph_lo, opts.ph_hi, opts.max_step or opts.base_max / 10, opts.base_max))
    say("waiting for the stage to be stable (pH within %.3f over %.0f s) ..." % (opts.stable_band, opts.stable_s))

    def confirm(state):
        return True if args.yes else _ask("start the step test from this state? the stage goes to manual")

    proc = tune.Procedure(None, opts, say=say, confirm=confirm)
    stop = []
    old = signal.signal(signal.SIGINT, lambda *_: stop.append(1))
    try:
        if live:
            with common.open_bus(args, plant, program="sxctl tune") as bus:
                bus.hello(stage.address)  # a board that answers, of this schema, before anything else
                tune.run_live(bus, stage.address, proc, opts.measure_s, args.poll, interrupted=lambda: bool(stop),
                              status=lambda t: say(_status(proc, t)))
        else:
            from ..sim import plants

            sim_plant = plants.load(args.plant)
            at = [s.address for s in sim_plant.stages].index(stage.address)
            tune.run_virtual(sim_plant, {at: proc}, heapsize=args.heapsize, interrupted=lambda: bool(stop),
                             status=lambda t: say(_status(proc, t)))
    finally:
        signal.signal(signal.SIGINT, old)
    if stop:
        say("interrupted: nothing written to %s" % args.plant)
        return 130
    return _write(args, text, stage, proc, tune.setpoint_of(stage), say)


def _write(args, text, stage, proc, setpoint, say):
    from .. import plantedit, plantfile, tune, tuning

    model, fits, measured = proc.model(setpoint)
    settings = tuning.simc(model)
    say("fitted model: " + model.describe())
    for f in fits:
        say("  %d step responses fitted together: mixing %.0f s, electrode lag %.0f s, dead time %.1f s, fit rms %.3f"
            % (f.steps, f.tau1, f.tau2, f.theta, f.rms))
    say("titration curve (%d points measured, %d kept): %s" % (
        len(measured), len(model.points), ", ".join("pH %.3f: %d" % p for p in model.points)))
    gm, pm = tuning.margins(model, settings)
    wgm, wpm = tuning.worst_margins(model, settings)
    say("settings (%s): pid_kp %.2f mL/min per pH, pid_ti %.0f s, pid_td %.1f s; gain margin %.1f, phase margin "
        "%.0f°; with the slope ±30 %% and the mixing ±50 %%: at worst %.1f and %.0f°"
        % (settings.rule, settings.kp, settings.ti_s, settings.td_s, gm, pm, wgm, wpm))
    values_eng = {it: stage.values[it] for it in ("stuck_window",)}
    breaks = tuning.rule_breaks(model, values_eng)
    for b in breaks:
        say("rule: " + b.text)
    new = plantedit.set_items(text, stage.name, tune.item_values(model, settings, breaks),
                              note="sxctl tune")
    print(plantedit.diff(text, new, args.plant), end="")
    if not (args.yes or _ask("write these settings into %s?" % args.plant)):
        say("not written: run again with --yes, or answer y, to write them")
        return 1
    _, problems = plantfile.check_text(new, args.plant)  # the written file must load as a plant again
    if problems:
        raise plantfile.PlantFileError(args.plant, problems)
    if "[sim]" in new:
        from ..sim import plants

        plants.parse(new, args.plant)
    tmp = args.plant + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(new)
    import os
    os.replace(tmp, args.plant)
    say("written to %s" % args.plant)
    return 0


def _readable(path):
    import os
    return os.path.isfile(path)


def _stage_index(plant, which):
    for i, s in enumerate(plant.stages):
        if s.name == which or str(s.address) == which:
            return i
    from ..errors import SxctlError
    raise SxctlError("no stage %r in %s; stages: %s" % (which, plant.path, ", ".join(
        "%s (address %d)" % (s.name, s.address) for s in plant.stages)))


def _status(proc, t_s):
    if proc.state == "check":
        return "  %5.0f s: waiting for a stable stage" % t_s
    if proc.state == "steps":
        return "  %5.0f s: step %d at %.2f mL/min, held %.0f s, pH %.3f" % (
            t_s, len(proc.points) + 1, proc.dose, t_s - proc.step_start, proc.records[-1][1] if proc.records else 0)
    return "  %5.0f s: %s" % (t_s, proc.state)


def _printer():
    def say(text):
        print(text, flush=True)
    return say
