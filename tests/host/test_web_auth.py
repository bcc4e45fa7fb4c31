"""The web view's logins: hashed users file, sessions that expire, a pause after failed logins."""
import os
import stat

import pytest

from sxctl.errors import SxctlError
from sxctl.gateway.web import auth, listen_address


class Clock:
    def __init__(self):
        self.t = 1000.0

    def __call__(self):
        return self.t


def test_users_file_holds_only_a_salted_hash(tmp_path):
    path = tmp_path / "users"
    auth.add_user(path, "op", "long enough secret")
    auth.add_user(path, "other", "long enough secret")
    text = path.read_text()
    assert "long enough secret" not in text
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    users = auth.load_users(path)
    assert users["op"] != users["other"]  # each its own salt
    assert auth.check_password("long enough secret", users["op"])
    assert not auth.check_password("long enough secreT", users["op"])
    with pytest.raises(SxctlError, match="too short"):
        auth.add_user(path, "op", "short")
    assert auth.load_users(path) == users  # a refused change leaves the file as it was


def test_a_broken_users_file_is_named(tmp_path):
    path = tmp_path / "users"
    path.write_text("op:plaintext\n")
    with pytest.raises(SxctlError, match="line 1"):
        auth.load_users(path)


def test_sessions_expire_idle_and_at_most_after_max(tmp_path):
    clock = Clock()
    sessions = auth.Sessions({"op": auth.hash_password("long enough secret", n=1 << 4)}, clock=clock)
    s = sessions.login("op", "long enough secret", "10.0.0.1")
    assert sessions.get(s.id) is s and s.csrf and s.csrf != s.id
    clock.t += auth.IDLE_S + 1
    assert sessions.get(s.id) is None
    s = sessions.login("op", "long enough secret", "10.0.0.1")
    while clock.t - s.started <= auth.MAX_S:  # used often, still ends
        clock.t += auth.IDLE_S / 2
        sessions.get(s.id)
    assert sessions.get(s.id) is None


def test_failed_logins_pause_the_client():
    clock = Clock()
    sessions = auth.Sessions({"op": auth.hash_password("long enough secret", n=1 << 4)}, clock=clock)
    for _ in range(auth.FAILS_BEFORE_PAUSE):
        assert sessions.login("op", "wrong", "10.0.0.9") is None
    assert sessions.login("op", "long enough secret", "10.0.0.9") is None  # paused, even with the password
    assert sessions.login("op", "long enough secret", "10.0.0.8") is not None  # another client is not
    clock.t += auth.PAUSE_S
    assert sessions.login("op", "long enough secret", "10.0.0.9") is not None
    assert sessions.login("nobody", "long enough secret", "10.0.0.7") is None


def test_listen_address():
    assert listen_address("127.0.0.1:8080") == ("127.0.0.1", 8080)
    assert listen_address(":9000") == ("127.0.0.1", 9000)
    for bad in ("8080", "host:", "h:99999"):
        with pytest.raises(ValueError):
            listen_address(bad)
