"""The firmware codec is derived from the construct declarations and must not drift."""
import struct

from sxproto import codegen, fields, messages, schema


def test_firmware_codec_matches_the_declarations():
    for target, make in codegen.GENERATED.items():
        assert target.read_text() == make(), "%s is stale: run `make proto`" % target.name


def test_struct_formats_have_the_construct_sizes():
    for m in messages.ALL:
        assert struct.calcsize(schema.struct_format(m)) == m.body.sizeof(), m.name


def test_fingerprint_changes_with_any_layout_change(monkeypatch):
    before = schema.fingerprint()
    info = fields.infos(messages.PING.body)[0]
    monkeypatch.setattr(info, "hi", info.hi - 1)
    assert schema.fingerprint() != before
