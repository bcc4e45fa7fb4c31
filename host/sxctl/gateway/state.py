"""Where a running gateway is: a state file per bus that other sxctl processes find it by.

The state folder is $SXCTL_STATE_DIR, else $XDG_RUNTIME_DIR/sxctl, else /tmp/sxctl-<uid>
(made 0700). For a bus it holds `<bus>.json` (the gateway's pid, bus, client socket, Modbus
address, log file) and `<bus>.token` (0600): a random token the gateway makes at each start;
a client that can read it may write through the gateway. A state file whose pid is gone is
stale and ignored (and replaced by the next gateway).
"""
import json
import os
import pathlib
import re
import secrets
import tempfile

from ..errors import SxctlError

ENV = "SXCTL_STATE_DIR"


def folder():
    if os.environ.get(ENV):
        return pathlib.Path(os.environ[ENV])
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime:
        return pathlib.Path(runtime) / "sxctl"
    return pathlib.Path(tempfile.gettempdir()) / ("sxctl-%d" % os.getuid())


def bus_key(port):
    """The bus's real path as a file name: /dev/ttyUSB0 -> dev_ttyUSB0."""
    return re.sub(r"[^A-Za-z0-9.-]+", "_", os.path.realpath(port)).strip("_") or "bus"


def paths(port, where=None):
    base = pathlib.Path(where) if where else folder()
    key = bus_key(port)
    return base / (key + ".json"), base / (key + ".token"), base / (key + ".sock")


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def find(port, where=None):
    """The state dict of a live gateway holding `port`, or None."""
    state_file, _, _ = paths(port, where)
    try:
        state = json.loads(state_file.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(state, dict) or not _alive(int(state.get("pid", 0) or 0)):
        return None
    if state.get("bus_realpath") != os.path.realpath(port):
        return None
    return state


def read_token(state):
    try:
        return pathlib.Path(state["token_file"]).read_text().strip()
    except (OSError, KeyError):
        return None


class StateFile:
    """Written when the gateway serves, removed when it stops."""

    def __init__(self, port, where=None):
        self.port = port
        self.state_file, self.token_file, self.socket = paths(port, where)
        self.token = secrets.token_hex(16)

    def claim(self):
        """Make the folder and the token; refuse if a live gateway already holds the bus."""
        other = find(self.port, self.state_file.parent)
        if other is not None:
            raise SxctlError("a gateway (pid %d) already serves %s: stop it first, or use it (sxctl verbs go "
                             "through it)" % (other["pid"], self.port))
        try:
            self.state_file.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd = os.open(self.token_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            os.fchmod(fd, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(self.token + "\n")
            if self.socket.exists():
                self.socket.unlink()
        except OSError as e:
            raise SxctlError("cannot write the gateway's state in %s: %s; give --state-dir or set %s"
                             % (self.state_file.parent, e.strerror or e, ENV)) from None

    def publish(self, **fields):
        state = dict(fields, pid=os.getpid(), bus=self.port, bus_realpath=os.path.realpath(self.port),
                     api=str(self.socket), token_file=str(self.token_file))
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(state, indent=2) + "\n")
        os.replace(tmp, self.state_file)  # readers see the old file or the new one, never half

    def remove(self):
        for path in (self.state_file, self.token_file, self.socket):
            try:
                path.unlink()
            except FileNotFoundError:
                pass
