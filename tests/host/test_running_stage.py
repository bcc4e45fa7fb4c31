"""Tools that only look at a board leave a running stage as it was: `flash --dry-run` and
`ports --probe` on a virtual board in auto, its uptime, mode and outputs compared before and after."""
import pytest
from simboards import start_sim, sxctl, wait_for
from sxproto import messages

from sxctl import buslink, ports

AUTO = 2
OUTPUTS = ("base_dose", "reagent_dose", "aq_pump", "org_pump", "valves")


@pytest.fixture
def stage(tmp_path):
    """One virtual board, running its firmware in mode auto."""
    sim = start_sim(tmp_path, "--stages", "1")
    with buslink.BusClient(sim.bus) as bus:
        bus.request(1, messages.SET_MODE, {"mode": AUTO, "manual_output": 0xFFFF}, expect=messages.MODE_ACK)
    yield sim
    sim.stop()


def state(bus_path):
    with buslink.BusClient(bus_path) as bus:
        info = bus.hello(1)
        tel = bus.request(1, messages.GET_TELEMETRY, expect=messages.TELEMETRY).values
    return info, tel


def unchanged(bus_path, before):
    """The stage as it was: same boot (uptime went on), mode auto, the same outputs."""
    info, tel = state(bus_path)
    assert info["uptime_s"] >= before[0]["uptime_s"] and info["mode"] == AUTO == tel["mode"]
    assert {k: tel[k] for k in OUTPUTS} == {k: before[1][k] for k in OUTPUTS}
    assert not info["alarms"] & (1 << 14)  # no watchdog reset in between


def test_flash_dry_run_on_a_stage_in_auto_refuses_and_leaves_it_running(stage):
    before = state(stage.bus)
    dry = sxctl("flash", "--port", stage.usb(1), "--board", "unix-sim", "--dry-run")
    assert dry.returncode == 1 and "is running" in dry.stderr and "--yes" in dry.stderr, dry.stderr
    assert "Traceback" not in dry.stderr
    unchanged(stage.bus, before)


def test_ports_probe_of_a_stage_in_auto_leaves_it_running(stage):
    before = state(stage.bus)
    repl, firmware = ports.probe(stage.usb(1))
    assert repl.startswith("running")
    unchanged(stage.bus, before)
    # and the watchdog, which a stopped loop would let fire within 2 s, never reset it since
    wait_for(lambda: state(stage.bus)[0]["uptime_s"] >= before[0]["uptime_s"] + 3, what="3 s more of running")
    unchanged(stage.bus, before)
