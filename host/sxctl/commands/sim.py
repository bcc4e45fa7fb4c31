"""sxctl sim: virtual boards on a virtual bus."""
import json
import os
import signal

from . import common

HELP = "run virtual boards on a virtual bus"
EXAMPLE = "sxctl sim --stages 3 --ports-file ports.json --duration 60"


def add_arguments(p):
    p.add_argument("--stages", type=int, default=3, help="number of virtual boards (addresses 1..N)")
    p.add_argument("--ports-file", required=True, help="where to write the JSON map of bus and USB ports")
    p.add_argument("--heapsize", type=common.heap_size, default=None,
                   help="MicroPython heap of each board (default: the unix-sim board's, 64K)")
    p.add_argument("--duration", type=float, default=None, help="seconds to run (default: until Ctrl-C)")
    p.add_argument("--root", default=None, help="folder for the boards' filesystems (default: a temporary one, removed at exit)")
    p.add_argument("--blank", action="store_true", help="boards start with an empty filesystem, as from the factory")


def run(args):
    from .. import boards
    from ..sim.simulator import Simulator

    heapsize = args.heapsize or "%dK" % boards.load("unix-sim")["heap_kb"]
    sim = Simulator(args.stages, heapsize=heapsize, root=args.root, blank=args.blank)
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    signal.signal(signal.SIGINT, lambda *_: stop.append(1))
    try:
        sim.start()
        if not args.blank:
            halt = sim.run_in_background()
            try:
                sim.wait_ready()
            finally:
                halt()
        ports = sim.ports()
        # Written only once every board answers, so a reader may use the ports at once.
        tmp = args.ports_file + ".tmp"
        with open(tmp, "w") as f:
            json.dump(ports, f, indent=2)
        os.replace(tmp, args.ports_file)
        print("bus %s; %d boards; ports in %s; Ctrl-C stops" % (ports["bus"], args.stages, args.ports_file),
              flush=True)
        sim.run(duration=args.duration, should_stop=lambda: bool(stop))
    finally:
        sim.close()
    return 0
