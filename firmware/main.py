# Runs at every reset, as on any MicroPython board; Ctrl-C stops it and leaves the REPL.
import memory

memory.reserve()  # big buffers first, while the heap is still in one piece

import app

app.main()
