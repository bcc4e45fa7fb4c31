"""The plant historian end to end: `sxctl serve --mqtt` over virtual boards, a real Mosquitto,
`sxctl historian` and a real PostgreSQL, each started privately by the test (historian/servers.py;
a missing server fails the test with the command that installs it)."""
import csv
import io
import json
import os
import signal
import subprocess
import threading

import pytest
from simboards import SXCTL, start_sim, sxctl, wait_for

from sxctl.errors import SxctlError
from sxctl.gateway.mqtt import Publisher
from sxctl.historian import harness, pgstore, servers, synth, wire
from sxctl.historian.service import Historian


@pytest.fixture(scope="module")
def plant(tmp_path_factory):
    folder = tmp_path_factory.mktemp("plant")
    with servers.Postgres(folder / "pg") as pg, servers.Mosquitto(folder / "mqtt") as broker:
        yield pg, broker, folder


def csv_rows(text):
    return list(csv.reader(io.StringIO(text)))


def test_two_gateways_through_the_broker_equal_their_own_logs(plant, tmp_path):
    pg, broker, _ = plant
    historian = harness.HistorianProcess(tmp_path, broker.url + "/site", pg.url).start()
    sims, serves, logs = [], [], {}
    try:
        for name in ("gwa", "gwb"):
            (tmp_path / name).mkdir()
            sim = start_sim(tmp_path / name, "--stages", "2")
            sims.append(sim)
            db = str(tmp_path / ("%s.sqlite" % name))
            logs[name] = db
            err = open(tmp_path / ("%s.err" % name), "w")
            serves.append(subprocess.Popen(
                SXCTL + ["serve", "--bus", sim.bus, "--stage", "1-2", "--db", db, "--modbus", "off",
                         "--state-dir", str(tmp_path / name / "state"), "--mqtt", "%s/site/%s" % (broker.url, name),
                         "--duration", "5"], stdout=err, stderr=err))
        for proc, name in zip(serves, logs):
            proc.wait(60)
            assert proc.returncode == 0, (tmp_path / ("%s.err" % name)).read_text()
        # every row of both logs, the final round's too, reaches the database; every cursor at its end
        wait_for(lambda: harness.counts_equal(pg.url, logs), 60, "the historian to hold both logs")
        missing, doubled, total = harness.compare(pg.url, logs)
        assert (missing, doubled) == (0, 0) and total >= 2 * 2 * 3
        assert [harness.cursors_behind(db) for db in logs.values()] == [0, 0]
    finally:
        for p in serves:
            if p.poll() is None:
                p.kill()
        for s in sims:
            s.stop()
        historian.kill(signal.SIGTERM)

    own = {name: sxctl("export", db, "--csv", "-") for name, db in logs.items()}
    plant_wide = sxctl("export", pg.url, "--csv", "-")
    assert plant_wide.returncode == 0, plant_wide.stderr
    parts = [csv_rows(own[n].stdout) for n in sorted(logs)]
    got = csv_rows(plant_wide.stdout)
    # the plant's export is the two gateways' own exports one after the other, row for row
    assert got[0] == parts[0][0] == parts[1][0]
    assert got[1:] == parts[0][1:] + parts[1][1:]
    assert len(got) - 1 == sum(len(p) - 1 for p in parts) >= 12
    one = sxctl("export", pg.url, "--gateway", "gwb", "--csv", "-", "--stage", "2")
    assert one.stdout == sxctl("export", logs["gwb"], "--csv", "-", "--stage", "2").stdout
    png = tmp_path / "plant.png"
    drawn = sxctl("plot", pg.url, "-o", str(png))
    assert drawn.returncode == 0, drawn.stderr
    assert "gwa/1,gwa/2,gwb/1,gwb/2 plotted" in drawn.stderr and png.stat().st_size > 10_000
    wrong = sxctl("export", pg.url, "--gateway", "nope", "--csv", "-")
    assert wrong.returncode != 0 and "holds no gateway nope" in wrong.stderr and "gwa, gwb" in wrong.stderr


def run_historian(broker, pg, name="historian", plant="unit"):
    h = Historian(broker.url + "/" + plant, pg.url, name=name)
    h.start()
    assert h.subscribed.wait(10)
    thread = threading.Thread(target=h.run, daemon=True)
    thread.start()
    return h, thread


