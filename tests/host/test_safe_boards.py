"""Virtual boards behave like real ones where safety depends on it: the watchdog, resets,
mpremote on a live board, damaged firmware files, and a flash cut short at any moment."""
import concurrent.futures
import hashlib
import json
import os
import pathlib
import random
import subprocess
import sys
import threading
import time

import pytest

from simboards import start_sim, sxctl
from sxctl import buslink, cli, flash, image
from sxctl.boardfiles import IDENTITY, MANIFEST
from sxctl.repl import TEMP_SUFFIX, SerialRepl
from sxproto import messages

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


def hello(bus, addr=1, timeout=20.0, until=lambda info: True):
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


def test_a_maintenance_boot_held_at_its_repl_returns_to_control_on_its_own(board):
    import serial

    # Maintenance asked for as the README says, with a 4 s lease.
    out = mpremote(board.usb(1), "exec", "open('/maintenance','w').write('4')", "reset")
    assert out.returncode == 0, out.stderr
    hello(board.bus, until=lambda i: i["serial"] == "maintenance")
    start = time.monotonic()
    with serial.Serial(board.usb(1), 115200, timeout=0.1) as usb:
        seen, sent = b"", 0.0
        while b">>> " not in seen:  # someone takes the REPL, and then types nothing
            assert time.monotonic() - start < 10, seen
            if not seen and time.monotonic() - sent > 1.0:  # again only if nothing answered
                usb.write(b"\r\x03")
                sent = time.monotonic()
            seen += usb.read(256)
        info = hello(board.bus, timeout=30.0, until=lambda i: i["serial"] == "SIM-0001")
        waited = time.monotonic() - start
        assert usb.read(4096).count(b"soft reboot") == 0  # the lease's hard reset, not a soft one
    assert waited > 3.0  # its lease, not anything sooner
    assert info["mode"] == 0 and not info["alarms"] & WATCHDOG_RESET and info["uptime_s"] < 10
    assert not (board.root / "maintenance.on").exists() and not (board.root / "maintenance").exists()


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


def _flash_reset_at(usb, target, order, point, rng):
    """A flash toward `target`, its board reset at `point` of the whole flash's write `order`:
    2k before its k-th file (after the one before it), 2k + 1 in the middle of writing it, 2n
    after the last. Files already in place (an earlier cut flash wrote them) are not written
    again, as in any flash."""
    with SerialRepl(usb) as repl:
        p = flash.plan(repl, "unix-sim", target)
        k, during = divmod(point, 2)
        original = repl.write_raw

        def write_raw(path, data, progress=None):
            i = order.index(path[:-len(TEMP_SUFFIX)])
            if i > k or (i == k and not during):
                _reset_pin(repl)  # before this file: nothing of it written
            if i == k:
                original(path, data[:rng.randrange(1, len(data))])  # cut somewhere inside it
                _reset_pin(repl)
            original(path, data, progress)
        repl.write_raw = write_raw
        with open(os.devnull, "w") as quiet:
            try:
                flash.apply(repl, p, flash.Progress(len(p.write), quiet))
                _reset_pin(repl)  # after the last file
            except RuntimeError:
                pass


def _damaged_module(root):
    """What the fail-safe firmware must name for the files in `root` (the first one the
    manifest lists that is missing or differs from its hash), or None: the firmware runs."""
    if not (root / MANIFEST).exists():
        return None  # never flashed by sxctl: nothing to check against
    for line in (root / MANIFEST).read_text().splitlines():
        path, _, digest = line.partition(" ")
        if path.startswith("#") or not digest:
            continue
        f = root / path
        if not f.is_file() or hashlib.sha256(f.read_bytes()).hexdigest() != digest:
            return path.rsplit(".", 1)[0].replace("/", ".")
    return None


def test_flash_of_a_changed_image_onto_a_running_board_keeps_its_config_and_identity(board, monkeypatch):
    files = _changed_image(monkeypatch)
    identity = json.loads((board.root / IDENTITY).read_text())
    out = sxctl("set", "--port", board.bus, "--addr", "1", "link_timeout=17")
    assert out.returncode == 0, out.stdout + out.stderr
    before = hello(board.bus)
    with buslink.BusClient(board.bus) as bus:  # dosing by hand: a running stage
        bus.request(1, messages.SET_MODE, {"mode": 1, "manual_output": 0xFFFF})
    monkeypatch.setattr(flash.image, "build", lambda name: dict(files))
    assert cli.main(["flash", "--port", board.usb(1), "--board", "unix-sim", "--bus", board.bus]) == 0
    info = hello(board.bus)  # flash itself waited for this answer
    assert info["serial"] == "SIM-0001" and not info["alarms"] & (CONTROLLER_FAULT | WATCHDOG_RESET)
    assert info["config_version"] == before["config_version"]
    assert all((board.root / path).read_bytes() == data for path, data in files.items())  # the new firmware
    assert {k: v for k, v in json.loads((board.root / IDENTITY).read_text()).items() if k != "board"} == identity
    with buslink.BusClient(board.bus) as bus:
        assert bus.request(1, messages.CONFIG_READ, dict(item=20), expect=messages.CONFIG_VALUE).values["value"] == 17


