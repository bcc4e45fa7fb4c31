"""sxctl flash on virtual boards (blank and running), and writing MicroPython itself (faked)."""
import json
import os
import pathlib
import pty
import subprocess
import sys
import time

import pytest

from simboards import start_sim, sxctl
from sxctl import buslink, cli, flash

MPREMOTE = [os.path.join(os.path.dirname(sys.executable), "mpremote")]
CODE = (".py", ".mpy", ".manifest", ".json")


@pytest.fixture
def blank(tmp_path):
    """One virtual board with an empty filesystem, on a bus."""
    sim = start_sim(tmp_path, "--stages", "1", "--blank")
    sim.root = pathlib.Path(sim.roots[0])
    yield sim
    sim.stop()


def _flash(sim, *extra):
    return sxctl("flash", "--port", sim.usb(1), "--board", "unix-sim", *extra)


def _code_files(root):
    """{path: (mtime_ns, bytes)} of the firmware and flash's files in a board's root folder."""
    return {p.relative_to(root).as_posix(): (p.stat().st_mtime_ns, p.read_bytes())
            for p in root.rglob("*") if p.is_file() and p.suffix in CODE}


def _answers_hello(bus, addr, timeout=10.0):
    deadline = time.monotonic() + timeout
    with buslink.BusClient(bus, timeout=0.2, retries=0) as client:
        while True:
            try:
                return client.hello(addr)
            except buslink.NoAnswer:
                if time.monotonic() > deadline:
                    raise


def test_blank_board_is_flashed_then_a_reflash_changes_nothing(blank):
    # A stale source that would shadow app.mpy, and board data flash must keep.
    (blank.root / "app.py").write_text("raise SystemExit('stale app.py ran')\n")
    (blank.root / "config.a").write_bytes(b"\x01\x02config")
    first = _flash(blank, "--addr", "1", "--serial", "SX-0001", "--bus", blank.bus)
    assert first.returncode == 0, first.stderr
    assert "removed app.py" in first.stderr and "main.py" in first.stderr
    assert "address 1 answers HELLO" in first.stdout

    # The firmware runs (main.py ran at the restart) and speaks this sxctl's schema.
    info = sxctl("info", "--port", blank.bus, "--addr", "1", "--json")
    assert info.returncode == 0, info.stderr
    info = json.loads(info.stdout)
    assert info["fingerprint"] == "%08x" % buslink.FINGERPRINT
    assert (info["board"], info["serial"]) == ("unix-sim", "SX-0001")
    assert json.loads((blank.root / "identity.json").read_text()) == {
        "board": "unix-sim", "addr": 1, "serial": "SX-0001"}
    assert (blank.root / "config.a").read_bytes() == b"\x01\x02config"

    before = _code_files(blank.root)
    again = _flash(blank, "--addr", "1", "--bus", blank.bus)
    assert again.returncode == 0, again.stderr
    assert " 0 files changed" in again.stdout
    assert _code_files(blank.root) == before  # nothing rewritten, not even with equal bytes

    ls = subprocess.run(MPREMOTE + ["connect", blank.usb(1), "fs", "ls", ":", ":sensors"],
                        capture_output=True, text=True, timeout=30)
    assert ls.returncode == 0, ls.stderr
    names = {line.split()[-1] for line in ls.stdout.splitlines() if line.startswith(" ")}
    assert {"app.mpy", "proto.mpy", "main.py", "ph.mpy", "identity.json", "config.a"} <= names
    assert not [n for n in names if n.endswith(".py") and n not in ("main.py", "boot.py")]


