"""Field declarations: a construct subcon with its unit, scale and valid range beside it."""
import construct as c

# Struct format characters for the fixed-size integer types the protocol uses. The firmware
# codec is made of `struct` formats, so only types with a format character are allowed.
_INT_TYPES = {
    c.Int8ub: ("B", 0, 0xFF),
    c.Int8sb: ("b", -0x80, 0x7F),
    c.Int16ul: ("H", 0, 0xFFFF),
    c.Int16sl: ("h", -0x8000, 0x7FFF),
    c.Int32ul: ("I", 0, 0xFFFFFFFF),
    c.Int32sl: ("i", -0x80000000, 0x7FFFFFFF),
}


class FieldInfo:
    """What a field means: unit, scale to engineering units, and the range a sender may use."""

    def __init__(self, name, fmt, unit, scale, lo, hi, doc, text_len=0, record=None, count=0, trimmed=False):
        self.record = record  # for a record array: the element Struct
        self.count = count
        self.trimmed = trimmed  # a record array sent only up to its used records (see records())
        self.name = name
        self.fmt = fmt
        self.unit = unit
        self.scale = scale
        self.lo = lo
        self.hi = hi
        self.doc = doc
        self.text_len = text_len
        self.declared = True  # num() says whether its range was declared or is the type's

    def describe(self):
        """Canonical text of the layout, hashed into the schema fingerprint."""
        if self.record is not None:
            return "%s[%s%d]{%s}" % (self.name, "<=" if self.trimmed else "", self.count,
                                     ";".join(f.describe() for f in infos(self.record)))
        return "%s:%s:%s:%s:%s:%s" % (self.name, self.fmt, self.unit, self.scale, self.lo, self.hi)


def num(name, subcon, unit="", doc="", scale=1, lo=None, hi=None, every=False):
    """An integer field; `scale` is the engineering value of one count (e.g. 0.001 pH). Its range
    is lo..hi, or with `every` the whole type (a counter, a mask whose every bit is named, a
    sequence number). A field with neither is not `declared`: its range is only the type's, and
    every field a board sends must be declared (a test holds this) so the host can check it."""
    fmt, type_lo, type_hi = _INT_TYPES[subcon]
    declared = every or (lo is not None and hi is not None)
    lo = type_lo if lo is None else lo
    hi = type_hi if hi is None else hi
    if not type_lo <= lo <= hi <= type_hi:
        raise ValueError("field %s: range %s..%s does not fit its type" % (name, lo, hi))
    field = name / subcon * doc
    field.sx = FieldInfo(name, fmt, unit, scale, lo, hi, doc)
    field.sx.declared = declared
    return field


def text(name, length, doc=""):
    """ASCII text padded with NUL to a fixed length (fixed size keeps the firmware codec a struct)."""
    field = name / c.PaddedString(length, "ascii") * doc
    field.sx = FieldInfo(name, "%ds" % length, "", 1, 0, 0, doc, text_len=length)
    return field


def records(name, count, record, doc="", trimmed=False):
    """An array of `count` records; a `count` field before it says how many are used. Unused
    ones are zero, or with `trimmed` (the last field of a reply) not sent at all: the body then
    ends after its used records, so a short answer is a short frame, which a noisy line breaks
    less often. Declared at full size either way, so the firmware codec stays one struct
    format per record and a receiver pads a trimmed body with zeros before unpacking it."""
    field = name / c.Array(count, record) * doc
    fmt = "".join(f.fmt for f in infos(record)) * count
    field.sx = FieldInfo(name, fmt, "", 1, 0, 0, doc, record=record, count=count, trimmed=trimmed)
    return field


def infos(struct):
    """The FieldInfo of every field of a message Struct, in wire order."""
    return [sub.sx for sub in struct.subcons]
