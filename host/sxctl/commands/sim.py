"""sxctl sim: virtual boards on a virtual bus, optionally driven by a plant model."""
import json
import os
import signal
import sys

from . import common

HELP = "run virtual boards on a virtual bus, optionally against a simulated plant"
EXAMPLE = ("sxctl sim --stages 4 --plant sx --speed 200 --duration 3600 --log run.sqlite   "
           "(or: sxctl sim --stages 3 --ports-file ports.json)")


def _rate(text):
    value = float(text)
    if not 0.0 <= value < 1.0:
        raise ValueError(text)
    return value


def add_arguments(p):
    p.add_argument("--stages", type=int, default=None,
                   help="number of virtual boards, addresses 1..N (default 3; with --plant, its first N stages, "
                        "default all)")
    p.add_argument("--ports-file", help="where to write the JSON map of bus, USB and plant-link ports "
                                        "(required without --plant)")
    p.add_argument("--plant", metavar="sx|hs|PLANT.toml",
                   help="drive the boards' sensors and clock from a plant model over their plant links: sx (the "
                        "4-stage extraction cascade of examples/sx-cascade.toml), hs (the Henson-Seborg pH tank of "
                        "examples/hs-benchmark.toml) or a plant file with a [sim] table (docs/plant-link.md)")
    p.add_argument("--plant-link", action="store_true",
                   help="without --plant: give every board a plant link for your own simulator to drive; the "
                        "ports file lists each board's link as \"plant\" (docs/plant-link.md)")
    p.add_argument("--speed", type=float, default=None,
                   help="with --plant: run paced at this many times real time (default: lock-step, as fast as "
                        "the boards answer, deterministic)")
    p.add_argument("--duration", type=float, default=None,
                   help="seconds to run: simulated seconds with --plant, else real (default: until Ctrl-C)")
    p.add_argument("--poll", type=float, default=5.0,
                   help="with --plant: simulated seconds between telemetry polls of each board (default 5); "
                        "keep it below the boards' link_timeout")
    p.add_argument("--no-host", action="store_true",
                   help="with --plant and --speed: commission the boards, then leave the bus to the plant's own "
                        "host programs (sxctl serve, log, monitor, tune --bus), as on a plant; give the boards a "
                        "link_timeout that those programs' polls keep")
    p.add_argument("--log", metavar="DB", help="with --plant: record the boards' telemetry in this SQLite store, "
                                               "as `sxctl log` does")
    p.add_argument("--monitor", action="store_true", help="with --plant: show a live table of every stage")
    p.add_argument("--json", action="store_true", help="with --plant: print the summary as JSON (alarms by name; "
                                                        "the other lines go to stderr)")
    p.add_argument("--baud", type=int, default=None,
                   help="pace the bus as a UART at this baud rate (default: as fast as the ptys go)")
    p.add_argument("--ber", type=_rate, default=0.0, help="bus fault injection: bit error rate, e.g. 1e-4")
    p.add_argument("--drop", type=_rate, default=0.0, help="bus fault injection: rate of lost bytes, e.g. 1e-3")
    p.add_argument("--seed", type=int, default=0, help="seed of the fault injection (default 0)")
    p.add_argument("--heapsize", type=common.heap_size, default=None,
                   help="MicroPython heap of each board (default: the unix-sim board's)")
    p.add_argument("--root", default=None, help="folder for the boards' filesystems (default: a temporary one, removed at exit)")
    p.add_argument("--blank", action="store_true", help="boards start with an empty filesystem, as from the factory")


def run(args):
    from ..errors import SxctlError

    if args.plant is None:
        if args.no_host:
            raise SxctlError("--no-host needs --plant")
        for name in ("speed", "log"):
            if getattr(args, name) is not None:
                raise SxctlError("--%s needs --plant" % name)
        if args.monitor or args.json:
            raise SxctlError("--%s needs --plant" % ("monitor" if args.monitor else "json"))
        if not args.ports_file:
            raise SxctlError("give --ports-file FILE (where the ports go), or --plant to run against a plant model")
        return run_boards(args)
    if args.blank:
        raise SxctlError("--blank boards have no firmware to run a plant with; flash them first (`sxctl flash`)")
    if args.plant_link:
        raise SxctlError("--plant-link is for your own simulator; with --plant, sxctl drives the links itself")
    if args.no_host and (args.log or args.monitor):
        raise SxctlError("--no-host leaves the bus to other programs: log and watch with them (sxctl serve, sxctl "
                         "log, sxctl monitor), not with --log or --monitor")
    return run_plant(args)


def _stop_on_signals():
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(signal.SIGTERM))
    signal.signal(signal.SIGINT, lambda *_: stop.append(signal.SIGINT))
    return stop


