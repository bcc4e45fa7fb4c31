"""Signed writes end to end: virtual boards, a key provisioned over their USB pty, the real CLI.

One simulation serves the module, and its tests run in order as a plant's life would go: no
key, provisioning board 1 (board 2 stays without one), attacks, a reset, a rotation. Every
CLI run's output is checked for the key, in hex either case.
"""
import os
import subprocess
import time

import pytest

from simboards import SXCTL, start_sim
from sxctl import keys, repl as repl_mod
from sxctl.buslink import BusClient, RemoteError, REPLAYED, SIGNATURE_REQUIRED
from sxproto import codec, config_items, framing, messages

KEYED, OPEN = 1, 2  # board 1 gets a key; board 2 never does
AUTO = dict(mode=2, manual_output=0xFFFF)
MANUAL = dict(mode=1, manual_output=0xFFFF)
PH_SETPOINT = config_items.BY_NAME["ph_setpoint"].id


@pytest.fixture(scope="module")
def plant(tmp_path_factory):
    folder = tmp_path_factory.mktemp("signing")
    sim = start_sim(folder, "--stages", "2")
    sim.folder = folder
    sim.key_file = str(folder / "plant.key")
    sim.secrets = []  # every key made so far: none may ever show up in output
    yield sim
    sim.stop()


def run(plant, *args, env=None):
    """`sxctl ARGS` with `env` added; its output, checked to carry no key."""
    environ = {name: value for name, value in os.environ.items() if name != keys.ENV}
    environ.update(env or {})
    proc = subprocess.run(SXCTL + list(args), capture_output=True, text=True, timeout=60, env=environ)
    out = proc.stdout + proc.stderr
    for path in (plant.key_file, plant.key_file + ".new"):  # a key this run made counts too
        if os.path.exists(path):
            key_of(plant, path)
    for secret in plant.secrets:
        assert secret.hex() not in out.lower(), "a plant key was printed"
    return proc.returncode, out


def key_of(plant, path=None):
    key = keys.from_file(path or plant.key_file)
    if key.secret not in plant.secrets:
        plant.secrets.append(key.secret)
    return key


def state(plant, addr=KEYED):
    with BusClient(plant.bus) as bus:
        return bus.signing_state(addr)


def exchange(bus, wire, seq, addr=KEYED):
    """Send raw wire bytes; (reply name, ERROR code or None)."""
    bus.serial.write(wire)
    reply = bus._await_reply(addr, seq, time.monotonic() + 1.0)
    assert reply is not None, "no answer"
    return reply.message.name, reply.values.get("code")


def signed(key, seq, counter, values=MANUAL, addr=KEYED):
    return codec.encode(addr, 0, seq, messages.SET_MODE, values, lead=True, key=key.secret, counter=counter)


def test_without_a_key_writes_need_no_signature(plant):
    with BusClient(plant.bus) as bus:
        assert bus.request(KEYED, messages.SET_MODE, AUTO, expect=messages.MODE_ACK).values["mode"] == 2
        assert bus.signing_state(KEYED)["key_id"] == 0
    code, out = run(plant, "set", "--port", plant.bus, "--addr", str(KEYED), "mode=manual")
    assert code == 0, out


def test_provisioned_over_usb_the_board_refuses_unsigned_writes(plant):
    code, out = run(plant, "key", "new", "--key-file", plant.key_file)
    assert code == 0, out
    key = key_of(plant)
    code, out = run(plant, "key", "provision", "--port", plant.usb(KEYED), "--key-file", plant.key_file,
                    "--bus", plant.bus)
    assert code == 0, out
    assert "address 1 requires writes signed with key %08x" % key.id in out
    with BusClient(plant.bus) as bus:
        with pytest.raises(RemoteError) as e:
            bus.request(KEYED, messages.SET_MODE, AUTO, expect=messages.MODE_ACK)
        assert e.value.code == SIGNATURE_REQUIRED
        # Reads stay open.
        assert bus.hello(KEYED)["mode"] == 0  # off after the restart that loaded the key
        bus.request(KEYED, messages.GET_TELEMETRY, expect=messages.TELEMETRY)
        bus.request(KEYED, messages.CONFIG_READ, dict(item=PH_SETPOINT), expect=messages.CONFIG_VALUE)
        bus.request(KEYED, messages.BACKLOG_READ, dict(since=0, count=0), expect=messages.BACKLOG)
        # The board without a key is as before.
        bus.request(OPEN, messages.SET_MODE, AUTO, expect=messages.MODE_ACK)
    code, out = run(plant, "set", "--port", plant.bus, "--addr", str(KEYED), "mode=auto")
    assert code != 0 and "signature required" in out
    assert state(plant)["unsigned"] == 2 and state(plant)["key_id"] == key.id


def test_writes_signed_with_the_key_from_environment_or_plant_file_apply(plant):
    key = key_of(plant)
    code, out = run(plant, "set", "--port", plant.bus, "--addr", str(KEYED), "mode=auto", "ph_setpoint=2.3",
                    env={keys.ENV: key.secret.hex()})
    assert code == 0 and "ph_setpoint = 2.300 pH" in out, out
    plant_file = plant.folder / "plant.toml"
    plant_file.write_text('[bus]\nkey_file = "plant.key"\n\n[[stage]]\naddress = 1\nname = "E1"\n'
                          'role = "extraction"\nph_setpoint = 2.4\n')
    code, out = run(plant, "config", "apply", str(plant_file), "--port", plant.bus)
    assert code == 0 and "1 of 1 boards match" in out, out
    # A signed write to a board without a key is taken too (there is nothing to check it with).
    with BusClient(plant.bus, key=key) as bus:
        bus.request(OPEN, messages.SET_MODE, MANUAL, expect=messages.MODE_ACK)
        assert bus.request(KEYED, messages.CONFIG_READ, dict(item=PH_SETPOINT)).values["value"] == 2400
    s = state(plant)
    assert s["unsigned"] == 2 and s["bad_signature"] == s["replayed"] == 0


