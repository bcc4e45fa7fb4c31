"""Plant keys on the host: key files made safely, warned about when others can read them, and
counters never signed further ahead of the board than behind it."""
import os
import stat

import pytest

from sxctl import keys

DAY = 86400 * keys.TICKS_PER_S


def test_a_leftover_tmp_file_is_never_used_for_a_key(tmp_path):
    path = tmp_path / "plant.key"
    tmp = tmp_path / "plant.key.tmp"
    tmp.write_text("")
    os.chmod(tmp, 0o666)
    with pytest.raises(keys.KeyProblem, match="plant.key.tmp exists"):
        keys.write_file(path, keys.new_key())
    assert not path.exists() and tmp.read_text() == ""


def test_a_symlinked_tmp_file_does_not_write_the_key_elsewhere(tmp_path):
    target = tmp_path / "elsewhere"
    (tmp_path / "plant.key.tmp").symlink_to(target)
    with pytest.raises(keys.KeyProblem):
        keys.write_file(tmp_path / "plant.key", keys.new_key())
    assert not target.exists() and not (tmp_path / "plant.key").exists()


def test_a_new_key_file_is_readable_by_its_owner_only_whatever_the_umask(tmp_path):
    old = os.umask(0)
    try:
        key = keys.write_file(tmp_path / "plant.key", keys.new_key())
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(tmp_path / "plant.key").st_mode) == 0o600
    assert keys.from_file(tmp_path / "plant.key").id == key.id
    assert not (tmp_path / "plant.key.tmp").exists()


def test_a_key_file_others_can_read_is_used_with_a_warning(tmp_path):
    key = keys.write_file(tmp_path / "plant.key", keys.new_key())
    warned = []
    assert keys.from_file(tmp_path / "plant.key", warn=warned.append).id == key.id
    assert warned == []
    os.chmod(tmp_path / "plant.key", 0o644)
    assert keys.from_file(tmp_path / "plant.key", warn=warned.append).id == key.id
    [text] = warned
    assert "can be read by others (mode 0644)" in text and "chmod 600" in text
    assert key.secret.hex() not in text


def test_a_symlinked_key_file_is_refused(tmp_path):
    keys.write_file(tmp_path / "real.key", keys.new_key())
    (tmp_path / "plant.key").symlink_to(tmp_path / "real.key")
    with pytest.raises(keys.KeyProblem, match="symbolic link"):
        keys.from_file(tmp_path / "plant.key")


def test_a_host_clock_years_ahead_signs_nothing():
    board = keys.clock_counter(1_780_000_000)  # the board's counter, from hosts with a right clock
    ahead = keys.Counter(clock=lambda: board + 5840 * DAY)
    with pytest.raises(keys.KeyProblem, match="5840.0 days ahead of the board's signing counter"):
        ahead.next(floor=board)
    assert ahead.last == 0  # nothing handed out
    # The same bound as behind: a board counter further ahead than that is refused too.
    behind = keys.Counter(clock=lambda: board)
    with pytest.raises(keys.KeyProblem, match="days ahead of this host's clock"):
        behind.next(floor=board + keys.MAX_AHEAD_S * keys.TICKS_PER_S + 1)


def test_a_board_idle_for_long_is_not_taken_for_a_host_ahead():
    last_write = keys.clock_counter(1_780_000_000)
    now = last_write + 90 * DAY  # no write for 90 days; the board's clock ran on
    host = keys.Counter(clock=lambda: now)
    assert host.next(floor=last_write, board_clock=now - 4) == now
    # a fresh board (no counter yet, clock never synced) has nothing to check against
    assert keys.Counter(clock=lambda: now).next(floor=0, board_clock=0) == now


def test_the_cli_takes_the_key_out_of_the_environment(monkeypatch):
    monkeypatch.setenv(keys.ENV, "ab" * 32)
    assert keys.take_environment() == "ab" * 32
    assert keys.ENV not in os.environ
    assert keys.ENV not in keys.child_environment({keys.ENV: "x", "PATH": "/bin"})
