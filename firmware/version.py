"""Firmware version, reported in INFO. The firmware's own code folds MAJOR, MINOR and PATCH in
(constfold.py), so a running board does not load this module; VERSION is for the host, whose
port probe imports it to see that the board's .mpy files load."""
from micropython import const

MAJOR = const(0)
MINOR = const(1)
PATCH = const(0)
VERSION = (MAJOR, MINOR, PATCH)
