"""protocol/README.md is complete enough to implement from: its tables parse back to exactly the
declarations, and a codec built from the README alone round-trips every golden frame."""
import inspect
import json
import pathlib
import re

import pytest
import readme_codec
from readme_codec import ReadmeCodec, table_dicts, tables

from sxctl import boards, buslink
from sxproto import config_items, docgen, fields, link_rules, messages

ROOT = pathlib.Path(__file__).resolve().parents[2]
README = (ROOT / "protocol" / "README.md").read_text()
TABLES = tables(README)
GOLDEN = json.loads((ROOT / "tests" / "golden" / "frames.json").read_text())["frames"]


def _number(text):
    return float(text) if text else 1.0


def _range(text):
    lo, hi = re.match(r"(-?\d+)\.\.(-?\d+)", text).groups()
    return int(lo), int(hi)


def test_config_item_table_is_the_declared_items():
    rows = table_dicts(TABLES["Configuration items"][0])
    got = [(int(r["id"]), r["name"], r["unit"], _number(r["scale"]), _range(r["raw range"]),
            int(r["default (raw)"]), r["meaning"]) for r in rows]
    want = sorted((i.id, i.name, i.unit, float(i.scale), (i.lo, i.hi), i.default, i.doc) for i in config_items.ITEMS)
    assert got == want
    for r in rows:  # the engineering range is the raw one times the scale
        if r["range in unit"]:
            lo, hi = (float(x) for x in r["range in unit"].split(".."))
            assert (lo, hi) == pytest.approx(tuple(v * float(r["scale"]) for v in _range(r["raw range"])))


def test_rule_table_is_every_declared_rule():
    rows = table_dicts(TABLES["Configuration rules"][0])
    assert [(r["item (ERROR.detail)"], r["rule"]) for r in rows] == config_items.rule_texts()
    # every rule the board can report: each text the rules module returns is in the table
    source = (ROOT / "firmware" / "config_rules.py").read_text()
    assert len(rows) == source.count("bad.append(") and len(rows) >= 5
    for r in rows:
        named = re.match(r"(\w+?)(_i)? \(id (\d+)", r["item (ERROR.detail)"])
        base = named.group(1) + ("_0" if named.group(2) else "")
        assert config_items.BY_NAME[base].id == int(named.group(3))


def test_error_table_gives_every_code_with_its_detail():
    rows = table_dicts(TABLES["ERROR_CODES"][0])
    assert [(int(r["code"]), r["meaning"], r["detail"], r["sent when"]) for r in rows] == [
        (code, text) + messages.ERROR_DETAILS[code] for code, text in sorted(messages.ERROR_CODES.items())]
    assert all(r["detail"] and r["sent when"] for r in rows)


def _declared_rows(infos, prefix=""):
    rows = []
    for f in infos:
        if f.record is not None:
            rows.append((prefix + f.name, "records", f.count, f.trimmed))
            rows += _declared_rows(fields.infos(f.record), prefix + f.name + "[].")
        elif f.text_len:
            rows.append((prefix + f.name, "text", f.text_len))
        else:
            rows.append((prefix + f.name, f.fmt, f.unit, float(f.scale), (f.lo, f.hi)))
    return rows


def _readme_rows(rows):
    out = []
    types = {v: k for k, v in readme_codec._TYPES.items()}
    for r in table_dicts(rows):
        kind = r["type"]
        fixed = re.fullmatch(r"(\d+) × record \(\d+ B\)", kind)
        trimmed = re.fullmatch(r"count × record \(\d+ B\), count ≤ (\d+)", kind)
        text = re.fullmatch(r"char\[(\d+)\]", kind)
        if fixed or trimmed:
            out.append((r["field"], "records", int((fixed or trimmed).group(1)), bool(trimmed)))
        elif text:
            out.append((r["field"], "text", int(text.group(1))))
        else:
            out.append((r["field"], readme_codec._TYPES[kind], r["unit"], _number(r["scale"]), _range(r["range"])))
            assert kind in types.values()
    return out


@pytest.mark.parametrize("message", messages.ALL, ids=lambda m: m.name)
def test_message_table_is_the_declaration(message):
    [summary] = [r for r in table_dicts(TABLES["Messages"][0]) if r["id"] == "0x%02X" % message.type_id]
    assert summary["message"].startswith("[%s]" % message.name)
    body = TABLES.get(message.name, [[]])[0]
    assert _readme_rows(body) == _declared_rows(fields.infos(message.body))


def test_timing_table_is_what_host_and_boards_use():
    rows = {r["setting"]: r for r in table_dicts(TABLES["Link rules and timing"][0])}
    client = inspect.signature(buslink.BusClient.__init__).parameters
    line = "%d baud %s" % (client["baud"].default, link_rules.LINE)
    assert rows["line"]["host default"] == line
    for name in ("rp2-pico", "esp32-devkitc", "pyboard-v11", "unix-sim"):
        assert boards.load(name)["bus"]["baud"] == link_rules.BAUD, name
    assert rows["line"]["board"] == "%d baud %s" % (link_rules.BAUD, link_rules.LINE)
    assert rows["reply timeout"]["host default"] == "%g s" % client["timeout"].default
    assert rows["retries"]["host default"] == str(client["retries"].default)
    timeout = config_items.BY_NAME["link_timeout"]
    assert rows["link timeout"]["board"].startswith("%d s (config item %d" % (timeout.default, timeout.id))
    app = (ROOT / "firmware" / "app.py").read_text()
    assert "_IDLE_MS = %d" % link_rules.BOARD_POLL_MS in app
    identity = (ROOT / "firmware" / "identity.py").read_text()
    assert "%d <= addr <= %d" % link_rules.BOARD_ADDRS in identity
    assert 'ident.get("addr", %d)' % link_rules.BOARD_ADDRS[1] in identity


def test_readme_states_the_crc_check_value_and_it_holds():
    assert "check value 0x29B1 for the ASCII bytes `123456789`" in README
    assert readme_codec.crc16(docgen.CRC_CHECK_INPUT) == 0x29B1


def test_readme_says_every_link_rule():
    # sections a third party needs, each stated once from link_rules
    for head, _ in link_rules.RULES + link_rules.ADDRESSING:
        assert "**%s.**" % head in README
    assert "MAX_FRAME | 250 |" in README


@pytest.mark.parametrize("frame", GOLDEN, ids=lambda f: f["name"])
def test_a_codec_built_from_the_readme_alone_round_trips_every_golden_frame(frame):
    codec = ReadmeCodec(README)
    wire = bytes.fromhex(frame["hex"])
    header, name, values, counter, _mac = codec.decode(wire)
    assert (name, header["addr"], header["flags"], header["seq"]) == (
        frame["name"], frame["addr"], frame["flags"], frame["seq"])
    assert values == frame["values"] and counter == frame.get("counter")
    key = bytes.fromhex(frame["key"]) if "key" in frame else None
    assert codec.encode(frame["addr"], frame["flags"], frame["seq"], name, values, counter, key) == wire


def test_the_readme_codec_knows_every_message():
    assert {m.type_id: m.name for m in ReadmeCodec(README).messages.values()} == {
        m.type_id: m.name for m in messages.ALL}
