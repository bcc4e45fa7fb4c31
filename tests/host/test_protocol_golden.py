"""Golden frames: fixed wire bytes for a handful of messages, checked on the host.

tests/golden/frames.json holds each frame's hex and decoded values; a change to the codec or
to those messages' layout that alters a single byte fails here (the firmware side is checked
in test_protocol_firmware.py). After a deliberate layout change, regenerate the hex with
`python tests/host/test_protocol_golden.py` and review the diff.
"""
import json
import pathlib

import pytest

from sxproto import codec, framing, messages

GOLDEN = pathlib.Path(__file__).resolve().parent.parent / "golden" / "frames.json"
REQUIRED = {"HELLO", "INFO", "TELEMETRY", "CONFIG_WRITE", "BACKLOG", "ERROR", "SET_MODE"}


def _frames():
    return json.loads(GOLDEN.read_text())["frames"]


def _encode(frame):
    # A signed frame names its counter and the (test-only) key its MAC is made with.
    key = bytes.fromhex(frame["key"]) if "key" in frame else None
    return codec.encode(frame["addr"], frame["flags"], frame["seq"],
                        messages.BY_NAME[frame["name"]], frame["values"], key=key, counter=frame.get("counter"))


def test_golden_set_covers_the_messages_that_matter():
    assert REQUIRED <= {f["name"] for f in _frames()}


@pytest.mark.parametrize("frame", _frames(), ids=lambda f: f["name"])
def test_golden_frame_decodes_to_its_values(frame):
    wire = bytes.fromhex(frame["hex"])
    assert wire[-1] == 0 and wire.count(0) == 1
    for decoder in (codec.decode, codec.decode_construct):
        got = decoder(wire[:-1])
        assert got.message.name == frame["name"]
        assert (got.addr, got.flags, got.seq) == (frame["addr"], frame["flags"], frame["seq"])
        assert got.values == frame["values"]
        assert got.counter == frame.get("counter")
    if "key" in frame:  # the MAC covers addr..counter
        raw = framing.cobs_decode(wire[:-1])
        assert framing.mac(bytes.fromhex(frame["key"]), raw[:-framing.CRC_SIZE - framing.MAC_SIZE]) == got.mac


@pytest.mark.parametrize("frame", _frames(), ids=lambda f: f["name"])
def test_golden_values_encode_to_the_same_bytes(frame):
    assert _encode(frame).hex() == frame["hex"]


def test_golden_frames_fit_one_frame():
    for frame in _frames():
        assert len(bytes.fromhex(frame["hex"])) <= framing.MAX_FRAME + 2, frame["name"]


def regenerate():
    data = json.loads(GOLDEN.read_text())
    for frame in data["frames"]:
        frame["hex"] = _encode(frame).hex()
    GOLDEN.write_text(json.dumps(data, indent=1) + "\n")
    print("rewrote", GOLDEN)


if __name__ == "__main__":
    regenerate()
