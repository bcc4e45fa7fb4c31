"""unix-sim: the MicroPython Unix port as a stage board, for the simulator and the tests.

Its bus is a pty handed over by `sxctl sim` (SXCTL_BUS); sensors and outputs are exchanged
with the plant simulator. Its heap (`-X heapsize`) is twice the firmware's memory goal on this
port, 128 KB (`make bench`, firmware.min_heap_kb): on the 64-bit Unix port the bytecode lives in
RAM and objects are twice a 32-bit port's size, so 128 KB here is about 70-80 KB on a 32-bit
board, below the smallest supported board's heap (pyboard-v11, 100 KB). At 128 KB the noisy-bus
fault campaign still diverges from the clean run, so the virtual boards keep the margin.
"""
BOARD = {
    "name": "unix-sim",
    "mcu": "MicroPython Unix port",
    "platform": "linux",  # sys.platform, and what sys.implementation._machine names: flash checks both
    "machine": "linux",
    "hal": "unix",
    "mpy_arch": None,
    "heap_kb": 256,
    "bus": {"baud": 115200},
    "wdt_ms": 2000,  # the virtual board's watchdog (its ROM's machine.WDT), as on the real boards
}
