"""The MQTT face: the gateway publishes its SQLite log to a broker, store-and-forward.

Every table of the log is sent in rowid order (rows are only ever appended) with QoS 1 over a
persistent session. A cursor per table, kept in the log's own publish_cursors table, moves
only once the broker has acknowledged every message up to it: a broker outage of any length
(while the disk holds the log) loses nothing, and a restart resends only what was not
acknowledged (a resent row the historian already holds is ignored there by its key).

The publisher reads the log through its own SQLite connection in its own thread (WAL lets it
read while the bus thread writes). While the broker is away at most WINDOW chunks per table
wait in memory; the rest waits in the log.
"""
import collections
import json
import logging
import socket
import sqlite3
import threading
import time

from .. import store
from ..errors import SxctlError
from ..historian import wire

log = logging.getLogger("sxctl.serve.mqtt")
CHUNK_ROWS = 4096       # rows read per table and step; one message per stage of them
MESSAGE_ROWS = 256      # at most this many rows per message
WINDOW = 8              # chunks per table published but not yet acknowledged
POLL_S = 0.05           # how often the log is looked at for new rows
CURSOR_SAVE_S = 0.5     # cursors are written at most this often (and at stop)


class _Chunk:
    def __init__(self, last_rowid, infos):
        self.last_rowid = last_rowid
        self.infos = infos

    def acked(self):
        # not info.is_published(): it raises for a message published while the broker was away,
        # which paho keeps and sends on reconnect; its PUBACK sets the same flag
        return all(i._published for i in self.infos)