def test_dry_run_lists_the_changes_and_makes_none(blank):
    dry = _flash(blank, "--addr", "1", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "would write main.py" in dry.stdout and "would write identity.json" in dry.stdout
    assert list(blank.root.iterdir()) == []

    assert _flash(blank, "--addr", "1").returncode == 0
    _answers_hello(blank.bus, 1)  # booted (its files checked) before one is damaged
    with open(blank.root / "hal" / "mcu.mpy", "ab") as f:
        f.write(b"\0")  # a damaged module (one the virtual board does not import)
    (blank.root / "hal" / "mcu.py").write_text("stale = True\n")
    before = _code_files(blank.root)
    # On a running stage a dry run is refused before it touches the board: control goes on.
    running = _answers_hello(blank.bus, 1)
    dry = _flash(blank, "--dry-run")
    assert dry.returncode == 1 and "is running" in dry.stderr and "--yes" in dry.stderr, dry.stderr
    after = _answers_hello(blank.bus, 1)
    assert after["uptime_s"] >= running["uptime_s"] and after["rx_frames"] > running["rx_frames"]
    dry = _flash(blank, "--dry-run", "--yes")
    assert dry.returncode == 0, dry.stderr
    would = sorted(line for line in dry.stdout.splitlines() if line.startswith("would "))
    assert [w.split(" (")[0] for w in would] == ["would remove hal/mcu.py", "would write hal/mcu.mpy"]
    assert "2 files would change" in dry.stdout
    assert _code_files(blank.root) == before
    _answers_hello(blank.bus, 1)  # the firmware the dry run interrupted runs again

    fix = _flash(blank)
    assert fix.returncode == 0, fix.stderr
    assert "2 files changed (1 written, 1 removed)" in fix.stdout
    assert not (blank.root / "hal" / "mcu.py").exists()
    _answers_hello(blank.bus, 1)


def test_only_files_the_last_flash_wrote_are_removed(blank, monkeypatch, capsys):
    real_build = flash.image.build
    extra = {"plugins/old.mpy": b"M\x06\x00\x1f", "old.mpy": b"M\x06\x00\x1f"}
    monkeypatch.setattr(flash.image, "build", lambda board: {**real_build(board), **extra})
    assert cli.main(["flash", "--port", blank.usb(1), "--board", "unix-sim", "--addr", "3",
                     "--serial", "A-1"]) == 0
    assert (blank.root / "plugins" / "old.mpy").exists()
    (blank.root / "notes.txt").write_text("operator notes\n")
    (blank.root / "config.b").write_text("cfg")
    for name in ("plant.key", "plant.ctr.a", "PLANT.CTR.B", "config.extra"):
        (blank.root / name).write_text("board data")
    # A manifest naming data must not get that data deleted, however it spells the path.
    manifest = blank.root / "sxctl.manifest"
    manifest.write_text(manifest.read_text() + "identity.json\nconfig.b\n../escape\n./plant.key\n"
                        "/plant.ctr.a abc\nPLANT.CTR.B\nConfig.Extra\n")

    monkeypatch.setattr(flash.image, "build", real_build)
    capsys.readouterr()
    assert cli.main(["flash", "--port", blank.usb(1), "--board", "unix-sim", "--serial", "A-2"]) == 0
    out = capsys.readouterr()
    assert "removed old.mpy" in out.err and "removed plugins/old.mpy" in out.err
    assert not (blank.root / "old.mpy").exists() and not (blank.root / "plugins").exists()
    assert (blank.root / "notes.txt").exists() and (blank.root / "config.b").read_text() == "cfg"
    for name in ("plant.key", "plant.ctr.a", "PLANT.CTR.B", "config.extra"):
        assert (blank.root / name).read_text() == "board data", name
    # --addr not given: the address stays, only the serial changes.
    assert json.loads((blank.root / "identity.json").read_text()) == {
        "board": "unix-sim", "addr": 3, "serial": "A-2"}
    assert "addr 3, serial A-2" in out.out


def test_manifest_paths_are_normalised_and_board_data_is_kept_whatever_the_case():
    assert flash.manifest_paths(b"# header\n./a.mpy 00\n/b/c.mpy\nx/../d.py\n../up\n\n") == {"a.mpy", "b/c.mpy"}
    assert all(flash.kept(p) for p in ("plant.key", "PLANT.KEY", "Config.A", "config.b", "identity.json"))
    assert not flash.kept("app.mpy")


def test_a_port_without_a_repl_is_named_with_the_fix(tmp_path):
    master, slave = pty.openpty()  # a serial port where nothing answers
    try:
        path = os.ttyname(slave)
        t = time.monotonic()
        proc = sxctl("flash", "--port", path, "--board", "unix-sim", "--timeout", "0.5")
        assert time.monotonic() - t < 10
    finally:
        os.close(master)
        os.close(slave)
    assert proc.returncode == 1
    assert "no MicroPython REPL answered on %s" % path in proc.stderr
    assert "sxctl ports" in proc.stderr and "Traceback" not in proc.stderr


def test_unknown_board_lists_the_known_ones():
    proc = sxctl("flash", "--port", "/dev/null", "--board", "pico")
    assert proc.returncode == 1
    assert "unknown board 'pico'" in proc.stderr and "rp2-pico" in proc.stderr


# Writing MicroPython itself: esptool and the RP2 boot drive, faked.

def _file(tmp_path, name, data):
    path = tmp_path / name
    path.write_bytes(data)
    return path


def test_esp32_interpreter_is_written_with_esptool(tmp_path, monkeypatch):
    import importlib.util

    image = _file(tmp_path, "ESP32_GENERIC.bin", b"\xe9" + bytes(100))
    calls = []
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: object() if name == "esptool" else None)
    monkeypatch.setattr(subprocess, "run", lambda cmd, **kw: calls.append(cmd) or subprocess.CompletedProcess(cmd, 0))
    assert flash.interpreter_method("esp32-devkitc") == "esptool"
    flash.write_with_esptool("/dev/ttyUSB0", image)
    assert calls == [[sys.executable, "-m", "esptool", "--port", "/dev/ttyUSB0", "write_flash", "0x1000", str(image)]]

    monkeypatch.setattr(subprocess, "run", lambda cmd, **kw: subprocess.CompletedProcess(cmd, 2))
    with pytest.raises(flash.SxctlError, match="esptool failed.*BOOT button"):
        flash.write_with_esptool("/dev/ttyUSB0", image)
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(flash.SxctlError, match="pip install esptool"):
        flash.write_with_esptool("/dev/ttyUSB0", image)
    with pytest.raises(flash.SxctlError, match="not an ESP32 firmware image"):
        flash.write_with_esptool("/dev/ttyUSB0", _file(tmp_path, "x.bin", b"UF2\n"))


