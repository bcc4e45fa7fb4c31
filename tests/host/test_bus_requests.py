"""Requests against virtual boards over the bus: writes applied once, refused whole, backlog."""
import pytest
from sxproto import codec, config_items, messages

from sxctl import buslink


def test_retried_write_is_applied_once(sim3):
    with buslink.BusClient(sim3.bus) as bus:
        before = bus.hello(1)
        items = [dict(item=1, value=2300)] + [dict(item=0, value=0)] * (messages.CONFIG_WRITE_ITEMS - 1)
        wire = codec.encode(1, 0, 0x4242, messages.CONFIG_WRITE, dict(count=1, items=items), lead=True)
        replies = []
        for _ in range(2):  # the host's retry: same sequence number, same bytes
            bus.serial.write(wire)
            replies.append(bus._await_reply(1, 0x4242, __import__("time").monotonic() + 1.0))
        assert replies[0] is not None and replies[1] is not None
        assert replies[0].values == replies[1].values
        after = bus.hello(1)
    assert after["config_version"] == before["config_version"] + 1
    assert after["duplicates"] == before["duplicates"] + 1


def test_bad_config_write_refused_whole_with_item_named(sim3):
    with buslink.BusClient(sim3.bus) as bus:
        before = bus.request(2, messages.CONFIG_READ, dict(item=1), expect=messages.CONFIG_VALUE).values
        items = [dict(item=1, value=2400), dict(item=6, value=99999)] + [dict(item=0, value=0)] * 6
        with pytest.raises(buslink.RemoteError) as err:
            bus.request(2, messages.CONFIG_WRITE, dict(count=2, items=items))
        assert err.value.code == 4 and err.value.detail == 6
        after = bus.request(2, messages.CONFIG_READ, dict(item=1), expect=messages.CONFIG_VALUE).values
    assert after == before


def test_setpoint_echoes_the_applied_value_and_telemetry_reports_it(sim3):
    with buslink.BusClient(sim3.bus) as bus:
        ack = bus.request(3, messages.SET_SETPOINT, dict(loop=0, value=2750), expect=messages.SETPOINT_ACK)
        assert ack.values == dict(loop=0, value=2750)
        tel = bus.request(3, messages.GET_TELEMETRY, expect=messages.TELEMETRY).values
        assert tel["ph_setpoint"] == 2750
        assert tel["mode"] == 0  # a board comes up with its outputs off


def test_backlog_returns_stored_records_in_order(sim3):
    with buslink.BusClient(sim3.bus) as bus:
        got = bus.request(1, messages.BACKLOG_READ, dict(since=0, count=0), expect=messages.BACKLOG).values
    assert got["count"] >= 1 and got["oldest"] == 1
    seqs = [r["record"] for r in got["records"][:got["count"]]]
    assert seqs == list(range(1, got["count"] + 1))
    for unused in got["records"][got["count"]:]:
        assert set(unused.values()) == {0}  # padding is zeros, so equal content gives equal bytes


def test_config_items_cover_every_setpoint_loop():
    for name in ("ph_setpoint", "orp_setpoint", "flow_aq_setpoint", "flow_org_setpoint"):
        assert name in config_items.BY_NAME
