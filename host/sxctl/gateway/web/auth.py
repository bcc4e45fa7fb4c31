"""Who may write through the web view: a users file of scrypt hashes, expiring sessions, CSRF.

The users file (one `name:scrypt$n$r$p$salt$hash` line each, mode 0600) is made on the gateway
with `python -m sxctl.gateway.web adduser NAME`; without one the web view is read-only. The
file is $SXCTL_WEB_USERS, else web-users in sxctl's configuration folder.

A login gives a random session id in an HttpOnly, SameSite=Strict cookie and a CSRF token the
page sends back in a header with every write; a session ends after IDLE_S without use or MAX_S
after the login, whichever comes first. Failed logins are slowed per client address.
"""
import hashlib
import hmac
import os
import pathlib
import secrets
import threading
import time

import platformdirs

from ...errors import SxctlError

ENV = "SXCTL_WEB_USERS"
IDLE_S = 30 * 60
MAX_S = 12 * 3600
# scrypt at n=2^14, r=8: 16 MiB and some 50 ms per check, the cost OWASP names for scrypt.
N, R, P = 1 << 14, 8, 1
FAILS_BEFORE_PAUSE = 5
PAUSE_S = 30.0
MIN_PASSWORD = 8


def users_file():
    if os.environ.get(ENV):
        return pathlib.Path(os.environ[ENV])
    return pathlib.Path(platformdirs.user_config_dir("sxctl")) / "web-users"


def hash_password(password, salt=None, n=N, r=R, p=P):
    salt = salt or secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=n, r=r, p=p, maxmem=64 << 20, dklen=32)
    return "scrypt$%d$%d$%d$%s$%s" % (n, r, p, salt.hex(), digest.hex())


def check_password(password, stored):
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        again = hash_password(password, bytes.fromhex(salt), int(n), int(r), int(p))
    except ValueError:
        return False
    return hmac.compare_digest(again.rsplit("$", 1)[1], digest)


def load_users(path):
    """{name: stored hash} of the users file; {} if there is none."""
    try:
        text = pathlib.Path(path).read_text()
    except FileNotFoundError:
        return {}
    except OSError as e:
        raise SxctlError("cannot read the web users file %s: %s" % (path, e.strerror or e)) from None
    users = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        name, sep, stored = line.partition(":")
        if not sep or not stored.startswith("scrypt$"):
            raise SxctlError("%s line %d: not NAME:scrypt$...; make the file with `python -m sxctl.gateway.web "
                             "adduser NAME`" % (path, number))
        users[name] = stored
    return users


def add_user(path, name, password):
    """Add or replace one user in the users file (written whole, 0600)."""
    if not name or ":" in name or name.strip() != name:
        raise SxctlError("user name %r: give a name without ':' or surrounding blanks" % name)
    if len(password) < MIN_PASSWORD:
        raise SxctlError("the password is too short: give at least %d characters" % MIN_PASSWORD)
    path = pathlib.Path(path)
    users = load_users(path)
    users[name] = hash_password(password)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write("".join("%s:%s\n" % kv for kv in users.items()))
    os.replace(tmp, path)


class Session:
    def __init__(self, user, now):
        self.id = secrets.token_urlsafe(32)
        self.csrf = secrets.token_urlsafe(32)
        self.user = user
        self.started = now
        self.used = now


class Sessions:
    """The live sessions of the web view (kept in memory: a gateway restart logs everyone out)."""

    def __init__(self, users, clock=time.monotonic):
        self.users = users
        self.clock = clock
        self.lock = threading.Lock()
        self.by_id = {}
        self.fails = {}  # client address -> (failures in a row, when the last one was)

    def login(self, user, password, client):
        """A new Session, or None; a client with too many failures in a row waits PAUSE_S first."""
        now = self.clock()
        with self.lock:
            fails, last = self.fails.get(client, (0, 0.0))
            if fails >= FAILS_BEFORE_PAUSE and now - last < PAUSE_S:
                return None
        stored = self.users.get(user)
        ok = check_password(password, stored) if stored else (hash_password(password) and False)
        with self.lock:
            if not ok:
                self.fails[client] = (fails + 1, now)
                return None
            self.fails.pop(client, None)
            session = Session(user, now)
            self.by_id[session.id] = session
            return session

    def get(self, session_id):
        """The live session of this id (its idle time restarts), or None."""
        now = self.clock()
        with self.lock:
            session = self.by_id.get(session_id or "")
            if session is None:
                return None
            if now - session.used > IDLE_S or now - session.started > MAX_S:
                del self.by_id[session.id]
                return None
            session.used = now
            return session

    def logout(self, session_id):
        with self.lock:
            self.by_id.pop(session_id or "", None)
