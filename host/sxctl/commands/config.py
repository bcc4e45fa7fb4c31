"""sxctl config: check a plant file, show what it would change on the boards, apply it.

How a change is applied, all or none per board: configapply.py.
"""
from .. import plantfile
from ..configapply import apply_stage, change_table, changed, read_board, rules_after
from ..errors import SxctlError
from . import common

HELP = "check a plant file, show what it would change on the boards, apply it"
EXAMPLE = "sxctl config apply examples/plant.toml --bus /dev/ttyUSB0"

ACTIONS = {
    "check": ("check a plant file as a whole: every error with its line and key; exit 1 if any",
              "sxctl config check examples/plant.toml"),
    "diff": ("read every stage's config from its board and show what applying the plant file would change",
             "sxctl config diff examples/plant.toml --bus /dev/ttyUSB0"),
    "apply": ("write each board's changed items (all or none per board) and verify them by reading back",
              "sxctl config apply examples/plant.toml --bus /dev/ttyUSB0"),
}

def add_arguments(p):
    sub = p.add_subparsers(dest="action", metavar="ACTION")
    sub.required = True
    for action, (text, example) in ACTIONS.items():
        q = sub.add_parser(action, help=text, description=text, epilog="example: " + example)
        q.add_argument("plant", metavar="PLANT", nargs="?",
                       help="plant file (TOML), see examples/plant.toml (default: $%s, else ./%s)"
                       % (common.PLANT_ENV, common.PLANT_HERE))
        if action != "check":
            common.bus_port(q, plant=False)
        common.json_option(q, {"check": "lines", "diff": "a table", "apply": "a line per stage"}[action])


def run(args):
    args.plant = args.plant or common.plant_path(args)
    if not args.plant:
        raise SxctlError("no plant file: name one (sxctl config %s PLANT), or set $%s, or put a %s here"
                         % (args.action, common.PLANT_ENV, common.PLANT_HERE))
    return {"check": check, "diff": diff, "apply": apply}[args.action](args)


def check(args):
    try:
        plant = plantfile.load(args.plant)
    except plantfile.PlantFileError as e:
        import sys
        if args.json:
            common.print_json(dict(plant=e.path, ok=False, problems=[
                dict(line=p.line, where=p.where or None, key=p.key, problem=p.text) for p in e.problems]))
        for problem in e.problems:
            print(problem.format(e.path), file=sys.stderr)
        print("%s: %d error%s; the file is refused whole" % (
            e.path, len(e.problems), "" if len(e.problems) == 1 else "s"), file=sys.stderr)
        return 1
    if args.json:
        common.print_json(dict(plant=args.plant, ok=True, problems=[], stages=[
            dict(name=s.name, address=s.address, role=s.role, line=s.line,
                 settings={name: plantfile.engineering(plantfile.ITEMS[name], raw)
                           for name, raw in sorted(s.settings().items())}) for s in plant.stages]))
        return 0
    print("%s: OK, %d stage%s: %s" % (args.plant, len(plant.stages), "" if len(plant.stages) == 1 else "s",
                                      ", ".join("%s@%d" % (s.name, s.address) for s in plant.stages)))
    return 0


def _open_bus(args, plant):
    return common.open_bus(args, plant, program="sxctl config " + args.action)


def diff(args):
    plant = plantfile.load(args.plant)
    failed = 0
    report = []
    say = (lambda text: None) if args.json else print
    with _open_bus(args, plant) as bus:
        for stage in plant.stages:
            try:
                board, version = read_board(bus, stage.address)
            except SxctlError as e:
                say("%s: unreachable: %s" % (stage.label(), e))
                report.append(dict(stage=stage.name, address=stage.address, reachable=False, problem=str(e)))
                failed += 1
                continue
            changes = changed(board, stage.settings())
            broken = rules_after(board, stage.settings())
            report.append(dict(stage=stage.name, address=stage.address, reachable=True, config_version=version,
                               refused=broken or None,
                               changes={name: dict(board=plantfile.engineering(plantfile.ITEMS[name], board[name]),
                                                   plant=plantfile.engineering(plantfile.ITEMS[name], raw))
                                        for name, raw in changes.items()}))
            if args.json:
                failed += bool(broken)
                continue
            if broken:
                print("%s: would be refused: %s" % (stage.label(), broken))
                failed += 1
            if not changes:
                print("%s: up to date (config version %d)" % (stage.label(), version))
                continue
            print("%s: %d change%s (config version %d)" % (
                stage.label(), len(changes), "" if len(changes) == 1 else "s", version))
            print(change_table(board, changes, "board", "plant"))
    if args.json:
        common.print_json(report)
    return 1 if failed else 0


def apply(args):
    plant = plantfile.load(args.plant)
    outcomes = {}
    report = []
    with _open_bus(args, plant) as bus:
        for stage in plant.stages:
            status, text = apply_stage(bus, stage)
            outcomes[stage.name] = status
            report.append(dict(stage=stage.name, address=stage.address, status=status, detail=text))
            if not args.json:
                print("%s: %s" % (stage.label(), text))
    bad = {name: status for name, status in outcomes.items() if status not in ("applied", "up to date")}
    if args.json:
        common.print_json(dict(plant=args.plant, matching=len(outcomes) - len(bad), stages=report))
    else:
        print("%d of %d boards match the plant file%s" % (
            len(outcomes) - len(bad), len(outcomes),
            "" if not bad else "; not applied: " + ", ".join("%s (%s)" % kv for kv in bad.items())))
    return 1 if bad else 0


