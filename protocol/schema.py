"""The schema fingerprint: one number that changes whenever any frame or message layout does.

Like MAVLink's CRC_EXTRA, it covers names, formats, units and ranges of every field, so a
host and a board built from different declarations notice at HELLO instead of misreading.
"""
import binascii

from . import config_items, fields, framing, messages, plantlink


def canonical_text():
    lines = ["frame:" + ",".join("%s:%s" % (s.name, s.subcon.fmtstr) for s in framing.Header.subcons),
             "crc:ccitt-false:be", "cobs:max%d" % framing.MAX_FRAME,
             "signed:flag%d:counter:%s:hmac-sha256:%d:%s" % (framing.FLAG_SIGNED, framing.Counter.fmtstr,
                                                           framing.MAC_SIZE, framing.KEY_ID_TEXT),
             "writes:" + ",".join(m.name for m in messages.WRITES)]
    for table in ("MODES", "ALARMS", "EVENT_CODES", "CAL_SENSORS", "CAL_STEPS", "CAL_VERDICTS", "ERROR_CODES"):
        lines.append("%s:%r" % (table, sorted(getattr(messages, table).items())))
    for m in sorted(messages.ALL, key=lambda m: m.type_id):
        lines.append("%02x:%s:%s" % (m.type_id, m.name, ";".join(
            f.describe() for f in fields.infos(m.body))))
    lines += ["cfg:" + i.describe() for i in config_items.ITEMS]
    for name, record in sorted(plantlink.RECORDS.items()):
        lines.append("plant:%s:%s" % (name, ";".join(f.describe() for f in fields.infos(record))))
    return "\n".join(lines)


def fingerprint():
    return binascii.crc32(canonical_text().encode())


def struct_format(message):
    """The little-endian struct format of a message body."""
    return "<" + "".join(f.fmt for f in fields.infos(message.body))


class Trim:
    """Where a trimmed record array sits in a reply body (fields.records(trimmed=True)): the
    body ends after its `count` used records."""

    def __init__(self, count_at, records_at, record_size, max_count):
        self.count_at = count_at
        self.records_at = records_at
        self.record_size = record_size
        self.max_count = max_count

    def body_size(self, count):
        return self.records_at + count * self.record_size


def trim(message):
    """The Trim of a message whose last field is a trimmed record array, else None."""
    import struct

    infos = fields.infos(message.body)
    if not infos or infos[-1].record is None or not infos[-1].trimmed:
        return None
    offsets = {}
    at = 0
    for f in infos:
        offsets[f.name] = at
        at += struct.calcsize("<" + f.fmt)
    last = infos[-1]
    if infos[0].name != "count":
        raise ValueError("%s: a trimmed record array needs `count` as the first field" % message.name)
    return Trim(offsets["count"], offsets[last.name], struct.calcsize("<" + "".join(
        f.fmt for f in fields.infos(last.record))), last.count)
