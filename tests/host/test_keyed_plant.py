"""A plant's daily use on virtual boards: a keyed three-stage plant driven from its plant file,
one program per bus, and no key in any child process."""
import os
import signal
import sqlite3
import subprocess

import pytest
from simboards import SXCTL, processes_under, start_sim, wait_for

from sxctl import keys


def run(*args, env=None, cwd=None, timeout=90):
    environ = {k: v for k, v in os.environ.items() if k not in (keys.ENV, "SXCTL_PLANT")}
    environ.update(env or {})
    return subprocess.run(SXCTL + list(args), capture_output=True, text=True, timeout=timeout, env=environ, cwd=cwd)


def rows_per_stage(db):
    try:
        with sqlite3.connect(db) as c:
            return dict(c.execute("SELECT stage, COUNT(*) FROM telemetry GROUP BY stage").fetchall())
    except sqlite3.OperationalError:
        return {}


@pytest.fixture(scope="module")
def keyed(tmp_path_factory):
    """Three virtual boards, each holding the plant key, and a plant file naming bus, stages and key."""
    folder = tmp_path_factory.mktemp("keyed")
    sim = start_sim(folder, "--stages", "3")
    key_file = folder / "plant.key"
    proc = run("key", "new", "--key-file", str(key_file))
    assert proc.returncode == 0, proc.stderr
    usb = []
    for addr in (1, 2, 3):
        usb += ["--usb", sim.usb(addr)]
    proc = run("key", "provision", *usb, "--key-file", str(key_file), "--bus", sim.bus)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    plant = folder / "plant.toml"
    plant.write_text('[bus]\nport = "%s"\nkey_file = "plant.key"\n\n' % sim.bus + "".join(
        '[[stage]]\naddress = %d\nname = "E%d"\nrole = "extraction"\n\n' % (a, a) for a in (1, 2, 3)))
    sim.folder, sim.plant, sim.key_file = folder, plant, key_file
    yield sim
    sim.stop()


def test_unsigned_the_logger_stores_nothing_and_says_so_with_a_failing_exit(keyed):
    db = keyed.folder / "unsigned.sqlite"
    proc = run("log", "--bus", keyed.bus, "--stage", "1-3", "--db", str(db), "--duration", "1.5")
    assert proc.returncode == 1, proc.stderr
    assert "stage 2: nothing stored" in proc.stderr and "signature required" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_log_monitor_set_and_config_apply_work_from_the_plant_file(keyed):
    db = keyed.folder / "plant.sqlite"
    proc = run("log", "--plant", str(keyed.plant), "--db", str(db), "--duration", "2")
    assert proc.returncode == 0, proc.stderr
    assert "signing with key %08x" % keys.from_file(keyed.key_file).id in proc.stderr
    counts = rows_per_stage(db)
    assert set(counts) == {1, 2, 3} and min(counts.values()) > 0, counts

    proc = run("monitor", "--once", "--plant", str(keyed.plant))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "signature" not in proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    assert sorted(line.split()[0] for line in lines if line[:3].strip().isdigit()) == ["1", "2", "3"]
    assert any(line.strip().startswith("alarms:") and "*" in line for line in lines), proc.stdout  # latched, read unsigned

    proc = run("set", "--plant", str(keyed.plant), "--addr", "2", "ph_setpoint=2.3")
    assert proc.returncode == 0 and "board 2: ph_setpoint = 2.300 pH" in proc.stdout, proc.stderr
    text = keyed.plant.read_text().replace('name = "E3"\n', 'name = "E3"\nph_setpoint = 2.2\n')
    keyed.plant.write_text(text)
    proc = run("config", "apply", str(keyed.plant))
    assert proc.returncode == 0 and "3 of 3 boards match" in proc.stdout, proc.stdout + proc.stderr

    # sxctl.toml in the current folder names the plant too, as platformio.ini does.
    (keyed.folder / "sxctl.toml").write_text(keyed.plant.read_text())
    proc = run("set", "--addr", "3", "ph_setpoint=2.1", cwd=keyed.folder)
    assert proc.returncode == 0 and "board 3: ph_setpoint = 2.100 pH" in proc.stdout, proc.stderr
    # SXCTL_PLANT names it from anywhere; --key-file with another key is refused by id, nothing sent.
    other = keyed.folder / "other.key"
    assert run("key", "new", "--key-file", str(other)).returncode == 0
    proc = run("set", "--addr", "3", "ph_setpoint=2.0", "--key-file", str(other), env={"SXCTL_PLANT": str(keyed.plant)})
    assert proc.returncode == 1 and "holds plant key %08x" % keys.from_file(keyed.key_file).id in proc.stderr


def test_a_second_program_on_the_bus_is_refused_naming_the_logger(tmp_path):
    sim = start_sim(tmp_path, "--stages", "2")
    try:
        db = tmp_path / "log.sqlite"
        logger = subprocess.Popen(SXCTL + ["log", "--bus", sim.bus, "--stage", "1-2", "--db", str(db)],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            wait_for(lambda: len(rows_per_stage(db)) == 2, timeout=30, what="the logger to store both stages")
            busy = "bus %s is in use by `sxctl log` (pid %d): stop it, or use the gateway" % (sim.bus, logger.pid)
            for args in (["monitor", "--once", "--bus", sim.bus, "--stage", "1-2"],
                         ["set", "--bus", sim.bus, "--addr", "1", "ph_setpoint=2.4"],
                         ["info", "--bus", sim.bus, "--addr", "1"]):
                proc = run(*args, timeout=30)
                assert proc.returncode == 1 and busy in proc.stderr, proc.stderr
                assert "Traceback" not in proc.stderr
            before = rows_per_stage(db)
            wait_for(lambda: all(n > before[s] + 1 for s, n in rows_per_stage(db).items()),
                     what="the logger to go on storing")
        finally:
            logger.send_signal(signal.SIGINT)
            out, err = logger.communicate(timeout=30)
        assert logger.returncode == 130, err  # Ctrl-C, as in every verb
        assert "Traceback" not in err
        with sqlite3.connect(db) as c:
            assert c.execute("SELECT COUNT(*) FROM gaps").fetchone()[0] == 0
            for stage in (1, 2):
                got = [r[0] for r in c.execute("SELECT record FROM telemetry WHERE stage = ? ORDER BY record", (stage,))]
                assert got == list(range(got[0], got[0] + len(got))), "a gap in stage %d" % stage
        # The bus is free again once the logger is gone.
        proc = run("info", "--bus", sim.bus, "--addr", "1")
        assert proc.returncode == 0, proc.stderr
    finally:
        sim.stop()


def test_no_child_process_inherits_the_plant_key(tmp_path):
    secret = keys.new_key().secret.hex()
    environ = dict(os.environ, **{keys.ENV: secret})
    ports_file = tmp_path / "ports.json"
    sim = subprocess.Popen(SXCTL + ["sim", "--stages", "1", "--ports-file", str(ports_file)], env=environ,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(ports_file.exists, what="the sim to be ready")
        import json
        root = json.loads(ports_file.read_text())["boards"][0]["root"]
        children = wait_for(lambda: processes_under(root), what="the board's interpreter")
        for pid in children:
            with open("/proc/%d/environ" % pid, "rb") as f:
                environ_of_child = f.read().split(b"\0")
            assert not any(item.startswith(keys.ENV.encode() + b"=") for item in environ_of_child)
            assert secret.encode() not in b"\0".join(environ_of_child)
    finally:
        sim.send_signal(signal.SIGINT)
        sim.wait(30)
    assert sim.returncode == 130
