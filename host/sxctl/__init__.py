"""sxctl: host toolkit for the solvent-extraction stage controllers."""
import pathlib
from importlib import resources

__version__ = "0.1.0"

# Every file sxctl needs at run time travels inside the package, under sxctl/data: the
# firmware sources, the board definitions, the example plant files and the MicroPython support
# modules the bench and fault campaign stage beside the firmware. (In a source tree data/firmware,
# data/boards and data/examples are links to the top-level folders.) They are found through
# importlib.resources, so an installed sxctl runs from any directory.
_PACKAGE = resources.files(__name__)
if not isinstance(_PACKAGE, pathlib.Path):
    raise ImportError("sxctl must be installed as files on disk (pip install), not imported from %s" % _PACKAGE)
DATA_DIR = _PACKAGE / "data"
FIRMWARE_DIR = DATA_DIR / "firmware"
BOARDS_DIR = DATA_DIR / "boards"
EXAMPLES_DIR = DATA_DIR / "examples"
FWLIB_DIR = DATA_DIR / "fwlib"

# Reports of make bench, make faults and make demo: build/ in the directory they run from.
BUILD_DIR = pathlib.Path("build")
