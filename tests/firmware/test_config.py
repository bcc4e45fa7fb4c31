"""Config store: range checks, rules, all-or-none writes, and atomicity under resets."""
import struct

import config_table as T
import proto
from config import Config, ConfigError
from config_ranges import DEFAULT
from fwlib_fakefs import Crash, FakeFs


def _cfg(fs):
    return Config(slots=("a", "b"), opener=fs.open)


def test_defaults_without_files():
    cfg = _cfg(FakeFs())
    assert cfg.get(T.PH_SETPOINT) == struct.unpack_from("<i", DEFAULT, 4 * T.PH_SETPOINT)[0] and cfg.version == 0


def test_write_persists_and_reloads():
    fs = FakeFs()
    cfg = _cfg(fs)
    assert cfg.apply([(1, 2500), (6, 40)]) == 1
    again = _cfg(fs)
    assert again.get(T.PH_SETPOINT) == 2500 and again.get(T.PH_DEADBAND) == 40 and again.version == 1


def test_out_of_range_refused_whole_and_named():
    fs = FakeFs()
    cfg = _cfg(fs)
    try:
        cfg.apply([(1, 2500), (6, 5000)])
        assert False, "accepted"
    except ConfigError as e:
        assert e.item == 6 and e.code == proto.ERR_VALUE_OUT_OF_RANGE
    assert cfg.get(T.PH_SETPOINT) == struct.unpack_from("<i", DEFAULT, 4 * T.PH_SETPOINT)[0] and cfg.version == 0 and not fs.files


def test_unknown_item_and_rule_violation_refused():
    cfg = _cfg(FakeFs())
    for pairs, code, item in (([(999, 1)], proto.ERR_UNKNOWN_CONFIG_ITEM, 999),
                              ([(4, 600)], proto.ERR_CONFIG_RULE_VIOLATED, 4),
                              ([(1, 6000)], proto.ERR_CONFIG_RULE_VIOLATED, 1),
                              ([(39, 120)], proto.ERR_CONFIG_RULE_VIOLATED, 39)):  # ph_response >= stuck_window
        try:
            cfg.apply(pairs)
            assert False, "accepted %r" % (pairs,)
        except ConfigError as e:
            assert (e.code, e.item) == (code, item), (e.code, e.item)
    assert cfg.get(T.PH_DEV_WARN) == 300


def test_corrupt_slot_falls_back_to_the_other():
    fs = FakeFs()
    cfg = _cfg(fs)
    cfg.apply([(1, 2100)])
    cfg.apply([(1, 2200)])
    newest = "b"
    data = bytearray(fs.files[newest])
    data[10] ^= 1
    fs.files[newest] = bytes(data)
    assert _cfg(fs).get(T.PH_SETPOINT) == 2100


def test_reset_at_every_write_leaves_old_or_new():
    fs = FakeFs()
    cfg = _cfg(fs)
    cfg.apply([(1, 2100)])
    steps = fs.writes
    fs.writes = 0
    cfg.apply([(1, 2200)])
    per_write = fs.writes
    assert per_write == steps
    tested = 0
    for crash_at in range(per_write + 1):
        fs2 = FakeFs()
        c = _cfg(fs2)
        c.apply([(1, 2100)])
        fs2.writes = 0
        fs2.crash_after = crash_at
        try:
            c.apply([(1, 2200)])
            crashed = False
        except Crash:
            crashed = True
        fs2.crash_after = -1
        got = _cfg(fs2).get(T.PH_SETPOINT)
        assert got == (2100 if crashed else 2200), (crash_at, got)
        tested += 1
    assert tested == per_write + 1 and per_write > 3
