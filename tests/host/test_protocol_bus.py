"""The virtual bus: unpaced it moves bytes at once; paced, no faster than its baud rate allows."""
import os
import selectors
import threading
import time

import pytest

from sxctl.sim.bus import BITS_PER_BYTE, Bus


@pytest.fixture(params=[None, 9600], ids=["unpaced", "9600-baud"])
def bus(request):
    """A bus with two drops, its bytes moved by a thread as the simulator's loop does."""
    bus = Bus(baud=request.param)
    bus.add_drop(1)
    bus.add_drop(2)
    stop = threading.Event()

    def pump():
        sel = selectors.DefaultSelector()
        for fd in bus.fds():
            sel.register(fd, selectors.EVENT_READ)
        while not stop.is_set():
            for key, _ in sel.select(0.01):
                bus.on_readable(key.fd)
            bus.service()
        sel.close()

    thread = threading.Thread(target=pump, daemon=True)
    thread.start()
    ends = {"host": os.open(bus.path, os.O_RDWR | os.O_NOCTTY)}
    for addr, drop in bus.drops.items():
        ends[addr] = os.open(os.ttyname(drop.slave), os.O_RDWR | os.O_NOCTTY)
    yield bus, ends
    stop.set()
    thread.join()
    for fd in ends.values():
        os.close(fd)
    bus.close()


def _read(fd, n, timeout=10.0):
    """Read exactly n bytes, waiting on the fd (not on a clock) up to a generous timeout."""
    data = b""
    deadline = time.monotonic() + timeout
    with selectors.DefaultSelector() as sel:
        sel.register(fd, selectors.EVENT_READ)
        while len(data) < n:
            left = deadline - time.monotonic()
            assert left > 0, "got %d of %d bytes" % (len(data), n)
            if sel.select(left):
                data += os.read(fd, n - len(data))
    return data


def _byte_time(bus):
    return BITS_PER_BYTE / bus.baud if bus.baud else 0.0


def test_host_bytes_reach_every_drop_in_order_and_no_sooner_than_the_wire_allows(bus):
    bus, ends = bus
    message = bytes(range(1, 97))
    sent = time.monotonic()
    os.write(ends["host"], message)
    for addr in (1, 2):
        assert _read(ends[addr], len(message)) == message
    # A lower bound only: pacing may be late on a loaded machine but never early.
    assert time.monotonic() - sent >= len(message) * _byte_time(bus)


def test_answers_from_two_drops_share_one_line_to_the_host(bus):
    bus, ends = bus
    one, two = b"\x11" * 40 + b"\x00", b"\x22" * 40 + b"\x00"
    sent = time.monotonic()
    os.write(ends[1], one)
    os.write(ends[2], two)
    got = _read(ends["host"], len(one) + len(two))
    assert sorted(got) == sorted(one + two)
    assert time.monotonic() - sent >= (len(one) + len(two)) * _byte_time(bus)


def test_pacing_can_be_switched_on_for_a_bus_made_without_it():
    bus = Bus()
    try:
        assert bus.baud is None
        assert bus.pace(115200) is bus and bus.baud == 115200
    finally:
        bus.close()