class _Stage:
    """One board of a running sim, flashed by a thread of its own; they share the bus, so one
    HELLO is on it at a time."""
    bus_lock = threading.Lock()

    def __init__(self, sim, addr):
        self.bus, self.addr, self.usb = sim.bus, addr, sim.usb(addr)
        self.root = pathlib.Path(sim.roots[addr - 1])
        self.serial = "SIM-%04d" % addr

    def hello(self, until=lambda info: True, timeout=30.0):
        deadline = time.monotonic() + timeout
        while True:
            with self.bus_lock, buslink.BusClient(self.bus, timeout=0.2, retries=0) as client:
                try:
                    info = client.hello(self.addr)
                    if until(info):
                        return info
                except buslink.NoAnswer:
                    pass
            assert time.monotonic() < deadline, "board %d did not answer as expected" % self.addr
            time.sleep(0.05)

    def answers_as_its_files_say(self):
        """True when fail-safe: it must be, naming the first damaged module, exactly when the files say so."""
        info = self.hello()  # never hung: old firmware, new, or fail-safe, answering
        damaged = _damaged_module(self.root)
        if damaged is None:
            assert info["serial"] == self.serial and not info["alarms"] & CONTROLLER_FAULT, info
        else:
            assert info["serial"] == damaged[:12] and info["alarms"] & CONTROLLER_FAULT and info["mode"] == 0, info
        leftovers = [p for p in self.root.rglob("*") if p.name.endswith(TEMP_SUFFIX)]
        assert all(not f.name.endswith((".mpy", ".py")) for f in leftovers)  # a cut file is never importable
        return damaged is not None

    def flash(self, files):
        with SerialRepl(self.usb) as repl, open(os.devnull, "w") as quiet:
            p = flash.plan(repl, "unix-sim", files)
            flash.apply(repl, p, flash.Progress(len(p.write), quiet))
        self.hello(until=lambda i: i["serial"] == self.serial and not i["alarms"] & CONTROLLER_FAULT)
        assert all((self.root / path).read_bytes() == data for path, data in files.items())
        assert _damaged_module(self.root) is None


def test_a_flash_reset_at_any_moment_leaves_a_board_that_answers(tmp_path, monkeypatch):
    """20 seeds, each a flash between two images that almost every file differs in, reset by the
    board's pin at points that together put a reset before, during (at a random byte) and
    after the write of every file; after each reset the board answers: the old firmware until
    the manifest lists the new files, fail-safe naming the first changed module in between,
    the new one after; a flash after the last reset of each seed leaves the new firmware.
    Four boards share the seeds, each on a thread (the work is mostly waiting for boots)."""
    new = _changed_image(monkeypatch)
    old = image.build("unix-sim")
    images = (new, old)  # flashed in turn on each board: new, old, new, ...
    # Every file the flash writes: all but the few the line numbers leave the same (boot.py).
    order = flash.write_order([p for p in new if new[p] != old[p]] + [MANIFEST])
    assert len(order) > len(new) - 4 and "main.py" in order
    sim = start_sim(tmp_path, "--stages", "4")
    try:
        stages = [_Stage(sim, addr) for addr in (1, 2, 3, 4)]

        def campaign(stage):
            stage.flash(old)  # flashed by sxctl once (its manifest, its identity naming the board)
            identity = (stage.root / IDENTITY).read_bytes()
            covered, fail_safe = set(), 0
            for turn, seed in enumerate(range(stage.addr - 1, 20, len(stages))):
                rng = random.Random(seed)
                target = images[turn % 2]  # the other image than the one on the board
                for point in range(seed, 2 * len(order) + 1, 20):
                    _flash_reset_at(stage.usb, target, order, point, rng)
                    fail_safe += stage.answers_as_its_files_say()
                    covered.add(point)
                stage.flash(target)  # flashed again, to the end
            assert (stage.root / IDENTITY).read_bytes() == identity
            return covered, fail_safe
        with concurrent.futures.ThreadPoolExecutor(len(stages)) as pool:
            results = list(pool.map(campaign, stages))
        covered = set().union(*(c for c, _ in results))
        assert covered == set(range(2 * len(order) + 1))  # every position
        assert sum(f for _, f in results) > len(order)  # and fail-safe between the first file and the manifest
    finally:
        sim.stop()


