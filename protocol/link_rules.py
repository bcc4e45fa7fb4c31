"""How the bus is used: line settings, timing, sequence numbers, retries, addressing, counters.

Declared once here and printed in protocol/README.md; tests/host/test_protocol_readme.py
checks each figure against the host's defaults (buslink.BusClient), the board definitions
(boards/*.py), the config items and the firmware's behaviour.
"""
from . import config_items, framing, messages

# Line: every board definition's bus and the host's default.
BAUD = 115200
LINE = "8N1"  # 8 data bits, no parity, 1 stop bit
# The host's defaults (sxctl's BusClient): wait this long for an answer, then send the same
# frame again, this many times.
REPLY_TIMEOUT_S = 0.25
RETRIES = 2
# Board addresses a board accepts in its identity (firmware/identity.py); unprovisioned: the top one.
# 1..247 are the Modbus unit ids a device may have (0 is Modbus broadcast, 248..255 reserved): the
# gateway serves each stage under its bus address as unit id, so every address maps one to one.
BOARD_ADDRS = (1, 247)
# The firmware's loop reads the bus at least this often between scans (firmware/app.py _IDLE_MS).
BOARD_POLL_MS = 10

# Broadcast (addr BROADCAST): the requests a board acts on; it never answers a broadcast.
BROADCASTS = (messages.TIME_SYNC,)

LINK_TIMEOUT = config_items.BY_NAME["link_timeout"]
SAFE_STATE = config_items.BY_NAME["safe_state"]


def timing_rows():
    """(setting, host, board, meaning) for the timing table."""
    return [
        ("line", "%d baud %s" % (BAUD, LINE), "%d baud %s" % (BAUD, LINE),
         "UART settings of every board definition and the host's default (`--baud`)"),
        ("reply timeout", "%g s" % REPLY_TIMEOUT_S, "-",
         "how long the host waits for an answer before it sends the same frame again"),
        ("retries", "%d" % RETRIES, "-", "resends after the first try; then the host reports no answer"),
        ("answer time", "-", "within one loop pass",
         "a board reads the bus at least every %d ms between scans and answers a request as soon as its "
         "last byte is in; a scan in progress delays it (`make bench`: protocol figures)" % BOARD_POLL_MS),
        ("turnaround", "release the line right after the last byte", "drives the line only while it sends",
         "half-duplex RS-485: a board enables its driver for its answer and releases it after the last "
         "stop bit has left (firmware/hal/mcu.py), so a host must be listening from its own last byte on"),
        ("link timeout", "-", "%d %s (config item %d `%s`; 0: never)" % (
            LINK_TIMEOUT.default, LINK_TIMEOUT.unit, LINK_TIMEOUT.id, LINK_TIMEOUT.name),
         "silence after which a board goes to its safe state (see Link loss)"),
    ]


RULES = [
    ("One request at a time",
     "A host sends a request and waits for its answer (or its reply timeout) before it sends the next "
     "to any board: boards answer in the order they finish, so two requests outstanding can be "
     "answered out of order, and two boards answering at once collide on a half-duplex bus."),
    ("Sequence numbers",
     "Every request carries a 16-bit `seq`; its answer (reply or ERROR) carries the same `seq`, so a "
     "host matches an answer to its request by address and seq. A host uses a new seq for every new "
     "request (sxctl counts up by one, modulo 65536) and the same seq only for a retry."),
    ("Retries and duplicates",
     "A retry is the same frame again, byte for byte. A board keeps the answer to the most recent "
     "write (a request in the writes list) and its seq and CRC: a write that arrives with the same "
     "seq *and* CRC is a retry, answered with the kept answer and not applied again (INFO.duplicates "
     "counts it). Only the most recent write is kept. A driver that reuses a fixed seq therefore "
     "loses a deliberate repeat of an identical write (a second ALARM_ACK, a second REBOOT): it is "
     "taken for a retry. Reads are answered afresh every time."),
    ("Inter-frame rule",
     "No idle time is needed between frames: the 0x00 delimiter ends each one. A host sends a 0x00 "
     "before a request, so a receiver drops whatever partial frame noise left. A receiver treats every "
     "0x00 as the end of a frame and starts afresh after it."),
    ("Link loss",
     "After `%s` seconds (config item %d, default %d; 0: never) with no traffic, a board puts its "
     "stage in its safe state (`%s`, item %d: 0 every output off, 1 base off and the flows held) and "
     "raises the link_lost alarm; it stays there until a host sets a mode again. Traffic is every "
     "frame the board takes as a request: a good CRC, addressed to the board or broadcast, no reply "
     "flag, whatever its type or length (an unknown type or a bad length counts too). Frames for "
     "other boards, replies, corrupt frames, a retried write answered from the kept answer and a "
     "write refused for its signature do not count. A host that only reads keeps the link alive: "
     "polling every few seconds is enough." % (
         LINK_TIMEOUT.name, LINK_TIMEOUT.id, LINK_TIMEOUT.default, SAFE_STATE.name, SAFE_STATE.id)),
]

ADDRESSING = [
    ("Board addresses",
     "A board has one address, %d..%d (set by `sxctl flash --addr`; an unprovisioned board uses %d). "
     "These are the Modbus unit ids a device may have (0 is Modbus broadcast, 248..255 reserved), so "
     "`sxctl serve` serves each stage under its bus address as unit id. "
     "A request carries the address of the board it is for." % (BOARD_ADDRS + (BOARD_ADDRS[1],))),
    ("Replies",
     "An answer carries the board's own address and FLAG_REPLY (with FLAG_ERROR on ERROR). Boards "
     "ignore every frame with FLAG_REPLY set, so one board's answer is never taken as a request by "
     "another. HOST_ADDR 0x%02X never appears in a frame: requests name the board, replies name "
     "their sender." % framing.HOST_ADDR),
    ("Broadcast",
     "A frame to 0x%02X reaches every board; none answers it, not even with ERROR. Boards act on "
     "a broadcast %s only; any other broadcast request is ignored (it still counts as traffic)."
     % (framing.BROADCAST, ", ".join(m.name for m in BROADCASTS))),
    ("Counters (INFO)",
     "`rx_frames` counts the frames for this board (its address or broadcast, no reply flag, good "
     "CRC). `crc_errors` and `dropped` count every bad frame the board hears on the bus, whatever "
     "address it was meant for (a board cannot read the address of a frame that failed its CRC): "
     "on a shared bus every board counts the same noise. `duplicates` counts retried writes answered "
     "from the kept answer."),
    ("Unknown and malformed requests",
     "A frame for this board with a good CRC and an unknown type is answered with ERROR code 1; one "
     "with a known type and the wrong body length with ERROR code 2 (detail: the length received). "
     "Neither is counted as dropped. `dropped` counts frames that fail COBS decoding, are shorter "
     "than a header and CRC, or longer than MAX_FRAME (%d bytes before COBS)." % framing.MAX_FRAME),
]
