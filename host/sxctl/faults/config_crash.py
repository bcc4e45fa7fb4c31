"""Fault section `config_crash`: power lost at random moments inside config writes, on the
board's own store (Unix port): the config read back is always the old or the new one."""
from ..bench import Figure
from .board import run_program


def run(short):
    r = run_program("fw_config_crash.py", ["fwlib_fakefs.py"], env={"SXFAULT_TRIALS": "100" if short else "2000"})
    return [
        Figure("faults.config_crash_points_tested", r["tested"], "", note="%d of them cut power mid-write" % r["crashed"]),
        Figure("faults.config_corrupt", r["corrupt"], "", ("==", 0), "reads that were neither the old nor the new config"),
    ]
