"""COBS against an independent oracle, the `cobs` package from PyPI: the host's framing
(protocol/framing.py) and the firmware's (link.py, run on the Unix port) encode and decode
every frame as it does. The firmware tests' codec helper uses link.py's COBS, checked here."""
import os
import random
import subprocess

from cobs import cobs
from hypothesis import given, settings, strategies as st

from sxctl import image, toolchain
from sxctl.sim.vboard import ROM_SOURCE
from sxproto import framing

MAX = framing.MAX_FRAME  # a frame's raw bytes, before COBS


def _inputs():
    rng = random.Random(15)
    # every input a frame can carry: at most MAX bytes, so no run reaches the 254 of a full block
    edge = [b"", b"\x00", b"\x00" * 3, b"\x01", b"\xff" * MAX, b"\x00" + b"\x11" * 248 + b"\x00",
            b"\x22" * 249, bytes(range(1, 251)), bytes(range(250))]
    rand = [bytes(rng.choice((0, rng.randrange(256))) for _ in range(rng.randrange(MAX + 1)))
            for _ in range(300)]
    return edge + rand


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=MAX))
def test_the_host_framing_matches_the_oracle(data):
    assert framing.cobs_encode(data) == cobs.encode(data)
    assert framing.cobs_decode(cobs.encode(data)) == data


def test_the_host_framing_refuses_what_the_oracle_refuses():
    for bad in (b"\x05\x01\x02", b"\x00", b"\x03\x01\x00\x02"):
        try:
            cobs.decode(bad)
        except cobs.DecodeError:
            pass
        else:
            raise AssertionError(bad)
        try:
            framing.cobs_decode(bad)
        except ValueError:
            continue
        raise AssertionError("host decoded %r" % bad)


_PROGRAM = """
from binascii import hexlify, unhexlify
from link import cobs_decode_in_place, cobs_encode
for line in open("cobs_in.txt"):
    data, wire = [unhexlify(x) for x in line.strip().split("|")]
    enc = bytearray(len(data) + 4)
    n = cobs_encode(data, len(data), enc)
    buf = bytearray(wire)
    m = cobs_decode_in_place(buf, len(buf))
    print(hexlify(enc[:n]).decode(), hexlify(buf[:m]).decode() if m >= 0 else "refused")
"""


def test_the_firmware_link_matches_the_oracle(tmp_path):
    inputs = _inputs()
    image.write_tree(image.build("unix-sim", debug=True), tmp_path)
    (tmp_path / "cobs_check.py").write_text(_PROGRAM)
    (tmp_path / "cobs_in.txt").write_text("".join("%s|%s\n" % (d.hex(), cobs.encode(d).hex()) for d in inputs))
    env = dict(os.environ, SXCTL_ROM_RUN="cobs_check")
    env.pop("SXCTL_BUS", None)
    proc = subprocess.run([toolchain.micropython_path(), "-X", "heapsize=256K", "-c", ROM_SOURCE],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    got = [(line + " ").split(" ")[:2] for line in proc.stdout.splitlines()]
    assert len(got) == len(inputs)
    for data, (encoded, decoded) in zip(inputs, got):
        assert bytes.fromhex(encoded) == cobs.encode(data) + b"\x00", data  # with its delimiter
        assert bytes.fromhex(decoded) == data, data
