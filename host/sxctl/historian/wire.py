"""What gateways and historians say to each other over MQTT: the broker URL, the versioned
topics and the payloads (docs/historian.md documents them for other subscribers).

Topics, version 1 (a new payload layout gets a new version level, so old subscribers never
misread it):
    sxctl/v1/<plant>/<gateway>/<stage>/<table>   rows of one table of one stage, QoS 1
    sxctl/v1/<plant>/<gateway>/status            retained birth {"state": "online", ...}; the
                                                 last will (and a clean stop) says "offline"
<table> is one of the SQLite log's tables: epochs, telemetry, events, config, gaps.

A rows payload is JSON: {"v": 1, "gateway", "stage", "table", "columns": [...], "rows": [[...]],
"units": {column: [unit, scale]}, "read_at": Unix s}. Values are the log's integers in protocol
units; value × scale is the engineering value in `unit` (0.001 × 7012 = 7.012 pH). Every row
carries its key: (stage, epoch, record) for telemetry, (stage, epoch, seq) for events.
"""
import json
import os
import ssl
import urllib.parse

from .. import store
from ..errors import SxctlError

VERSION = 1
PREFIX = "sxctl/v%d" % VERSION
TABLES = {"epochs": store.EPOCH_COLUMNS, "telemetry": store.TELEMETRY_COLUMNS, "events": store.EVENT_COLUMNS,
          "config": store.CONFIG_COLUMNS, "gaps": store.GAP_COLUMNS}
assert tuple(TABLES) == store.PUBLISHED_TABLES
UNITS = {name: [store.unit(name), store.scale(name)] for name in store.VALUE_FIELDS}
PASSWORD_ENV = "SXCTL_MQTT_PASSWORD"
DEFAULT_PORTS = {"mqtt": 1883, "mqtts": 8883}
KEEPALIVE_S = 15
# Column types beyond INTEGER NOT NULL, as the log's schema declares them (store._SCHEMA).
TEXT = {"reason", "board", "serial", "firmware", "kind", "name"}
NULLABLE = {"board", "serial", "firmware", "alarms_unacked"}


class BrokerUrl:
    """mqtt[s]://[user@]host[:port]/<plant>[/<gateway>][?password_file=F&ca=F&insecure=1].
    The password comes from the file `password_file` or from $SXCTL_MQTT_PASSWORD, never from
    the URL (it would show in `ps` and in logs)."""

    def __init__(self, text, need_plant=True):
        self.text = text
        u = urllib.parse.urlsplit(text)
        if u.scheme not in DEFAULT_PORTS:
            raise SxctlError("%s: a broker URL starts mqtt:// or mqtts://, e.g. mqtt://gw1@broker:1883/plant1" % text)
        if u.password is not None:
            raise SxctlError("the broker URL holds a password: give it in a file (?password_file=PATH) or in $%s, "
                             "never on the command line" % PASSWORD_ENV)
        self.tls = u.scheme == "mqtts"
        self.host = u.hostname or "localhost"
        try:
            self.port = u.port or DEFAULT_PORTS[u.scheme]
        except ValueError:
            raise SxctlError("%s: the port must be a number" % text) from None
        self.user = urllib.parse.unquote(u.username) if u.username else None
        parts = [p for p in u.path.split("/") if p]
        if need_plant and not parts:
            raise SxctlError("%s: name the plant in the path, e.g. mqtt://broker:1883/plant1" % text)
        if len(parts) > 2:
            raise SxctlError("%s: the path is /<plant> or /<plant>/<gateway>" % text)
        for p in parts:
            check_level(p, text)
        self.plant = parts[0] if parts else None
        self.gateway = parts[1] if len(parts) > 1 else None
        query = urllib.parse.parse_qs(u.query)
        unknown = set(query) - {"password_file", "ca", "insecure", "client_id"}
        if unknown:
            raise SxctlError("%s: unknown option %s; the options are password_file, ca, insecure, client_id"
                             % (text, ", ".join(sorted(unknown))))
        self.password_file = query.get("password_file", [None])[0]
        self.ca = query.get("ca", [None])[0]
        self.insecure = query.get("insecure", ["0"])[0] in ("1", "true", "yes")
        self.client_id = query.get("client_id", [None])[0]

    def safe(self):
        """The URL as it may be shown and stored: no query (file names only, but kept short)."""
        return "%s://%s%s:%d/%s" % ("mqtts" if self.tls else "mqtt", self.user + "@" if self.user else "",
                                   self.host, self.port, "/".join(p for p in (self.plant, self.gateway) if p))

    def password(self):
        if self.password_file:
            try:
                with open(self.password_file) as f:
                    return f.read().strip("\r\n")
            except OSError as e:
                raise SxctlError("cannot read the broker password file %s: %s" % (self.password_file, e.strerror)) from None
        return os.environ.get(PASSWORD_ENV)

    def client(self, client_id, clean_session=False, manual_ack=False):
        """A paho client set up for this broker (not yet connected): MQTT 3.1.1, a persistent
        session unless clean_session, credentials and TLS as the URL says."""
        import paho.mqtt.client as mqtt

        c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=clean_session,
                        protocol=mqtt.MQTTv311, manual_ack=manual_ack)
        if self.user:
            c.username_pw_set(self.user, self.password())
        if self.tls:
            context = ssl.create_default_context(cafile=self.ca)
            if self.insecure:
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
            c.tls_set_context(context)
        c.reconnect_delay_set(min_delay=1, max_delay=5)
        return c


