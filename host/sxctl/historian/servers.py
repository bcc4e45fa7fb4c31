"""Private Mosquitto and PostgreSQL instances: on free loopback ports, in a temporary folder,
stopped at the end. The tests, the fault campaign, the bench and `make demo-plant` run the real
servers this way; a system service is never touched.

A missing server is an error naming the one command that installs it (in CI nothing is skipped).
PostgreSQL refuses to run as root: as root its folder is given to the `postgres` system user
(the Debian package makes it) and its programs run as that user.
"""
import os
import pathlib
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time

from ..errors import SxctlError

INSTALL = "sudo apt-get install -y mosquitto postgresql"
PG_BIN_GLOB = "/usr/lib/postgresql/*/bin"
START_TIMEOUT_S = 60.0


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_port(port, proc, what, log, timeout=START_TIMEOUT_S):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise SxctlError("%s exited at start (%s): %s" % (what, proc.returncode, _tail(log)))
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise SxctlError("%s did not listen on port %d within %.0f s: %s" % (what, port, timeout, _tail(log)))


def _tail(path, n=1500):
    try:
        return pathlib.Path(path).read_text(errors="replace")[-n:]
    except OSError:
        return "(no log)"


def mosquitto_binary():
    found = shutil.which("mosquitto") or next((p for p in ("/usr/sbin/mosquitto",) if os.path.exists(p)), None)
    if not found:
        raise SxctlError("mosquitto is not installed (the historian's broker): run  " + INSTALL)
    return found


def postgres_bin():
    import glob
    dirs = sorted(glob.glob(PG_BIN_GLOB), key=lambda d: int(d.split("/")[-2]) if d.split("/")[-2].isdigit() else 0)
    for d in reversed(dirs):
        if os.path.exists(os.path.join(d, "initdb")):
            return d
    found = shutil.which("initdb")
    if found:
        return os.path.dirname(found)
    raise SxctlError("PostgreSQL is not installed (the historian's database): run  " + INSTALL)


