"""The host's side of the bus: requests with retries, replies matched by address and sequence."""
import random
import time

import serial

from sxproto import codec, framing, messages, schema

from .errors import SxctlError

FINGERPRINT = schema.fingerprint()


class NoAnswer(SxctlError):
    pass


class RemoteError(SxctlError):
    def __init__(self, addr, request, code, detail):
        text = messages.ERROR_CODES.get(code, "error code %d" % code)
        super().__init__("board %d refused %s: %s (detail %d)" % (addr, request.name, text, detail))
        self.code = code
        self.detail = detail


class SchemaMismatch(SxctlError):
    pass


class LinkStats:
    FIELDS = ("sent", "received", "retries", "timeouts", "crc_errors", "malformed", "foreign")

    def __init__(self):
        for name in self.FIELDS:
            setattr(self, name, 0)

    def as_dict(self):
        return {name: getattr(self, name) for name in self.FIELDS}


class BusClient:
    """One serial port carrying the protocol to every board on it."""

    def __init__(self, port, baud=115200, timeout=0.25, retries=2):
        try:
            self.serial = serial.serial_for_url(port, baudrate=baud, timeout=0)
        except (serial.SerialException, OSError) as e:
            raise SxctlError("cannot open bus port %s: %s; check the path (`sxctl ports`) and that no other program holds it" % (port, e)) from None
        self.port = port
        self.timeout = timeout
        self.retries = retries
        self.splitter = codec.FrameSplitter()
        self.seq = random.randrange(0x10000)
        self.stats = LinkStats()
        self.serial.reset_input_buffer()

    def close(self):
        self.serial.close()

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
        seq = self._next_seq()
        wire = codec.encode(addr, 0, seq, message, values, lead=True)
        for attempt in range(self.retries + 1):
            if attempt:
                self.stats.retries += 1
            self.serial.write(wire)
            self.stats.sent += 1
            reply = self._await_reply(addr, seq, time.monotonic() + self.timeout)
            if reply is not None:
                if reply.message is messages.ERROR:
                    v = reply.values
                    raise RemoteError(addr, message, v["code"], v["detail"])
                if expect is not None and reply.message is not expect:
                    raise SxctlError("board %d answered %s with %s, expected %s" % (
                        addr, message.name, reply.message.name, expect.name))
                return reply
            self.stats.timeouts += 1
        raise NoAnswer("no answer from address %d on %s after %d tries; check the address (`sxctl sim` "
                       "ports file or the plant file), the wiring and that the board runs the sxctl firmware"
                       % (addr, self.port, self.retries + 1))

    def _await_reply(self, addr, seq, deadline):
        while True:
            data = self.serial.read(4096)
            if data:
                for raw in self.splitter.feed(data):
                    reply = self._accept(raw, addr, seq)
                    if reply is not None:
                        return reply
                continue
            if time.monotonic() >= deadline:
                return None
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


def schema_mismatch(addr, port, theirs):
    return SchemaMismatch(
        "board %d on %s speaks protocol schema %08x, this sxctl speaks %08x: reflash the board "
        "with this version (`sxctl flash --port <its USB port> --board <name> --addr %d`)"
        % (addr, port, theirs, FINGERPRINT, addr))