def test_rp2_interpreter_is_copied_to_the_boot_drive(tmp_path, monkeypatch):
    image = _file(tmp_path, "RPI_PICO.uf2", b"UF2\n" + bytes(508))
    media = tmp_path / "media" / "op"
    drive = media / "RPI-RP2"
    monkeypatch.setattr(flash, "UF2_DRIVE_GLOBS", (str(tmp_path / "media" / "*" / "RPI-RP2"),))
    with pytest.raises(flash.SxctlError, match="no RPI-RP2 drive.*BOOTSEL.*--uf2-drive"):
        flash.write_uf2(image)
    drive.mkdir(parents=True)
    (drive / "INFO_UF2.TXT").write_text("UF2 Bootloader v3.0\nBoard-ID: RPI-RP2\n")
    assert flash.interpreter_method("rp2-pico") == "uf2"
    flash.write_uf2(image, out=lambda *a: None)
    assert (drive / "RPI_PICO.uf2").read_bytes() == image.read_bytes()

    other = tmp_path / "elsewhere"
    other.mkdir()
    with pytest.raises(flash.SxctlError, match="not an RP2 boot drive"):
        flash.write_uf2(image, other)
    with pytest.raises(flash.SxctlError, match="not a UF2 file"):
        flash.write_uf2(_file(tmp_path, "x.uf2", b"\xe9abc"), drive)


def test_interpreter_dry_run_writes_nothing_and_other_boards_are_told_their_tool(tmp_path):
    image = _file(tmp_path, "RPI_PICO.uf2", b"UF2\n" + bytes(508))
    drive = tmp_path / "RPI-RP2"
    drive.mkdir()
    (drive / "INFO_UF2.TXT").write_text("Board-ID: RPI-RP2\n")
    proc = sxctl("flash", "--port", "auto", "--board", "rp2-pico", "--interpreter", str(image),
                 "--uf2-drive", str(drive), "--dry-run")
    assert proc.returncode == 0, proc.stderr
    assert "would copy" in proc.stdout and "nothing changed" in proc.stdout
    assert sorted(p.name for p in drive.iterdir()) == ["INFO_UF2.TXT"]
    proc = sxctl("flash", "--port", "/dev/null", "--board", "pyboard-v11", "--interpreter", str(image))
    assert proc.returncode == 1 and "dfu-util" in proc.stderr
