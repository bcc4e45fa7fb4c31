"""Where the external tools are: the MicroPython Unix port executable."""
import os
import pathlib
import shutil
import sys


class ToolchainError(RuntimeError):
    pass


def micropython_path():
    """$MICROPYTHON if set, else the `micropython` installed beside this Python (make setup)."""
    path = os.environ.get("MICROPYTHON")
    if path:
        if not (os.path.isfile(path) and os.access(path, os.X_OK)):
            raise ToolchainError("MICROPYTHON=%s is not an executable file" % path)
        return path
    beside = pathlib.Path(sys.executable).parent / "micropython"
    if beside.exists():
        return str(beside)
    found = shutil.which("micropython")
    if not found:
        raise ToolchainError("no MicroPython Unix port found: run `make setup`, or set MICROPYTHON=/path/to/micropython")
    return found
