"""sxctl: host toolkit for the solvent-extraction stage controllers."""
import pathlib

__version__ = "0.1.0"

# The repository root: firmware/, boards/ and protocol/ live beside host/.
ROOT = pathlib.Path(__file__).resolve().parents[2]
FIRMWARE_DIR = ROOT / "firmware"
BOARDS_DIR = ROOT / "boards"
BUILD_DIR = ROOT / "build"
