"""unix-sim: the MicroPython Unix port as a stage board, for the simulator and the tests.

Its bus is a pty handed over by `sxctl sim` (SXCTL_BUS); sensors and outputs are exchanged
with the plant simulator. Its heap (`-X heapsize`) is larger than the small boards': on the
Unix port the firmware's bytecode lives in RAM and pointers are 8 bytes, so the whole firmware
needs 64 KB (`make bench`, firmware.min_heap_kb; about 66 with a plant key).
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
