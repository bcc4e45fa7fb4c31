"""Signed writes: the board's check of a write's MAC and counter once a plant key is provisioned.

`sxctl key provision` puts the key in /plant.key over USB; without that file `load()` gives
None and writes need no signature, as before. With it, the link (link.py) asks `check()`
about every write before applying it: unsigned, forged and replayed writes are refused with
an ERROR code and counted (SIGNING_STATE). Frame layout and threat notes: protocol/framing.py,
docs/security.md.

Counters survive a reset without a flash write per command: before accepting a counter above
the stored floor, the board stores a floor RESERVE above it, and accepts up to that floor
without storing again. After a reset it starts from the stored floor, so no counter it ever
accepted is accepted again; the counters it skipped are simply never used.
"""
import hashlib
import struct
from binascii import crc32
from micropython import const

import proto

KEY_PATH = proto.FILE_PLANT_KEY
# Two slots, written in turn as config.py does: a reset while one is written leaves the other.
SLOTS = (proto.FILE_PLANT_COUNTER_A, proto.FILE_PLANT_COUNTER_B)
# Counters per stored floor: 68 min of a host clock counting quarter seconds (host/sxctl/keys.py),
# so a board writes its flash at most about once an hour for signed writes.
RESERVE = const(16384)
_TOP = 0xFFFFFFFF  # the last counter; above 2^30, so no const() (32-bit small ints)
UNUSABLE = 0xFFFFFFFF  # key_id of a key file that is no key: every write is refused
_BLOCK = const(64)  # SHA-256 block size
_KEY_MIN = const(16)
_CTR_MAGIC = b"SXCT"


def pads(key):
    """HMAC's inner and outer key blocks (RFC 2104), computed once per key."""
    if len(key) > _BLOCK:
        key = hashlib.sha256(key).digest()
    block = bytearray(_BLOCK)
    block[:len(key)] = key
    return bytes(b ^ 0x36 for b in block), bytes(b ^ 0x5C for b in block)


def hmac_sha256(ipad, opad, data):
    """HMAC-SHA256 of `data` from a key's pads: MicroPython has hashlib but no hmac module."""
    h = hashlib.sha256(ipad)
    h.update(data)
    outer = hashlib.sha256(opad)
    outer.update(h.digest())
    return outer.digest()


class Signing:
    """The key (as its HMAC pads), the counter floor and the refusal counts of one board."""

    def __init__(self, key, slots=SLOTS, opener=open):
        self.unsigned = 0
        self.bad_signature = 0
        self.replayed = 0
        self._slots = slots
        self._open = opener
        if key is None:
            self._pads = None
            self.key_id = UNUSABLE
        else:
            self._pads = pads(key)
            self.key_id = struct.unpack_from("<I", self.mac(proto.KEY_ID_TEXT.encode()))[0]
        self.stored, self._slot = self._load()
        self.counter = self.stored  # a signed write's counter must be above this

    def mac(self, data):
        return hmac_sha256(self._pads[0], self._pads[1], data)

    def check(self, rx, end, signed):
        """0 if the write framed in `rx` (header and body up to `end`, then counter and MAC when
        `signed`) may be applied; else the ERROR code, the refusal counted."""
        if not signed:
            self.unsigned += 1
            return proto.ERR_SIGNATURE_REQUIRED
        if self._pads is None:
            self.bad_signature += 1
            return proto.ERR_BAD_SIGNATURE
        at = end + 4
        mac = self.mac(memoryview(rx)[:at])
        diff = 0
        for i in range(proto.MAC_SIZE):  # every byte, so timing tells nothing of where it differs
            diff |= mac[i] ^ rx[at + i]
        if diff:
            self.bad_signature += 1
            return proto.ERR_BAD_SIGNATURE
        counter = struct.unpack_from("<I", rx, end)[0]
        if counter <= self.counter:
            self.replayed += 1
            return proto.ERR_REPLAYED
        if counter > self.stored:
            try:
                self._store(min(counter + RESERVE, _TOP))
            except OSError:
                return proto.ERR_STORAGE_FAILED  # not accepted: after a reset it could come again
        self.counter = counter
        return 0

    def _load(self):
        """(highest floor in a slot whose check holds, that slot); (0, 1) on a fresh board."""
        best, slot = 0, 1
        for n, path in enumerate(self._slots):
            try:
                with self._open(path, "rb") as f:
                    data = f.read()
            except OSError:
                continue
            if len(data) == 8 and crc32(data[:4], crc32(_CTR_MAGIC)) == struct.unpack_from("<I", data, 4)[0]:
                floor = struct.unpack_from("<I", data, 0)[0]
                if floor >= best:
                    best, slot = floor, n
        return best, slot

    def _store(self, floor):
        data = bytearray(8)
        struct.pack_into("<I", data, 0, floor)
        struct.pack_into("<I", data, 4, crc32(memoryview(data)[:4], crc32(_CTR_MAGIC)))
        slot = 1 - self._slot
        with self._open(self._slots[slot], "wb") as f:
            f.write(data)
        self._slot = slot
        self.stored = floor


def load(path=KEY_PATH, slots=SLOTS, opener=open):
    """The board's Signing, or None when no key is provisioned (writes need no signature)."""
    try:
        with opener(path, "rb") as f:
            key = f.read()
    except OSError:
        return None
    # A file that is no usable key still means the plant wants signed writes: refuse them all.
    return Signing(key if _KEY_MIN <= len(key) <= _BLOCK else None, slots, opener)
