"""The host's side of the bus: requests with retries, replies matched by address and sequence.

With a plant key (given to the client, never taken from the process), writes (messages.WRITES)
are signed (protocol/framing.py): each with a new counter (keys.Counter) above the board's, read
once per board with SIGNING_READ. A retry is the same frame, which the board answers from its
cache without applying it again.

One program drives a bus at a time: the client holds an exclusive lock on the port (buslock.py)
and a second one is refused with the holder's name and pid. Every wait for a reply ends at its
deadline, whatever else arrives meanwhile.
"""
import random
import time

import serial

from sxproto import codec, fields, framing, messages, schema

from . import keys
from . import buslock
from .buslock import BusBusy, BusLock  # noqa: F401  (BusBusy: for the verbs)
from .errors import SxctlError

FINGERPRINT = schema.fingerprint()
SYNCED_AFTER = 1_000_000_000  # board times below this are seconds since boot, not Unix seconds
_WRITES = frozenset(messages.WRITES)
_CODES = {text: code for code, text in messages.ERROR_CODES.items()}
SIGNATURE_REQUIRED = _CODES["signature required"]
BAD_SIGNATURE = _CODES["bad signature"]
REPLAYED = _CODES["replayed"]
_HINTS = {
    SIGNATURE_REQUIRED: "the board holds a plant key: give sxctl the key (--key-file FILE, --plant FILE "
                        "with key_file in its [bus], or %s as hex)" % keys.ENV,
    BAD_SIGNATURE: "the board holds another plant key than sxctl signs with: compare key ids with "
                   "`sxctl key status`",
    REPLAYED: "the board had taken a later counter; if this was a retry, the write may have been "
              "applied: read the board back",
}


class NoAnswer(SxctlError):
    pass


class RemoteError(SxctlError):
    def __init__(self, addr, request, code, detail):
        text = messages.ERROR_CODES.get(code, "error code %d" % code)
        hint = _HINTS.get(code)
        super().__init__("board %d refused %s: %s (detail %d)%s" % (
            addr, request.name, text, detail, "; " + hint if hint else ""))
        self.code = code
        self.detail = detail
        self.attempt = 0  # which try of the request was refused (0: the first)


class SchemaMismatch(SxctlError):
    pass


class OutOfRange(SxctlError):
    """A reply with a value outside the range the protocol declares for it."""


class LinkStats:
    FIELDS = ("sent", "received", "retries", "timeouts", "crc_errors", "malformed", "foreign", "out_of_range")

    def __init__(self):
        for name in self.FIELDS:
            setattr(self, name, 0)

    def as_dict(self):
        return {name: getattr(self, name) for name in self.FIELDS}


