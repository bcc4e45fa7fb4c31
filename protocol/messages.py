"""Every message of the sxctl protocol, declared once with construct.

A request's type id is below 0x80; its reply has the same id with 0x80 set. Field units and
ranges sit beside each field (see fields.py). Changing anything here changes the schema
fingerprint, so boards and hosts built from different declarations refuse each other.
"""
import construct as c

from .fields import num, records, text

FW_NAME_LEN = 12
SERIAL_LEN = 12
BACKLOG_RECORDS = 6   # telemetry records per BACKLOG reply (fits one frame)
EVENT_RECORDS = 8     # events per EVENTS reply
CONFIG_WRITE_ITEMS = 8  # items per CONFIG_WRITE, applied all or none

REPLY_BIT = 0x80

# INFO.uptime_s above this is not believed: ten years of 365.25 days.
UPTIME_MAX_S = 315_576_000
# INFO.heap_free above this is not believed: far above any microcontroller's RAM.
HEAP_MAX_B = 1 << 30

# Modes (TELEMETRY.mode, SET_MODE.mode).
MODES = {0: "off", 1: "manual", 2: "auto", 3: "hold"}

# Alarm bits (TELEMETRY.alarms_active/alarms_unacked, ALARM_ACK.mask, EVENT.alarm). Each alarm
# has two states apart, as ISA-18.2 and EEMUA 191 keep them: active (its condition is present
# now) and unacknowledged (raised since the operator last acknowledged it). Normal: neither;
# a raise sets both; an acknowledge clears unacknowledged; a condition that goes clears active.
ALARMS = {
    0: "ph_deviation_warn", 1: "ph_deviation_alarm", 2: "ph_high", 3: "ph_low",
    4: "ph_sensor_fault", 5: "ph_stuck", 6: "orp_fault", 7: "flow_aq_fault",
    8: "flow_org_fault", 9: "no_flow", 10: "dose_capped", 11: "link_lost",
    12: "temperature_fault", 13: "controller_fault", 14: "watchdog_reset", 15: "dose_trip",
}

# Event codes (EVENTS records' code); for alarm events `alarm` is the ALARMS bit number.
EVENT_CODES = {1: "raised", 2: "cleared", 3: "acknowledged", 4: "config", 5: "calibration", 6: "boot"}

# Calibration steps (CALIBRATE.step) and sensors (CALIBRATE.sensor).
CAL_SENSORS = {0: "ph", 1: "orp", 2: "flow_aq", 3: "flow_org"}
CAL_STEPS = {0: "status", 1: "begin", 2: "point", 3: "commit", 4: "abort"}
CAL_VERDICTS = {0: "none", 1: "ok", 2: "warn", 3: "reject"}


class Message:
    def __init__(self, type_id, name, body, doc):
        self.type_id = type_id
        self.name = name
        self.body = body
        self.doc = doc

    @property
    def is_reply(self):
        return bool(self.type_id & REPLY_BIT)


def telemetry_fields():
    return (
        num("record", c.Int32ul, "", "telemetry record sequence number (backlog key)", every=True),
        num("time_s", c.Int32ul, "s", "board time: Unix seconds once synced, else seconds since boot (the host also refuses times ahead of its clock)", every=True),
        num("ph", c.Int16sl, "pH", "measured pH (temperature compensated)", 0.001, -2000, 16000),
        num("ph_setpoint", c.Int16sl, "pH", "pH setpoint", 0.001, -2000, 16000),
        num("orp_mv", c.Int16sl, "mV", "ORP vs Ag/AgCl", 1, -2000, 2000),
        num("temperature", c.Int16sl, "°C", "aqueous temperature", 0.01, -2000, 15000),
        num("flow_aq", c.Int16ul, "L/min", "aqueous flow", 0.001, every=True),
        num("flow_org", c.Int16ul, "L/min", "organic flow", 0.001, every=True),
        num("base_dose", c.Int16ul, "mL/min", "base (neutraliser) dose output", 0.01, every=True),
        num("reagent_dose", c.Int16ul, "mL/min", "acid or ORP reagent dose output", 0.01, every=True),
        num("aq_pump", c.Int8ub, "%", "aqueous pump output", 0.5, 0, 200),
        num("org_pump", c.Int8ub, "%", "organic pump output", 0.5, 0, 200),
        num("valves", c.Int8ub, "", "valve outputs, one bit each", every=True),
        num("mode", c.Int8ub, "", "MODES", 1, 0, 3),
        num("alarms_active", c.Int16ul, "", "alarm bits whose condition is present now (ALARMS)", every=True),
        num("alarms_unacked", c.Int16ul, "", "alarm bits raised and not yet acknowledged, present or not (ALARMS)", every=True),
    )


