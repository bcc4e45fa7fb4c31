"""A codec written from protocol/README.md alone, as a third party would: no sxproto, no firmware.

It reads the README's tables (the header, each message's fields, the frame rules stated there:
COBS, CRC-16/CCITT-FALSE big-endian, little-endian integers, NUL-padded text, trimmed record
arrays) and encodes and decodes frames with nothing but `struct`.
"""
import hashlib
import hmac
import re
import struct

_TYPES = {"u8": "B", "i8": "b", "u16": "H", "i16": "h", "u32": "I", "i32": "i"}


def tables(text):
    """{heading: [table, ...]} for every markdown table under its nearest heading; a table is a
    list of rows, each a list of cells, the first row its head."""
    out = {}
    heading = None
    in_table = False
    for line in text.splitlines():
        if line.startswith("#"):
            heading = line.lstrip("#").strip()
        if not line.startswith("|"):
            in_table = False
            continue
        if re.fullmatch(r"\|(-+\|)+", line):
            continue
        if not in_table:
            out.setdefault(heading, []).append([])
            in_table = True
        out[heading][-1].append([c.strip().replace("\\|", "|") for c in re.split(r"(?<!\\)\|", line)[1:-1]])
    return out


def table_dicts(rows):
    if not rows:
        return []
    head = rows[0]
    return [dict(zip(head, r)) for r in rows[1:]]


class Field:
    def __init__(self, name, fmt, text_len=0, count=0, trimmed=False, record=None):
        self.name, self.fmt, self.text_len = name, fmt, text_len
        self.count, self.trimmed, self.record = count, trimmed, record or []

    @property
    def size(self):
        if self.record:
            return self.count * struct.calcsize("<" + "".join(f.fmt for f in self.record))
        return struct.calcsize("<" + self.fmt)


class Message:
    def __init__(self, type_id, name, fields):
        self.type_id, self.name, self.fields = type_id, name, fields


def crc16(data):
    """CRC-16/CCITT-FALSE as the README states it: poly 0x1021, init 0xFFFF, no reflection."""
    crc = 0xFFFF
    for b in data:
        crc ^= b << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) & 0xFFFF if crc & 0x8000 else (crc << 1) & 0xFFFF
    return crc


def cobs_encode(data):
    out, block = bytearray(), bytearray()
    for b in data:
        if b == 0:
            out += bytes([len(block) + 1]) + block
            block = bytearray()
        else:
            block.append(b)
            if len(block) == 254:
                out += b"\xff" + block
                block = bytearray()
    return bytes(out + bytes([len(block) + 1]) + block)


def cobs_decode(data):
    out, i = bytearray(), 0
    while i < len(data):
        code = data[i]
        if code == 0 or i + code > len(data):
            raise ValueError("bad COBS")
        out += data[i + 1:i + code]
        i += code
        if code < 255 and i < len(data):
            out.append(0)
    return bytes(out)