def check_level(name, where):
    if not name or any(ch in name for ch in "+#/\0") or name.startswith("$"):
        raise SxctlError("%s: %r cannot be a topic level (no + # / and no leading $)" % (where, name))
    return name


def rows_topic(plant, gateway, stage, table):
    return "%s/%s/%s/%d/%s" % (PREFIX, plant, gateway, stage, table)


def status_topic(plant, gateway):
    return "%s/%s/%s/status" % (PREFIX, plant, gateway)


def subscriptions(plant):
    """The topic filters a historian of `plant` subscribes to."""
    return ["%s/%s/+/+/+" % (PREFIX, plant), "%s/%s/+/status" % (PREFIX, plant)]


def rows_payload(gateway, stage, table, rows, read_at):
    body = {"v": VERSION, "gateway": gateway, "stage": stage, "table": table, "columns": list(TABLES[table]),
            "rows": [list(r) for r in rows], "read_at": read_at}
    if table == "telemetry":
        body["units"] = UNITS
    return json.dumps(body, separators=(",", ":")).encode()


class BadPayload(ValueError):
    pass


def parse_rows(topic, payload):
    """(gateway, table, rows as lists in the table's column order, read_at) of a rows message;
    BadPayload if it is not one of version 1 or does not match its topic. The values' types are
    left to the database's columns (pgstore.Writer refuses a message holding a wrong one)."""
    parts = topic.split("/")
    if len(parts) != 6 or "/".join(parts[:2]) != PREFIX:
        raise BadPayload("topic %s is not a v%d rows topic" % (topic, VERSION))
    _, _, plant, gateway, stage, table = parts
    if not stage.isdigit():
        raise BadPayload("topic %s: the stage level is a number" % topic)
    try:
        body = json.loads(payload)
    except (ValueError, UnicodeDecodeError) as e:
        raise BadPayload("not JSON: %s" % e) from None
    if not isinstance(body, dict) or body.get("v") != VERSION:
        raise BadPayload("payload version %r, this historian reads %d" % (body.get("v") if isinstance(body, dict) else None, VERSION))
    if table not in TABLES or body.get("table") != table or body.get("gateway") != gateway \
            or str(body.get("stage")) != stage:
        raise BadPayload("payload does not match its topic %s" % topic)
    columns = TABLES[table]
    sent = body.get("columns")
    if not isinstance(sent, list) or set(sent) != set(columns):
        raise BadPayload("columns %r, expected %s" % (sent, ", ".join(columns)))
    order = [sent.index(c) for c in columns]
    stage_at = columns.index("stage")
    rows = body.get("rows")
    if not isinstance(rows, list):
        raise BadPayload("no rows")
    n = len(columns)
    if order != list(range(n)):
        rows = [[r[i] for i in order] if isinstance(r, list) and len(r) == n else r for r in rows]
    for r in rows:
        # the shape here; each value's type the database checks (a bad one refuses the message there)
        if not isinstance(r, list) or len(r) != n:
            raise BadPayload("a row of %s has %s values, expected %d" % (table, len(r) if isinstance(r, list) else "no", n))
        if r[stage_at] != int(stage):
            raise BadPayload("a row of stage %r in a message of stage %s" % (r[stage_at], stage))
    return gateway, table, rows, body.get("read_at")
