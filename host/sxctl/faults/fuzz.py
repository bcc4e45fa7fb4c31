"""Fault section `fuzz`: mutated frames through the board's parser on the Unix port."""
from ..bench import Figure
from .board import run_program


def run(short):
    r = run_program("fw_fuzz.py", ["fwlib_codec.py", "fwlib_fuzz.py"],
                    env={"SXFAULT_FRAMES": "5000" if short else "100000"})
    return [
        Figure("faults.fuzz_frames", r["frames"], "frames", (">=", 5000 if short else 100000)),
        Figure("faults.fuzz_escapes", r["escapes"], "", ("==", 0), "exceptions out of Link.poll"),
        Figure("faults.fuzz_mismatches", r["mismatches"], "", ("==", 0),
               "frames accepted or refused against the reference model (a bad CRC accepted counts here)"),
        Figure("faults.fuzz_resync_lost", r["lost"], "", ("==", 0), "good frames lost after damage"),
    ]