def test_forged_writes_are_refused_and_counted(plant):
    key = key_of(plant)
    other = keys.new_key()
    before = state(plant)
    with BusClient(plant.bus) as bus:
        counter = keys.clock_counter() + 100
        flipped = bytearray(framing.cobs_decode(signed(key, 0x100, counter)[1:-1]))
        flipped[-3] ^= 0x10  # last MAC byte; the CRC made good again, as a forger would
        flipped[-2:] = framing.crc16(bytes(flipped[:-2])).to_bytes(2, "big")
        assert exchange(bus, b"\0" + framing.cobs_encode(bytes(flipped)) + b"\0", 0x100) == ("ERROR", 11)
        assert exchange(bus, signed(other, 0x101, counter), 0x101) == ("ERROR", 11)
        # A captured frame re-sent with another sequence number: the MAC covers the header.
        raw = bytearray(framing.cobs_decode(signed(key, 0x102, counter)[1:-1]))
        raw[2] = 0x03
        raw[-2:] = framing.crc16(bytes(raw[:-2])).to_bytes(2, "big")
        assert exchange(bus, b"\0" + framing.cobs_encode(bytes(raw)) + b"\0", 0x103) == ("ERROR", 11)
        assert bus.hello(KEYED)["mode"] == 2  # nothing applied
    after = state(plant)
    assert after["bad_signature"] - before["bad_signature"] == 3
    assert after["counter"] == before["counter"]  # forgeries use up no counter


def test_replayed_writes_are_refused_and_counted_a_retry_is_a_duplicate(plant):
    key = key_of(plant)
    before = state(plant)
    with BusClient(plant.bus, key=key) as bus:
        counter = bus.counter.next(before["counter"])
        captured = signed(key, 0x200, counter)
        assert exchange(bus, captured, 0x200) == ("MODE_ACK", None)
        duplicates = bus.hello(KEYED)["duplicates"]
        # The same frame again at once is the host's retry: answered again, not re-applied.
        assert exchange(bus, captured, 0x200) == ("MODE_ACK", None)
        assert bus.hello(KEYED)["duplicates"] == duplicates + 1
        bus.request(KEYED, messages.SET_MODE, AUTO, expect=messages.MODE_ACK)
        # After another write it is a replay; so is a new frame with a counter already used.
        assert exchange(bus, captured, 0x200) == ("ERROR", REPLAYED)
        assert exchange(bus, signed(key, 0x201, counter), 0x201) == ("ERROR", REPLAYED)
        assert bus.hello(KEYED)["mode"] == 2
    after = state(plant)
    assert after["replayed"] - before["replayed"] == 2
    plant.captured = (captured, after["counter"])


def test_after_a_reset_old_counters_are_still_refused(plant):
    key = key_of(plant)
    captured, last = plant.captured
    stored = state(plant)["stored"]
    assert stored > last
    with repl_mod.SerialRepl(plant.usb(KEYED)) as repl:  # a reset over USB
        assert repl.restart()
    with BusClient(plant.bus, key=key, timeout=0.5, retries=20) as bus:
        assert bus.signing_state(KEYED)["counter"] == stored  # up from `last`: skipped, never reused
        assert exchange(bus, captured, 0x200) == ("ERROR", REPLAYED)
        assert exchange(bus, signed(key, 0x300, last + 1), 0x300) == ("ERROR", REPLAYED)
        # A host learns the board's counter and goes on.
        assert bus.request(KEYED, messages.SET_MODE, MANUAL, expect=messages.MODE_ACK).values["mode"] == 1
    s = state(plant)
    assert s["replayed"] == 2 and s["counter"] > stored


def test_rotation_over_usb_replaces_the_key_on_board_and_file(plant):
    old = key_of(plant)
    code, out = run(plant, "key", "rotate", "--port", plant.usb(KEYED), "--key-file", plant.key_file,
                    "--bus", plant.bus)
    new = key_of(plant)
    assert code == 0, out
    assert new.id != old.id and "%08x replaced by %08x" % (old.id, new.id) in out
    assert not os.path.exists(plant.key_file + ".new")
    with BusClient(plant.bus) as bus:
        floor = bus.signing_state(KEYED)["counter"]
        assert exchange(bus, signed(old, 0x400, floor + 5), 0x400) == ("ERROR", 11)
    with BusClient(plant.bus, key=old) as bus:
        with pytest.raises(keys.KeyProblem, match="holds plant key %08x" % new.id):
            bus.request(KEYED, messages.SET_MODE, AUTO)
    code, out = run(plant, "set", "--port", plant.bus, "--addr", str(KEYED), "mode=auto",
                    env={keys.ENV: new.secret.hex()})
    assert code == 0, out
    code, out = run(plant, "key", "provision", "--port", plant.usb(KEYED), "--key-file", plant.key_file,
                    "--reset-counter")
    assert code != 0 and "already holds this key" in out  # that would reopen its old frames
    code, out = run(plant, "key", "status", "--port", plant.bus, "--addr", str(KEYED), "--key-file", plant.key_file)
    assert code == 0 and "yes, with key %08x" % new.id in out and "the same key" in out, out
    code, out = run(plant, "set", "--port", plant.bus, "--addr", str(KEYED), "mode=auto",
                    env={keys.ENV: old.secret.hex()})
    assert code != 0 and "holds plant key %08x" % new.id in out