def stop_historian(h, thread):
    h.stopping.set()
    thread.join(10)
    h.stop()


def test_restart_resends_only_what_the_broker_did_not_acknowledge(plant, tmp_path):
    pg, broker, _ = plant
    h, thread = run_historian(broker, pg, plant="resend")
    db = str(tmp_path / "gw.sqlite")
    log = synth.SyntheticLog(db, "gw", [1, 2, 3])
    for _ in range(50):
        log.write_second()
    url = broker.url + "/resend/gw"
    first = Publisher(db, url, stages=[1, 2, 3])
    first.start()
    wait_for(lambda: not any(first.backlog().values()), 20, "the broker's acks")
    first.stop()
    assert first.published_rows == 3 * 50 + 3 + 3 * 4 + 3  # records, epochs, config, events
    assert harness.cursors_behind(db) == 0
    for _ in range(20):
        log.write_second()
    second = Publisher(db, url, stages=[1, 2, 3])
    second.start()
    wait_for(lambda: not any(second.backlog().values()), 20, "the broker's acks")
    second.stop()
    assert second.published_rows == 3 * 20  # only the new records: the cursor held the rest
    wait_for(lambda: harness.counts_equal(pg.url, {"gw": db}), 20, "the database")
    assert harness.compare(pg.url, {"gw": db})[:2] == (0, 0)
    stop_historian(h, thread)
    log.close()


def test_two_historians_on_one_database_double_nothing(plant, tmp_path):
    pg, broker, _ = plant
    both = [run_historian(broker, pg, name=n, plant="twice") for n in ("h1", "h2")]
    db = str(tmp_path / "gw.sqlite")
    log = synth.SyntheticLog(db, "gw2h", [1, 2])
    for _ in range(300):
        log.write_second()
    pub = Publisher(db, broker.url + "/twice/gw2h", stages=[1, 2])
    pub.start()
    wait_for(lambda: all(h.rows_in >= 600 for h, _ in both), 30, "both historians to receive every record")
    wait_for(lambda: harness.counts_equal(pg.url, {"gw2h": db}), 20, "the database")
    pub.stop()
    for h, t in both:
        stop_historian(h, t)
    assert harness.compare(pg.url, {"gw2h": db})[:2] == (0, 0)
    # each row was received twice and stored once
    assert sum(h.rows_new for h, _ in both) == sum(harness.sqlite_rows(db)[t].total() for t in wire.TABLES)
    log.close()


def test_malformed_messages_are_dropped_and_counted_the_rest_stored(plant, tmp_path):
    pg, broker, _ = plant
    h, thread = run_historian(broker, pg, plant="bad")
    c = wire.BrokerUrl(broker.url + "/bad").client("sxctl-test-bad", clean_session=True)
    c.connect(broker.url.split("//")[1].split(":")[0], broker.port)
    c.loop_start()
    good = wire.rows_payload("gwbad", 1, "telemetry", [(1, 1, 7, synth.T0 + 7, 7) + synth.values("gwbad", 1, 7)], 0)
    bad_value = json.loads(good)
    bad_value["rows"][0][5] = "7.0"  # a string where the schema holds an integer
    for topic, payload in ((wire.rows_topic("bad", "gwbad", 1, "telemetry"), b"{not json"),
                           (wire.rows_topic("bad", "gwbad", 2, "telemetry"), good),  # stage 1 rows on stage 2's topic
                           (wire.rows_topic("bad", "gwbad", 1, "telemetry"), json.dumps(bad_value).encode()),
                           (wire.rows_topic("bad", "gwbad", 1, "telemetry"), good)):
        c.publish(topic, payload, qos=1).wait_for_publish(5)
    wait_for(lambda: h.bad == 3 and h.rows_new == 1, 20, "three dropped and one stored")
    c.loop_stop()
    stop_historian(h, thread)
    with pgstore.connect(pg.url, autocommit=True) as conn:
        assert conn.execute("SELECT record, ph FROM telemetry WHERE gateway = 'gwbad'").fetchall() == \
            [(7, synth.values("gwbad", 1, 7)[0])]


