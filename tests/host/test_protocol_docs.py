"""protocol/README.md is generated from the declarations and must not drift from them."""
from sxproto import codec, docgen, fields, messages, schema


def test_protocol_readme_matches_the_declarations():
    assert docgen.TARGET.read_text() == docgen.generate(), \
        "protocol/README.md is stale: run `make proto`"


def test_readme_documents_every_message_and_field():
    text = docgen.generate()
    for m in messages.ALL:
        assert "\n### %s\n" % m.name in text
    # A field's unit, scale and range appear on its row; record fields are listed too.
    assert "| ph | i16 | pH | 0.001 | -2000..16000 (-2..16 pH) |" in text
    assert "| items[].value | i32 |" in text


def _zeros(struct):
    return {f.name: [_zeros(f.record)] * f.count if f.record is not None else "" if f.text_len else 0
            for f in fields.infos(struct)}


def test_documented_wire_sizes_are_the_encoded_lengths():
    for m in messages.ALL:
        trim = schema.trim(m)
        if trim is None:
            assert docgen.wire_size(m) == len(codec.encode(1, 1, 0, m, _zeros(m.body))), m.name
            continue
        # a trimmed reply: `head + size × count`, as the README gives it, for every count
        body, wire = docgen._sizes(m)
        head, size = (int(x) for x in wire.split(" × ")[0].split(" + "))
        for count in range(trim.max_count + 1):
            values = dict(_zeros(m.body), count=count)
            assert head + size * count == len(codec.encode(1, 1, 0, m, values)), (m.name, count)
        assert docgen.wire_size(m) == head + size * trim.max_count
