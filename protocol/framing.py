"""The frame: header, message body and CRC, COBS-encoded and ended by a zero byte.

    wire   := 0x00? COBS(frame) 0x00         (hosts send a leading 0x00 to flush noise)
    frame  := addr u8 | flags u8 | seq u16le | type u8 | body | crc16 u16be
    crc16  := CRC-16/CCITT-FALSE over addr..body

COBS removes every zero from the frame, so a zero byte always ends one: a receiver
resynchronises at the next zero after any corruption.

A signed frame (FLAG_SIGNED in flags) carries a counter and a MAC between body and CRC:

    frame  := addr | flags | seq | type | body | counter u32le | mac[12] | crc16 u16be
    mac    := HMAC-SHA256(plant key, addr..counter), its first 12 bytes

Once a plant key is provisioned, a board applies a write (messages.WRITES) only if it is
signed with that key and its counter is above every counter the board accepted before
(docs/security.md). Unsigned frames are unchanged; reads and replies are never signed.
"""
import binascii
import hashlib
import hmac

import construct as c

from . import messages

BROADCAST = 0xFF
HOST_ADDR = 0x00

FLAG_REPLY = 0x01
FLAG_ERROR = 0x02
FLAG_SIGNED = 0x04

# 96 bits: forging needs ~2^95 tries, each a frame on a bus the board counts refusals on.
MAC_SIZE = 12

MAX_FRAME = 250  # bytes before COBS; fits one COBS block, so encoding adds exactly one byte


def crc16(data):
    """CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF), as the firmware computes it."""
    return binascii.crc_hqx(data, 0xFFFF)


def mac(key, data):
    """The MAC of a signed frame's `data` (addr..counter), as firmware/signing.py computes it."""
    return hmac.new(key, data, hashlib.sha256).digest()[:MAC_SIZE]


KEY_ID_TEXT = "sxctl key id"


def key_id(key):
    """A key's public name (SIGNING_STATE.key_id): tells keys apart without revealing them."""
    return int.from_bytes(hmac.new(key, KEY_ID_TEXT.encode(), hashlib.sha256).digest()[:4], "little")


Header = c.Struct(
    "addr" / c.Int8ub,
    "flags" / c.Int8ub,
    "seq" / c.Int16ul,
    "type" / c.Int8ub,
)

Counter = c.Int32ul

# What the MAC covers: header, body and, on a signed frame, the counter.
Signed = c.Struct(
    "header" / Header,
    # Keyed on the raw integer: construct's compiled Switch drops payloads when keyed on an Enum.
    "body" / c.Switch(c.this.header.type, {m.type_id: m.body for m in messages.ALL}),
    "counter" / c.If(c.this.header.flags & FLAG_SIGNED, Counter),
)

# Build or parse with `key=` to compute or check the MAC; without a key its bytes pass as they are.
Mac = c.IfThenElse(
    lambda ctx: ctx._params.get("key") is not None,
    c.Checksum(c.Bytes(MAC_SIZE), lambda args: mac(*args), lambda ctx: (ctx._params.key, ctx.signed.data)),
    c.Bytes(MAC_SIZE),
)

Frame = c.Struct(
    "fields" / c.RawCopy(c.Struct(
        "signed" / c.RawCopy(Signed),
        "mac" / c.If(c.this.signed.value.header.flags & FLAG_SIGNED, Mac),
    )),
    "crc" / c.Checksum(c.Int16ub, crc16, c.this.fields.data),
)

HEADER_SIZE = Header.sizeof()
CRC_SIZE = 2
SIGNATURE_SIZE = Counter.sizeof() + MAC_SIZE  # what signing adds to a frame


def cobs_encode(data):
    out = bytearray()
    block = bytearray()
    for byte in data:
        if byte == 0:
            out.append(len(block) + 1)
            out += block
            block = bytearray()
        else:
            block.append(byte)
            if len(block) == 254:
                out.append(255)
                out += block
                block = bytearray()
    out.append(len(block) + 1)
    out += block
    return bytes(out)


def cobs_decode(data):
    """Decode one COBS-encoded frame (without its zero delimiter); ValueError if malformed."""
    out = bytearray()
    i = 0
    n = len(data)
    while i < n:
        code = data[i]
        end = i + code
        if code == 0 or end > n:
            raise ValueError("malformed COBS block at byte %d" % i)
        out += data[i + 1:end]
        i = end
        if code < 255 and i < n:
            out.append(0)
    return bytes(out)
