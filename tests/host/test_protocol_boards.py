"""Virtual boards do what protocol/README.md says: the config items that answer are exactly the
table's, a write just outside each item's range is refused with code 4 naming it, and the
frame-length, unknown-type, count, addressing, broadcast and counter rules hold on the wire."""
import json
import pathlib
import time

import pytest
from readme_codec import table_dicts, tables
from simboards import start_sim

from sxctl import buslink
from sxproto import codec, framing, messages

ROOT = pathlib.Path(__file__).resolve().parents[2]
README = (ROOT / "protocol" / "README.md").read_text()
ITEMS = table_dicts(tables(README)["Configuration items"][0])
GOLDEN = json.loads((ROOT / "tests" / "golden" / "frames.json").read_text())["frames"]
SCAN_IDS = 1024  # every id a driver would try: the table's lie far below


@pytest.fixture(scope="module")
def bus(tmp_path_factory):
    sim = start_sim(tmp_path_factory.mktemp("protoboards"), "--stages", "3")
    try:
        with buslink.BusClient(sim.bus) as client:
            yield client
    finally:
        sim.stop()


def _raw(bus, frame, addr, seq, wait=0.5):
    """Send one raw frame (bytes before COBS, CRC appended here); the decoded answer or None."""
    bus.serial.write(b"\x00" + framing.cobs_encode(frame + framing.crc16(frame).to_bytes(2, "big")) + b"\x00")
    return bus._await_reply(addr, seq, time.monotonic() + wait)


def _refusal(bus, addr, message, values):
    with pytest.raises(buslink.RemoteError) as e:
        bus.request(addr, message, values)
    return e.value.code, e.value.detail


def _write(items):
    return dict(count=len(items), items=[dict(item=i, value=v) for i, v in items]
                + [dict(item=0, value=0)] * (messages.CONFIG_WRITE_ITEMS - len(items)))


def test_the_items_that_answer_are_exactly_the_readme_table(bus):
    answering = set()
    for item in range(SCAN_IDS):
        try:
            v = bus.request(1, messages.CONFIG_READ, dict(item=item), expect=messages.CONFIG_VALUE).values
        except buslink.RemoteError as e:
            assert (e.code, e.detail) == (3, item)  # unknown config item, detail: its id
            continue
        assert v["item"] == item
        answering.add(item)
    assert answering == {int(r["id"]) for r in ITEMS}


def test_a_write_just_outside_each_documented_range_is_refused_with_code_4_naming_it(bus):
    version = bus.hello(2)["config_version"]
    for r in ITEMS:
        item = int(r["id"])
        lo, hi = (int(x) for x in r["raw range"].split(".."))
        for value in (lo - 1, hi + 1):
            if -2**31 <= value < 2**31:
                assert _refusal(bus, 2, messages.CONFIG_WRITE, _write([(item, value)])) == (4, item), (r["name"], value)
    assert bus.hello(2)["config_version"] == version  # every one refused whole: nothing stored


def test_golden_refused_write_gets_the_golden_error(bus):
    [write] = [f for f in GOLDEN if f["name"] == "CONFIG_WRITE" and f["values"]["count"] == 1]
    [error] = [f for f in GOLDEN if f["name"] == "ERROR"]
    bus.serial.write(b"\x00" + bytes.fromhex(write["hex"]))
    deadline = time.monotonic() + 1.0
    got = bytearray()
    while time.monotonic() < deadline and not got.endswith(b"\x00"):
        got += bus.serial.read(4096)
    assert bytes(got) == bytes.fromhex(error["hex"])  # board 3, same seq: byte for byte


def test_a_frame_of_max_frame_bytes_is_taken_and_one_byte_more_is_dropped(bus):
    head = bytes([1, 0]) + (0x5151).to_bytes(2, "little") + bytes([messages.PING.type_id])
    body = bytes(range(1, 244))  # 5 + 243 + 2 = MAX_FRAME bytes
    assert len(head + body) + framing.CRC_SIZE == framing.MAX_FRAME
    reply = _raw(bus, head + body, 1, 0x5151)
    assert reply.message is messages.ERROR and (reply.values["code"], reply.values["detail"]) == (2, 243)
    before = bus.hello(1)["dropped"]
    assert _raw(bus, head + body + b"\x01", 1, 0x5151, wait=0.3) is None
    assert bus.hello(1)["dropped"] == before + 1


def test_an_unknown_type_is_answered_with_code_1_and_not_dropped(bus):
    before = bus.hello(1)
    reply = _raw(bus, bytes([1, 0, 0x61, 0x61, 0x7E]), 1, 0x6161)
    assert reply.message is messages.ERROR
    assert reply.values == dict(request_type=0x7E, code=1, detail=0)
    after = bus.hello(1)
    assert after["dropped"] == before["dropped"] and after["rx_frames"] == before["rx_frames"] + 2