TelemetryRecord = c.Struct(*telemetry_fields())

HELLO = Message(0x01, "HELLO", c.Struct(), "Ask a board who it is; answered with INFO.")

INFO = Message(0x81, "INFO", c.Struct(
    # The fingerprint comes first and stays first: a host checks it before trusting the rest.
    num("fingerprint", c.Int32ul, doc="schema fingerprint the firmware was built from", every=True),
    num("fw_major", c.Int8ub, doc="firmware version, major", every=True),
    num("fw_minor", c.Int8ub, doc="firmware version, minor", every=True),
    num("fw_patch", c.Int8ub, doc="firmware version, patch", every=True),
    text("board", FW_NAME_LEN, doc="board definition name"),
    text("serial", SERIAL_LEN, doc="unit serial number"),
    num("heap_free", c.Int32ul, "B", "free heap after a collection (1 GiB at most: `sxctl sim --heapsize` goes no higher)", lo=0, hi=HEAP_MAX_B),
    num("uptime_s", c.Int32ul, "s", "seconds since reset (ten years at most: a board that says more counts wrong)", lo=0, hi=UPTIME_MAX_S),
    num("mode", c.Int8ub, "", "MODES", 1, 0, 3),
    num("alarms", c.Int16ul, "", "alarm bits active or not yet acknowledged (ALARMS); TELEMETRY has the two apart", every=True),
    num("cal_id", c.Int16ul, "", "id of the pH calibration in use (0: none)", every=True),
    num("config_version", c.Int16ul, "", "incremented by every applied config write", every=True),
    num("rx_frames", c.Int32ul, "frames", "frames for this board (its address or broadcast, no reply flag) with a good CRC", every=True),
    num("crc_errors", c.Int32ul, "frames", "frames on the bus, for any address, dropped for a bad CRC", every=True),
    num("dropped", c.Int32ul, "frames", "frames on the bus, for any address, dropped as malformed (bad COBS, shorter than header and CRC) or longer than MAX_FRAME", every=True),
    num("duplicates", c.Int32ul, "frames", "retried writes answered without applying again", every=True),
), "Who the board is and how its link is doing.")

PING = Message(0x02, "PING", c.Struct(
    num("token", c.Int32ul, doc="echoed unchanged"),
), "Round-trip check.")

PONG = Message(0x82, "PONG", c.Struct(
    num("token", c.Int32ul, doc="the PING's token", every=True),
), "Answer to PING.")

GET_TELEMETRY = Message(0x03, "GET_TELEMETRY", c.Struct(), "Ask for the latest telemetry snapshot.")

TELEMETRY = Message(0x83, "TELEMETRY", TelemetryRecord, "One telemetry snapshot of the stage.")

STREAM = Message(0x04, "STREAM", c.Struct(
    num("period_ms", c.Int16ul, "ms", "send TELEMETRY unasked at this period; 0 stops", 1, 0, 60000),
), "Telemetry streaming, for a point-to-point link (on a shared bus, poll instead).")

STREAM_ACK = Message(0x84, "STREAM_ACK", c.Struct(
    num("period_ms", c.Int16ul, "ms", "period now in force (clamped to the board's scan)", 1, 0, 60000),
), "Streaming period applied.")

CONFIG_READ = Message(0x05, "CONFIG_READ", c.Struct(
    num("item", c.Int16ul, doc="config item id (Configuration items)"),
), "Read one configuration item.")

CONFIG_VALUE = Message(0x85, "CONFIG_VALUE", c.Struct(
    num("item", c.Int16ul, doc="config item id (the host checks it is the item it asked for)", every=True),
    num("value", c.Int32sl, doc="value in the item's raw unit (the host checks the item's own range)", every=True),
    num("config_version", c.Int16ul, doc="config version the value belongs to", every=True),
), "A configuration item's value.")

