"""The benchmark plumbing: figures merge into bench.json beside other sections' keys, goals are
judged, and the reference figures are computed as documented. (No timing is asserted.)"""
import json

import pytest

from sxctl import bench
from sxctl.bench import __main__ as bench_main
from sxctl.bench import protocol


def test_merge_keeps_keys_other_sections_wrote(tmp_path):
    out = tmp_path / "bench.json"
    out.write_text(json.dumps({"control.scan_us": 12.5, "protocol.host_decode_fps": 1}))
    bench.merge([bench.Figure("protocol.host_decode_fps", 250000)], out)
    assert json.loads(out.read_text()) == {"control.scan_us": 12.5, "protocol.host_decode_fps": 250000}


def test_table_shows_each_figure_beside_its_goal():
    text = bench.table([bench.Figure("protocol.telemetry_wire_bytes", 39, "B", ("<=", 40)),
                        bench.Figure("protocol.bus_poll_efficiency", 0.8, "", (">=", 0.9)),
                        bench.Figure("protocol.fw_telemetry_us", 6.1, "µs")])
    lines = text.splitlines()
    assert "39 B" in lines[1] and "<= 40" in lines[1] and lines[1].split()[-1] == "met"
    assert "MISSED" in lines[2]
    assert lines[3].split()[-2:] == ["6.1", "µs"]  # no goal, no verdict


def test_modbus_reference_is_function_3_with_gaps_at_8e1():
    # 30 B of telemetry = 15 registers: 8 B request + 35 B response, 11 bits a byte, 2 gaps.
    expected = 1 / ((8 + 35) * 11 / 115200 + 2 * 0.00175)
    assert protocol.modbus_polls_per_s(30) == pytest.approx(expected)
    assert protocol.modbus_polls_per_s(29) == pytest.approx(expected)  # registers round up


def test_the_telemetry_frame_measured_is_a_real_encoded_reply():
    from sxproto import codec, messages
    wire = protocol.telemetry_wire()
    assert codec.decode(wire[:-1]).message is messages.TELEMETRY
    assert wire[-1] == 0 and wire.count(0) == 1


def test_unknown_section_is_refused(capsys):
    with pytest.raises(SystemExit):
        bench_main.main(["nonesuch"])
    assert "unknown section nonesuch" in capsys.readouterr().err


def test_the_board_turnaround_bench_answers_every_request():
    # The program runs the firmware's link and service on the Unix port; it raises unless every
    # GET_TELEMETRY it fed got its TELEMETRY reply.
    from sxctl.bench import protocol
    (figure,) = protocol.board_turnaround()
    assert figure.key == "protocol.board_turnaround_us" and figure.value > 0
