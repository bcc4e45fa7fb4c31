# Runs at every reset, as on any MicroPython board; Ctrl-C stops it and leaves the REPL.
import gc

# Collect every 512 bytes allocated: garbage of loading (and of rare requests that load code)
# is then reused before it splits the heap. The control scans allocate nothing, so they never
# pay for it.
gc.threshold(512)
import startup

app = startup.start()  # the stage application; the fail-safe firmware instead if it cannot load
del startup  # it only built the board: its code goes before the loop starts
app.run()
