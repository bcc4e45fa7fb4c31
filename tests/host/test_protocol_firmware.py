"""Host codec against the firmware's own codec on the Unix port, for every message type.

One MicroPython process (tests/firmware/codec_server.py with the unix-sim firmware image, at
the smallest board heap) serves the whole session; each property sends it JSON lines.
"""
import binascii
import json
import os
import pathlib
import subprocess

import pytest
from hypothesis import given, strategies as st

from sxctl import FWLIB_DIR, boards, image, toolchain
from sxctl.sim.vboard import ROM_SOURCE
from sxproto import codec, framing, messages, schema

from test_protocol_codec import NAME, SETTINGS, flatten, message_values, unflatten

FIRMWARE_TESTS = pathlib.Path(__file__).resolve().parent.parent / "firmware"
GOLDEN = pathlib.Path(__file__).resolve().parent.parent / "golden" / "frames.json"
SERVER_FILES = (FIRMWARE_TESTS / "codec_server.py", FWLIB_DIR / "fwlib_codec.py")


class CodecServer:
    def __init__(self, root):
        image.write_tree(image.build("unix-sim"), root)
        image.write_tree(image.support_files(SERVER_FILES), root)
        env = dict(os.environ, SXCTL_ROM_RUN="codec_server")
        env.pop("SXCTL_BUS", None)
        heap = "heapsize=%dK" % boards.smallest_heap_kb()
        self.proc = subprocess.Popen([toolchain.micropython_path(), "-X", heap, "-c", ROM_SOURCE],
                                     cwd=root, env=env, text=True, stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self.hello = self._answer()

    def _answer(self):
        line = self.proc.stdout.readline()
        if not line.startswith("{"):
            self.proc.kill()
            raise AssertionError("codec server failed:\n" + line + self.proc.stdout.read())
        answer = json.loads(line)
        assert "error" not in answer, answer["error"]
        return answer

    def call(self, **request):
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()
        return self._answer()

    def parse(self, addr, wire):
        return self.call(op="parse", addr=addr, hex=wire.hex())

    def build(self, addr, seq, message, flags, values):
        """Wire bytes of the reply the firmware builds (it always sets FLAG_REPLY)."""
        return binascii.unhexlify(self.call(op="build", addr=addr, seq=seq, type=message.type_id,
                                            flags=flags, flat=flatten(message, values))["hex"])

    def close(self):
        self.proc.stdin.close()
        assert self.proc.wait(10) == 0


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    srv = CodecServer(tmp_path_factory.mktemp("codec-server"))
    yield srv
    srv.close()


def test_firmware_was_built_from_these_declarations(server):
    assert server.hello["fingerprint"] == schema.fingerprint()


board_addrs = st.integers(0, 254)
seqs = st.integers(0, 0xFFFF)
reply_flags = st.sampled_from([0, framing.FLAG_ERROR])


@pytest.mark.parametrize("message", messages.ALL, ids=NAME)
@SETTINGS
@given(data=st.data(), addr=board_addrs, seq=seqs, broadcast=st.booleans())
def test_host_build_firmware_parse(server, message, data, addr, seq, broadcast):
    values = data.draw(message_values(message))
    wire = codec.encode(framing.BROADCAST if broadcast else addr, 0, seq, message, values, lead=True)
    answer = server.parse(addr, wire)
    assert answer["crc_errors"] == answer["dropped"] == 0
    [got] = answer["frames"]
    assert (got["type"], got["seq"], got["broadcast"]) == (message.type_id, seq, broadcast)
    trim = schema.trim(message)
    assert got["body_len"] == (message.body.sizeof() if trim is None else trim.body_size(values["count"]))
    assert unflatten(message, got["flat"]) == values


@pytest.mark.parametrize("message", messages.ALL, ids=NAME)
@SETTINGS
@given(data=st.data(), addr=board_addrs, seq=seqs, flags=reply_flags)
def test_firmware_build_host_parse(server, message, data, addr, seq, flags):
    values = data.draw(message_values(message))
    wire = server.build(addr, seq, message, flags, values)
    assert wire.count(0) == 1 and wire[-1] == 0
    got = codec.decode(wire[:-1])
    assert (got.addr, got.seq, got.message) == (addr, seq, message)
    assert got.flags == flags | framing.FLAG_REPLY
    assert got.values == values


@pytest.mark.parametrize("message", messages.ALL, ids=NAME)
@SETTINGS
@given(data=st.data(), addr=board_addrs, seq=seqs, flags=reply_flags)
def test_host_and_firmware_build_identical_bytes(server, message, data, addr, seq, flags):
    values = data.draw(message_values(message))
    host = codec.encode(addr, flags | framing.FLAG_REPLY, seq, message, values)
    assert server.build(addr, seq, message, flags, values) == host


def _golden():
    return json.loads(GOLDEN.read_text())["frames"]


@pytest.mark.parametrize("frame", _golden(), ids=lambda f: f["name"])
def test_golden_frames_on_the_firmware(server, frame):
    # The firmware parses the requests it receives and builds the replies it sends.
    message = messages.BY_NAME[frame["name"]]
    wire = bytes.fromhex(frame["hex"])
    if frame["flags"] & framing.FLAG_REPLY:
        built = server.build(frame["addr"], frame["seq"], message,
                             frame["flags"] & ~framing.FLAG_REPLY, frame["values"])
        assert built == wire
    else:
        [got] = server.parse(frame["addr"], wire)["frames"]
        assert (got["type"], got["seq"]) == (message.type_id, frame["seq"])
        assert unflatten(message, got["flat"]) == frame["values"]
