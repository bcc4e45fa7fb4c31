# Runs first at every reset, soft ones too (even from the raw REPL, where main.py does not):
# every output is driven off before anything else, so no stop or reset leaves a pump running.
try:
    from board import BOARD
    if BOARD["hal"] == "mcu":  # a virtual board's outputs start off with its interpreter
        from hal.off import outputs_off
        outputs_off()
        del outputs_off
    del BOARD
except Exception as e:  # a damaged file must not stop the board from booting (main.py reports it)
    print("boot.py: outputs not driven off here (%r)" % e)
# A maintenance session (lease.py) goes on past a soft reset, the USB activity that renews its
# time: its lease is armed again (main.py, where it runs, ends the session or starts a new one).
try:
    import proto
    with open(proto.FILE_MAINTENANCE_SESSION) as _f:
        _s = int(_f.read())
    import lease
    lease.arm(_s)
    del _f, _s, lease
except Exception:  # no session (no file), or a damaged one: main.py decides
    pass
import sys
for _m in ("hal.off", "hal", "board"):
    sys.modules.pop(_m, None)
del sys, _m
