"""Every output off, the first thing a board does at reset (boot.py), before any other module
loads: a real board's pump and valve pins driven low. (A virtual board's outputs start off
with its interpreter, and its HAL reports them on the plant link.)"""
from board import BOARD


def outputs_off():
    if BOARD["hal"] != "mcu":
        return
    import machine
    pins = list(BOARD["pwm_out"].values()) + list(BOARD["digital_out"].values())
    pins.sort(key=lambda p: p != BOARD["digital_out"]["outputs_enable"])  # the enable gate first
    for pin in pins:
        machine.Pin(pin, machine.Pin.OUT, value=0)
