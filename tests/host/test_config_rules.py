"""The board's cross-field rules (generated firmware/config_rules.py) and the host's (the
declarations in protocol/config_rules.py) refuse the same configs with the same words."""
import sys
import types

import pytest
from hypothesis import given, settings, strategies as st

from sxproto import codegen, config_items, config_rules

NAMES = [item.name for item in config_items.ITEMS]


def _firmware_rules():
    table = types.ModuleType("config_table")
    for index, name in enumerate(NAMES):
        setattr(table, name.upper(), index)
    module = types.ModuleType("config_rules_generated")
    saved = sys.modules.get("config_table")
    sys.modules["config_table"] = table
    try:
        exec(compile(codegen.generate_config_rules(), "config_rules.py", "exec"), module.__dict__)
    finally:
        sys.modules.pop("config_table")
        if saved is not None:
            sys.modules["config_table"] = saved
    return module


FIRMWARE = _firmware_rules()


def _config():
    # Mostly values in a small window near zero, where ties and crossings between items are
    # common; sometimes anywhere in the item's range.
    def value(item):
        low = max(item.lo, -3)
        return st.one_of(st.integers(low, max(low, min(item.hi, 12))), st.integers(item.lo, item.hi))
    return st.fixed_dictionaries({item.name: value(item) for item in config_items.ITEMS})


@settings(max_examples=300, deadline=None)
@given(_config())
def test_board_and_host_rules_agree(values):
    raw = [values[name] for name in NAMES]
    board = [(NAMES[index], text) for index, text in FIRMWARE.violations(raw.__getitem__)]
    assert board == config_items.rule_violations(values)


def test_defaults_break_no_rule_and_each_rule_can_break():
    defaults = {item.name: item.default for item in config_items.ITEMS}
    assert config_items.rule_violations(defaults) == []
    broken = dict(defaults, ph_dev_warn=defaults["ph_dev_alarm"], titration_points=3,
                  titration_ph_0=100, titration_ph_1=100, titration_ph_2=200, titration_base_1=5)
    assert config_items.rule_violations(broken) == [
        ("ph_dev_warn", "must be below ph_dev_alarm"),
        ("titration_ph_1", "titration pH points must increase"),
        ("titration_base_2", "titration base points must not decrease")]


def test_a_rule_on_an_unknown_item_is_refused_when_generating(monkeypatch):
    monkeypatch.setattr(config_rules, "RULES", config_rules.RULES + [
        config_rules.Below("ph_setpoint", "ph_ceiling", "must be below ph_ceiling")])
    with pytest.raises(ValueError, match="ph_ceiling"):
        codegen.generate_config_rules()