class BusClient:
    """One serial port carrying the protocol to every board on it.

    `key`: a keys.PlantKey to sign writes with, or None: writes go unsigned (a board holding a
    key refuses them, reads are answered). `holder`: the program named to another that finds the
    bus taken."""

    def __init__(self, port, baud=115200, timeout=0.25, retries=2, key=None, holder="sxctl"):
        if key is not None and not isinstance(key, keys.PlantKey):  # before the bus is taken
            raise TypeError("key must be a keys.PlantKey or None")
        self.lock = BusLock(port, holder)  # BusBusy if another program drives this bus
        try:
            self.serial = serial.serial_for_url(port, baudrate=baud, timeout=0, exclusive=self.lock.exclusive)
        except (serial.SerialException, OSError) as e:
            self.lock.release()
            if "exclusively lock" in str(e):
                raise buslock.opened_elsewhere(port) from None
            raise SxctlError("cannot open bus port %s: %s; check the path (`sxctl ports`) and that no other "
                             "program holds it" % (port, e)) from None
        self.port = port
        self.timeout = timeout
        self.retries = retries
        self.splitter = codec.FrameSplitter()
        self.seq = random.randrange(0x10000)
        self.stats = LinkStats()
        self.key = key
        self.counter = keys.Counter()
        self._floors = {}  # address -> the board's signing counter, as last known
        self._board_clocks = {}  # address -> the board's clock as a counter when first signed to
        self.serial.reset_input_buffer()

    def close(self):
        try:
            self.serial.close()
        finally:
            self.lock.release()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _next_seq(self):
        self.seq = (self.seq + 1) & 0xFFFF
        return self.seq

    def request(self, addr, message, values=None, expect=None):
        """Send `message` to `addr` and return the decoded reply, retrying a bounded number of times.
        A retry reuses the sequence number, so the board can tell it from a new request."""
        if message not in _WRITES or self.key is None:
            return self._request(addr, message, values, expect)
        return self._signed_relearning(addr, message, values, expect)

    def _signed_relearning(self, addr, message, values, expect):
        try:
            return self._signed(addr, message, values, expect)
        except RemoteError as e:
            if e.code != REPLAYED or e.attempt or addr == framing.BROADCAST:
                raise
            # Refused at its first try, so not applied: another host wrote since, or the board
            # reset and moved its counter on. Learn its counter and sign anew, once.
            self._floors.pop(addr, None)
            return self._signed(addr, message, values, expect)

    def _signed(self, addr, message, values, expect):
        key = self.key
        if addr == framing.BROADCAST:
            return self._request(addr, message, values, expect, key, self.counter.next())
        if addr not in self._floors:
            state = self.signing_state(addr)
            _check_key(addr, state["key_id"], key)  # a board without a key (0) takes signed writes too
            self._floors[addr] = state["counter"]
            self._board_clocks[addr] = self._board_clock(addr)
        counter = self.counter.next(self._floors[addr], self._board_clocks[addr])
        reply = self._request(addr, message, values, expect, key, counter)
        self._floors[addr] = counter
        return reply

    def _board_clock(self, addr):
        """The board's clock as a signing counter, 0 if it was never synced (seconds since boot)."""
        board_s = self.request(addr, messages.GET_TELEMETRY, expect=messages.TELEMETRY).values["time_s"]
        return keys.clock_counter(board_s) if board_s >= SYNCED_AFTER else 0

    def keepalive(self, addr):
        """On a keyed plant, a signed PING: with the host's signed writes, the only frames that
        hold a keyed board out of its link-loss safe state (docs/security.md). Without a key,
        nothing: any request addressed to an unkeyed board keeps its link."""
        if self.key is None:
            return None
        return self._signed_relearning(addr, messages.PING, {"token": 0x4B454550}, messages.PONG)

    def signing_state(self, addr):
        """SIGNING_STATE of a board: its key id (0: none), counter floor and refusal counts."""
        return self.request(addr, messages.SIGNING_READ, expect=messages.SIGNING_STATE).values

    def _request(self, addr, message, values, expect, key=None, counter=None):
        seq = self._next_seq()
        wire = codec.encode(addr, 0, seq, message, values, lead=True,
                            key=key.secret if key is not None else None, counter=counter)
        for attempt in range(self.retries + 1):
            if attempt:
                self.stats.retries += 1
            self.serial.write(wire)
            self.stats.sent += 1
            reply = self._await_reply(addr, seq, time.monotonic() + self.timeout)
            if reply is not None:
                if reply.message is messages.ERROR:
                    v = reply.values
                    error = RemoteError(addr, message, v["code"], v["detail"])
                    error.attempt = attempt
                    raise error
                if expect is not None and reply.message is not expect:
                    raise SxctlError("board %d answered %s with %s, expected %s" % (
                        addr, message.name, reply.message.name, expect.name))
                self._check_ranges(addr, message, reply)
                return reply
            self.stats.timeouts += 1
        raise NoAnswer("no answer from address %d on %s after %d tries; check the address (`sxctl sim` "
                       "ports file or the plant file), the wiring and that the board runs the sxctl firmware"
                       % (addr, self.port, self.retries + 1))

    def _check_ranges(self, addr, message, reply):
        """Every value of a reply against the range the protocol declares. INFO and TELEMETRY
        go to callers that check them and show each field flagged (info, monitor, the logger);
        a record array's records are each one's caller's to check (the logger refuses them one
        by one); any other reply with such a value is refused whole."""
        bad = out_of_range(reply.message.body, reply.values, records=False)
        if bad:
            self.stats.out_of_range += 1
            if reply.message not in (messages.INFO, messages.TELEMETRY):
                raise OutOfRange("board %d answered %s with %s outside the protocol's range: %s; not used "
                                 "(check the board's firmware with `sxctl info`)" % (
                                     addr, message.name, reply.message.name, ", ".join(
                                         "%s %s" % (name, reply.values[name]) for name in bad)))

    def _await_reply(self, addr, seq, deadline):
        # The deadline is checked after every read: a bus busy with other frames ends the wait too.
        while True:
            data = self.serial.read(4096)
            if data:
                for raw in self.splitter.feed(data):
                    reply = self._accept(raw, addr, seq)
                    if reply is not None:
                        return reply
            if time.monotonic() >= deadline:
                return None
            if not data:
                time.sleep(0.001)

    def _accept(self, raw, addr, seq):
        try:
            reply = codec.decode(raw)
        except codec.FrameError as e:
            self._check_schema(raw)
            if e.kind == "crc":
                self.stats.crc_errors += 1
            else:
                self.stats.malformed += 1
            return None
        if reply.addr != addr or reply.seq != seq or not reply.flags & framing.FLAG_REPLY:
            self.stats.foreign += 1
            return None
        self.stats.received += 1
        return reply

    def _check_schema(self, raw):
        # An INFO from firmware built on another schema may not parse; its fingerprint still does.
        try:
            frame = framing.cobs_decode(raw)
        except ValueError:
            return
        if (len(frame) >= framing.HEADER_SIZE + 4 + 2 and frame[4] == messages.INFO.type_id
                and framing.crc16(frame[:-2]) == int.from_bytes(frame[-2:], "big")):
            theirs = int.from_bytes(frame[5:9], "little")
            if theirs != FINGERPRINT:
                raise schema_mismatch(frame[0], self.port, theirs)

    def hello(self, addr):
        """INFO of a board, refusing one built from another protocol schema."""
        info = self.request(addr, messages.HELLO, expect=messages.INFO).values
        if info["fingerprint"] != FINGERPRINT:
            raise schema_mismatch(addr, self.port, info["fingerprint"])
        return info