class Publisher:
    """Publishes one SQLite log to one broker. start() returns once connected or refused (a wrong
    password, a broker that is not there: both errors name what to do); afterwards the broker
    may come and go, paho reconnects."""

    def __init__(self, db, url, stages=(), clock=time.time, connect_timeout=10.0):
        self.db_path = str(db)
        self.url = url if isinstance(url, wire.BrokerUrl) else wire.BrokerUrl(url)
        self.gateway = self.url.gateway or wire.check_level(socket.gethostname().split(".")[0], "this host's name")
        self.plant = self.url.plant
        self.target = "%s:%d/%s/%s" % (self.url.host, self.url.port, self.plant, self.gateway)
        self.stages = sorted(stages)
        self.clock = clock
        self.connect_timeout = connect_timeout
        self.connected = threading.Event()
        self.refused = None
        self.stopping = threading.Event()
        self.thread = None
        self.client = None
        self.sent = {}       # table -> newest rowid handed to paho
        self.cursor = {}     # table -> newest rowid acknowledged, as stored
        self.inflight = {t: collections.deque() for t in wire.TABLES}
        self.published_rows = 0
        self.failure = None
        self.lock = threading.Lock()

    # life
    def start(self):
        self.client = c = self.url.client(self.url.client_id or "sxctl-gw-%s-%s" % (self.plant, self.gateway))
        c.max_inflight_messages_set(WINDOW * len(wire.TABLES) * 8)
        c.max_queued_messages_set(0)
        status = wire.status_topic(self.plant, self.gateway)
        c.will_set(status, json.dumps({"state": "offline", "gateway": self.gateway, "clean": False}), qos=1, retain=True)
        c.on_connect = self._on_connect
        c.on_disconnect = self._on_disconnect
        try:
            c.connect_async(self.url.host, self.url.port, keepalive=wire.KEEPALIVE_S)
        except (OSError, ValueError) as e:
            raise SxctlError("cannot reach the MQTT broker %s: %s" % (self.url.safe(), e)) from None
        c.loop_start()
        self.connected.wait(self.connect_timeout)
        if self.refused is not None:
            c.loop_stop()
            raise SxctlError("the MQTT broker %s refused the gateway: %s; check the user and its password "
                             "(?password_file=PATH or $%s)" % (self.url.safe(), self.refused, wire.PASSWORD_ENV))
        if not self.connected.is_set():
            log.warning("MQTT broker %s not reachable yet: the log is published once it is", self.url.safe())
        self.thread = threading.Thread(target=self._run, name="mqtt", daemon=True)
        self.thread.start()

    def stop(self, timeout=10.0):
        """Publish what is committed (for up to `timeout` s while connected), save the cursors,
        say offline, disconnect."""
        self.stopping.set()
        if self.thread is not None:
            self.thread.join(timeout + 5)
        if self.client is not None:
            if self.connected.is_set():
                info = self.client.publish(wire.status_topic(self.plant, self.gateway),
                                           json.dumps({"state": "offline", "gateway": self.gateway, "clean": True}),
                                           qos=1, retain=True)
                try:
                    info.wait_for_publish(2.0)
                except (RuntimeError, ValueError):
                    pass
            self.client.disconnect()
            self.client.loop_stop()

    # paho callbacks (its network thread)
    def _on_connect(self, client, userdata, flags, reason, properties):
        if reason.is_failure:
            self.refused = str(reason)
            self.connected.set()
            client.disconnect()
            return
        birth = {"state": "online", "gateway": self.gateway, "plant": self.plant, "stages": self.stages,
                 "version": wire.VERSION, "since": round(self.clock(), 3)}
        client.publish(wire.status_topic(self.plant, self.gateway), json.dumps(birth), qos=1, retain=True)
        log.info("MQTT broker %s connected", self.url.safe())
        self.connected.set()

    def _on_disconnect(self, client, userdata, flags, reason, properties):
        if self.connected.is_set() and not self.stopping.is_set():
            log.warning("MQTT broker %s lost (%s): the log waits in SQLite until it returns", self.url.safe(), reason)
        self.connected.clear()

    # the publisher thread
    def _run(self):
        try:
            db = sqlite3.connect(self.db_path, isolation_level=None, timeout=30)
            self._load_cursors(db)
            last_save = time.monotonic()
            drain_until = None
            while True:
                moved = self._advance()
                if moved and time.monotonic() - last_save >= CURSOR_SAVE_S:
                    self._save_cursors(db)
                    last_save = time.monotonic()
                if self.stopping.is_set():
                    # publish what is committed, wait for its acks, then go
                    drain_until = drain_until or time.monotonic() + 5.0
                    if not self.connected.is_set() or time.monotonic() > drain_until or (
                            not any(self.inflight.values()) and not self._send(db)):
                        break
                sent = self._send(db) if self.connected.is_set() else 0
                if not sent:
                    time.sleep(POLL_S)
            self._advance()
            self._save_cursors(db)
            db.close()
        except Exception as e:  # the log became unreadable: say so; the gateway keeps logging
            log.exception("the MQTT publisher stopped")
            self.failure = e

    def _load_cursors(self, db):
        stored = dict(db.execute("SELECT tbl, last_rowid FROM publish_cursors WHERE target = ?", (self.target,)))
        for t in wire.TABLES:
            self.cursor[t] = self.sent[t] = stored.get(t, 0)

    def _save_cursors(self, db):
        db.execute("BEGIN IMMEDIATE")
        db.executemany("INSERT INTO publish_cursors (target, tbl, last_rowid) VALUES (?, ?, ?) "
                       "ON CONFLICT (target, tbl) DO UPDATE SET last_rowid = excluded.last_rowid",
                       [(self.target, t, r) for t, r in self.cursor.items()])
        db.execute("COMMIT")

    def _advance(self):
        """Move each table's cursor over the chunks the broker acknowledged, in order."""
        moved = False
        for t, chunks in self.inflight.items():
            while chunks and chunks[0].acked():
                self.cursor[t] = chunks.popleft().last_rowid
                moved = True
        return moved

    def _send(self, db):
        """Read and publish the next chunk of each table that has room in its window; the number
        of rows published."""
        n = 0
        now = round(self.clock(), 3)
        for t, columns in wire.TABLES.items():
            if len(self.inflight[t]) >= WINDOW:
                continue
            rows = db.execute("SELECT rowid, %s FROM %s WHERE rowid > ? ORDER BY rowid LIMIT ?"
                              % (", ".join(columns), t), (self.sent[t], CHUNK_ROWS)).fetchall()
            if not rows:
                continue
            by_stage = collections.defaultdict(list)
            for r in rows:
                by_stage[r[1]].append(r[1:])
            infos = []
            for stage, stage_rows in sorted(by_stage.items()):
                topic = wire.rows_topic(self.plant, self.gateway, stage, t)
                for i in range(0, len(stage_rows), MESSAGE_ROWS):
                    infos.append(self.client.publish(topic, wire.rows_payload(
                        self.gateway, stage, t, stage_rows[i:i + MESSAGE_ROWS], now), qos=1))
            self.sent[t] = rows[-1][0]
            self.inflight[t].append(_Chunk(rows[-1][0], infos))
            n += len(rows)
        self.published_rows += n
        return n

    # reporting
    def backlog(self):
        """Rows not yet acknowledged by the broker, per table (reads the log; any thread)."""
        with sqlite3.connect("file:%s?mode=ro" % self.db_path, uri=True) as db:
            return {t: db.execute("SELECT COUNT(*) FROM %s WHERE rowid > ?" % t, (self.cursor.get(t, 0),)).fetchone()[0]
                    for t in wire.TABLES}


class MqttFace:
    """The gateway face: a Publisher of the gateway's log. `sxctl serve --mqtt URL`."""

    NAME = "mqtt"

    def __init__(self, url):
        self.url_text = url  # checked in start(), where a refusal stops the gateway cleanly
        self.publisher = None
        self.gateway = None

    def describe(self):
        p = self.publisher
        return "MQTT to %s as gateway %s (%s)" % (p.url.safe(), p.gateway,
                                                  "connected" if p.connected.is_set() else "waiting for the broker")

    def start(self, gateway):
        self.gateway = gateway
        self.publisher = Publisher(gateway.db, self.url_text, stages=gateway.addrs)
        self.publisher.start()

    def stop(self):
        """The gateway stops its faces before its logger; this face lets the logger end its last
        round first (what Gateway.stop does next anyway), so that round is published too, not
        left for the next start."""
        gw = self.gateway
        if gw.thread is not None and gw.thread.is_alive():
            gw.stopping.set()
            gw.jobs.put("stop", None)  # wakes the bus thread
            gw.thread.join(30)
        if self.publisher is not None:
            self.publisher.stop()