CONFIG_WRITE = Message(0x06, "CONFIG_WRITE", c.Struct(
    num("count", c.Int8ub, doc="items used; the unused records are zero", lo=1, hi=CONFIG_WRITE_ITEMS),
    records("items", CONFIG_WRITE_ITEMS, c.Struct(
        num("item", c.Int16ul, doc="config item id"),
        num("value", c.Int32sl, doc="value in the item's raw unit"),
    )),
), "Write up to 8 items, range-checked and applied all or none, then stored atomically.")

CONFIG_ACK = Message(0x86, "CONFIG_ACK", c.Struct(
    num("count", c.Int8ub, doc="items applied", lo=0, hi=CONFIG_WRITE_ITEMS),
    num("config_version", c.Int16ul, doc="config version after the write", every=True),
), "Configuration written and stored.")

SET_MODE = Message(0x07, "SET_MODE", c.Struct(
    num("mode", c.Int8ub, "", "MODES", 1, 0, 3),
    num("manual_output", c.Int16ul, "mL/min", "base dose in manual mode (bumpless if 0xFFFF)", 0.01),
), "Change the stage's mode.")

MODE_ACK = Message(0x87, "MODE_ACK", c.Struct(
    num("mode", c.Int8ub, "", "mode now in force", 1, 0, 3),
    num("manual_output", c.Int16ul, "mL/min", "manual base dose in force", 0.01, every=True),
), "Mode applied.")

SET_SETPOINT = Message(0x08, "SET_SETPOINT", c.Struct(
    num("loop", c.Int8ub, "", "0 pH (0.001 pH), 1 ORP (mV), 2 aqueous flow, 3 organic flow (mL/min)", 1, 0, 3),
    num("value", c.Int32sl, "", "setpoint in the loop's raw unit"),
), "Change one loop's setpoint.")

SETPOINT_ACK = Message(0x88, "SETPOINT_ACK", c.Struct(
    num("loop", c.Int8ub, "", "loop", 1, 0, 3),
    num("value", c.Int32sl, "", "setpoint now in force (after limits)", every=True),
), "Setpoint applied.")

CALIBRATE = Message(0x09, "CALIBRATE", c.Struct(
    num("sensor", c.Int8ub, "", "CAL_SENSORS", 1, 0, 3),
    num("step", c.Int8ub, "", "CAL_STEPS", 1, 0, 4),
    num("reference", c.Int32sl, "", "pH: the buffer's pH at its temperature (0.001 pH, from the host's "
        "buffer tables, sxproto/buffers.py); ORP: the solution (mV); flow: the volume (mL)"),
    num("temperature", c.Int16sl, "°C", "buffer temperature; -32768: use the probe", 0.01),
), "One step of a calibration: begin, take a point, commit or abort.")

CAL_STATUS = Message(0x89, "CAL_STATUS", c.Struct(
    num("sensor", c.Int8ub, "", "CAL_SENSORS", 1, 0, 3),
    num("points", c.Int8ub, "", "points taken in this session", every=True),
    num("live_uv", c.Int32sl, "µV", "live electrode signal", every=True),
    num("live_value", c.Int32sl, "", "live reading in the sensor's raw unit", every=True),
    num("stable", c.Int8ub, "", "1 when the reading has been stable long enough", 1, 0, 1),
    num("slope_acid", c.Int16ul, "%", "acid-side slope", 0.01, every=True),
    num("slope_base", c.Int16ul, "%", "base-side slope", 0.01, every=True),
    num("offset_uv", c.Int32sl, "µV", "zero offset", every=True),
    num("verdict", c.Int8ub, "", "CAL_VERDICTS", 1, 0, 3),
    num("cal_id", c.Int16ul, "", "calibration id in use", every=True),
), "Where a calibration stands.")

EVENTS_READ = Message(0x0A, "EVENTS_READ", c.Struct(
    num("since", c.Int32ul, doc="return events with a sequence number above this"),
), "Read queued events.")

