"""Firmware version, reported in INFO."""
VERSION = (0, 1, 0)