@pytest.mark.parametrize("count", [0, messages.CONFIG_WRITE_ITEMS + 1])
def test_config_write_count_outside_1_to_8_is_code_4_with_the_count(bus, count):
    values = _write([(1, 2000)])
    values["count"] = count
    assert _refusal(bus, 1, messages.CONFIG_WRITE, values) == (4, count)


def test_backlog_read_count_is_honoured_and_checked(bus):
    got = bus.request(1, messages.BACKLOG_READ, dict(since=0, count=2), expect=messages.BACKLOG).values
    assert got["count"] == 2 and got["latest"] >= 2
    assert _refusal(bus, 1, messages.BACKLOG_READ, dict(since=0, count=messages.BACKLOG_RECORDS + 1)) == (
        4, messages.BACKLOG_RECORDS + 1)


def test_replies_carry_the_boards_address_and_seq_and_boards_ignore_replies(bus):
    reply = _raw(bus, bytes([2, 0, 0x34, 0x12, messages.HELLO.type_id]), 2, 0x1234)
    assert (reply.addr, reply.seq, reply.flags) == (2, 0x1234, framing.FLAG_REPLY)
    before = bus.hello(2)["rx_frames"]
    assert _raw(bus, bytes([2, framing.FLAG_REPLY, 0x35, 0x12, messages.HELLO.type_id]), 2, 0x1235, 0.3) is None
    assert bus.hello(2)["rx_frames"] == before + 1  # only the HELLO just above: the reply-flagged one not


def test_counters_rx_for_this_board_bad_frames_for_any(bus):
    before = bus.hello(1)
    bus.hello(2)  # another board's request (and answer): not board 1's rx_frames
    frame = bytes([2, 0, 9, 9, messages.HELLO.type_id])
    bus.serial.write(b"\x00" + framing.cobs_encode(frame + b"\x00\x01") + b"\x00")  # bad CRC, for board 2
    time.sleep(0.05)  # nothing comes back to wait for: the next request is answered after it
    after = bus.hello(1)
    assert after["rx_frames"] == before["rx_frames"] + 1  # the second HELLO to board 1
    assert after["crc_errors"] == before["crc_errors"] + 1


def test_only_time_sync_acts_on_a_broadcast_and_none_is_answered(bus):
    mode = bus.request(1, messages.GET_TELEMETRY, expect=messages.TELEMETRY).values["mode"]
    other = (mode + 1) % len(messages.MODES)
    wire = codec.encode(framing.BROADCAST, 0, 0x7001, messages.SET_MODE, dict(mode=other, manual_output=0xFFFF),
                        lead=True)
    bus.serial.write(wire)
    assert bus._await_reply(framing.BROADCAST, 0x7001, time.monotonic() + 0.3) is None
    assert bus.request(1, messages.GET_TELEMETRY, expect=messages.TELEMETRY).values["mode"] == mode
    t = 1_900_000_000
    bus.serial.write(codec.encode(framing.BROADCAST, 0, 0x7002, messages.TIME_SYNC, dict(unix_s=t), lead=True))
    assert bus._await_reply(framing.BROADCAST, 0x7002, time.monotonic() + 0.3) is None
    for addr in (1, 2, 3):
        assert bus.request(addr, messages.GET_TELEMETRY, expect=messages.TELEMETRY).values["time_s"] >= t


def test_a_write_is_a_retry_only_with_the_same_seq_and_crc(bus):
    before = bus.hello(1)["duplicates"]
    seq = 0x4A4A
    first = codec.encode(1, 0, seq, messages.ALARM_ACK, dict(mask=0), lead=True)
    other = codec.encode(1, 0, seq, messages.ALARM_ACK, dict(mask=1), lead=True)
    for wire in (first, other, other):  # same seq, another CRC: new; then the same frame: a retry
        bus.serial.write(wire)
        assert bus._await_reply(1, seq, time.monotonic() + 1.0) is not None
    assert bus.hello(1)["duplicates"] == before + 1


def test_each_documented_range_end_is_taken_or_refused_only_by_a_rule(bus):
    # Both ends of every item's range are values the board accepts: stored and in force, or
    # refused as a whole by a cross-field rule (code 5), never a fault. Board 3 keeps what this
    # leaves: the module's other tests do not depend on its config.
    for r in ITEMS:
        item = int(r["id"])
        for value in (int(x) for x in r["raw range"].split("..")):
            try:
                bus.request(3, messages.CONFIG_WRITE, _write([(item, value)]), expect=messages.CONFIG_ACK)
            except buslink.RemoteError as e:
                assert e.code == 5, (r["name"], value, e.code)