def _exit_code(stop, code=0):
    """130 after Ctrl-C, as every verb exits on it; else `code`."""
    return 130 if stop and stop[0] == signal.SIGINT else code


def _write_ports(path, ports):
    # Written only once every board answers, so a reader may use the ports at once.
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(ports, f, indent=2)
    os.replace(tmp, path)


def run_boards(args):
    from .. import boards
    from ..sim.bus import Bus
    from ..sim.simulator import Simulator

    stages = 3 if args.stages is None else args.stages
    heapsize = args.heapsize or "%dK" % boards.load("unix-sim")["heap_kb"]
    bus = Bus(args.baud, args.ber, args.drop, args.seed)
    sim = Simulator(stages, heapsize=heapsize, root=args.root, blank=args.blank, bus=bus,
                    plant_link="external" if args.plant_link else False)
    stop = _stop_on_signals()
    try:
        sim.start()
        if not args.blank:
            halt = sim.run_in_background()
            try:
                sim.wait_ready()
            finally:
                halt()
        ports = sim.ports()
        _write_ports(args.ports_file, ports)
        print("bus %s; %d boards%s; ports in %s; Ctrl-C stops" % (
            ports["bus"], stages, " with plant links (clocks stopped until a SENSE)" if args.plant_link else "",
            args.ports_file), flush=True)
        sim.run(duration=args.duration, should_stop=lambda: bool(stop))
    finally:
        sim.close()
    return _exit_code(stop)


def run_plant(args):
    from ..sim import plants, report
    from ..sim.session import Session
    from ..store import SQLiteStore

    plant = plants.load(args.plant, args.stages)
    stop = _stop_on_signals()
    monitor = report.LiveTable(stream=sys.stderr if args.json else None) if args.monitor else None
    ports_written = []

    def on_poll(session, t_s):
        # with --no-host, once the bus is free for the programs that read the ports file
        if args.ports_file and not ports_written and (session.bus is None or not args.no_host):
            _write_ports(args.ports_file, session.sim.ports())
            ports_written.append(1)
        if monitor is not None:
            monitor(session, t_s)

    out = sys.stderr if args.json else sys.stdout  # with --json, stdout holds the JSON alone
    mode = "lock-step" if args.speed is None else "paced at %g× real time" % args.speed
    print("%s: %d board%s, %s, %s" % (plant.path, plant.boards, "" if plant.boards == 1 else "s", mode,
                                      "until Ctrl-C" if args.duration is None else
                                      "%s simulated" % report.clock(args.duration)), file=out, flush=True)
    store = SQLiteStore(args.log) if args.log else None
    try:
        session = Session(plant, args.duration, speed=args.speed, poll_s=args.poll, heapsize=args.heapsize,
                          baud=args.baud, ber=args.ber, drop=args.drop, seed=args.seed, root=args.root,
                          on_poll=on_poll, should_stop=lambda: bool(stop), store=store, host=not args.no_host,
                          say=lambda text: print("logger: " + text, file=sys.stderr, flush=True))
        result = session.run()
    finally:
        if store is not None:
            store.close()
    rows = report.summary(result)
    if args.json:
        common.print_json(dict(simulated_s=result.sim_s, wall_s=round(result.wall_s, 3), stages=[
            dict(r, alarms_seen=r["alarms_seen"].split(",") if r.get("alarms_seen", "-") != "-" else [])
            for r in rows], bus=dict(result.link, polls_failed=result.polls_failed), faults=result.faults,
            log=args.log))
    print("ran %s simulated in %.1f s (%.0f× real time)" % (report.clock(result.sim_s), result.wall_s, result.speed),
          file=out)
    print(report.summary_text(rows), file=out)
    link = result.link
    print("bus: %d requests, %d retries, %d timeouts, %d CRC errors, %d polls failed" % (
        link["sent"], link["retries"], link["timeouts"], link["crc_errors"], result.polls_failed), file=out)
    if args.ber or args.drop:
        f = result.faults
        print("faults injected: %d bits flipped, %d bytes lost (host→boards %d/%d, boards→host %d/%d)" % (
            f["down"]["bits_flipped"] + f["up"]["bits_flipped"], f["down"]["bytes_dropped"] + f["up"]["bytes_dropped"],
            f["down"]["bits_flipped"], f["down"]["bytes_dropped"], f["up"]["bits_flipped"], f["up"]["bytes_dropped"]),
            file=out)
    late = sum(s["late"] for s in result.plant_link.values())
    if late:
        print("plant link: %d late answers (boards slower than the pace; outputs held a tick)" % late, file=out)
    if args.log:
        print("log: %s (sxctl export %s --csv FILE; sxctl plot %s -o FILE.png)" % (args.log, args.log, args.log),
              file=out)
    sys.stdout.flush()
    return _exit_code(stop)