def test_flash_refuses_a_board_definition_for_another_platform(board):
    before = {p: p.stat().st_mtime_ns for p in board.root.rglob("*") if p.is_file()}
    out = sxctl("flash", "--port", board.usb(1), "--board", "rp2-pico")
    assert out.returncode == 1 and "--board rp2-pico is for RP2040" in out.stderr and "nothing written" in out.stderr
    hello(board.bus)  # it runs again, so the maintenance session flash opened to look has ended
    assert {p: p.stat().st_mtime_ns for p in board.root.rglob("*") if p.is_file() and p.name != "maintenance"} == {
        p: m for p, m in before.items()}


def test_a_dry_run_told_to_stop_a_stage_sets_its_mode_again(board):
    with buslink.BusClient(board.bus) as bus:  # the stage under manual control
        bus.request(1, messages.SET_MODE, {"mode": 1, "manual_output": 0xFFFF})
    dry = sxctl("flash", "--port", board.usb(1), "--board", "unix-sim", "--dry-run", "--yes", "--bus", board.bus,
                "--addr", "1")
    assert dry.returncode == 0, dry.stderr
    assert "address 1 back in mode manual" in dry.stdout
    info = hello(board.bus)
    assert info["mode"] == 1 and info["uptime_s"] < 30  # it was restarted, and is back as it was


def test_ports_probe_leaves_a_running_stage_running(board, monkeypatch):
    from sxctl import ports

    before = hello(board.bus)
    repl, firmware = ports.probe(board.usb(1))
    assert repl.startswith("running")
    after = hello(board.bus)
    assert after["uptime_s"] >= before["uptime_s"] and after["rx_frames"] > before["rx_frames"]


def test_on_a_keyed_board_only_the_hosts_signed_frames_hold_off_the_link_loss_safe_state(board, tmp_path):
    from sxctl import keys

    key_file = str(tmp_path / "plant.key")
    assert sxctl("key", "new", "--key-file", key_file).returncode == 0
    out = sxctl("key", "provision", "--port", board.usb(1), "--key-file", key_file)
    assert out.returncode == 0, out.stderr
    key = keys.from_file(key_file)
    hello(board.bus)
    env = dict(os.environ, **{keys.ENV: key.secret.hex()})
    out = subprocess.run([sys.executable, "-m", "sxctl", "set", "--port", board.bus, "--addr",
                          "1", "link_timeout=4", "mode=auto"], capture_output=True, text=True, timeout=60, env=env)
    assert out.returncode == 0, out.stdout + out.stderr
    start = time.monotonic()
    # Unsigned frames at 1 Hz, broadcast and addressed: answered (reads stay open), but they
    # must not keep the stage in auto.
    with buslink.BusClient(board.bus, timeout=0.3, retries=1, key=None) as bus:
        while True:
            bus.serial.write(buslink.codec.encode(255, 0, 1, messages.HELLO, lead=True))
            mode = bus.hello(1)["mode"]
            if mode != 2:
                break
            assert time.monotonic() - start < 4 + 3, "unsigned frames held the stage in auto"
            time.sleep(1.0)
    assert time.monotonic() - start >= 3.5  # not before its link_timeout
    # The host's own polls (a signed keepalive each) keep it in control.
    with buslink.BusClient(board.bus, timeout=0.3, retries=2, key=key) as bus:
        assert bus.request(1, messages.SET_MODE, dict(mode=2, manual_output=0xFFFF)).values["mode"] == 2
        until = time.monotonic() + 8
        while time.monotonic() < until:
            bus.keepalive(1)
            assert bus.hello(1)["mode"] == 2
            time.sleep(1.0)


ORP_FAULT_INJECTION = '''
_read = Orp.read


def _failing_read(self, raw_uv):
    if raw_uv == 777777:
        raise ValueError("injected fault")
    return _read(self, raw_uv)


Orp.read = _failing_read
'''


@pytest.fixture
def linked(tmp_path):
    """One virtual board whose sensors and outputs are a plant link this test drives, lock-step."""
    from sxctl.sim import plantlink
    from sxctl.sim.simulator import Simulator

    sim = Simulator(1, heapsize="256K", root=tmp_path / "boards", plant_link=True)
    link = sim.plant_links[1]
    link.preload(plantlink.sense_record(0))
    # A test-only override of one sensor module: x.py shadows x.mpy, as on a board.
    source = (pathlib.Path(flash.image.FIRMWARE_DIR) / "sensors" / "orp.py").read_text()
    sim.start()
    (sim.boards[0].root / "sensors" / "orp.py").write_text(source + ORP_FAULT_INJECTION)
    sim.boards[0].hard_reset()
    halt = sim.run_in_background()
    sim.plant = plantlink.PlantLink([link], timeout_s=10.0)
    sim.t = 0

    def tick(n=1, **signals):
        for _ in range(n):
            sim.t += 250
            act = sim.plant.exchange(sim.t, {1: plantlink.sense_record(sim.t, ph_uv=0, pulses_aq=2, pulses_org=2,
                                                                         **signals)})[1]
        return act
    sim.tick = tick
    try:
        sim.wait_ready()
        tick()
        yield sim
    finally:
        halt()
        sim.close()