class _Server:
    """A private server process: stopped with its own clean-shutdown signal, killed if it hangs."""
    proc = None

    def _end(self, sig, grace_s):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(grace_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.proc = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


class Mosquitto(_Server):
    """One private broker. Persistence on (a stop and start keeps every queued message), no limit
    on the messages queued for an offline persistent session (the default 1000 would drop them).
    Mosquitto writes its whole state at every autosave: each `autosave_s` (a crash loses what
    came since; a stop saves all). `users`: {name: password} for a password file; else anonymous."""

    def __init__(self, folder=None, port=None, users=None, tls=None, autosave_s=60):
        self.autosave_s = autosave_s
        self.folder = pathlib.Path(folder or tempfile.mkdtemp(prefix="sxctl-mosquitto-"))
        self.folder.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.users = users
        self.tls = tls  # (cafile, certfile, keyfile) or None
        self.proc = None
        self.log = self.folder / "mosquitto.log"
        self.conf = self.folder / "mosquitto.conf"

    @property
    def url(self):
        return "%s://127.0.0.1:%d" % ("mqtts" if self.tls else "mqtt", self.port)

    def _write_conf(self):
        # mosquitto started as root drops to the `mosquitto` user unless told to stay: stay, so it
        # can write its persistence file in a private folder of root's
        lines = ["user %s" % pwd.getpwuid(os.geteuid()).pw_name, "listener %d 127.0.0.1" % self.port,
                 "persistence true", "persistence_location %s/" % self.folder, "autosave_interval %d" % self.autosave_s,
                 "max_queued_messages 0", "max_inflight_messages 1000", "log_dest file %s" % self.log,
                 "log_type error", "log_type warning", "log_type notice"]
        if self.users:
            pw = self.folder / "passwords"
            pw.write_text("")
            for name, password in self.users.items():
                subprocess.run(["mosquitto_passwd", "-b", str(pw), name, password], check=True,
                               capture_output=True)
            os.chmod(pw, 0o644)
            lines += ["allow_anonymous false", "password_file %s" % pw]
        else:
            lines.append("allow_anonymous true")
        if self.tls:
            ca, cert, key = self.tls
            lines += ["cafile %s" % ca, "certfile %s" % cert, "keyfile %s" % key]
        self.conf.write_text("\n".join(lines) + "\n")

    def start(self):
        binary = mosquitto_binary()
        self._write_conf()
        self.proc = subprocess.Popen([binary, "-c", str(self.conf)], stdout=subprocess.DEVNULL,
                                     stderr=open(self.folder / "mosquitto.err", "ab"))
        _wait_port(self.port, self.proc, "mosquitto", self.log)
        return self

    def stop(self, sig=signal.SIGTERM):
        """SIGTERM: mosquitto saves its persistent state and exits."""
        self._end(sig, 20)


class Postgres(_Server):
    """One private PostgreSQL cluster, initdb'd in a temporary folder, trust authentication on
    127.0.0.1 only, its socket in its own folder. As root the cluster lives in a folder of its
    own under the system's temporary directory (the `postgres` user cannot enter root's private
    temporary folders); the context manager removes it at the end."""

    def __init__(self, folder=None, port=None):
        self.owned = folder is None or os.geteuid() == 0
        self.folder = pathlib.Path(tempfile.mkdtemp(prefix="sxctl-postgres-") if self.owned else folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.data = self.folder / "data"
        self.log = self.folder / "postgres.log"
        self.proc = None
        self.bin = None

    @property
    def url(self):
        return "postgresql://sxctl@127.0.0.1:%d/plant" % self.port

    def _as_user(self):
        """Popen arguments that run a PostgreSQL program as the `postgres` user when we are root."""
        if os.geteuid() != 0:
            return {}
        try:
            user = pwd.getpwnam("postgres")
        except KeyError:
            raise SxctlError("PostgreSQL refuses to run as root and there is no `postgres` user: "
                             "run  " + INSTALL) from None
        return {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}

    def _run(self, *args):
        done = subprocess.run(list(args), capture_output=True, text=True, **self._as_user())
        if done.returncode:
            raise SxctlError("%s failed: %s" % (args[0], (done.stdout + done.stderr)[-1500:]))
        return done

    def start(self):
        self.bin = postgres_bin()
        who = self._as_user()
        if who:
            os.chown(self.folder, who["user"], who["group"])
        if not self.data.exists():
            self._run(os.path.join(self.bin, "initdb"), "-D", str(self.data), "-U", "sxctl", "-A", "trust",
                      "--no-sync", "-E", "UTF8", "--locale=C")
        return self._start_server(create=True)

    def _start_server(self, create=False):
        opts = ["-c", "listen_addresses=127.0.0.1", "-c", "port=%d" % self.port,
                "-c", "unix_socket_directories=%s" % self.folder, "-c", "fsync=on",
                "-c", "max_connections=50", "-c", "shared_buffers=64MB"]
        self.proc = subprocess.Popen([os.path.join(self.bin, "postgres"), "-D", str(self.data)] + opts,
                                     stdout=subprocess.DEVNULL, stderr=open(self.log, "ab"), **self._as_user())
        _wait_port(self.port, self.proc, "postgres", self.log)
        if create:
            self._wait_ready()
            done = subprocess.run([os.path.join(self.bin, "psql"), "-h", "127.0.0.1", "-p", str(self.port),
                                   "-U", "sxctl", "-d", "postgres", "-tAc",
                                   "SELECT 1 FROM pg_database WHERE datname = 'plant'"], capture_output=True, text=True)
            if done.stdout.strip() != "1":
                self._run(os.path.join(self.bin, "createdb"), "-h", "127.0.0.1", "-p", str(self.port),
                          "-U", "sxctl", "plant")
        self._wait_ready()
        return self

    def _wait_ready(self):
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            done = subprocess.run([os.path.join(self.bin, "pg_isready"), "-h", "127.0.0.1", "-p", str(self.port)],
                                  capture_output=True)
            if done.returncode == 0:
                return
            time.sleep(0.1)
        raise SxctlError("postgres was not ready within %.0f s: %s" % (START_TIMEOUT_S, _tail(self.log)))

    def restart(self):
        self.stop()
        return self._start_server()

    def stop(self):
        """SIGINT: PostgreSQL's fast shutdown (rolls back open transactions, checkpoints)."""
        self._end(signal.SIGINT, 30)

    def __exit__(self, *exc):
        self.stop()
        if self.owned:
            shutil.rmtree(self.folder, ignore_errors=True)
