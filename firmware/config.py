"""Stage configuration: every config item's value, range-checked, stored atomically.

Two slot files hold the last two versions, each with a CRC. A write goes to the older slot,
so a reset at any moment leaves the newest complete version intact; `load` takes the newest
slot whose CRC holds. Items are stored by id, so firmware with new items reads old files.
"""
import struct
from array import array
from binascii import crc32
from micropython import const

import config_rules
import config_table as T
import proto

_MAGIC = const(0x46435853)  # "SXCF"
_HEAD = "<IHH"  # magic, version, item count
_ITEM = "<Hi"
SLOTS = ("/config.a", "/config.b")


class ConfigError(Exception):
    """A write refused as a whole: `code` is a protocol error code, `item` the item id."""

    def __init__(self, code, item, text):
        super().__init__(text)
        self.code = code
        self.item = item


def index_of(item_id):
    ids = T.IDS
    for i in range(T.COUNT):
        if ids[i] == item_id:
            return i
    return -1


def _version_newer(a, b):
    return ((a - b) & 0xFFFF) < 0x8000 and a != b  # serial-number order survives wrap-around


class Config:
    def __init__(self, slots=SLOTS, opener=open):
        self.values = array("i", T.DEFAULT)
        self.version = 0
        self._slots = slots
        self._open = opener
        self._slot = 1  # the slot holding `version`; the first write goes to slot 0
        self.load()

    def get(self, index):
        return self.values[index]

    def load(self):
        best = None
        for n, path in enumerate(self._slots):
            loaded = self._read(path)
            if loaded is not None and (best is None or _version_newer(loaded[0], best[0])):
                best = (loaded[0], loaded[1], n)
        if best is not None:
            self.version, pairs, self._slot = best
            for item_id, value in pairs:
                i = index_of(item_id)
                if i >= 0 and T.LO[i] <= value <= T.HI[i]:
                    self.values[i] = value

    def _read(self, path):
        try:
            with self._open(path, "rb") as f:
                data = f.read()
        except OSError:
            return None
        if len(data) < 12:
            return None
        magic, version, count = struct.unpack_from(_HEAD, data, 0)
        end = 8 + 6 * count
        if magic != _MAGIC or len(data) != end + 4:
            return None
        if crc32(memoryview(data)[:end]) != struct.unpack_from("<I", data, end)[0]:
            return None
        return version, [struct.unpack_from(_ITEM, data, 8 + 6 * k) for k in range(count)]

    def check(self, pairs):
        """Raise ConfigError naming the first bad item; the config is not touched."""
        trial = array("i", self.values)
        for item_id, value in pairs:
            i = index_of(item_id)
            if i < 0:
                raise ConfigError(proto.ERR_UNKNOWN_CONFIG_ITEM, item_id, "unknown config item %d" % item_id)
            if not T.LO[i] <= value <= T.HI[i]:
                raise ConfigError(proto.ERR_VALUE_OUT_OF_RANGE, item_id, "item %d=%d outside %d..%d" % (
                    item_id, value, T.LO[i], T.HI[i]))
            trial[i] = value
        bad = config_rules.violations(lambda i: trial[i])
        if bad:
            index, text = bad[0]
            raise ConfigError(proto.ERR_CONFIG_RULE_VIOLATED, T.IDS[index], "item %d %s" % (T.IDS[index], text))
        return trial

    def apply(self, pairs):
        """Check, store, then use: all items or none. Returns the new version."""
        trial = self.check(pairs)
        version = (self.version + 1) & 0xFFFF
        slot = 1 - self._slot
        self._write(self._slots[slot], version, trial)
        self.values = trial
        self.version = version
        self._slot = slot
        return version

    def _write(self, path, version, values):
        head = struct.pack(_HEAD, _MAGIC, version, T.COUNT)
        crc = crc32(head)
        item = bytearray(6)
        with self._open(path, "wb") as f:
            f.write(head)
            for i in range(T.COUNT):
                struct.pack_into(_ITEM, item, 0, T.IDS[i], values[i])
                crc = crc32(item, crc)
                f.write(item)
            f.write(struct.pack("<I", crc))
