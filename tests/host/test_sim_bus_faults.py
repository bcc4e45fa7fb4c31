"""Fault injection on the simulated bus: seeded, counted exactly, and seen by both ends."""
import random

from sxctl.buslink import BusClient
from sxctl.sim.bus import Bus, Faults
from sxctl.sim.simulator import Simulator
from sxproto import messages
from simboards import sxctl


def _stream(n=20000, seed=5):
    return bytes(random.Random(seed).randrange(256) for _ in range(n))


def test_bit_flips_are_counted_exactly_and_do_not_depend_on_how_the_stream_is_cut():
    data = _stream()
    whole = Faults(ber=1e-3, seed=7)
    out = whole.apply(data)
    flipped = sum(bin(a ^ b).count("1") for a, b in zip(data, out))
    assert len(out) == len(data)
    assert flipped == whole.bits_flipped and 100 < flipped < 220  # ~160 expected
    assert whole.bytes_corrupted == sum(1 for a, b in zip(data, out) if a != b)
    cut = Faults(ber=1e-3, seed=7)
    pieces = b"".join(cut.apply(data[i:i + 37]) for i in range(0, len(data), 37))
    assert pieces == out
    assert Faults(ber=1e-3, seed=8).apply(data) != out  # another seed, another pattern


def test_dropped_bytes_are_counted_and_the_rest_arrive_in_order():
    data = _stream()
    faults = Faults(drop=1e-2, seed=3)
    out = faults.apply(data)
    assert len(out) == len(data) - faults.bytes_dropped and 120 < faults.bytes_dropped < 280
    it = iter(data)
    assert all(byte in it for byte in out)  # a subsequence: nothing reordered or invented
    assert Faults().apply(data) == data


def test_injected_faults_show_in_both_ends_link_counters():
    bus = Bus()
    sim = Simulator(1, bus=bus)
    try:
        sim.start()
        halt = sim.run_in_background()
        try:
            sim.wait_ready()
            with BusClient(bus.path, timeout=0.1, retries=6) as client:
                bus.inject(ber=1e-3, seed=11)
                for k in range(150):
                    assert client.request(1, messages.PING, dict(token=k), expect=messages.PONG).values["token"] == k
                injected = bus.fault_stats()
                bus.inject()  # a clean line to read the board's counters
                info = client.hello(1)
                host = client.stats
        finally:
            halt()
    finally:
        sim.close()
    down, up = injected["down"], injected["up"]
    assert down["bits_flipped"] > 0 and up["bits_flipped"] > 0
    # every bad request the board dropped came from a corrupted byte (one can spoil two frames)
    board_bad = info["crc_errors"] + info["dropped"]
    assert 1 <= board_bad <= 2 * down["bytes_corrupted"]
    host_bad = host.crc_errors + host.malformed
    assert 1 <= host_bad <= 2 * up["bytes_corrupted"]
    assert host.retries >= 1 and host.timeouts == host.retries  # each lost answer cost one retry


def test_sim_command_reports_what_it_injected():
    run = sxctl("sim", "--plant", "hs", "--duration", "120", "--ber", "1e-4", "--drop", "1e-4", "--seed", "3",
                timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    line = next(l for l in run.stdout.splitlines() if l.startswith("faults injected:"))
    assert int(line.split()[2]) > 0
