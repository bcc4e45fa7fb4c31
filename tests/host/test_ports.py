"""sxctl ports and --port auto, with the system's port list faked; the probe on virtual boards."""
import json
import os
import pty
import subprocess
import sys
import time

import pytest
import serial.tools.list_ports
from serial.tools.list_ports_common import ListPortInfo

from simboards import start_sim
from sxctl import buslink, cli, flash, ports, repl
from sxctl.errors import SxctlError


def _port(path, vid=None, pid=None, serial_number=None, description="n/a"):
    info = ListPortInfo(path, skip_link_detection=True)
    info.vid, info.pid, info.serial_number, info.description = vid, pid, serial_number, description
    return info


PICO = dict(vid=0x2E8A, pid=0x0005, serial_number="E6614C311B4A2A35", description="Board in FS mode")
CP2102 = dict(vid=0x10C4, pid=0xEA60, serial_number="0001", description="CP2102 USB to UART Bridge")


@pytest.fixture
def system_ports(monkeypatch):
    """Call with ListPortInfo objects: comports() returns them."""
    def fake(*infos):
        monkeypatch.setattr(serial.tools.list_ports, "comports", lambda *a, **kw: list(infos))
    return fake


def test_auto_picks_the_only_usb_serial_port(system_ports):
    system_ports(_port("/dev/ttyS0"), _port("/dev/ttyACM0", **PICO))
    assert ports.resolve_port("auto") == "/dev/ttyACM0"
    assert ports.resolve_port("/dev/ttyS0") == "/dev/ttyS0"  # a named port is taken as it is


def test_auto_without_a_usb_port_says_what_to_check(system_ports):
    system_ports()
    with pytest.raises(SxctlError, match="no USB serial port: check the USB cable") as e:
        ports.resolve_port("auto")
    assert "sxctl ports" in str(e.value)
    system_ports(_port("/dev/ttyS0"), _port("/dev/ttyS1"))
    with pytest.raises(SxctlError, match=r"no USB serial port \(only /dev/ttyS0, /dev/ttyS1, not USB\)"):
        ports.resolve_port("auto")


def test_auto_with_several_usb_ports_lists_them(system_ports):
    system_ports(_port("/dev/ttyUSB0", **CP2102), _port("/dev/ttyACM0", **PICO), _port("/dev/ttyS0"))
    with pytest.raises(SxctlError) as e:
        ports.resolve_port("auto")
    text = str(e.value)
    assert "found 2 USB serial ports" in text and "--port" in text
    assert "/dev/ttyACM0 (2e8a:0005 serial E6614C311B4A2A35, Board in FS mode)" in text
    assert "/dev/ttyUSB0 (10c4:ea60 serial 0001, CP2102 USB to UART Bridge)" in text
    assert "ttyS0" not in text


def test_flash_with_port_auto_refuses_an_ambiguous_choice(system_ports, capsys):
    system_ports(_port("/dev/ttyUSB0", **CP2102), _port("/dev/ttyACM0", **PICO))
    assert cli.main(["flash", "--port", "auto", "--board", "unix-sim"]) == 1
    assert "found 2 USB serial ports" in capsys.readouterr().err


def test_listing_does_not_touch_the_ports(system_ports, monkeypatch, capsys):
    system_ports(_port("/dev/ttyACM0", **PICO), _port("/dev/ttyS0"))
    monkeypatch.setattr(repl.SerialRepl, "__init__", lambda *a, **kw: pytest.fail("listing opened a port"))
    monkeypatch.setattr(repl.SerialRepl, "at_prompt", lambda *a, **kw: pytest.fail("listing opened a port"))
    assert cli.main(["ports"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["device", "usb", "serial", "description"]
    assert lines[1].split()[:3] == ["/dev/ttyACM0", "2e8a:0005", "E6614C311B4A2A35"]
    assert lines[1].endswith("Board in FS mode")
    assert lines[2].split()[:3] == ["/dev/ttyS0", "-", "-"]


def test_holders_are_the_other_processes_with_the_device_open(tmp_path):
    device = tmp_path / "ttyFAKE"
    device.write_bytes(b"")
    assert ports.holders(str(device)) == []
    with open(device, "rb") as f:
        holder = subprocess.Popen(["sleep", "60"], stdin=f)
    try:
        assert ports.holders(str(device)) == [holder.pid]
    finally:
        holder.kill()
        holder.wait()


def test_probe_finds_the_board_skips_busy_ports_and_leaves_the_firmware_running(tmp_path, system_ports, capsys):
    sim = start_sim(tmp_path, "--stages", "1")
    master, slave = pty.openpty()  # a port where nothing answers
    held_m, held_s = pty.openpty()  # a port another program holds
    dead, held = os.ttyname(slave), os.ttyname(held_s)
    # Another program holding the port with a lock, as mpremote and sxctl flash do.
    holder = subprocess.Popen([sys.executable, "-c", "import serial, sys\n"
                               "s = serial.Serial(sys.argv[1], exclusive=True)\nprint('held', flush=True)\n"
                               "sys.stdin.read()", held], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline() == "held\n"
    try:
        usb = sim.usb(1)
        system_ports(_port(usb, **PICO), _port(dead, **CP2102), _port(held))
        with buslink.BusClient(sim.bus, timeout=0.5, retries=2) as bus:
            before = bus.hello(1)
        assert cli.main(["ports", "--probe", "--timeout", "0.5", "--json"]) == 0
        rows = {r["device"]: r for r in json.loads(capsys.readouterr().out)}
        # A running board gives no REPL prompt: the probe leaves it running, uninterrupted.
        assert rows[usb]["repl"] == "running (not interrupted)" and "sxctl info" in rows[usb]["firmware"]
        assert rows[dead]["repl"] == "running (not interrupted)"  # a silent port looks the same
        assert rows[held]["repl"] == "busy (locked)"
        with buslink.BusClient(sim.bus, timeout=0.5, retries=2) as bus:
            after = bus.hello(1)
        assert after["uptime_s"] >= before["uptime_s"] and after["rx_frames"] > before["rx_frames"]
        # A board at its REPL (here: stopped, in its maintenance boot) is probed and named.
        with repl.SerialRepl(usb) as r:
            r.maintenance = False  # left at the REPL without a watchdog, for the probe
        assert cli.main(["ports", "--probe", "--timeout", "0.5", "--json"]) == 0
        rows = {r["device"]: r for r in json.loads(capsys.readouterr().out)}
        assert rows[usb]["repl"] == "yes" and rows[usb]["firmware"] == "sxctl 0.1.0, addr 1"
    finally:
        holder.kill()
        holder.wait()
        for fd in (master, slave, held_m, held_s):
            os.close(fd)
        sim.stop()
