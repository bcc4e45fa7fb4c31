"""Every output off, the first thing a real board does at reset (boot.py), before any other
module loads: its pump and valve pins driven low, the enable gate first."""
from board import BOARD


def outputs_off():
    import machine
    pins = list(BOARD["pwm_out"].values()) + list(BOARD["digital_out"].values())
    pins.sort(key=lambda p: p != BOARD["digital_out"]["outputs_enable"])  # the enable gate first
    for pin in pins:
        machine.Pin(pin, machine.Pin.OUT, value=0)
