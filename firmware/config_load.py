"""Reading the config's slot files at reset: the newest slot whose CRC holds (the layout is
config_store.py's). Config imports this module once; it is not kept (see the last line)."""
import struct
import sys
from array import array
from binascii import crc32

from config import index_of
from config_ranges import DEFAULT, HI, LO
from config_store import MAGIC


def _version_newer(a, b):
    return ((a - b) & 0xFFFF) < 0x8000 and a != b  # serial-number order survives wrap-around


def load(cfg):
    """Set cfg's values from the newest good slot; items it lacks or has out of range get their default."""
    cfg.values = array("i", DEFAULT)
    best = None
    for n, path in enumerate(cfg._slots):
        loaded = _read(cfg, path)
        if loaded is not None and (best is None or _version_newer(loaded[0], best[0])):
            best = (loaded[0], loaded[1], n)
    if best is not None:
        cfg.version, pairs, cfg._slot = best
        for item_id, value in pairs:
            i = index_of(item_id)
            if i >= 0 and struct.unpack_from("<i", LO, 4 * i)[0] <= value <= struct.unpack_from("<i", HI, 4 * i)[0]:
                cfg.values[i] = value


def _read(cfg, path):
    try:
        with cfg._open(path, "rb") as f:
            data = f.read()
    except OSError:
        return None
    if len(data) < 12:
        return None
    magic, version, count = struct.unpack_from("<IHH", data, 0)  # magic, version, item count
    end = 8 + 6 * count
    if magic != MAGIC or len(data) != end + 4:
        return None
    if crc32(memoryview(data)[:end]) != struct.unpack_from("<I", data, end)[0]:
        return None
    return version, [struct.unpack_from("<Hi", data, 8 + 6 * k) for k in range(count)]  # id, value


del sys.modules[__name__], sys.modules["config_ranges"]  # not kept: read once at reset