EVENTS = Message(0x8A, "EVENTS", c.Struct(
    num("count", c.Int8ub, doc="events sent", lo=0, hi=EVENT_RECORDS),
    num("latest", c.Int32ul, doc="newest event sequence number on the board", every=True),
    records("events", EVENT_RECORDS, c.Struct(
        num("seq", c.Int32ul, doc="event sequence number", every=True),
        num("time_s", c.Int32ul, "s", "board time", every=True),
        num("code", c.Int8ub, doc="EVENT_CODES", lo=min(EVENT_CODES), hi=max(EVENT_CODES)),
        num("alarm", c.Int8ub, doc="alarm bit number (ALARMS) or item", every=True),
        num("value", c.Int16sl, doc="reading when it happened, raw unit", every=True),
    ), trimmed=True),
), "Events and alarms, oldest first; the body ends after its `count` events.")

ALARM_ACK = Message(0x0B, "ALARM_ACK", c.Struct(
    num("mask", c.Int16ul, doc="alarm bits to acknowledge"),
), "Acknowledge latched alarms.")

ALARM_STATE = Message(0x8B, "ALARM_STATE", c.Struct(
    num("alarms_active", c.Int16ul, doc="alarm bits whose condition is present now", every=True),
    num("alarms_unacked", c.Int16ul, doc="alarm bits raised and not yet acknowledged, present or not", every=True),
), "Alarm state after an acknowledge.")

ALARMS_READ = Message(0x11, "ALARMS_READ", c.Struct(),
    "Read the alarm state (answered with ALARM_STATE) without acknowledging anything: a read, never signed.")

BACKLOG_READ = Message(0x0C, "BACKLOG_READ", c.Struct(
    num("since", c.Int32ul, doc="return records with a sequence number above this"),
    num("count", c.Int8ub, doc="most records wanted (0: as many as fit, %d); fewer make a shorter reply" % BACKLOG_RECORDS,
        lo=0, hi=BACKLOG_RECORDS),
), "Read stored telemetry records, to fill a gap after an outage.")

BACKLOG = Message(0x8C, "BACKLOG", c.Struct(
    num("count", c.Int8ub, doc="records sent", lo=0, hi=BACKLOG_RECORDS),
    num("oldest", c.Int32ul, doc="oldest record still on the board", every=True),
    num("latest", c.Int32ul, doc="newest record on the board", every=True),
    records("records", BACKLOG_RECORDS, TelemetryRecord, trimmed=True),
), "Stored telemetry records, oldest first; the body ends after its `count` records.")

TIME_SYNC = Message(0x0D, "TIME_SYNC", c.Struct(
    num("unix_s", c.Int32ul, "s", "host time"),
), "Set the board clock.")

TIME_ACK = Message(0x8D, "TIME_ACK", c.Struct(
    num("unix_s", c.Int32ul, "s", "board time now", every=True),
), "Board clock set.")

REBOOT = Message(0x0E, "REBOOT", c.Struct(
    num("magic", c.Int32ul, doc="must be 0x52425430 ('RBT0')"),
), "Restart the board (outputs off first).")

TO_REPL = Message(0x0F, "TO_REPL", c.Struct(
    num("magic", c.Int32ul, doc="must be 0x5245504C ('REPL')"),
), "Reboot into the maintenance boot (outputs off first): no watchdog, mode off with INFO serial "
   "'maintenance', the bus answered and the USB REPL free for flashing; any reset, or 600 s without "
   "USB activity, returns the board to control.")

SIGNING_READ = Message(0x10, "SIGNING_READ", c.Struct(),
    "Ask whether writes must be signed, the counter they must exceed, and the refusals so far.")

SIGNING_STATE = Message(0x90, "SIGNING_STATE", c.Struct(
    num("key_id", c.Int32ul, doc="plant key id (framing: first 4 bytes of its HMAC of 'sxctl key id', "
        "little-endian); 0: no key, writes need no signature; 0xFFFFFFFF: key file unusable, every write refused", every=True),
    num("counter", c.Int32ul, doc="a signed write's counter must be above this", every=True),
    num("stored", c.Int32ul, doc="counter floor stored on the board's flash: after a reset, the floor", every=True),
    num("unsigned", c.Int32ul, "frames", "writes refused since reset: no signature", every=True),
    num("bad_signature", c.Int32ul, "frames", "writes refused since reset: MAC not made with the key", every=True),
    num("replayed", c.Int32ul, "frames", "writes refused since reset: counter not above the floor", every=True),
), "How the board checks signed writes (docs/security.md).")

