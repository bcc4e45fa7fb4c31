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
