"""The qstr probe behind the bench's firmware.qstrs figure.

The memory goal is 128 KB on the Unix port (about 70-80 KB of a 32-bit port; `make bench`,
firmware.min_heap_kb). MicroPython interns every name a
module uses in a chain of qstr pools, each twice the size of the last; the bench counts them so
that the next pool (one contiguous block) is seen coming.
"""
from sxctl import image
from sxctl.bench.firmware import module_names, qstr_count, qstrs_after_importing


def test_the_probe_counts_what_a_module_interns(tmp_path):
    # The figure means something only if importing more modules counts more names.
    files = image.build("unix-sim")
    image.write_tree(files, tmp_path)
    names = module_names(files)
    assert {"app", "controller", "signing", "failsafe", "calibration", "hal.unix_sim"} <= set(names)
    assert qstrs_after_importing(tmp_path, ["ring"]) < qstrs_after_importing(tmp_path, ["ring", "controller"])
    assert qstr_count() > qstrs_after_importing(tmp_path, ["ring", "controller"])
