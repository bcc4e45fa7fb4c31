"""Signed frames on the host: the declaration, the codec, plant keys and counters (no boards)."""
import argparse
import json
import os
import pathlib
import re
import stat

import construct as c
import pytest
from hypothesis import given, strategies as st

from sxctl import buslink, keys, plantfile
from sxproto import codec, docgen, framing, messages

from test_protocol_codec import NAME, SETTINGS, message_values

KEY = bytes(range(32))
GOLDEN = pathlib.Path(__file__).resolve().parent.parent / "golden" / "frames.json"
FIRMWARE_TEST = pathlib.Path(__file__).resolve().parent.parent / "firmware" / "test_signing.py"


def _decoded(decoded):
    return (decoded.addr, decoded.flags, decoded.seq, decoded.message.name, decoded.values,
            decoded.counter, decoded.mac)


@pytest.mark.parametrize("message", messages.WRITES, ids=NAME)
@SETTINGS
@given(data=st.data(), addr=st.integers(0, 255), seq=st.integers(0, 0xFFFF), counter=st.integers(0, 0xFFFFFFFF))
def test_signed_writes_decode_alike_and_carry_a_mac_over_addr_to_counter(message, data, addr, seq, counter):
    values = data.draw(message_values(message))
    wire = codec.encode(addr, 0, seq, message, values, key=KEY, counter=counter)
    fast, plain = codec.decode(wire[:-1]), codec.decode_construct(wire[:-1])
    assert _decoded(fast) == _decoded(plain)
    assert (fast.flags, fast.values, fast.counter) == (framing.FLAG_SIGNED, values, counter)
    raw = framing.cobs_decode(wire[:-1])
    assert raw[-2 - framing.MAC_SIZE - 4:-2 - framing.MAC_SIZE] == counter.to_bytes(4, "little")
    assert fast.mac == framing.mac(KEY, raw[:-2 - framing.MAC_SIZE])
    assert len(wire) == docgen.wire_size(message, signed=True) <= framing.MAX_FRAME + 2
    # construct checks the MAC when given the key, and refuses another key's.
    framing.Frame.parse(raw, key=KEY)
    with pytest.raises(c.ChecksumError):
        framing.Frame.parse(raw, key=bytes(32))


def test_unsigned_frames_are_unchanged_by_signing():
    wire = codec.encode(3, 0, 1, messages.HELLO)
    assert wire.hex() == "020302010401d8cf00"  # the HELLO golden frame
    assert codec.decode(wire[:-1]).counter is None


def test_a_signed_frame_cut_to_an_unsigned_length_is_malformed():
    raw = codec.build_frame(3, 0, 1, messages.SET_MODE, dict(mode=1, manual_output=0), key=KEY, counter=9)
    short = raw[:framing.HEADER_SIZE + messages.SET_MODE.body.sizeof()]
    short += framing.crc16(short).to_bytes(2, "big")
    for decoder in (codec.decode, codec.decode_construct):
        with pytest.raises(codec.FrameError) as e:
            decoder(framing.cobs_encode(short))
        assert e.value.kind == "malformed"


def test_the_firmware_test_checks_the_golden_signed_frame():
    golden = next(f for f in json.loads(GOLDEN.read_text())["frames"] if "key" in f)
    source = FIRMWARE_TEST.read_text()
    assert 'GOLDEN_SIGNED = "%s"' % golden["hex"] in source
    assert "GOLDEN_COUNTER = %d" % golden["counter"] in source
    assert bytes.fromhex(golden["key"]) == KEY


# --- keys ------------------------------------------------------------------------------------------

def test_a_key_shows_its_id_never_its_bytes(tmp_path):
    key = keys.write_file(tmp_path / "plant.key", keys.new_key())
    secret = key.secret
    for text in (repr(key), str(key), "%s" % key, repr([key])):
        assert secret.hex() not in text.lower() and "%08x" % key.id in text
    assert stat.S_IMODE(os.stat(tmp_path / "plant.key").st_mode) == 0o600
    assert keys.from_file(tmp_path / "plant.key").secret == secret
    with pytest.raises(keys.KeyProblem, match="never overwritten"):
        keys.write_file(tmp_path / "plant.key", keys.new_key())
    with pytest.raises(TypeError):
        __import__("pickle").dumps(key)


