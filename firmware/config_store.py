"""A config write: checked as a whole, then stored in the config's slot files.

Two slot files hold the last two versions, each with a CRC. A write goes to the older slot,
so a reset at any moment leaves the newest complete version intact; config_load.py takes the
newest slot whose CRC holds. Items are stored by id, so firmware with new items reads old files.

Config.apply imports this module for a write; it is not kept (see the last line). The item
ranges and the cross-field rules are loaded in turn, each dropped before the next: a write
needs room for one of them at a time.
"""
import struct
import sys
from array import array
from binascii import crc32
from micropython import const

import config_table as T
import proto
from config import ConfigError, index_of

MAGIC = const(0x46435853)  # "SXCF"
_HEAD = "<IHH"  # magic, version, item count
_ITEM = "<Hi"  # item id, value


def check(cfg, pairs):
    """The values after the write, or ConfigError naming the first bad item; cfg is not touched."""
    trial = array("i", cfg.values)
    _set_in_range(trial, pairs)
    import config_rules
    del sys.modules["config_rules"]  # goes with this call
    bad = config_rules.violations(lambda i: trial[i])
    if bad:
        index, text = bad[0]
        raise ConfigError(proto.ERR_CONFIG_RULE_VIOLATED, T.IDS[index], "item %d %s" % (T.IDS[index], text))
    return trial


def _set_in_range(trial, pairs):
    import config_ranges
    del sys.modules["config_ranges"]  # goes with this call, before the rules load
    for item_id, value in pairs:
        i = index_of(item_id)
        if i < 0:
            raise ConfigError(proto.ERR_UNKNOWN_CONFIG_ITEM, item_id, "unknown config item %d" % item_id)
        lo = struct.unpack_from("<i", config_ranges.LO, 4 * i)[0]
        hi = struct.unpack_from("<i", config_ranges.HI, 4 * i)[0]
        if not lo <= value <= hi:
            raise ConfigError(proto.ERR_VALUE_OUT_OF_RANGE, item_id, "item %d=%d outside %d..%d" % (
                item_id, value, lo, hi))
        trial[i] = value


def apply(cfg, pairs):
    """Check, store, then use: all items or none. Returns the new version."""
    trial = check(cfg, pairs)
    version = (cfg.version + 1) & 0xFFFF
    slot = 1 - cfg._slot
    _write(cfg._open, cfg._slots[slot], version, trial)
    cfg.values = trial
    cfg.version = version
    cfg._slot = slot
    return version


def _write(opener, path, version, values):
    head = struct.pack(_HEAD, MAGIC, version, T.COUNT)
    crc = crc32(head)
    item = bytearray(6)
    with opener(path, "wb") as f:
        f.write(head)
        for i in range(T.COUNT):
            struct.pack_into(_ITEM, item, 0, T.IDS[i], values[i])
            crc = crc32(item, crc)
            f.write(item)
        f.write(struct.pack("<I", crc))


del sys.modules[__name__]  # not kept: the caller holds this module until it returns