def _manual(sim):
    with buslink.BusClient(sim.bus.path, timeout=0.3) as bus:
        bus.request(1, messages.SET_MODE, dict(mode=1, manual_output=5000))
    act = sim.tick(8)
    assert act.enabled == 1 and act.mode == 1  # the stage drives its outputs
    return act


def test_ctrl_c_on_usb_drives_every_output_off_at_once_and_the_pins_hold_it(linked):
    import serial

    _manual(linked)
    with serial.Serial(linked.boards[0].usb.path, 115200, timeout=0.2) as usb:
        usb.write(b"\x03")
        deadline = time.monotonic() + 10
        while not linked.boards[0].halted:  # the interpreter left the program for its REPL
            assert time.monotonic() < deadline
            time.sleep(0.02)
        act = linked.tick()  # answered by the pins now: the firmware is stopped
        assert (act.enabled, act.base_dose, act.reagent_dose, act.aq_pump, act.org_pump, act.valves) == (0,) * 6
        assert linked.tick(4) == act._replace(time_ms=linked.t)  # and they stay so
        usb.write(b"\x04")  # Ctrl-D at the friendly REPL: main.py again
    hello(linked.bus.path)


def test_a_pinned_output_keeps_dosing_at_the_repl_unless_the_firmware_drove_it_off(linked):
    # What the pins show is what the firmware left: the bridge does not switch anything off.
    board = linked.boards[0]
    act = _manual(linked)
    board.halted = True  # as if the firmware had stopped without driving anything
    held = linked.tick()
    assert held.enabled == 1 and held._replace(time_ms=0) == act._replace(time_ms=0)


def test_an_exception_in_a_scan_puts_the_stage_safe_with_controller_fault_and_the_bus_answers(linked):
    _manual(linked)
    act = linked.tick(8, orp_uv=777777)  # the next measurement scan raises inside the ORP module
    assert (act.enabled, act.base_dose, act.reagent_dose, act.aq_pump, act.org_pump) == (0,) * 5
    info = hello(linked.bus.path)
    assert info["alarms"] & CONTROLLER_FAULT and info["mode"] == 0
    act = linked.tick(8)  # the scans go on (the stage off) and the link answers
    assert act.enabled == 0
    with buslink.BusClient(linked.bus.path, timeout=0.3) as bus:
        events = bus.request(1, messages.EVENTS_READ, dict(since=0)).values["events"]
    faults = [e for e in events if e["code"] == 1 and e["alarm"] == 13]
    assert len(faults) == 1 and faults[0]["value"] == 1  # raised once, in the measurement scan


def test_a_retried_stream_is_answered_with_stream_ack_while_streamed_frames_keep_their_own_sequence(board):
    """End to end: the bus client's STREAM loses its first STREAM_ACK on the line, streamed
    TELEMETRY frames go out meanwhile, and the client's retry (same sequence) still gets the
    STREAM_ACK the board kept."""
    hello(board.bus)
    with buslink.BusClient(board.bus, timeout=2.5, retries=2) as client:
        accept = client._accept
        streamed, lost = [], []

        def line(raw, addr, seq):  # what the client reads: the first STREAM_ACK never arrives
            try:
                frame = buslink.codec.decode(raw)
            except buslink.codec.FrameError:
                return accept(raw, addr, seq)
            if frame.message is messages.TELEMETRY:
                streamed.append(frame.seq)
            elif frame.message is messages.STREAM_ACK and not lost:
                lost.append((frame.seq, len(streamed)))
                return None
            return accept(raw, addr, seq)
        client._accept = line
        reply = client.request(1, messages.STREAM, {"period_ms": 200}, expect=messages.STREAM_ACK)
        assert lost and reply.seq == lost[0][0] and client.stats.retries == 1
        assert reply.values["period_ms"] == 1000  # clamped to the sensor scan period
        assert len(streamed) > lost[0][1]  # streamed frames went out between the two answers
        deadline = time.monotonic() + 10
        while len(streamed) < lost[0][1] + 3:  # the stream goes on, numbered on its own
            assert time.monotonic() < deadline, streamed
            client._await_reply(1, -1, time.monotonic() + 0.5)
        assert reply.seq not in streamed
        assert all(b == (a + 1) & 0xFFFF for a, b in zip(streamed, streamed[1:])), streamed
        client._accept = accept
        assert client.request(1, messages.STREAM, {"period_ms": 0}, expect=messages.STREAM_ACK).values[
            "period_ms"] == 0