class ReadmeCodec:
    def __init__(self, text):
        t = tables(text)
        self.header = [(r["header field"], _TYPES[r["type"]]) for r in table_dicts(t["Frame"][0])]
        consts = {r["constant"]: r["value"] for r in table_dicts(t["Frame"][1])}
        self.flag_signed = int(consts["FLAG_SIGNED"], 16)
        self.mac_size = int(consts["MAC_SIZE"])
        self.messages = {}
        for row in table_dicts(t["Messages"][0]):
            name = re.match(r"\[(\w+)\]", row["message"]).group(1)
            body = t.get(name, [[]])[0]
            self.messages[int(row["id"], 16)] = Message(int(row["id"], 16), name, self._fields(body))
        self.by_name = {m.name: m for m in self.messages.values()}

    @staticmethod
    def _fields(rows):
        out = []
        for r in table_dicts(rows) if rows else []:
            name, kind = r["field"], r["type"]
            if "[]." in name:  # a field of the record array above
                out[-1].record.append(Field(name.split("[].")[1], _TYPES[kind]))
                continue
            array = re.fullmatch(r"(\d+) × record \((\d+) B\)", kind)
            trimmed = re.fullmatch(r"count × record \((\d+) B\), count ≤ (\d+)", kind)
            text = re.fullmatch(r"char\[(\d+)\]", kind)
            if array:
                out.append(Field(name, "", count=int(array.group(1))))
            elif trimmed:
                out.append(Field(name, "", count=int(trimmed.group(2)), trimmed=True))
            elif text:
                out.append(Field(name, "%ss" % text.group(1), text_len=int(text.group(1))))
            else:
                out.append(Field(name, _TYPES[kind]))
        return out

    # bodies
    def pack_body(self, message, values):
        out = bytearray()
        for f in message.fields:
            if f.record:
                fmt = "<" + "".join(r.fmt for r in f.record)
                used = values["count"] if f.trimmed else f.count
                for rec in values[f.name][:used]:
                    out += struct.pack(fmt, *(rec[r.name] for r in f.record))
            elif f.text_len:
                out += values[f.name].encode("ascii").ljust(f.text_len, b"\x00")
            else:
                out += struct.pack("<" + f.fmt, values[f.name])
        return bytes(out)

    def unpack_body(self, message, body):
        values, at = {}, 0
        for f in message.fields:
            if f.record:
                fmt = "<" + "".join(r.fmt for r in f.record)
                size = struct.calcsize(fmt)
                recs = []
                for i in range(f.count):
                    chunk = body[at:at + size] if at + size <= len(body) else bytes(size)  # unsent: zero
                    recs.append(dict(zip((r.name for r in f.record), struct.unpack(fmt, chunk))))
                    at += size
                values[f.name] = recs
            else:
                size = struct.calcsize("<" + f.fmt)
                v = struct.unpack_from("<" + f.fmt, body, at)[0]
                values[f.name] = v.rstrip(b"\x00").decode("ascii") if f.text_len else v
                at += size
        return values

    def body_size(self, message, body):
        """The body length the README gives: fixed, or head + records × count when trimmed."""
        size = 0
        for f in message.fields:
            if f.record and f.trimmed:
                rec = struct.calcsize("<" + "".join(r.fmt for r in f.record))
                return size + rec * body[0]  # the trimmed array's count is the body's first field
            size += f.size
        return size

    # frames
    def encode(self, addr, flags, seq, name, values, counter=None, key=None):
        """Wire bytes; a signed frame (FLAG_SIGNED) gets its counter and the MAC made with `key`:
        HMAC-SHA256 over addr..counter, its first MAC_SIZE bytes."""
        message = self.by_name[name]
        head = struct.pack("<" + "".join(fmt for _, fmt in self.header), addr, flags, seq, message.type_id)
        frame = head + self.pack_body(message, values)
        if flags & self.flag_signed:
            frame += struct.pack("<I", counter)
            frame += hmac.new(key, frame, hashlib.sha256).digest()[:self.mac_size]
        return cobs_encode(frame + struct.pack(">H", crc16(frame))) + b"\x00"

    def decode(self, wire):
        raw = cobs_decode(wire.rstrip(b"\x00"))
        if crc16(raw[:-2]) != struct.unpack(">H", raw[-2:])[0]:
            raise ValueError("CRC")
        fmt = "<" + "".join(fmt for _, fmt in self.header)
        hsize = struct.calcsize(fmt)
        header = dict(zip((n for n, _ in self.header), struct.unpack_from(fmt, raw)))
        message = self.messages[header["type"]]
        end = len(raw) - 2
        counter = mac = None
        if header["flags"] & self.flag_signed:
            end -= 4 + self.mac_size
            counter = struct.unpack_from("<I", raw, end)[0]
            mac = raw[end + 4:end + 4 + self.mac_size]
        body = raw[hsize:end]
        if len(body) != self.body_size(message, body):
            raise ValueError("%s body of %d bytes" % (message.name, len(body)))
        return header, message.name, self.unpack_body(message, body), counter, mac
