"""The historian: subscribes to a plant's topics and writes what comes into PostgreSQL.

Messages arrive over a persistent session with QoS 1 and manual acknowledgement: paho's network
thread queues them, the main thread writes what has come in as one batch, in one transaction,
and acknowledges each message to the broker only after that transaction committed. A historian
killed at any point therefore leaves every unacknowledged message with the broker, which
delivers it again; a row delivered twice is stored once (pgstore's keys). A database that fails
(restarted, unreachable) is reconnected and the same batch written again; nothing is
acknowledged meanwhile, so the broker holds the rest.
"""
import collections
import json
import logging
import queue
import threading
import time

from ..errors import SxctlError
from . import pgstore, wire

log = logging.getLogger("sxctl.historian")
BATCH_MESSAGES = 400      # at most this many messages per transaction
LINGER_S = 0.01           # after the first message, wait this long for more to join its batch
RETRY_S = (0.2, 0.5, 1.0, 2.0, 5.0)


class _Refused(Exception):
    """The database refused a batch's data (not the connection): a malformed message in it."""


class Historian:
    def __init__(self, broker_url, db_url, name="historian", clock=time.time):
        self.url = broker_url if isinstance(broker_url, wire.BrokerUrl) else wire.BrokerUrl(broker_url)
        if self.url.gateway:
            raise SxctlError("%s: a historian subscribes to a whole plant: give mqtt://host:port/<plant>" % broker_url)
        self.db_url = db_url
        self.name = wire.check_level(name, "--name")
        self.clock = clock
        self.inbox = queue.Queue()
        self.connected = threading.Event()
        self.subscribed = threading.Event()
        self.refused = None
        self.stopping = threading.Event()
        self.client = None
        self.writer = pgstore.Writer(db_url)
        # what it did, for the status line and the tests
        self.rows_in = 0          # rows received (with repeats)
        self.rows_new = 0         # rows the database did not hold yet
        self.bad = 0              # messages dropped as malformed (acknowledged: they never become good)
        self.batches = 0
        self.lag_s = None         # commit time minus the newest batch's read time at its gateway
        self.lags = collections.deque(maxlen=10000)
        self.db_failures = 0
        # Connections to the broker so far. A message id means something only on the connection
        # that delivered it: after a reconnect, an old id may name another message, so messages
        # of an earlier connection are not acknowledged (the broker delivers them again).
        self.generation = 0

    # paho (network thread)
    def _on_connect(self, client, userdata, flags, reason, properties):
        if reason.is_failure:
            self.refused = str(reason)
            self.connected.set()
            client.disconnect()
            return
        self.generation += 1
        client.subscribe([(f, 1) for f in wire.subscriptions(self.url.plant)])
        self.connected.set()
        log.info("broker %s connected%s", self.url.safe(), " (session resumed)" if flags.session_present else "")

    def _on_subscribe(self, client, userdata, mid, reasons, properties):
        if not self.subscribed.is_set():
            log.info("subscribed to plant %s", self.url.plant)
        self.subscribed.set()

    def _on_disconnect(self, client, userdata, flags, reason, properties):
        if not self.stopping.is_set():
            log.warning("broker %s lost (%s): reconnecting", self.url.safe(), reason)
        self.connected.clear()

    def _on_message(self, client, userdata, message):
        self.inbox.put((self.generation, message))

    # life
    def start(self, connect_timeout=10.0):
        self._open_db()
        c = self.client = self.url.client(self.url.client_id or "sxctl-historian-%s-%s" % (self.url.plant, self.name),
                                          manual_ack=True)
        c.on_connect, c.on_disconnect = self._on_connect, self._on_disconnect
        c.on_message, c.on_subscribe = self._on_message, self._on_subscribe
        try:
            c.connect_async(self.url.host, self.url.port, keepalive=wire.KEEPALIVE_S)
        except (OSError, ValueError) as e:
            raise SxctlError("cannot reach the MQTT broker %s: %s" % (self.url.safe(), e)) from None
        c.loop_start()
        self.connected.wait(connect_timeout)
        if self.refused is not None:
            c.loop_stop()
            raise SxctlError("the MQTT broker %s refused the historian: %s; check the user and its password "
                             "(?password_file=PATH or $%s)" % (self.url.safe(), self.refused, wire.PASSWORD_ENV))
        if not self.connected.is_set():
            log.warning("MQTT broker %s not reachable yet; waiting for it", self.url.safe())

    def _open_db(self):
        self.writer.close()
        self.writer.open()

    def stop(self):
        self.stopping.set()
        if self.client is not None:
            self.client.disconnect()
            self.client.loop_stop()
        self.writer.close()

    def run(self, until=None):
        """Write batches until stop() or until(self) is true."""
        while not self.stopping.is_set() and not (until and until(self)):
            batch = self._collect()
            if batch:
                self._write(batch)

    def _collect(self):
        try:
            first = self.inbox.get(timeout=0.2)
        except queue.Empty:
            return []
        batch = [first]
        deadline = time.monotonic() + LINGER_S
        while len(batch) < BATCH_MESSAGES:
            try:
                batch.append(self.inbox.get(timeout=max(0.0, deadline - time.monotonic())))
            except queue.Empty:
                break
        return batch

    def _write(self, batch):
        statuses, read_at, messages = [], {}, []
        for _, m in batch:
            if m.topic.endswith("/status"):
                try:
                    s = json.loads(m.payload)
                    statuses.append((m.topic.split("/")[3], str(s["state"]), s.get("since"),
                                     ",".join(map(str, s.get("stages", [])))))
                except (ValueError, KeyError, TypeError, AttributeError, UnicodeDecodeError):
                    self.bad += 1
                continue
            try:
                gateway, table, got, sent_at = wire.parse_rows(m.topic, m.payload)
            except wire.BadPayload as e:
                log.warning("dropped a message on %s: %s", m.topic, e)
                self.bad += 1
                continue
            messages.append((m.topic, table, [[gateway] + r for r in got]))
            self.rows_in += len(got)
            if isinstance(sent_at, (int, float)):
                read_at[gateway] = max(read_at.get(gateway, 0), sent_at)
        rows = collections.defaultdict(list)
        for _, table, got in messages:
            rows[table] += got
        try:
            new = self._commit(rows, statuses, read_at)
        except _Refused:
            # a value the schema refuses (a text where a number goes, a missing one): find the
            # message that holds it, one transaction per message, and drop only that one
            new = collections.Counter()
            for topic, table, got in messages:
                try:
                    new.update(self._commit({table: got}, (), {}))
                except _Refused as e:
                    log.warning("dropped a message on %s: the database refused it: %s", topic, e)
                    self.bad += 1
            if statuses:
                self._commit({}, statuses, read_at)
        if new is None:
            return  # stopping before it was written: unacknowledged, the broker delivers it again
        # committed: now, and only now, the broker may forget these messages
        for generation, m in batch:
            if generation == self.generation and m.qos:
                self.client.ack(m.mid, m.qos)
        self.batches += 1
        self.rows_new += sum(new.values())
        if read_at:
            self.lag_s = self.clock() - max(read_at.values())
            self.lags.append(self.lag_s)

    def _commit(self, rows, statuses, read_at):
        """Write one transaction, again and again while the database is away; None if stopped
        first. Raises _Refused if the database refuses the data itself."""
        import psycopg

        for attempt in range(10 ** 9):
            if self.stopping.is_set() and attempt:
                return None
            try:
                if self.writer.conn is None:
                    self._open_db()
                now = self.clock()
                return self.writer.write(rows, statuses, {g: now - t for g, t in read_at.items()})
            except (psycopg.DataError, psycopg.IntegrityError, psycopg.ProgrammingError, TypeError) as e:
                self.writer.close()
                raise _Refused(str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__) from None
            except Exception as e:  # a connection lost, a server restarting: connect and write again
                if self.stopping.is_set():
                    return None
                self.db_failures += 1
                wait = RETRY_S[min(attempt, len(RETRY_S) - 1)]
                log.warning("database write failed (%s); again in %.1f s, nothing acknowledged meanwhile",
                            str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__, wait)
                time.sleep(wait)
                self.writer.close()  # opened again by the next attempt

    def status(self):
        return "rows %d new of %d received, %d batches, lag %s%s%s" % (
            self.rows_new, self.rows_in, self.batches,
            "-" if self.lag_s is None else "%.2f s" % self.lag_s,
            ", %d malformed dropped" % self.bad if self.bad else "",
            "" if self.connected.is_set() else ", broker away")
