"""unix-sim: the MicroPython Unix port as a stage board, for the simulator and the tests.

Its bus is a pty handed over by `sxctl sim` (SXCTL_BUS); sensors and outputs are exchanged
with the plant simulator. Its heap (`-X heapsize`) is larger than the small boards': on the
Unix port the firmware's bytecode lives in RAM, and when the qstr table grows past about 630
names during the imports it needs a contiguous block the fragmented heap may not have (see
`make bench`, firmware.min_heap_kb). Small boards need the firmware frozen into flash.
"""
BOARD = {
    "name": "unix-sim",
    "mcu": "MicroPython Unix port",
    "hal": "unix",
    "mpy_arch": None,
    "heap_kb": 256,
    "bus": {"baud": 115200},
}
