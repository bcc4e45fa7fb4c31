"""Plant keys on the host: where sxctl finds one, how it signs with it, and putting it on a board.

A plant key is 32 random bytes, kept as 64 hex digits in a file only its owner reads (`sxctl
key new`), named by a plant file's `[bus] key_file`, or given as SXCTL_PLANT_KEY (hex). It is
never printed or logged: its id (framing.key_id, SIGNING_STATE.key_id) names it instead.

Counters: a host signs with quarter seconds since 2024-01-01 UTC, one more than its last if
that is not above it, and above the board's counter (SIGNING_STATE, read before the first
signed write to a board). Any host whose clock is about right therefore moves forward from
where the others left off, with no state kept between runs; u32 lasts until 2058.

A key reaches a board only over its USB REPL (physical access): `provision` writes /plant.key
and restarts the board, which loads it at boot (firmware/signing.py). See docs/security.md.
"""
import errno
import hashlib
import json
import os
import pathlib
import secrets
import stat
import sys
import time

from sxproto import boardfiles, framing

from .errors import SxctlError

ENV = "SXCTL_PLANT_KEY"
KEY_SIZE = 32
KEY_SIZES = range(16, 65)  # what a board accepts (firmware/signing.py)
BOARD_KEY = boardfiles.PLANT_KEY
BOARD_COUNTERS = boardfiles.PLANT_COUNTERS
EPOCH = 1704067200  # 2024-01-01 00:00 UTC
TICKS_PER_S = 4
TOP = 0xFFFFFFFF
UNUSABLE = 0xFFFFFFFF  # SIGNING_STATE.key_id of a board whose /plant.key is no key
# A board's counter further ahead of this host's clock than this is refused rather than
# followed: a forged SIGNING_STATE must not make the host burn counters it can never get back.
MAX_AHEAD_S = 30 * 86400


class KeyProblem(SxctlError):
    pass


class PlantKey:
    """A plant key. Its repr and str show the id and where it came from, never the key."""

    __slots__ = ("_secret", "id", "source")

    def __init__(self, secret, source):
        if len(secret) not in KEY_SIZES:
            raise KeyProblem("%s does not hold a plant key: it must be %d to %d bytes (%d to %d hex digits); "
                             "make one with `sxctl key new`" % (source, KEY_SIZES[0], KEY_SIZES[-1],
                                                                2 * KEY_SIZES[0], 2 * KEY_SIZES[-1]))
        self._secret = bytes(secret)
        self.id = framing.key_id(self._secret)
        self.source = source

    @property
    def secret(self):
        return self._secret

    def __repr__(self):
        return "PlantKey(id %08x from %s)" % (self.id, self.source)

    __str__ = __repr__

    def __reduce__(self):
        raise TypeError("a plant key is not pickled")


def parse(text, source):
    """A PlantKey from hex text; the error never repeats the text."""
    digits = "".join(text.split())
    try:
        secret = bytes.fromhex(digits)
    except ValueError:
        raise KeyProblem("%s does not hold a plant key: it must be hex digits only; make one with "
                         "`sxctl key new`" % source) from None
    return PlantKey(secret, source)


def from_file(path, warn=None):
    """The key in a key file. One that others may read is used with a warning (on stderr, or to
    `warn`): the key is only as secret as its file."""
    path = pathlib.Path(path)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise KeyProblem("plant key file %s is a symbolic link: name the key file itself" % path) from None
        raise KeyProblem("cannot read plant key file %s: %s" % (path, e.strerror or e)) from None
    with os.fdopen(fd, "rb") as f:
        mode = os.fstat(f.fileno()).st_mode
        text = f.read(4096).decode("ascii", errors="replace")
    if mode & 0o077:
        (warn or _warn)("sxctl: warning: plant key file %s can be read by others (mode %04o): "
                        "`chmod 600 %s`, and rotate the key if others may have read it"
                        % (path, stat.S_IMODE(mode), path))
    return parse(text, "key file %s" % path)


def _warn(text):
    print(text, file=sys.stderr)


def take_environment():
    """SXCTL_PLANT_KEY's text, removed from this process's environment so that no child process
    (virtual boards, esptool, mpremote) inherits it; None if unset."""
    return os.environ.pop(ENV, None) or None


def child_environment(base=None):
    """An environment for a child process: this one without any plant key."""
    env = dict(os.environ if base is None else base)
    env.pop(ENV, None)
    return env


def resolve(key_file=None, env_text=None):
    """The key named on a command line (--key-file), else SXCTL_PLANT_KEY's; KeyProblem if none."""
    key = from_file(key_file) if key_file else parse(env_text, ENV) if env_text else None
    if key is None:
        raise KeyProblem("no plant key: give --key-file, set %s (hex), or name key_file in the plant "
                         "file's [bus]" % ENV)
    return key


def new_key():
    return PlantKey(secrets.token_bytes(KEY_SIZE), "a new key")


