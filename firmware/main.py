# Runs at every reset, as on any MicroPython board; Ctrl-C stops it and leaves the REPL.
import app

app.main()