def out_of_range(struct, values, prefix="", records=True):
    """Names of the fields of a decoded `struct` whose values lie outside the ranges the protocol
    declares (sxproto.fields), records included unless `records` is false: what a host must not
    show or store as data."""
    bad = []
    for info in fields.infos(struct):
        value = values[info.name]
        if info.record is not None:
            for i, record in enumerate(value[:values.get("count", len(value))] if records else ()):
                bad += out_of_range(info.record, record, "%s%s[%d]." % (prefix, info.name, i))
        elif not info.text_len and not info.lo <= value <= info.hi:
            bad.append(prefix + info.name)
    return bad


def printable(text):
    """Board-supplied text for a terminal: control characters (ESC, BEL, ...) shown escaped."""
    return "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii") for ch in str(text))


def _check_key(addr, board_key_id, key):
    if board_key_id == keys.UNUSABLE:
        raise keys.KeyProblem("board %d has an unusable /plant.key and refuses every write: provision the "
                              "key again over USB (`sxctl key provision`)" % addr)
    if board_key_id not in (0, key.id):
        raise keys.KeyProblem("board %d holds plant key %08x, sxctl signs with key %08x (%s): nothing sent; "
                              "provision the plant's key over USB (`sxctl key provision`) or sign with the "
                              "board's" % (addr, board_key_id, key.id, key.source))


def schema_mismatch(addr, port, theirs):
    return SchemaMismatch(
        "board %d on %s speaks protocol schema %08x, this sxctl speaks %08x: reflash the board "
        "with this version (`sxctl flash --port <its USB port> --board <name> --addr %d`)"
        % (addr, port, theirs, FINGERPRINT, addr))