ACK = Message(0x8E, "ACK", c.Struct(
    num("request_type", c.Int8ub, doc="type id of the request done", every=True),
), "A request without data of its own was done.")

ERROR = Message(0xFF, "ERROR", c.Struct(
    num("request_type", c.Int8ub, doc="type id of the refused request", every=True),
    num("code", c.Int8ub, doc="error code (ERROR_CODES; the host names one it does not know by its number)", every=True),
    num("detail", c.Int16ul, doc="what the code names (Error codes); 0 where it names nothing", every=True),
), "A request was refused.")

# Error codes carried by ERROR.code.
ERROR_CODES = {
    1: "unknown message type",
    2: "bad payload length",
    3: "unknown config item",
    4: "value out of range",
    5: "config rule violated",
    6: "bad magic",
    7: "not allowed in this mode",
    8: "calibration rejected",
    9: "storage failed",
    10: "signature required",
    11: "bad signature",
    12: "replayed",
    13: "out of memory",
    14: "firmware fault",
}

# What ERROR.detail holds for each code, and when the code is sent: the protocol reference
# prints this beside ERROR_CODES, and tests/firmware pin each on the board.
ERROR_DETAILS = {
    1: ("0", "the request's type is no request this firmware knows (the frame itself was good)"),
    2: ("the body length received", "the body is not the request's fixed size"),
    3: ("the item id", "CONFIG_READ or CONFIG_WRITE names an item the board does not have"),
    4: ("the item id for a config item's value; else the refused field's value",
        "a config item's value is outside its range (CONFIG_WRITE, SET_SETPOINT), or a request field "
        "is outside its range: SET_MODE.mode, SET_SETPOINT.loop, CONFIG_WRITE.count, BACKLOG_READ.count, "
        "CALIBRATE.sensor"),
    5: ("the item id the rule names", "the values after the write break a cross-field rule (Configuration rules)"),
    6: ("0", "REBOOT or TO_REPL without its magic"),
    7: ("0", "the board cannot do it now: a calibration step for a sensor without a session; "
         "any request but HELLO and PING on the fail-safe firmware"),
    8: ("0", "a calibration commit without points, or with points the acceptance limits reject"),
    9: ("0", "the config or the signing counter could not be stored; the old one stays in force"),
    10: ("0", "a plant key is provisioned and the write is not signed"),
    11: ("0", "the MAC was not made with the board's plant key"),
    12: ("0", "the counter is not above SIGNING_STATE.counter"),
    13: ("0", "the request needed more heap than was free; nothing changed"),
    14: ("0", "the request failed inside the firmware; nothing changed and the stage kept running"),
}
# Every error a CALIBRATE request gets carries its sensor in `detail` instead.
ERROR_DETAIL_CALIBRATE = "CALIBRATE.sensor"

REBOOT_MAGIC = 0x52425430
TO_REPL_MAGIC = 0x5245504C

ALL = (HELLO, INFO, PING, PONG, GET_TELEMETRY, TELEMETRY, STREAM, STREAM_ACK, CONFIG_READ,
       CONFIG_VALUE, CONFIG_WRITE, CONFIG_ACK, SET_MODE, MODE_ACK, SET_SETPOINT, SETPOINT_ACK,
       CALIBRATE, CAL_STATUS, EVENTS_READ, EVENTS, ALARM_ACK, ALARM_STATE, BACKLOG_READ, BACKLOG,
       TIME_SYNC, TIME_ACK, REBOOT, TO_REPL, SIGNING_READ, SIGNING_STATE, ALARMS_READ, ACK, ERROR)
BY_ID = {m.type_id: m for m in ALL}
BY_NAME = {m.name: m for m in ALL}

# Requests that change state: a retry with the same sequence number is answered, not re-applied.
# Once a board holds a plant key, it applies them only signed (framing.py, docs/security.md).
WRITES = (STREAM, CONFIG_WRITE, SET_MODE, SET_SETPOINT, CALIBRATE, ALARM_ACK, TIME_SYNC, REBOOT, TO_REPL)