def test_schema_is_created_once_indexed_by_time_and_a_newer_one_refused(plant):
    pg, _, _ = plant
    with pgstore.connect(pg.url) as conn:
        pgstore.migrate(conn)
        assert pgstore.migrate(conn) == pgstore.SCHEMA_VERSION  # found current: nothing done again
        indexes = {r[0]: r[1] for r in conn.execute("SELECT indexname, indexdef FROM pg_indexes")}
        assert "(\"time\"" in indexes["telemetry_time"].replace("(time", "(\"time\"") and "brin" in indexes["events_time"]
        conn.execute("UPDATE sxctl_schema SET version = %s", (pgstore.SCHEMA_VERSION + 1,))
        conn.commit()
        with pytest.raises(SxctlError, match="newer sxctl"):
            pgstore.migrate(conn)
        conn.rollback()
        conn.execute("UPDATE sxctl_schema SET version = %s", (pgstore.SCHEMA_VERSION,))
        conn.commit()


def test_password_from_file_or_environment_never_from_the_url(tmp_path, monkeypatch):
    with servers.Mosquitto(tmp_path / "mq", users={"gw1": "s3cret pass"}) as broker:
        db = str(tmp_path / "gw.sqlite")
        log = synth.SyntheticLog(db, "gw1", [1])
        log.write_second()
        pw = tmp_path / "pw"
        pw.write_text("s3cret pass\n")
        base = "mqtt://gw1@127.0.0.1:%d/p/gw1" % broker.port
        ok = Publisher(db, base + "?password_file=%s" % pw, stages=[1])
        ok.start()
        wait_for(lambda: not any(ok.backlog().values()), 20, "the broker's acks")
        ok.stop()
        monkeypatch.setenv(wire.PASSWORD_ENV, "wrong")
        refused = Publisher(db, base, stages=[1])
        with pytest.raises(SxctlError) as e:
            refused.start()
        assert "refused" in str(e.value) and "password" in str(e.value) and "wrong" not in str(e.value)
        monkeypatch.setenv(wire.PASSWORD_ENV, "s3cret pass")
        env_ok = Publisher(db, base, stages=[1])
        env_ok.start()
        assert env_ok.connected.is_set()
        env_ok.stop()
        log.close()
    with pytest.raises(SxctlError, match="password_file"):
        wire.BrokerUrl("mqtt://gw1:s3cret@broker/p")


def test_mqtts_with_a_private_ca(tmp_path):
    ca_key, ca, key, req, cert = (str(tmp_path / n) for n in ("ca.key", "ca.pem", "srv.key", "srv.csr", "srv.pem"))
    run = lambda *a: subprocess.run(["openssl", *a], check=True, capture_output=True)  # noqa: E731
    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", ca_key, "-out", ca, "-days", "2", "-subj", "/CN=test-ca")
    run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", req, "-subj", "/CN=127.0.0.1",
        "-addext", "subjectAltName=IP:127.0.0.1")
    run("x509", "-req", "-in", req, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial", "-out", cert, "-days", "2",
        "-copy_extensions", "copy")
    for f in (key, cert, ca):
        os.chmod(f, 0o644)
    with servers.Mosquitto(tmp_path / "mq", tls=(ca, cert, key)) as broker:
        db = str(tmp_path / "gw.sqlite")
        log = synth.SyntheticLog(db, "gw", [1])
        log.write_second()
        pub = Publisher(db, "%s/p/gw?ca=%s" % (broker.url, ca), stages=[1])
        pub.start()
        wait_for(lambda: not any(pub.backlog().values()), 20, "the broker's acks over TLS")
        pub.stop()
        untrusted = Publisher(db, "%s/p/gw" % broker.url, stages=[1], connect_timeout=3)
        untrusted.start()  # the system CAs do not know the private one: never connected
        assert not untrusted.connected.is_set()
        untrusted.stop()
        log.close()


def test_a_missing_server_names_the_install_command(monkeypatch):
    monkeypatch.setattr(servers.shutil, "which", lambda name: None)
    monkeypatch.setattr(servers.os.path, "exists", lambda p: False)
    monkeypatch.setattr(servers, "PG_BIN_GLOB", "/nonexistent/*/bin")
    for find in (servers.mosquitto_binary, servers.postgres_bin):
        with pytest.raises(SxctlError, match="apt-get install -y mosquitto postgresql"):
            find()
