"""Arguments several verbs share."""
import argparse


def bus_port(p):
    p.add_argument("--port", required=True, help="bus serial port, e.g. /dev/ttyUSB0 or the sim's bus pty")
    p.add_argument("--baud", type=int, default=115200, help="bus baud rate (default 115200)")


def board_addr(p):
    p.add_argument("--addr", type=int, required=True, help="board bus address (1..247)")


def heap_size(text):
    """A heap size as MicroPython's -X heapsize takes it: 65536, 64K, 1M."""
    t = text.strip().upper()
    mult = {"K": 1024, "M": 1024 * 1024}.get(t[-1:], 1)
    digits = t[:-1] if t[-1:] in "KM" else t
    if not digits.isdigit() or int(digits) * mult < 8 * 1024:
        raise argparse.ArgumentTypeError("heap size must look like 65536, 64K or 1M and be at least 8K")
    return t
