"""The host codec: the fast decode path agrees with the construct declarations on every message.

The value strategies here are derived from the field declarations and shared with
test_protocol_firmware.py.
"""
import pytest
from hypothesis import given, settings, strategies as st

from sxproto import codec, fields, framing, messages

SETTINGS = settings(max_examples=100, deadline=None, database=None)
NAME = lambda m: m.name  # noqa: E731  (pytest ids)


def field_values(info):
    """Values a sender may put in one field, from its declaration."""
    if info.record is not None:
        return st.lists(record_values(info.record), min_size=info.count, max_size=info.count)
    if info.text_len:
        return st.text(st.characters(min_codepoint=1, max_codepoint=127), max_size=info.text_len)
    return st.integers(info.lo, info.hi)


def record_values(struct):
    return st.fixed_dictionaries({f.name: field_values(f) for f in fields.infos(struct)})


def message_values(message):
    """A body's values; a trimmed record array (fields.records) sends only its used records, so
    its unused ones are zero, as a receiver reads them back."""
    trimmed = [f for f in fields.infos(message.body) if f.record is not None and f.trimmed]
    if not trimmed:
        return record_values(message.body)
    zero = {f.name: 0 for f in fields.infos(trimmed[0].record)}

    def zero_unused(values):
        used = values["count"]
        return dict(values, **{trimmed[0].name: values[trimmed[0].name][:used] + [dict(zero)] * (
            trimmed[0].count - used)})
    return record_values(message.body).map(zero_unused)


def flatten(message, values):
    """A body's values as the firmware test support carries them: a flat list in wire order."""
    return [[flatten_record(f.record, r) for r in values[f.name]] if f.record is not None
            else values[f.name] for f in fields.infos(message.body)]


def flatten_record(struct, values):
    return [values[f.name] for f in fields.infos(struct)]


def unflatten(message, flat):
    out = {}
    for f, v in zip(fields.infos(message.body), flat):
        if f.record is not None:
            names = [r.name for r in fields.infos(f.record)]
            v = [dict(zip(names, rec)) for rec in v]
        out[f.name] = v
    return out


# (addr, flags, seq) of an unsigned frame: FLAG_SIGNED adds a signature (test_signing_protocol.py).
headers = st.tuples(st.integers(0, 255), st.integers(0, 255).map(lambda f: f & ~framing.FLAG_SIGNED),
                    st.integers(0, 0xFFFF))


def _outcome(decoder, wire):
    """What a decoder makes of a frame, comparable across decoders."""
    try:
        d = decoder(wire)
    except codec.FrameError as e:
        return ("error", e.kind)
    return (d.addr, d.flags, d.seq, d.message.name, d.values)


def _assert_decoders_agree(wire):
    fast = _outcome(codec.decode, wire)
    assert fast == _outcome(codec.decode_construct, wire)
    return fast


def _raw_frame(header, type_id, body):
    addr, flags, seq = header
    raw = bytes([addr, flags, seq & 0xFF, seq >> 8, type_id]) + body
    return raw + framing.crc16(raw).to_bytes(2, "big")


@pytest.mark.parametrize("message", messages.ALL, ids=NAME)
@SETTINGS
@given(data=st.data(), header=headers)
def test_fast_decode_equals_construct_parse(message, data, header):
    values = data.draw(message_values(message))
    wire = codec.encode(*header, message, values)
    assert wire.count(0) == 1 and wire[-1] == 0
    assert _assert_decoders_agree(wire[:-1]) == (*header, message.name, values)


@pytest.mark.parametrize("message", messages.ALL, ids=NAME)
@SETTINGS
@given(data=st.data(), header=headers)
def test_fast_decode_equals_construct_on_any_body_bytes(message, data, header):
    # Bytes no sender would produce (text with NUL or non-ASCII, values outside the ranges)
    # must get the same answer from both paths too: the same values, or the same refusal.
    body = data.draw(st.binary(min_size=message.body.sizeof(), max_size=message.body.sizeof()))
    _assert_decoders_agree(framing.cobs_encode(_raw_frame(header, message.type_id, body)))


@SETTINGS
@given(st.binary(max_size=300))
def test_decoders_agree_on_arbitrary_bytes(wire):
    _assert_decoders_agree(wire)


@SETTINGS
@given(data=st.data(), header=headers)
def test_decoders_agree_on_damaged_frames(data, header):
    message = data.draw(st.sampled_from(messages.ALL))
    wire = bytearray(codec.encode(*header, message, data.draw(message_values(message)))[:-1])
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(0, len(wire) - 1))
        wire[at] ^= 1 << data.draw(st.integers(0, 7))
    cut = data.draw(st.integers(0, len(wire)))
    _assert_decoders_agree(bytes(wire[:cut]))


@SETTINGS
@given(st.binary(max_size=1200))
def test_cobs_fast_path_matches_the_reference_decoder(data):
    # Long runs without zeros give 255-code blocks, which the fast path hands on.
    wire = framing.cobs_encode(data)
    assert bytes(codec._cobs_decode(wire)) == framing.cobs_decode(wire) == data


def test_text_that_is_not_ascii_is_a_malformed_frame():
    info = dict(fingerprint=1, fw_major=0, fw_minor=1, fw_patch=2, board="unix-sim", serial="S1",
                heap_free=0, uptime_s=0, mode=0, alarms=0, cal_id=0, config_version=0,
                rx_frames=0, crc_errors=0, dropped=0, duplicates=0)
    raw = bytearray(codec.build_frame(1, 1, 2, messages.INFO, info)[:-2])
    raw[framing.HEADER_SIZE + 7] = 0xC3  # first byte of `board`
    raw += framing.crc16(bytes(raw)).to_bytes(2, "big")
    for decoder in (codec.decode, codec.decode_construct):
        with pytest.raises(codec.FrameError) as e:
            decoder(framing.cobs_encode(bytes(raw)))
        assert e.value.kind == "malformed"


@pytest.mark.parametrize("damage, kind", [
    (lambda raw: raw[:-1] + bytes([raw[-1] ^ 0x01]), "crc"),
    (lambda raw: raw[:4], "malformed"),
    (lambda raw: _raw_frame((1, 0, 5), 0x7E, b""), "malformed"),
    (lambda raw: _raw_frame((1, 0, 5), messages.PING.type_id, b"\x01\x02\x03"), "malformed"),
])
def test_refusals_say_why(damage, kind):
    raw = codec.build_frame(1, 0, 5, messages.PING, dict(token=7))
    for decoder in (codec.decode, codec.decode_construct):
        with pytest.raises(codec.FrameError) as e:
            decoder(framing.cobs_encode(damage(raw)))
        assert e.value.kind == kind


def test_splitter_and_decode_read_a_stream_of_frames():
    wires = [codec.encode(a, 1, a, messages.PONG, dict(token=a * 1000), lead=True) for a in (1, 2, 3)]
    stream = b"".join(wires)
    splitter = codec.FrameSplitter()
    frames = []
    for i in range(0, len(stream), 5):  # in pieces, as a serial port hands them out
        frames += splitter.feed(stream[i:i + 5])
    assert [codec.decode(f).values["token"] for f in frames] == [1000, 2000, 3000]
