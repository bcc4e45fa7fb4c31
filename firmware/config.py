"""Stage configuration: every config item's value, range-checked, stored atomically.

The values live in RAM as an array, by item index (config_table.py). Two slot files hold the
last two versions, each with a CRC. A write is checked as a whole (each item's range, then the
cross-field rules of config_rules.py), then goes to the older slot, so a reset at any moment
leaves the newest complete version intact; a load takes the newest slot whose CRC holds.
Items are stored by id, so firmware with new items reads old files.
"""
import struct
from array import array
from binascii import crc32
from micropython import const

import config_rules
import config_table as T
import proto
from config_ranges import DEFAULT, HI, LO

SLOTS = (proto.FILE_CONFIG_A, proto.FILE_CONFIG_B)
# A slot file: head (magic, version, item count), the items (id, value), a CRC-32 of both.
MAGIC = const(0x46435853)  # "SXCF"
_HEAD = "<IHH"
_HEAD_SIZE = const(8)
_ITEM = "<Hi"
_ITEM_SIZE = const(6)
_CRC_SIZE = const(4)


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


def _lo(i):
    return struct.unpack_from("<i", LO, 4 * i)[0]


def _hi(i):
    return struct.unpack_from("<i", HI, 4 * i)[0]


def _version_newer(a, b):
    return ((a - b) & 0xFFFF) < 0x8000 and a != b  # serial-number order survives wrap-around


class Config:
    def __init__(self, slots=SLOTS, opener=open):
        self.values = None  # array("i"), by item index: set by the load below
        self.version = 0
        self._slots = slots
        self._open = opener
        self._slot = 1  # the slot holding `version`; the first write goes to slot 0
        self._load()

    def get(self, index):
        return self.values[index]

    def apply(self, pairs):
        """Check, store, then use: all items or none. Returns the new version; raises
        ConfigError (nothing changed) or OSError (the stored versions intact)."""
        trial = self.check(pairs)
        version = (self.version + 1) & 0xFFFF
        slot = 1 - self._slot
        self._write(self._slots[slot], version, trial)
        self.values = trial
        self.version = version
        self._slot = slot
        return version

    def check(self, pairs):
        """The values after the write, or ConfigError naming the first bad item; nothing is touched."""
        trial = array("i", self.values)
        for item_id, value in pairs:
            i = index_of(item_id)
            if i < 0:
                raise ConfigError(proto.ERR_UNKNOWN_CONFIG_ITEM, item_id, "unknown config item %d" % item_id)
            if not _lo(i) <= value <= _hi(i):
                raise ConfigError(proto.ERR_VALUE_OUT_OF_RANGE, item_id, "item %d=%d outside %d..%d" % (
                    item_id, value, _lo(i), _hi(i)))
            trial[i] = value
        bad = config_rules.violations(lambda i: trial[i])
        if bad:
            index, text = bad[0]
            raise ConfigError(proto.ERR_CONFIG_RULE_VIOLATED, T.IDS[index], "item %d %s" % (T.IDS[index], text))
        return trial

    # the slot files
    def _load(self):
        """Values from the newest good slot; items it lacks or has out of range get their default."""
        self.values = array("i", DEFAULT)
        best = None
        for n, path in enumerate(self._slots):
            loaded = self._read(path)
            if loaded is not None and (best is None or _version_newer(loaded[0], best[0])):
                best = (loaded[0], loaded[1], n)
        if best is not None:
            self.version, pairs, self._slot = best
            for item_id, value in pairs:
                i = index_of(item_id)
                if i >= 0 and _lo(i) <= value <= _hi(i):
                    self.values[i] = value

    def _read(self, path):
        try:
            with self._open(path, "rb") as f:
                data = f.read()
        except OSError:
            return None
        if len(data) < _HEAD_SIZE + _CRC_SIZE:
            return None
        magic, version, count = struct.unpack_from(_HEAD, data, 0)
        end = _HEAD_SIZE + _ITEM_SIZE * count
        if magic != MAGIC or len(data) != end + _CRC_SIZE:
            return None
        if crc32(memoryview(data)[:end]) != struct.unpack_from("<I", data, end)[0]:
            return None
        return version, [struct.unpack_from(_ITEM, data, _HEAD_SIZE + _ITEM_SIZE * k) for k in range(count)]

    def _write(self, path, version, values):
        head = struct.pack(_HEAD, MAGIC, version, T.COUNT)
        crc = crc32(head)
        item = bytearray(_ITEM_SIZE)
        with self._open(path, "wb") as f:
            f.write(head)
            for i in range(T.COUNT):
                struct.pack_into(_ITEM, item, 0, T.IDS[i], values[i])
                crc = crc32(item, crc)
                f.write(item)
            f.write(struct.pack("<I", crc))