@pytest.mark.parametrize("text", ["00" * 8, "00" * 65, "zz" + "00" * 31, "0" * 63])
def test_a_bad_key_is_refused_without_repeating_it(text):
    with pytest.raises(keys.KeyProblem) as e:
        keys.parse(text, keys.ENV)
    assert text not in str(e.value) and text[:10] not in str(e.value)


def test_a_bus_client_signs_only_with_the_key_it_is_handed(monkeypatch):
    monkeypatch.setenv(keys.ENV, KEY.hex())  # the environment is the command line's, not the client's
    assert buslink.BusClient("loop://").key is None
    assert buslink.BusClient("loop://", key=keys.PlantKey(KEY, "test")).key.secret == KEY
    with pytest.raises(TypeError):
        buslink.BusClient("loop://", key=KEY.hex())


def test_counters_pass_the_clock_the_last_one_and_the_board():
    now = [1000]
    counter = keys.Counter(clock=lambda: now[0])
    assert counter.next() == 1000
    assert counter.next() == 1001  # within one tick: one more
    assert counter.next(floor=5000) == 5001  # the board took a later one (another host, a reset)
    now[0] = 9000
    assert counter.next() == 9000
    with pytest.raises(keys.KeyProblem, match="ahead of this host's clock"):
        counter.next(floor=9000 + keys.MAX_AHEAD_S * keys.TICKS_PER_S + 1)
    counter = keys.Counter(clock=lambda: keys.TOP)
    assert counter.next() == keys.TOP
    with pytest.raises(keys.KeyProblem, match="used up"):
        counter.next()


def test_clock_counter_is_quarter_seconds_since_2024():
    assert keys.clock_counter(keys.EPOCH + 10) == 40
    assert keys.clock_counter(keys.EPOCH + 34 * 365.25 * 86400) < keys.TOP  # lasts into 2058


def test_remote_refusals_say_what_to_do():
    text = str(buslink.RemoteError(2, messages.SET_MODE, buslink.SIGNATURE_REQUIRED, 0))
    assert "signature required" in text and keys.ENV in text and "key_file" in text


# --- plant file ------------------------------------------------------------------------------------

PLANT = """\
[bus]
port = "/dev/null"
key_file = "%s"

[[stage]]
address = 1
name = "E1"
role = "extraction"
"""


def test_plant_file_names_a_key_file_beside_it_and_loading_it_switches_nothing(tmp_path, monkeypatch):
    from sxctl.commands import common

    monkeypatch.delenv(keys.ENV, raising=False)
    key = keys.write_file(tmp_path / "plant.key", keys.new_key())
    (tmp_path / "plant.toml").write_text(PLANT % "plant.key")
    plant = plantfile.load(tmp_path / "plant.toml")
    assert plant.key_file == str(tmp_path / "plant.key")
    assert buslink.BusClient("loop://").key is None  # nothing process-wide
    args = argparse.Namespace(key_file=None, env_key=None)
    assert common.plant_key(args, plant).id == key.id  # handed to the client by the command
    other = keys.write_file(tmp_path / "other.key", keys.new_key())
    args.key_file = str(tmp_path / "other.key")
    assert common.plant_key(args, plant).id == other.id  # --key-file wins


def test_plant_file_with_a_missing_key_file_is_refused(tmp_path):
    plant, problems = plantfile.check_text(PLANT % "nowhere.key", str(tmp_path / "plant.toml"))
    assert plant is None
    [problem] = problems
    assert problem.key == "key_file" and problem.line == 3 and "sxctl key new" in problem.text
    plant, problems = plantfile.check_text(PLANT.replace('"%s"', "7"), str(tmp_path / "plant.toml"))
    assert re.search("key_file.*path as text", problems[0].format("p"))


def test_errors_while_signing_do_not_carry_the_key():
    for values in (dict(mode=300, manual_output=0), dict(mode=1)):
        with pytest.raises(Exception) as e:
            codec.encode(1, 0, 1, messages.SET_MODE, values, key=KEY, counter=5)
        text = str(e.value) + repr(e.value)
        assert KEY.hex() not in text and repr(KEY) not in text
