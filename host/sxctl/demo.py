"""`make demo`: the main job as it stands: a few virtual boards on one bus, each asked who it is."""
from . import boards
from .buslink import BusClient
from .sim.simulator import Simulator

STAGES = 4


def main():
    heap = "%dK" % boards.load("unix-sim")["heap_kb"]
    print("starting %d virtual stage boards (MicroPython Unix port, %s heap each) on one bus ..." % (STAGES, heap))
    sim = Simulator(STAGES, heapsize=heap)
    try:
        sim.start()
        halt = sim.run_in_background()
        try:
            sim.wait_ready()
            print("bus %s\n" % sim.bus.path)
            print("%-5s %-10s %-8s %-9s %-10s %s" % ("addr", "board", "firmware", "schema", "free heap", "frames rx/crc/dropped"))
            with BusClient(sim.bus.path) as bus:
                for board in sim.boards:
                    i = bus.hello(board.addr)
                    print("%-5d %-10s %-8s %08x  %-10s %d/%d/%d" % (
                        board.addr, i["board"], "%d.%d.%d" % (i["fw_major"], i["fw_minor"], i["fw_patch"]),
                        i["fingerprint"], "%d B" % i["heap_free"], i["rx_frames"], i["crc_errors"], i["dropped"]))
                print("\nhost link:", " ".join("%s=%d" % kv for kv in bus.stats.as_dict().items()))
        finally:
            halt()
    finally:
        sim.close()
    return 0
