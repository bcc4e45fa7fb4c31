"""Virtual boards through the real commands: sxctl sim, sxctl info, stock mpremote."""
import json
import os
import sys

from simboards import processes_under, start_sim, sxctl

MPREMOTE = [os.path.join(os.path.dirname(sys.executable), "mpremote")]


def _info(bus, addr):
    proc = sxctl("info", "--port", bus, "--addr", str(addr), "--json")
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_info_answers_for_the_addressed_board_only(sim3):
    info = _info(sim3.bus, 2)
    assert info["board"] == "unix-sim"
    assert "controller_fault" not in info["alarms"], "board 2 runs its fail-safe firmware: controller not loaded"
    assert info["mode"] in ("off", "manual", "auto", "hold") and info["out_of_range"] == []
    assert info["rx_frames"] >= 1
    missing = sxctl("info", "--port", sim3.bus, "--addr", "9")
    assert missing.returncode != 0
    assert "address 9" in missing.stderr and sim3.bus in missing.stderr


def test_each_board_has_its_own_address(sim3):
    # Board 2's counters move only with frames for board 2.
    before = {addr: _info(sim3.bus, addr)["rx_frames"] for addr in (1, 2, 3)}
    _info(sim3.bus, 2)
    after = {addr: _info(sim3.bus, addr)["rx_frames"] for addr in (1, 2, 3)}
    assert after[2] - before[2] == 2
    assert after[1] - before[1] == 1 and after[3] - before[3] == 1


def test_mpremote_sees_the_board_filesystem_not_the_host(sim3):
    usb = sim3.usb(1)
    ls = __import__("subprocess").run(MPREMOTE + ["connect", usb, "fs", "ls"],
                                      capture_output=True, text=True, timeout=30)
    assert ls.returncode == 0, ls.stderr
    assert "main.py" in ls.stdout and "app.mpy" in ls.stdout
    code = "import os; print(sorted(os.listdir('/'))); print(sorted(os.listdir('/../..')))"
    ex = __import__("subprocess").run(MPREMOTE + ["connect", usb, "exec", code],
                                      capture_output=True, text=True, timeout=30)
    assert ex.returncode == 0, ex.stderr
    root_listing = sorted(os.listdir(sim3.roots[0]))
    lines = ex.stdout.strip().splitlines()
    assert lines == [repr(root_listing), repr(root_listing)]
    assert "etc" not in ex.stdout and "proc" not in ex.stdout


def test_mpremote_soft_reset_restarts_the_firmware(sim3):
    import subprocess
    usb = sim3.usb(3)
    # Interrupting the firmware (as mpremote does), then a soft reset from the friendly REPL
    # runs main.py again, as on a board (test_safe_boards: the watchdog and `mpremote reset`).
    subprocess.run(MPREMOTE + ["connect", usb, "exec", "pass"], check=True, timeout=30)
    subprocess.run(MPREMOTE + ["connect", usb, "soft-reset"], check=True, timeout=30)
    with open(usb, "wb", buffering=0) as port:
        port.write(b"\x04")  # Ctrl-D at the friendly REPL
    assert _info(sim3.bus, 3)["board"] == "unix-sim"


def test_random_bytes_on_the_bus_are_counted_and_survived(sim3):
    before = _info(sim3.bus, 2)
    with open(sim3.bus, "wb", buffering=0) as bus:
        bus.write(os.urandom(10 * 1024))
    after = _info(sim3.bus, 2)
    assert after["crc_errors"] + after["dropped"] > before["crc_errors"] + before["dropped"]


def test_boards_answer_with_64k_heap_and_leave_nothing_behind(tmp_path):
    sim = start_sim(tmp_path, "--stages", "3", "--heapsize", "64K")
    try:
        for addr in (1, 2, 3):
            assert _info(sim.bus, addr)["heap_free"] < 64 * 1024
        roots = sim.roots
        assert all(processes_under(r) for r in roots)
    finally:
        assert sim.stop() == 130  # stopped by Ctrl-C
    assert not any(processes_under(r) for r in roots)


def test_host_built_from_another_schema_refuses_and_says_reflash(sim3, monkeypatch):
    import pytest
    from sxctl import buslink

    monkeypatch.setattr(buslink, "FINGERPRINT", buslink.FINGERPRINT ^ 1)
    with buslink.BusClient(sim3.bus) as bus:
        with pytest.raises(buslink.SchemaMismatch, match="reflash the board"):
            bus.hello(1)
