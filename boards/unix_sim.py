"""unix-sim: the MicroPython Unix port as a stage board, for the simulator and the tests.

Its bus is a pty handed over by `sxctl sim` (SXCTL_BUS); sensors and outputs are exchanged
with the plant simulator. Its heap is set with `-X heapsize` to the smallest real board's.
"""
BOARD = {
    "name": "unix-sim",
    "mcu": "MicroPython Unix port",
    "hal": "unix",
    "mpy_arch": None,
    "heap_kb": 128,
    "bus": {"baud": 115200},
}
