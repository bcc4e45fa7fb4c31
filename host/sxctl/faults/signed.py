"""Fault section `signed`: a board with a plant key against forged and replayed writes.

Forged: valid frames whose MAC, counter, body or key is wrong, and unsigned writes. Replayed:
frames the host really signed, sent again after another write (so not a retry of the last
one). Any of them answered with anything but an ERROR would be accepted: must be 0.
"""
import random
import time

from sxproto import codec, config_items, framing, messages

from .. import keys
from ..bench import Figure
from ..buslink import BusClient
from ..sim.simulator import running

ADDR = 1
SETPOINT = config_items.BY_NAME["ph_setpoint"].id


def _send(bus, wire, seq):
    bus.serial.write(wire)
    reply = bus._await_reply(ADDR, seq, time.monotonic() + 1.0)
    return None if reply is None else reply.message


def _setpoint(value):
    return dict(loop=0, value=value)


def run(short):
    trials = 50 if short else 500
    rng = random.Random(11)
    key = keys.new_key()
    wrong = keys.new_key()
    forged_accepted = replayed_accepted = forged_sent = replayed_sent = 0
    with running(1) as sim:
        keys.provision(sim.boards[0].usb.path, key)
        sim.wait_ready()
        with BusClient(sim.bus.path, key=key) as bus:
            counter = bus.signing_state(ADDR)["counter"] + 1
            captured = []
            for i in range(trials):
                seq = bus._next_seq()
                counter += 1
                good = codec.encode(ADDR, 0, seq, messages.SET_SETPOINT, _setpoint(1500 + i % 50),
                                    lead=True, key=key.secret, counter=counter)
                assert _send(bus, good, seq) is messages.SETPOINT_ACK, "a genuine write was refused"
                captured.append((seq, good))
                # forgeries, each a fresh sequence number so no retry cache answers them
                kind = i % 4
                seq = bus._next_seq()
                if kind == 0:  # unsigned
                    wire = codec.encode(ADDR, 0, seq, messages.SET_SETPOINT, _setpoint(9000), lead=True)
                elif kind == 1:  # signed with another key
                    wire = codec.encode(ADDR, 0, seq, messages.SET_SETPOINT, _setpoint(9000), lead=True,
                                        key=wrong.secret, counter=counter + 1)
                else:  # a genuine frame with a flipped bit in the MAC, or in the body
                    raw = bytearray(codec.build_frame(ADDR, 0, seq, messages.SET_SETPOINT, _setpoint(9000),
                                                      key=key.secret, counter=counter + 1))
                    at = len(raw) - 3 - rng.randrange(12) if kind == 2 else 5 + rng.randrange(5)
                    raw[at] ^= 1 << rng.randrange(8)
                    crc = framing.crc16(bytes(raw[:-2]))
                    raw[-2:] = crc.to_bytes(2, "big")
                    wire = b"\x00" + framing.cobs_encode(bytes(raw)) + b"\x00"
                forged_sent += 1
                forged_accepted += _send(bus, wire, seq) is not messages.ERROR
            # replays: an old genuine frame after newer writes (not a retry of the last one)
            for seq, wire in rng.sample(captured[:-1], min(len(captured) - 1, trials // 2)):
                replayed_sent += 1
                replayed_accepted += _send(bus, wire, seq) is not messages.ERROR
            state = bus.signing_state(ADDR)
    return [
        Figure("faults.signed.forged_sent", forged_sent, "frames",
               note="unsigned, wrong key, MAC bit flipped, body bit flipped"),
        Figure("faults.signed.forged_accepted", forged_accepted, "", ("==", 0)),
        Figure("faults.signed.replayed_sent", replayed_sent, "frames"),
        Figure("faults.signed.replayed_accepted", replayed_accepted, "", ("==", 0)),
        Figure("faults.signed.board_counted", state["unsigned"] + state["bad_signature"] + state["replayed"], "",
               ("==", forged_sent + replayed_sent), "refusals the board counted (SIGNING_STATE)"),
    ]
