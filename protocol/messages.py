"""Every message of the sxctl protocol, declared once with construct.

A request's type id is below 0x80; its reply has the same id with 0x80 set. Field units and
ranges sit beside each field (see fields.py). Changing anything here changes the schema
fingerprint, so boards and hosts built from different declarations refuse each other.
"""
import construct as c

from .fields import num, text

FW_NAME_LEN = 12

REPLY_BIT = 0x80


class Message:
    def __init__(self, type_id, name, body, doc):
        self.type_id = type_id
        self.name = name
        self.body = body
        self.doc = doc

    @property
    def is_reply(self):
        return bool(self.type_id & REPLY_BIT)


HELLO = Message(0x01, "HELLO", c.Struct(), "Ask a board who it is; answered with INFO.")

INFO = Message(0x81, "INFO", c.Struct(
    # The fingerprint comes first and stays first: a host checks it before trusting the rest.
    num("fingerprint", c.Int32ul, doc="schema fingerprint the firmware was built from"),
    num("fw_major", c.Int8ub, doc="firmware version, major"),
    num("fw_minor", c.Int8ub, doc="firmware version, minor"),
    num("fw_patch", c.Int8ub, doc="firmware version, patch"),
    text("board", FW_NAME_LEN, doc="board definition name"),
    num("heap_free", c.Int32ul, "B", "free heap after a collection"),
    num("rx_frames", c.Int32ul, "frames", "frames received with a good CRC"),
    num("crc_errors", c.Int32ul, "frames", "frames dropped for a bad CRC"),
    num("dropped", c.Int32ul, "frames", "frames dropped as malformed, oversize or unknown"),
), "Who the board is and how its link is doing.")

PING = Message(0x02, "PING", c.Struct(
    num("token", c.Int32ul, doc="echoed unchanged"),
), "Round-trip check.")

PONG = Message(0x82, "PONG", c.Struct(
    num("token", c.Int32ul, doc="the PING's token"),
), "Answer to PING.")

ERROR = Message(0xFF, "ERROR", c.Struct(
    num("request_type", c.Int8ub, doc="type id of the refused request"),
    num("code", c.Int8ub, doc="error code (ERROR_CODES)"),
    num("detail", c.Int16ul, doc="code-specific detail, e.g. the refused config item"),
), "A request was refused.")

# Error codes carried by ERROR.code.
ERROR_CODES = {
    1: "unknown message type",
    2: "bad payload length",
}

ALL = (HELLO, INFO, PING, PONG, ERROR)
BY_ID = {m.type_id: m for m in ALL}
BY_NAME = {m.name: m for m in ALL}
