"""The frame: header, message body and CRC, COBS-encoded and ended by a zero byte.

    wire   := 0x00? COBS(frame) 0x00         (hosts send a leading 0x00 to flush noise)
    frame  := addr u8 | flags u8 | seq u16le | type u8 | body | crc16 u16be
    crc16  := CRC-16/CCITT-FALSE over addr..body

COBS removes every zero from the frame, so a zero byte always ends one: a receiver
resynchronises at the next zero after any corruption.
"""
import binascii

import construct as c

from . import messages

BROADCAST = 0xFF
HOST_ADDR = 0x00

FLAG_REPLY = 0x01
FLAG_ERROR = 0x02

MAX_FRAME = 250  # bytes before COBS; fits one COBS block, so encoding adds exactly one byte


def crc16(data):
    """CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF), as the firmware computes it."""
    return binascii.crc_hqx(data, 0xFFFF)


Header = c.Struct(
    "addr" / c.Int8ub,
    "flags" / c.Int8ub,
    "seq" / c.Int16ul,
    "type" / c.Int8ub,
)

Frame = c.Struct(
    "fields" / c.RawCopy(c.Struct(
        "header" / Header,
        # Keyed on the raw integer: construct's compiled Switch drops payloads when keyed on an Enum.
        "body" / c.Switch(c.this.header.type, {m.type_id: m.body for m in messages.ALL}),
    )),
    "crc" / c.Checksum(c.Int16ub, crc16, c.this.fields.data),
)

HEADER_SIZE = Header.sizeof()
CRC_SIZE = 2


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
