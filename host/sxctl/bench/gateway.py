"""Benchmark section `gateway`: `sxctl serve` over 16 virtual stages logged at 1 Hz, read over
Modbus TCP by 8 concurrent clients.

- `gateway.modbus_reads_per_s`: read-input-registers requests of one stage's whole block
  (registers.BLOCK_SIZE registers) answered per second, 8 clients together, each a plain
  Modbus TCP client on its own connection sending its next request when the answer is in;
- `gateway.modbus_p99_ms`: the 99th percentile of those requests' round trips;
- `gateway.data_age_ms`: the 99th percentile of the data age the answers carry (ms since the
  gateway read the stage's newest record from its board);
- `gateway.log_gaps`: records the logger missed during the run: holes in each stage's record
  numbers plus rows of the log's `gaps` table (must be 0).
The boards, the gateway and the clients share this machine's cores, as on a small plant PC.
"""
import json
import os
import pathlib
import signal
import socket
import sqlite3
import struct
import subprocess
import sys
import tempfile
import threading
import time

from . import Figure

STAGES = 16
CLIENTS = 8
SXCTL = [sys.executable, "-m", "sxctl"]


def _wait(condition, timeout, what):
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise RuntimeError("gateway bench: timed out waiting for " + what)
        time.sleep(0.1)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _recv_exactly(sock, n):
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise ConnectionError("the gateway closed the connection")
        data += chunk
    return data


def _client(port, unit, stop, out):
    from ..gateway import registers

    latencies, ages, tid = [], [], 0
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        while not stop.is_set():
            tid = (tid + 1) & 0xFFFF
            request = struct.pack(">HHHBBHH", tid, 0, 6, unit, 4, 0, registers.BLOCK_SIZE)
            t0 = time.perf_counter()
            s.sendall(request)
            head = _recv_exactly(s, 7)
            body = _recv_exactly(s, struct.unpack(">H", head[4:6])[0] - 1)
            latencies.append(time.perf_counter() - t0)
            if body[0] != 4:
                raise RuntimeError("gateway bench: exception %r from unit %d" % (body[:2], unit))
            words = struct.unpack(">%dH" % registers.BLOCK_SIZE, body[2:])
            ages.append(words[2] << 16 | words[3])
    out.append((latencies, ages))


def _p99(values):
    values = sorted(values)
    return values[min(len(values) - 1, int(0.99 * len(values)))] if values else float("nan")


def _log_gaps(db, stages, since):
    with sqlite3.connect(db) as c:
        missing = 0
        for stage in stages:
            lo, hi, n = c.execute("SELECT MIN(record), MAX(record), COUNT(*) FROM telemetry WHERE stage = ? "
                                  "AND epoch = (SELECT MAX(epoch) FROM epochs WHERE stage = ?)",
                                  (stage, stage)).fetchone()
            missing += (hi - lo + 1 - n) if n else 1
        missing += c.execute("SELECT COUNT(*) FROM gaps").fetchone()[0]
        rows = c.execute("SELECT COUNT(*) FROM telemetry WHERE time >= ?", (since,)).fetchone()[0]
    return missing, rows


def run(options):
    seconds = max(3.0, getattr(options, "seconds", 5.0))
    with tempfile.TemporaryDirectory(prefix="sxctl-gw-bench-") as tmp:
        tmp = pathlib.Path(tmp)
        ports_file = tmp / "ports.json"
        env = dict(os.environ, SXCTL_STATE_DIR=str(tmp / "state"))
        sim = subprocess.Popen(SXCTL + ["sim", "--stages", str(STAGES), "--ports-file", str(ports_file)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        serve = None
        try:
            _wait(lambda: ports_file.exists() or sim.poll() is not None, 120, "the virtual boards")
            bus = json.loads(ports_file.read_text())["bus"]
            db, port = str(tmp / "log.sqlite"), free_port()
            serve = subprocess.Popen(SXCTL + ["serve", "--bus", bus, "--stage", "1-%d" % STAGES, "--db", db,
                                              "--modbus", "127.0.0.1:%d" % port, "-q"],
                                     stdout=subprocess.DEVNULL, stderr=open(tmp / "serve.err", "w"), env=env)

            def count(sql):
                try:
                    with sqlite3.connect(db) as c:
                        return c.execute(sql).fetchone()[0]
                except sqlite3.Error:
                    return 0
            # The first rounds read every board's whole config; measure the steady state after them.
            _wait(lambda: count("SELECT COUNT(DISTINCT stage) FROM config") == STAGES or serve.poll() is not None,
                  120, "the gateway's first rounds")
            if serve.poll() is not None:
                raise RuntimeError("gateway bench: sxctl serve exited: " + (tmp / "serve.err").read_text())
            settled = count("SELECT COUNT(*) FROM telemetry") + 2 * STAGES
            _wait(lambda: count("SELECT COUNT(*) FROM telemetry") >= settled, 60, "two more rounds")
            start_time = int(time.time())
            stop, out = threading.Event(), []
            threads = [threading.Thread(target=_client, args=(port, 1 + i * STAGES // CLIENTS, stop, out))
                       for i in range(CLIENTS)]
            t0 = time.perf_counter()
            for t in threads:
                t.start()
            time.sleep(seconds)
            stop.set()
            for t in threads:
                t.join(30)
            elapsed = time.perf_counter() - t0
            serve.send_signal(signal.SIGTERM)
            serve.wait(60)
            gaps, rows = _log_gaps(db, range(1, STAGES + 1), start_time)
        finally:
            for proc in (serve, sim):
                if proc is not None and proc.poll() is None:
                    proc.send_signal(signal.SIGINT)
                    try:
                        proc.wait(30)
                    except subprocess.TimeoutExpired:
                        proc.kill()
    latencies = [x for lat, _ in out for x in lat]
    ages = [x for _, age in out for x in age]
    note = "%d stages at 1 Hz, %d clients, %.0f s, %d rows logged meanwhile" % (STAGES, CLIENTS, seconds, rows)
    return [
        Figure("gateway.modbus_reads_per_s", round(len(latencies) / elapsed), "req/s", (">=", 2000), note),
        Figure("gateway.modbus_p99_ms", round(_p99(latencies) * 1000, 2), "ms", ("<=", 10)),
        Figure("gateway.data_age_ms", _p99(ages), "ms", ("<=", 1100), "poll period + 100 ms"),
        Figure("gateway.log_gaps", gaps, "records", ("==", 0)),
    ]