def write_file(path, key):
    """Write a new key file, readable by its owner only and complete or absent after a crash.
    An existing key file is never overwritten (rotation replaces one once boards hold the new key)."""
    path = pathlib.Path(path)
    if path.exists():
        raise KeyProblem("%s exists: a key file is never overwritten (use `sxctl key rotate` to "
                         "replace a plant's key)" % path)
    tmp = path.with_name(path.name + ".tmp")
    try:
        # O_EXCL|O_NOFOLLOW: a leftover .tmp (with its mode) or a link planted there is never used.
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    except FileExistsError:
        raise KeyProblem("%s exists (left by an interrupted `sxctl key new`, or put there by someone): "
                         "nothing written; check it and remove it, then run again" % tmp) from None
    except OSError as e:
        raise KeyProblem("cannot write key file %s: %s" % (path, e.strerror or e)) from None
    try:
        os.fchmod(fd, 0o600)  # whatever the umask
        with os.fdopen(fd, "w") as f:
            f.write(key.secret.hex() + "\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise KeyProblem("cannot write key file %s: %s" % (path, e.strerror or e)) from None
    return PlantKey(key.secret, "key file %s" % path)


# --- counters ----------------------------------------------------------------------------------

def clock_counter(now=None):
    """This host's clock as a counter: quarter seconds since 2024-01-01 UTC."""
    now = time.time() if now is None else now
    return min(TOP, max(1, int((now - EPOCH) * TICKS_PER_S)))


class Counter:
    """A host's signing counters: above its clock, its last counter and a board's floor."""

    def __init__(self, clock=clock_counter):
        self.clock = clock
        self.last = 0

    def next(self, floor=0, board_clock=0):
        """The counter to sign with, above `floor` (the board's counter). `board_clock` is the
        board's own clock as a counter (0: not synced): with the floor, what this host's clock
        is checked against, so that a board idle for long is not taken for a host ahead."""
        clock = self.clock()
        counter = max(self.last + 1, clock, floor + 1)
        if counter > TOP:
            raise KeyProblem("signing counters are used up (the board's counter is at %d): provision a new "
                             "key with --reset-counter over USB (docs/security.md)" % floor)
        if counter - clock > MAX_AHEAD_S * TICKS_PER_S:
            raise KeyProblem("the board wants signed counters above %d, %.1f days ahead of this host's clock: "
                             "check this host's clock and those of the other hosts that write to the bus "
                             "(docs/security.md)" % (floor, (counter - clock) / TICKS_PER_S / 86400))
        reference = max(floor, board_clock)
        if reference and counter - reference > MAX_AHEAD_S * TICKS_PER_S:
            # The same bound the other way: a host whose clock runs ahead would push the board's
            # counter where every correctly clocked host is refused as replaying.
            raise KeyProblem("this host's clock is %.1f days ahead of the board's signing counter and clock: "
                             "nothing signed, so that hosts with a right clock are not locked out; set this "
                             "host's clock (timedatectl, NTP) and run again (docs/security.md)"
                             % ((counter - reference) / TICKS_PER_S / 86400))
        self.last = counter
        return counter


# --- on a board, over its USB REPL -----------------------------------------------------------

def provision(port, key, reset_counter=False, timeout=5.0):
    """Write `key` to the board's /plant.key over its USB REPL and restart it. Returns (what the
    board held before: "none", "the same key" or "another key"; restarted; its bus address)."""
    from .repl import SerialRepl

    with SerialRepl(port, timeout=timeout) as repl:  # a running board: into maintenance first
        addr = _bus_address(repl)
        held = repl.hashes([BOARD_KEY])[BOARD_KEY]
        digest = hashlib.sha256(key.secret).digest()
        before = "none" if held is None else "the same key" if held == digest else "another key"
        if reset_counter and before == "the same key":
            if repl.interrupted:
                repl.restart()  # leave a running board running
            raise KeyProblem("the board on %s already holds this key: resetting its counter would let "
                             "frames signed with it before be replayed; rotate to a new key instead" % port)
        try:
            repl.write(BOARD_KEY, key.secret)
        except SxctlError as e:
            raise KeyProblem(_scrub(str(e), key)) from None
        if reset_counter:
            repl.remove(BOARD_COUNTERS)
        if repl.hashes([BOARD_KEY])[BOARD_KEY] != digest:
            raise KeyProblem("the board on %s did not keep the key written to /%s: its filesystem may be "
                             "full (`mpremote connect %s df`); provision again" % (port, BOARD_KEY, port))
        restarted = repl.restart()
    return before, restarted, addr


def _bus_address(repl):
    from .boardfiles import IDENTITY

    try:
        identity = json.loads(repl.read(IDENTITY))
    except (OSError, ValueError, SxctlError):
        identity = {}
    addr = identity.get("addr", 247) if isinstance(identity, dict) else 247
    return addr if isinstance(addr, int) else 247


def _scrub(text, key):
    # Belt and braces: no error text from below may carry the key, in any spelling.
    for form in (key.secret.hex(), key.secret.hex().upper(), repr(key.secret), str(key.secret)):
        text = text.replace(form, "<key>")
    return text
