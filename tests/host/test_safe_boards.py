"""Virtual boards behave like real ones where safety depends on it: the watchdog, resets,
mpremote on a live board, damaged firmware files, and a flash cut short at any moment."""
import os
import pathlib
import random
import subprocess
import sys
import time

import pytest

from simboards import start_sim, sxctl
from sxctl import buslink, cli, flash, image
from sxctl.repl import SerialRepl

MPREMOTE = [os.path.join(os.path.dirname(sys.executable), "mpremote")]
WATCHDOG_RESET = 1 << 14
CONTROLLER_FAULT = 1 << 13


@pytest.fixture
def board(tmp_path):
    """One running virtual board (watchdog on, as the unix-sim board definition says)."""
    sim = start_sim(tmp_path, "--stages", "1")
    sim.root = pathlib.Path(sim.roots[0])
    yield sim
    sim.stop()


def hello(bus, addr=1, timeout=10.0, until=lambda info: True):
    """INFO of the board once it answers (and `until(info)` holds), within `timeout` seconds."""
    deadline = time.monotonic() + timeout
    with buslink.BusClient(bus, timeout=0.2, retries=0) as client:
        while True:
            try:
                info = client.hello(addr)
                if until(info):
                    return info
            except buslink.NoAnswer:
                pass
            if time.monotonic() > deadline:
                raise AssertionError("board %d did not answer as expected within %.0f s" % (addr, timeout))
            time.sleep(0.05)


def mpremote(usb, *args):
    return subprocess.run(MPREMOTE + ["connect", usb, *args], capture_output=True, text=True, timeout=30)


def test_stock_mpremote_then_reset_brings_a_stopped_board_back_on_the_bus(board):
    before = hello(board.bus)
    out = mpremote(board.usb(1), "exec", "print(1)", "reset")
    assert out.returncode == 0 and "1" in out.stdout, out.stderr
    t = time.monotonic()
    info = hello(board.bus, timeout=5.0, until=lambda i: i["uptime_s"] < before["uptime_s"] + 2)
    assert time.monotonic() - t < 5.0
    assert info["mode"] == 0 and not info["alarms"] & WATCHDOG_RESET  # a hard reset, not the watchdog's


def test_a_board_left_at_its_repl_is_reset_by_its_watchdog_and_says_so(board):
    out = mpremote(board.usb(1), "exec", "print(2)")  # leaves the board at its REPL, watchdog running
    assert out.returncode == 0, out.stderr
    info = hello(board.bus, timeout=15.0, until=lambda i: i["alarms"] & WATCHDOG_RESET)
    assert info["alarms"] & WATCHDOG_RESET and info["uptime_s"] < 10


def test_a_truncated_or_deleted_module_runs_fail_safe_naming_it(board):
    assert sxctl("flash", "--port", board.usb(1), "--board", "unix-sim").returncode == 0  # manifest with hashes
    hello(board.bus)
    controller = board.root / "controller.mpy"
    controller.write_bytes(controller.read_bytes()[:1000])
    with SerialRepl(board.usb(1)) as repl:
        repl.restart()
    info = hello(board.bus, until=lambda i: i["serial"] != "SIM-0001")
    assert info["alarms"] == CONTROLLER_FAULT and info["mode"] == 0 and info["serial"] == "controller"
    (board.root / "sensors" / "ph.mpy").unlink()
    assert sxctl("flash", "--port", board.usb(1), "--board", "unix-sim").returncode == 0  # mends controller
    with SerialRepl(board.usb(1)) as repl:
        repl.restart()
    hello(board.bus, until=lambda i: i["serial"] == "SIM-0001")  # whole again: flash restored ph.mpy too


def _changed_image(monkeypatch):
    # A new firmware in which every module differs: compiled with line-number tables.
    monkeypatch.setenv("SXCTL_MPY_LINES", "1")
    files = image.build("unix-sim")
    monkeypatch.delenv("SXCTL_MPY_LINES")
    files["main.py"] += b"# new\n"
    return files


def _reset_pin(repl):
    """The board's reset, in the middle of what the flash is doing."""
    repl.transport.exec_raw_no_follow("import machine\nmachine.reset()")
    repl.maintenance = False  # nothing to end: the reset did
    raise RuntimeError("reset")


def test_a_flash_reset_at_any_moment_leaves_a_board_that_answers(board, monkeypatch):
    """20 seeds: the board is hard-reset (its reset pin) after a random number of file writes;
    every time it comes back answering the bus, and a flash after it finishes the job."""
    files = _changed_image(monkeypatch)
    images = (files, image.build("unix-sim"))  # flashed in turn: new, old, new, ...
    monkeypatch.setattr(flash.image, "build", lambda name: dict(files))
    seen = set()
    for seed in range(20):
        target = images[seed % 2]
        with SerialRepl(board.usb(1)) as repl:
            p = flash.plan(repl, "unix-sim", target)
            cut = random.Random(seed).randrange(len(p.write))  # reset during the cut-th file written
            seen.add(cut)
            done = []
            original = repl.write_raw

            def write_raw(path, data, progress=None, repl=repl):
                if len(done) == cut:
                    # The reset comes in the middle of this file.
                    original(path, data[:len(data) // 2])
                    _reset_pin(repl)
                done.append(path)
                original(path, data, progress)
            repl.write_raw = write_raw
            with pytest.raises(RuntimeError), open(os.devnull, "w") as quiet:
                flash.apply(repl, p, flash.Progress(len(p.write), quiet))
        info = hello(board.bus, timeout=10.0)  # old firmware, new, or fail-safe: answering
        assert info["serial"] in ("SIM-0001", "controller") or info["alarms"] & CONTROLLER_FAULT
        leftovers = [p for p in board.root.rglob("*") if p.name.endswith(".sxnew")]
        assert all(not f.name.endswith((".mpy", ".py")) for f in leftovers)  # a cut file is never importable
    assert len(seen) >= 8  # many places in the write order
    assert cli.main(["flash", "--port", board.usb(1), "--board", "unix-sim", "--bus", board.bus]) == 0
    hello(board.bus, until=lambda i: i["serial"] == "SIM-0001" and not i["alarms"] & CONTROLLER_FAULT)
    assert all((board.root / path).read_bytes() == data for path, data in files.items())


def test_flash_refuses_a_board_definition_for_another_platform(board):
    before = {p: p.stat().st_mtime_ns for p in board.root.rglob("*") if p.is_file()}
    out = sxctl("flash", "--port", board.usb(1), "--board", "rp2-pico")
    assert out.returncode == 1 and "--board rp2-pico is for RP2040" in out.stderr and "nothing written" in out.stderr
    assert {p: p.stat().st_mtime_ns for p in board.root.rglob("*") if p.is_file() and p.name != "maintenance"} == {
        p: m for p, m in before.items()}
    hello(board.bus)  # and it runs again


def test_ports_probe_leaves_a_running_stage_running(board, monkeypatch):
    from sxctl import ports

    before = hello(board.bus)
    repl, firmware = ports.probe(board.usb(1))
    assert repl.startswith("running")
    after = hello(board.bus)
    assert after["uptime_s"] >= before["uptime_s"] and after["rx_frames"] > before["rx_frames"]
