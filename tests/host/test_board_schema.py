"""The board schema (sxctl/boards.py SCHEMA): every key a board definition may hold, with its
meaning, unit and default; every file in boards/ keeps to it."""
import ast

import pytest

from sxctl import BOARDS_DIR, FIRMWARE_DIR, boards
from sxctl.boards import REQUIRED, SCHEMA, BoardError


def _keys(schema=SCHEMA, prefix=""):
    for key, spec in schema.items():
        yield prefix + key, spec
        if spec.keys:
            yield from _keys(spec.keys, prefix + key + ".")


def test_every_board_file_keeps_to_the_schema():
    paths = sorted(BOARDS_DIR.glob("*.py"))
    assert len(paths) >= 4
    for path in paths:
        boards.load_file(path)  # checks it: BoardError names the key
    assert {"unix-sim", "rp2-pico", "pyboard-v11", "esp32-devkitc"} <= set(boards.names())


def test_every_key_says_what_it_is():
    for name, spec in _keys():
        assert len(spec.meaning) > 10, name
        assert set(spec.hals) <= {"mcu", "unix"} and spec.hals, name


def test_a_board_with_a_wrong_key_is_refused_with_the_key_named():
    good = boards.load("rp2-pico")
    with pytest.raises(BoardError, match="unknown key 'adc_bits'"):
        boards.check(dict(good, adc_bits=12))
    with pytest.raises(BoardError, match="'heap_kb' is missing"):
        boards.check({k: v for k, v in good.items() if k != "heap_kb"})
    with pytest.raises(BoardError, match="'rtd_series_ohm' must be int"):
        boards.check(dict(good, adc=dict(good["adc"], rtd_series_ohm="1k")))
    with pytest.raises(BoardError, match="'outputs_enable' is missing"):
        boards.check(dict(good, digital_out={"valve": 20}))
    with pytest.raises(BoardError, match="unknown key 'adc' for a unix board"):
        boards.check(dict(boards.load("unix-sim"), adc=good["adc"]))


def test_a_broken_board_file_is_refused_when_loaded(tmp_path):
    path = tmp_path / "bad.py"
    path.write_text('BOARD = {"name": "bad", "hal": "mcu"}\n')
    with pytest.raises(BoardError, match="bad.py: 'mcu' is missing"):
        boards.load_file(path)


def test_the_firmware_reads_optional_keys_with_the_schema_defaults():
    # `x.get("key", default)` in the firmware and the host must give the schema's default.
    defaults = {name.split(".")[-1]: spec.default for name, spec in _keys() if spec.default is not REQUIRED}
    seen = set()
    for folder in (FIRMWARE_DIR, FIRMWARE_DIR.parent / "host" / "sxctl"):
        for path in folder.rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "get"
                        and len(node.args) == 2 and isinstance(node.args[0], ast.Constant)
                        and node.args[0].value in defaults and isinstance(node.args[1], ast.Constant)):
                    assert node.args[1].value == defaults[node.args[0].value], (path, node.args[0].value)
                    seen.add(node.args[0].value)
    assert {"backlog_records", "electrode_gain", "rtd_series_ohm"} <= seen
