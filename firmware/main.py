# Runs at every reset from the friendly REPL, as on any MicroPython board (boot.py has already
# driven every output off). Whatever stops the application leaves every output off: Ctrl-C
# drops to the REPL; a module that cannot load, or an error that escapes the loop, runs the
# fail-safe firmware (outputs off, the bus answered with controller_fault and what failed).
import gc

# Collect every 512 bytes allocated: garbage of loading (and of rare requests that load code)
# is then reused before it splits the heap. The control scans allocate nothing, so they never
# pay for it.
gc.threshold(512)
app = None
try:
    import maintenance

    maintenance.boot()  # first, if asked for: it must work while a flash mends the files
    del maintenance
    import integrity

    damaged = integrity.check()  # before any import: a cut .mpy can hang the loader
    del integrity
    if damaged:
        raise ImportError("no module named '%s' (missing or damaged)" % damaged)
    import startup

    app = startup.start()  # the stage application (fail-safe instead if it does not fit)
    del startup  # it only built the board: its code goes before the loop starts
    app.run()  # its own finally drives every output off
except Exception as e:
    import sys

    sys.print_exception(e)
    hal = app.hal if app is not None else None
    app = None
    for name in list(sys.modules):  # what the application held goes, so fail-safe fits
        if name not in ("failsafe", "link", "proto", "memory", "identity", "board", "hal", "hal.mcu",
                        "hal.unix_sim", "version", "ring", "sim_devices", "machine"):
            del sys.modules[name]
    gc.collect()
    import failsafe

    failsafe.main(hal, e)
