"""sxctl serve: one gateway over three virtual boards, read and written over Modbus TCP and its
client API while it logs; then stopped with SIGTERM and restarted without losing a record."""
import json
import math
import os
import random
import re
import shutil
import signal
import socket
import sqlite3
import struct
import subprocess
import threading

import pytest
from pymodbus.client import ModbusTcpClient
from simboards import SXCTL, processes_under, start_sim
from test_log import wait_for
from sxproto import config_items, messages

from sxctl import buslink
from sxctl.bench.gateway import free_port
from sxctl.errors import SxctlError
from sxctl.gateway import api, registers, state
from sxctl.gateway.modbus import StagesContext

ALLOWED = "127.0.0.2"  # the one client address the plant file lets write
STAGES = (1, 2, 3)
STALE_S = 3.0  # the default at a 1 s period
KEYED = 3  # the stage given a plant key


class Served:
    """A running `sxctl serve` and what a test needs to reach it."""

    def __init__(self, sim, folder):
        self.sim = sim
        self.folder = folder
        self.db = str(folder / "log.sqlite")
        self.state_dir = folder / "state"
        self.modbus_port = free_port()
        self.plant = folder / "plant.toml"
        self.key_file = folder / "plant.key"
        self.plant.write_text(
            '[bus]\nport = "%s"\nkey_file = "%s"\n\n[gateway]\nmodbus_writes = true\nmodbus_allow = ["%s"]\n\n'
            % (sim.bus, self.key_file, ALLOWED) + "".join('[[stage]]\naddress = %d\nname = "s%d"\nrole = "extraction"\n\n'
                                           % (a, a) for a in STAGES))
        self.env = dict(os.environ, SXCTL_STATE_DIR=str(self.state_dir))
        self.proc = None

    def start(self, *extra):
        self.err = open(self.folder / "serve.err", "a")
        self.proc = subprocess.Popen(SXCTL + ["serve", "--plant", str(self.plant), "--db", self.db,
                                              "--modbus", "127.0.0.1:%d" % self.modbus_port, *extra],
                                     stdout=subprocess.DEVNULL, stderr=self.err, env=self.env)
        wait_for(lambda: self.proc.poll() is not None or state.find(self.sim.bus, self.state_dir),
                 what="the gateway's state file")
        assert self.proc.poll() is None, self.log()
        wait_for(lambda: all(self.rows(a) for a in STAGES), what="a logged record of every stage")

    def log(self):
        return (self.folder / "serve.err").read_text()

    def rows(self, stage, epoch=None):
        """The stage's stored record numbers: of one epoch (a boot of its board), else of every one."""
        try:
            with sqlite3.connect(self.db) as c:
                return [r[0] for r in c.execute("SELECT record FROM telemetry WHERE stage = ? AND epoch = COALESCE(?, epoch) "
                                                "ORDER BY epoch, record", (stage, epoch))]
        except sqlite3.OperationalError:
            return []

    def epoch(self, stage):
        with sqlite3.connect(self.db) as c:
            return c.execute("SELECT MAX(epoch) FROM telemetry WHERE stage = ?", (stage,)).fetchone()[0]

    def api(self):
        return api.GatewayBus(state.find(self.sim.bus, self.state_dir))

    def client(self, source=None):
        c = ModbusTcpClient("127.0.0.1", port=self.modbus_port, timeout=10, retries=0,
                            source_address=(source, 0) if source else None)
        assert c.connect()
        return c

    def sxctl(self, *args):
        return subprocess.run(SXCTL + list(args), capture_output=True, text=True, timeout=60, env=self.env)


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    folder = tmp_path_factory.mktemp("gw")
    sim = start_sim(folder, "--stages", "3")
    s = Served(sim, folder)
    try:
        # stage KEYED holds the plant key: it takes only writes the gateway signed
        for args in (("key", "new", "--key-file", str(s.key_file)),
                     ("key", "provision", "--port", sim.usb(KEYED), "--key-file", str(s.key_file), "--bus", sim.bus)):
            done = s.sxctl(*args)
            assert done.returncode == 0, done.stdout + done.stderr
        s.start()
        yield s
    finally:
        if s.proc is not None and s.proc.poll() is None:
            s.proc.kill()
            s.proc.wait(10)
        sim.stop()


def block(client, unit):
    r = client.read_input_registers(0, count=registers.BLOCK_SIZE, device_id=unit)
    assert not r.isError(), r
    return r.registers


def board_record(gw, addr, record):
    """The record as the board holds it, read through the gateway."""
    reply = gw.request(addr, messages.BACKLOG_READ, {"since": record - 1, "count": 0}, messages.BACKLOG).values
    return next(r for r in reply["records"][:reply["count"]] if r["record"] == record)


def test_float_word_order_is_big_endian():
    # 1.5 is 0x3FC00000: the high word goes first, as the Modbus convention and docs/modbus.md say.
    assert registers.float_words(1.5) == [0x3FC0, 0x0000]
    assert registers.float_words(-2.0) == [0xC000, 0x0000]
    assert registers.words_float(0x3FC0, 0) == 1.5


def test_generated_map_is_current():
    docs = os.path.join(os.path.dirname(__file__), "..", "..", "docs")
    with open(os.path.join(docs, "modbus.md")) as f:
        assert f.read() == registers.markdown(), "run python -m sxctl.gateway.registers"
    with open(os.path.join(docs, "modbus.csv")) as f:
        assert f.read() == registers.csv_text(), "run python -m sxctl.gateway.registers"
    # every telemetry field of the schema has its float and its integer register
    assert [r.name for r in registers.VALUES] == list(registers.FIELDS) + [n + "_raw" for n in registers.FIELDS]


def test_each_block_equals_the_boards_record(served):
    gw, mb = served.api(), served.client()
    try:
        for unit in STAGES:
            values = registers.decode_input(block(mb, unit))
            assert values["online"] == 1 and values["record"] > 0
            board = board_record(gw, unit, values["record"])
            faulted = {n for n, alarms in registers.FAULTS_OF.items()
                       if any(board["alarms_active"] >> bit & 1 for bit, a in messages.ALARMS.items() if a in alarms)}
            for i, name in enumerate(registers.FIELDS):
                bad = bool(values["quality"] >> i & 1)
                assert bad == (name in faulted), name
                if bad:
                    assert math.isnan(values[name])
                    assert values[name + "_raw"] in (-32768, 0xFFFF)
                else:
                    expect = board[name] * registers._INFOS[name].scale
                    assert values[name] == pytest.approx(expect, rel=1e-6, abs=1e-6), name
                    assert values[name + "_raw"] == board[name], name
            assert values["mode"] == board["mode"] and values["alarms_active"] == board["alarms_active"]
            assert values["sensor_faults"] == board["alarms_active"] & registers.SENSOR_FAULT_BITS
            assert values["data_age_ms"] < 1000 * served_stale(gw)
    finally:
        gw.close()
        mb.close()


def served_stale(gw):
    return gw.call({"op": "hello"})["stale_s"]


def test_running_server_matches_the_csv_map(served):
    import csv
    with open(os.path.join(os.path.dirname(__file__), "..", "..", "docs", "modbus.csv")) as f:
        rows = list(csv.DictReader(f))
    mb = served.client()
    try:
        for _ in range(20):  # a new record may come between two reads: retry until one holds still
            whole = registers.decode_input(block(mb, 2))
            single = {}
            for row in (r for r in rows if r["table"] == "input"):
                assert int(row["notation"]) == 30001 + int(row["address"])
                r = mb.read_input_registers(int(row["address"]), count=int(row["words"]), device_id=2)
                assert not r.isError(), row
                w = r.registers
                single[row["name"]] = {"float32": lambda: registers.words_float(*w), "uint32": lambda: w[0] << 16 | w[1],
                                       "int16": lambda: w[0] - 0x10000 if w[0] & 0x8000 else w[0],
                                       "uint16": lambda: w[0]}[row["type"]]()
            if single["record"] == whole["record"]:
                break
        for name, value in single.items():
            if name == "data_age_ms":
                continue
            assert value == whole[name] or (math.isnan(value) and math.isnan(whole[name])), name
        holding = [r for r in rows if r["table"] == "holding"]
        got = mb.read_holding_registers(0, count=len(holding), device_id=2)
        assert not got.isError() and len(got.registers) == len(holding)
        assert [int(r["notation"]) for r in holding] == [40001 + i for i in range(len(holding))]
        # one past either map is outside it
        assert mb.read_input_registers(registers.BLOCK_SIZE, count=1, device_id=2).exception_code == 2
        assert mb.read_holding_registers(len(holding), count=1, device_id=2).exception_code == 2
    finally:
        mb.close()


def mbpoll_binary():
    path = shutil.which("mbpoll")
    assert path, "mbpoll is missing: `make setup` installs it as root; else run: apt-get install mbpoll"
    return path


def test_mbpoll_reads_the_same_values(served):
    # mbpoll (libmodbus) counts references from 1 by default: -r 1 is address 0.
    out = subprocess.run([mbpoll_binary(), "-m", "tcp", "-p", str(served.modbus_port), "-a", "3", "-t", "3",
                          "-r", "1", "-c", str(registers.BLOCK_SIZE), "-1", "127.0.0.1"],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stdout + out.stderr
    regs = [0] * registers.BLOCK_SIZE
    for line in out.stdout.splitlines():
        if line.startswith("["):
            ref, _, value = line.partition("]:")
            regs[int(ref[1:]) - 1] = int(value.split()[0]) & 0xFFFF
    theirs = registers.decode_input(regs)
    gw = served.api()
    try:
        board = board_record(gw, 3, theirs["record"])
    finally:
        gw.close()
    for name in registers.FIELDS:
        if not theirs["quality"] >> registers.FIELDS.index(name) & 1:
            assert theirs[name + "_raw"] == board[name], name
            assert theirs[name] == pytest.approx(board[name] * registers._INFOS[name].scale, rel=1e-6, abs=1e-6)
    # and mbpoll's own float decoding, big-endian words (-B), agrees on the pH setpoint
    out = subprocess.run([mbpoll_binary(), "-m", "tcp", "-p", str(served.modbus_port), "-a", "3", "-t", "3:float",
                          "-B", "-r", str(registers.BY_NAME["ph_setpoint"].notation - 30000), "-c", "1", "-1",
                          "127.0.0.1"], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stdout
    value = float([ln for ln in out.stdout.splitlines() if ln.startswith("[")][0].split(":")[1])
    assert value == pytest.approx(board["ph_setpoint"] / 1000)


def telemetry(gw, addr):
    return gw.request(addr, messages.GET_TELEMETRY, expect=messages.TELEMETRY).values


def test_gateway_table_is_checked_whole(tmp_path):
    from sxctl.commands.serve import gateway_settings
    plant = tmp_path / "plant.toml"
    plant.write_text('[gateway]\nmodbus_writes = true\nmodbus_alow = ["10.0.0.5"]\n')
    with pytest.raises(SxctlError) as e:
        gateway_settings(plant)
    assert "gateway.modbus_alow: unknown key" in str(e.value) and "needs modbus_allow" in str(e.value)
    plant.write_text('[gateway]\nmodbus_writes = true\nmodbus_allow = ["10.0.0.5", "plc"]\n')
    with pytest.raises(SxctlError, match="'plc' is not an IP address"):
        gateway_settings(plant)
    plant.write_text("[bus]\nport = \"/dev/ttyUSB0\"\n")
    assert gateway_settings(plant) == {"modbus": None, "modbus_writes": False, "modbus_allow": []}


def test_writes_off_are_refused_and_never_reach_the_bus():
    class NoBus:
        addrs = [1]
        states = {1: object()}

        def submit(self, *a):
            raise AssertionError("a refused write went to the bus")

    import asyncio
    ctx = StagesContext(NoBus(), writes=False, allow=["127.0.0.1"])
    assert asyncio.run(ctx.async_setValues(1, 6, 0, [2500])) == 1  # ILLEGAL FUNCTION
    assert ctx.refused_writes == 1


def test_a_read_answered_without_pymodbus_carries_the_map_exactly():
    from sxctl.gateway.core import StageState

    raw = {name: i + 1 for i, name in enumerate(registers.FIELDS)}
    now = [1000.0]
    stage = StageState(4, 3.0, raw=raw, record=77, epoch=2, read_at=999.75, online=True, cal_time=400.0,
                       clock=lambda: now[0])

    class Gw:
        addrs = [4]
        states = {4: stage}
    ctx = StagesContext(Gw())
    words = registers.encode_input(stage)
    assert registers.decode_input(words)["data_age_ms"] == 250
    answer = ctx.read_input_answer(9, 0, 6, 4, 4, 16, 6)
    assert answer == struct.pack(">HHHBBB6H", 9, 0, 15, 4, 4, 12, *words[16:22])
    now[0] += 2.0  # the ages move with the clock, the rest comes from the packed block
    whole = ctx.read_input_answer(1, 0, 6, 4, 4, 0, registers.BLOCK_SIZE)
    assert list(struct.unpack(">%dH" % registers.BLOCK_SIZE, whole[9:])) == registers.encode_input(stage)
    assert registers.decode_input(registers.encode_input(stage))["data_age_ms"] == 2250
    # anything else goes to pymodbus's path, which answers with the exception it calls for
    for request in ((1, 0, 6, 5, 4, 0, 1), (1, 0, 6, 4, 3, 0, 1), (1, 0, 6, 4, 4, 0, 126), (1, 0, 6, 4, 4, 111, 2),
                    (1, 0, 6, 4, 4, 0, 0), (1, 1, 6, 4, 4, 0, 1), (1, 0, 7, 4, 4, 0, 1)):
        assert ctx.read_input_answer(*request) is None, request


def test_reads_sent_back_to_back_are_answered_in_order(served):
    with socket.create_connection(("127.0.0.1", served.modbus_port), timeout=5) as s:
        s.sendall(b"".join(struct.pack(">HHHBBHH", tid, 0, 6, 2, 4, 0, 4) for tid in (1, 2, 3)))
        data = b""
        while len(data) < 3 * 17:
            chunk = s.recv(4096)
            assert chunk, "the gateway closed the connection"
            data += chunk
    assert [struct.unpack_from(">HHHBBB", data, 17 * i)[0::4] for i in range(3)] == [(1, 4), (2, 4), (3, 4)]


def test_modbus_writes_from_the_allowed_address_only(served):
    gw = served.api()
    other, allowed = served.client(), served.client(ALLOWED)
    try:
        before = telemetry(gw, 1)["ph_setpoint"]
        target = 2345 if before != 2345 else 2456
        refused = other.write_register(0, target, device_id=1)
        assert refused.isError() and refused.exception_code == 1
        assert telemetry(gw, 1)["ph_setpoint"] == before
        # out of the item's range (14.000 pH): refused as `sxctl set` refuses it, nothing changes
        bad = allowed.write_register(0, 20000, device_id=1)
        assert bad.isError() and bad.exception_code == 3
        assert allowed.write_register(4, 9, device_id=1).exception_code == 3  # no mode 9
        assert telemetry(gw, 1)["ph_setpoint"] == before
        ok = allowed.write_register(0, target, device_id=1)
        assert not ok.isError(), ok
        assert telemetry(gw, 1)["ph_setpoint"] == target  # applied when the write was answered
        wait_for(lambda: allowed.read_holding_registers(0, count=1, device_id=1).registers == [target],
                 what="the holding register to read back the new setpoint")
        ok = allowed.write_register(4, 3, device_id=1)  # mode hold
        assert not ok.isError() and telemetry(gw, 1)["mode"] == 3
        # the virtual boards come up with latched sensor alarms: the status block shows them
        latched = gw.request(1, messages.ALARMS_READ, {}, messages.ALARM_STATE).values["alarms_unacked"]
        assert latched and registers.decode_input(block(allowed, 1))["alarms_unacked"] == latched
        assert not allowed.write_register(5, latched, device_id=1).isError()  # acknowledge them
        assert gw.request(1, messages.ALARMS_READ, {}, messages.ALARM_STATE).values["alarms_unacked"] == 0
        wait_for(lambda: registers.decode_input(block(allowed, 1))["alarms_unacked"] == 0,
                 what="the acknowledge in the status block")
        assert registers.decode_input(block(allowed, 2))["alarms_unacked"] == latched  # not the others

    finally:
        gw.close()
        other.close()
        allowed.close()


def test_modbus_writes_to_a_keyed_board_are_signed(served):
    gw, allowed = served.api(), served.client(ALLOWED)
    try:
        signing = gw.signing_state(KEYED)
        assert signing["key_id"] != 0  # the board refuses any write not signed with its key
        assert not allowed.write_register(0, 2222, device_id=KEYED).isError()
        assert telemetry(gw, KEYED)["ph_setpoint"] == 2222
        assert gw.signing_state(KEYED)["counter"] > signing["counter"]
    finally:
        gw.close()
        allowed.close()


def test_verbs_go_through_the_gateway(served):
    info = served.sxctl("info", "--port", served.sim.bus, "--addr", "2", "--json")
    assert info.returncode == 0, info.stderr
    link = json.loads(info.stdout)["host_link"]
    assert link["sent"] > 10  # the gateway's counters: its bus has carried the logger's rounds
    once = served.sxctl("monitor", "--port", served.sim.bus, "--stages", "1-3", "--once")
    assert once.returncode == 0, once.stderr
    rows = [ln.split()[0] for ln in once.stdout.splitlines() if ln[:3].strip().isdigit()]
    assert rows == ["1", "2", "3"]
    missing = served.sxctl("info", "--port", served.sim.bus, "--addr", "9")
    assert missing.returncode == 1 and "no answer from address 9" in missing.stderr
    found = state.find(served.sim.bus, served.state_dir)
    assert os.stat(found["token_file"]).st_mode & 0o777 == 0o600
    # a client without the token reads, and may not write
    gw = served.api()
    try:
        gw.token = None
        assert telemetry(gw, 2)["record"] > 0
        with pytest.raises(SxctlError, match="token"):
            gw.request(2, messages.SET_SETPOINT, {"loop": 0, "value": 2000}, messages.SETPOINT_ACK)
    finally:
        gw.close()


def contiguous(served):
    """Each stage's logged records of its newest boot, with none missing or doubled, and no gap row."""
    for a in STAGES:
        got = served.rows(a, served.epoch(a))
        assert got == list(range(got[0], got[0] + len(got))), "stage %d: a record missing or doubled" % a
    with sqlite3.connect(served.db) as c:
        assert c.execute("SELECT COUNT(*) FROM gaps").fetchone() == (0,)


def test_every_verb_works_through_the_gateway_while_it_logs(served):
    bus = served.sim.bus
    rows = {a: len(served.rows(a)) for a in STAGES}
    gw = served.api()
    try:
        # set: echoed as the board applied it, and applied; on the keyed stage too, which the gateway
        # signs for a client that holds no key (it has the gateway's token)
        for addr in (2, KEYED):
            done = served.sxctl("set", "--bus", bus, "--addr", str(addr), "ph_setpoint=2.35", "mode=hold")
            assert (done.returncode, done.stderr) == (0, ""), done.stderr
            assert done.stdout == ("board %d: ph_setpoint = 2.350 pH\nboard %d: mode = hold, manual base dose "
                                   "0.00 mL/min\n" % (addr, addr))
            now = telemetry(gw, addr)
            assert (now["ph_setpoint"], now["mode"]) == (2350, 3)
        # refused before sending, and refused for want of an answer: the direct-use texts and exit codes
        rule = served.sxctl("set", "--bus", bus, "--addr", "2", "ph_low_alarm=3.0")
        assert rule.returncode == 1 and rule.stderr.startswith("sxctl set: error: board 2 would refuse "
                                                               "ph_low_alarm=3.0, so it was not sent")
        assert telemetry(gw, 2)["ph_setpoint"] == 2350
        # config diff and apply: what would change, applied all or none and read back, then up to date
        config = served.folder / "config.toml"
        config.write_text(served.plant.read_text().replace('role = "extraction"\n',
                                                           'role = "extraction"\nph_setpoint = 2.2\n'
                                                           'ph_dev_warn = 0.25\n'))
        diff = served.sxctl("config", "diff", str(config), "--json")
        assert diff.returncode == 0, diff.stderr
        changes = {r["address"]: r["changes"] for r in json.loads(diff.stdout)}
        assert changes[2]["ph_setpoint"] == {"board": "2.350 pH", "plant": "2.200 pH"}
        applied = served.sxctl("config", "apply", str(config))
        assert applied.returncode == 0, applied.stdout + applied.stderr
        assert applied.stdout.splitlines()[-1] == "3 of 3 boards match the plant file"
        assert all(telemetry(gw, a)["ph_setpoint"] == 2200 for a in STAGES)
        again = served.sxctl("config", "diff", str(config))
        assert again.returncode == 0 and again.stdout.count("up to date (config version") == 3, again.stdout
        # key status: the keyed board's key, read through the gateway
        status = served.sxctl("key", "status", "--bus", bus, "--addr", str(KEYED), "--key-file", str(served.key_file))
        assert status.returncode == 0, status.stderr
        assert "signed writes     yes, with key" in status.stdout and "this host's key   the same key" in status.stdout
    finally:
        gw.close()
    # export and plot read the log the gateway keeps writing
    csv_out = served.sxctl("export", served.db, "--csv", "-", "--stage", "2")
    assert csv_out.returncode == 0, csv_out.stderr
    lines = csv_out.stdout.splitlines()
    assert lines[0].startswith("time,stage,ph,") and len(lines) > rows[2] and all(",2," in ln for ln in lines[1:])
    png = served.folder / "live.png"
    plot = served.sxctl("plot", served.db, "-o", str(png))
    assert plot.returncode == 0 and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", plot.stderr
    wait_for(lambda: all(len(served.rows(a)) >= rows[a] + 2 for a in STAGES), what="the logger going on")
    contiguous(served)


def test_a_gateway_named_with_gateway_and_a_second_logger_refused(served):
    found = state.find(served.sim.bus, served.state_dir)
    elsewhere = dict(served.env, SXCTL_STATE_DIR=str(served.folder / "nothing-here"))

    def run(*args, env=served.env):
        return subprocess.run(SXCTL + list(args), capture_output=True, text=True, timeout=60, env=env)
    # A process that does not find the state file: the bus lock names the gateway and says what to do
    lost = run("info", "--bus", served.sim.bus, "--addr", "1", env=elsewhere)
    assert lost.returncode == 1 and "in use by `sxctl serve`" in lost.stderr and "--gateway SOCKET" in lost.stderr
    # --gateway as the socket, a unix:// URL, or the state file; the gateway knows its bus
    for target in (found["api"], "unix://" + found["api"], str(state.paths(served.sim.bus, served.state_dir)[0])):
        info = run("info", "--gateway", target, "--addr", "1", "--json", env=elsewhere)
        assert info.returncode == 0, info.stderr
        assert json.loads(info.stdout)["host_link"]["sent"] > 10  # the gateway's own counters
    ack = run("monitor", "--gateway", found["api"], "--ack", "2", env=dict(elsewhere, SXCTL_GATEWAY=found["api"]))
    assert ack.returncode == 0, ack.stderr  # a write: the token file beside the socket lets it through
    other = run("info", "--gateway", found["api"], "--bus", "/dev/null", "--addr", "1", env=elsewhere)
    assert other.returncode == 1 and "holds bus %s, not /dev/null" % served.sim.bus in other.stderr
    gone = run("info", "--gateway", str(served.folder / "none.sock"), "--addr", "1", env=elsewhere)
    assert gone.returncode == 1 and "no gateway answers on" in gone.stderr
    # a second logger on the bus is refused, naming the gateway and its log
    for args in (("--bus", served.sim.bus), ("--gateway", found["api"])):
        second = run("log", *args, "--stage", "1-3", "--db", str(served.folder / "second.sqlite"), "--duration", "1")
        assert second.returncode == 1, second.stderr
        assert ("held by the gateway `sxctl serve` (pid %d), which logs stages 1,2,3 into %s"
                % (served.proc.pid, served.db)) in second.stderr
        assert "sxctl export %s" % served.db in second.stderr
    assert not (served.folder / "second.sqlite").exists()


def test_a_scripted_ph_calibration_through_the_gateway_while_it_logs(tmp_path):
    """One board whose electrode sits in a simulated beaker (test_calibrate's), served by its own
    gateway: `sxctl calibrate ph --yes` through it gives the electrode's slope and offset."""
    from test_calibrate import OFFSET_UV, SLOPE, Beaker

    from sxctl import boards
    from sxctl.sim import plantlink
    from sxctl.sim.instruments import electrode_uv
    from sxctl.sim.simulator import Simulator

    sim = Simulator(1, heapsize="%dK" % boards.load("unix-sim")["heap_kb"], plant_link=True)
    sim.plant_links[1].preload(plantlink.sense_record(0, ph_uv=electrode_uv(7.0, 25.0, OFFSET_UV, SLOPE)))
    beaker = Beaker(sim.plant_links[1])
    beaker.tick_s = 0.25  # the board's clock at about 4x: its records stay near the host's time
    sim.start()
    halt = sim.run_in_background()
    beaker.thread.start()
    env = dict(os.environ, SXCTL_STATE_DIR=str(tmp_path / "state"), PYTHONUNBUFFERED="1")
    db = tmp_path / "log.sqlite"
    serve = cal = None
    try:
        sim.wait_ready()
        serve = subprocess.Popen(SXCTL + ["serve", "--bus", sim.bus.path, "--stage", "1", "--db", str(db),
                                          "--modbus", "off"], stdout=subprocess.DEVNULL,
                                 stderr=open(tmp_path / "serve.err", "w"), env=env)
        found = wait_for(lambda: serve.poll() is not None or state.find(sim.bus.path, tmp_path / "state"),
                         what="the gateway's state file")
        assert serve.poll() is None, (tmp_path / "serve.err").read_text()
        cal = subprocess.Popen(SXCTL + ["calibrate", "ph", "--bus", sim.bus.path, "--addr", "1", "--yes",
                                        "--points", "7.00,4.00", "--temperature", "25", "--settle", "0.3",
                                        "--stable-timeout", "60"],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
        said = []
        for line in cal.stdout:  # the operator moves the probe when told to
            said.append(line)
            if "put it in the pH 4.00 buffer" in line:
                beaker.ph = 4.0
        assert cal.wait(30) == 0, "".join(said)
        committed = [ln for ln in said if ln.startswith("committed: calibration id ")]
        assert committed and "verdict: ok\n" in said, "".join(said)
        cal_id = int(committed[0].split()[-1])
        gw = api.GatewayBus(found)
        try:
            def item(name):
                return gw.request(1, messages.CONFIG_READ, {"item": config_items.BY_NAME[name].id},
                                  messages.CONFIG_VALUE).values["value"]
            assert abs(item("ph_cal_offset") - OFFSET_UV) <= 200  # µV
            assert abs(item("ph_cal_slope_acid") - SLOPE * 10000) <= 10  # 0.01 %
            assert item("ph_cal_id") == cal_id
            # the gateway saw it: its logger stored the calibration event, its state the new id
            wait_for(lambda: gw.call({"op": "snapshot"})["stages"][0]["cal_id"] == cal_id,
                     what="the gateway's calibration id")
        finally:
            gw.close()
        serve.send_signal(signal.SIGTERM)
        assert serve.wait(30) == 0, (tmp_path / "serve.err").read_text()
        with sqlite3.connect(db) as c:
            assert c.execute("SELECT COUNT(*) FROM events WHERE kind = 'calibration'").fetchone()[0] >= 1
            assert c.execute("SELECT COUNT(*) FROM gaps").fetchone() == (0,)
            got = [r[0] for r in c.execute("SELECT record FROM telemetry WHERE epoch = (SELECT MAX(epoch) FROM "
                                           "telemetry) ORDER BY record")]
        assert len(got) > 10 and got == list(range(got[0], got[0] + len(got)))
    finally:
        for proc in (cal, serve):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait(10)
        halt()
        beaker.stop.set()
        sim.close()


def test_a_flooding_client_starves_neither_the_logger_nor_another_client(served):
    import threading
    stop, done = threading.Event(), []

    def flood():
        gw = served.api()
        try:
            while not stop.is_set():
                telemetry(gw, 1)
                done.append(1)
        finally:
            gw.close()

    rows = {a: len(served.rows(a)) for a in STAGES}
    flooder = threading.Thread(target=flood)
    flooder.start()
    try:
        wait_for(lambda: len(done) > 20, what="the flood to run")
        other = served.api()
        try:
            assert telemetry(other, 3)["record"] > 0  # served between the flood's requests
        finally:
            other.close()
        wait_for(lambda: all(len(served.rows(a)) >= rows[a] + 3 for a in STAGES), what="the logger going on")
    finally:
        stop.set()
        flooder.join(30)
    for a in STAGES:
        got = served.rows(a)
        assert got == list(range(got[0], got[0] + len(got)))


def test_a_killed_gateways_state_file_is_not_followed(tmp_path, monkeypatch):
    monkeypatch.setenv(state.ENV, str(tmp_path))
    leftover = state.StateFile("loop://")
    leftover.claim()
    leftover.publish(stages=[1])  # our own pid: alive, but nothing listens on the socket
    assert state.find("loop://") is not None
    bus = api.bus_for("loop://")
    try:
        assert isinstance(bus, buslink.BusClient)
    finally:
        bus.close()


def test_fair_queue_takes_clients_in_turn():
    from sxctl.gateway.core import FairQueue
    q = FairQueue()
    for i in range(5):
        q.put("a", "a%d" % i)
    q.put("b", "b0")
    q.put("c", "c0")
    q.put("b", "b1")
    assert [q.get(0) for _ in range(8)] == ["a0", "b0", "c0", "a1", "b1", "a2", "a3", "a4"]
    assert q.get(0) is None


def test_a_missed_stage_is_read_again_when_its_next_record_is_due():
    import time

    from sxctl.gateway.core import CATCH_UP_MARGIN_S, MAX_CATCH_UPS, CatchUps, StageState

    class Stage:
        def __init__(self, addr):
            self.addr = addr
    late, new, never = Stage(1), Stage(2), Stage(3)
    wall = time.time()
    states = {1: StageState(1, 3.0, read_at=wall - 0.4), 2: StageState(2, 3.0, read_at=wall - 0.95),
              3: StageState(3, 3.0)}
    plan = CatchUps(period=1.0, step=0.1)
    start = time.monotonic()
    plan.plan([late, new, never], states)
    due = {s.addr: d for s, (d, _) in plan.due.items()}
    # stage 1 recorded 0.4 s ago: its next record is due in 0.6 s, not at the next step
    assert 0.6 + CATCH_UP_MARGIN_S - 0.05 <= due[1] - start <= 0.6 + CATCH_UP_MARGIN_S + 0.05
    # stage 2's next record is due about now, stage 3 never gave one: read one half step on
    assert due[2] - start == pytest.approx(0.05, abs=0.05) and due[3] - start == pytest.approx(0.1, abs=0.05)
    assert plan.take_due(start + 0.2) == [new, never]
    plan.missed_again([new, never], [never], start + 0.2)  # stage 2 got its record, stage 3 did not
    assert set(plan.due) == {late, never} and plan.due[never][0] == pytest.approx(start + 0.3)
    for _ in range(MAX_CATCH_UPS - 1):  # a board that does not record costs at most MAX_CATCH_UPS reads
        plan.missed_again([never], [never], start + 0.3)
    assert set(plan.due) == {late}


def test_fuzzed_and_bad_frames_get_exceptions_and_change_nothing(served):
    rng = random.Random(16)

    def frame(unit, pdu, tid=1, proto=0, length=None):
        return struct.pack(">HHHB", tid, proto, len(pdu) + 1 if length is None else length, unit) + pdu

    def exchange(data, expect_reply=True):
        with socket.create_connection(("127.0.0.1", served.modbus_port), timeout=5) as s:
            s.sendall(data)
            if not expect_reply:
                return None
            return s.recv(260)

    # the matching exceptions: illegal function, address outside the map, oversized count, unknown unit
    assert exchange(frame(1, b"\x55\x00\x00"))[7:9] == b"\xd5\x01"
    assert exchange(frame(1, struct.pack(">BHH", 4, 500, 1)))[7:9] == b"\x84\x02"
    assert exchange(frame(1, struct.pack(">BHH", 4, 0, 126)))[7:9] == b"\x84\x03"
    assert exchange(frame(99, struct.pack(">BHH", 4, 0, 1)))[7:9] == b"\x84\x0b"
    # a malformed MBAP header (another protocol id, a length that cannot be) closes the connection
    for proto, length in ((1, 6), (0, 0), (0, 1), (0, 300)):
        with socket.create_connection(("127.0.0.1", served.modbus_port), timeout=5) as s:
            s.sendall(frame(1, struct.pack(">BHH", 4, 0, 2), proto=proto, length=length))
            assert s.recv(260) == b"", (proto, length)
    rows = {a: len(served.rows(a)) for a in STAGES}
    sent = 0
    socks = []
    for i in range(1000):
        kind = rng.randrange(4)
        if kind == 0:      # bytes with no structure at all
            data = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 300)))
        elif kind == 1:    # a header that lies about its length or protocol
            data = frame(rng.randrange(256), bytes(rng.randrange(256) for _ in range(rng.randrange(0, 20))),
                         proto=rng.choice((0, 1, 0xFFFF)), length=rng.randrange(0x10000))
        elif kind == 2:    # a well-formed frame of any function, address and count
            data = frame(rng.randrange(256), struct.pack(">BHH", rng.randrange(256), rng.randrange(0x10000),
                                                         rng.randrange(0x10000)))
        else:              # a write of random registers from a client that may not write
            n = rng.randrange(1, 4)
            data = frame(rng.choice(STAGES), struct.pack(">BHHB", 16, rng.randrange(8), n, 2 * n)
                         + bytes(rng.randrange(256) for _ in range(2 * n)))
        if not socks or rng.random() < 0.1:
            socks.append(socket.create_connection(("127.0.0.1", served.modbus_port), timeout=5))
        try:
            socks[-1].sendall(data)
            sent += 1
        except OSError:  # the server closed a connection it found garbage on: open another
            socks[-1].close()
            socks[-1] = socket.create_connection(("127.0.0.1", served.modbus_port), timeout=5)
    assert sent > 900
    for s in socks:
        s.close()
    # the gateway still serves, the logger still logs, and no fuzzed write reached a board
    mb = served.client()
    try:
        assert registers.decode_input(block(mb, 1))["online"] == 1
    finally:
        mb.close()
    wait_for(lambda: all(len(served.rows(a)) > rows[a] for a in STAGES), what="the logger going on")
    assert served.proc.poll() is None


def test_an_idle_client_blocks_no_one(served):
    idle = socket.create_connection(("127.0.0.1", served.modbus_port))
    idle.sendall(b"\x00\x01\x00\x00")  # half a header, then nothing
    idle_api = socket.socket(socket.AF_UNIX)
    idle_api.connect(state.find(served.sim.bus, served.state_dir)["api"])
    idle_api.sendall(b'{"op": ')
    try:
        mb = served.client()
        gw = served.api()
        try:
            for _ in range(20):
                assert len(block(mb, 2)) == registers.BLOCK_SIZE
            assert telemetry(gw, 2)["record"] > 0
        finally:
            mb.close()
            gw.close()
    finally:
        idle.close()
        idle_api.close()


class Frozen:
    """Stage interpreters held stopped: a hung board. Its watchdog hard-resets it as on silicon; the
    interpreter that boots after is stopped too before it can answer (its watchdog not yet
    started), so the stage stays silent until thawed."""

    def __init__(self, root):
        self.root = root
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._hold, daemon=True)

    def _hold(self):
        while not self.done.is_set():
            for pid in processes_under(self.root):
                try:
                    os.kill(pid, signal.SIGSTOP)
                except ProcessLookupError:
                    pass
            self.done.wait(0.02)

    def __enter__(self):
        assert processes_under(self.root)
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.done.set()
        self.thread.join()
        for pid in processes_under(self.root):
            try:
                os.kill(pid, signal.SIGCONT)
            except ProcessLookupError:
                pass


def test_a_silent_board_reads_offline_and_nan_then_comes_back(served):
    mb = served.client()
    boot = served.epoch(2)
    try:
        with Frozen(served.sim.roots[1]):  # stage 2's interpreter
            def offline():
                v = registers.decode_input(block(mb, 2))
                if v["online"]:
                    # while it still counts as online, its data is within the stale age
                    assert v["data_age_ms"] <= 1000 * STALE_S + 100
                    return None
                return v
            v = wait_for(offline, what="stage 2 to read offline")
            with served.client(ALLOWED) as allowed:  # a write to a board that does not answer
                assert allowed.write_register(0, 2100, device_id=2).exception_code == 4
            assert all(math.isnan(v[n]) for n in registers.FIELDS)
            assert v["quality"] == (1 << len(registers.FIELDS)) - 1
            assert registers.decode_input(block(mb, 1))["online"] == 1  # the others go on
        v = wait_for(lambda: (lambda x: x if x["online"] else None)(registers.decode_input(block(mb, 2))),
                     what="stage 2 back online")
        assert not math.isnan(v["ph_setpoint"])
        # its watchdog reset the hung board: the log goes on in a new epoch of its own
        wait_for(lambda: served.epoch(2) > boot, what="stage 2's new boot in the log")
    finally:
        mb.close()


# Verbs whose output does not move with the clock: through the gateway and direct, byte for byte.
SAME_AS_DIRECT = (("config", "diff"), ("set", "--addr", "9", "ph_setpoint=2.5"),
                  ("set", "--addr", "2", "ph_low_alarm=3.0"), ("info", "--addr", "9"), ("key", "status", "--addr", "1"),
                  ("key", "status", "--addr", "9"), ("calibrate", "flow_aq", "--addr", "1", "--yes", "--points", "1000"),
                  ("monitor", "--stage", "9", "--once"))


def same_as_direct(served):
    out = []
    for verb in SAME_AS_DIRECT:
        done = served.sxctl(*verb, *([] if verb[0] == "config" else ["--plant"]), str(served.plant))
        # a signing counter moves with every round of the gateway's keepalive, monitor shows the time
        text = "".join(ln for ln in done.stdout.splitlines(True) if not ln.startswith(("counter", "stored floor")))
        text = re.sub(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", "TIME", text)
        out.append((verb, done.returncode, text, done.stderr))
    return out


def test_sigterm_then_restart_loses_no_record(served):
    through = same_as_direct(served)
    assert [o[1] for o in through] == [0, 1, 1, 1, 0, 1, 1, 1]
    served.proc.send_signal(signal.SIGTERM)
    assert served.proc.wait(30) == 0, served.log()
    assert state.find(served.sim.bus, served.state_dir) is None  # the state file went with it
    stored = {a: served.rows(a)[-1] for a in STAGES}
    epochs = {a: served.epoch(a) for a in STAGES}
    # with no gateway, a verb uses the bus directly again; meanwhile the boards record on
    with buslink.BusClient(served.sim.bus) as bus:
        def latest(a):
            return bus.request(a, messages.BACKLOG_READ, {"since": 0, "count": 0}, expect=messages.BACKLOG).values["latest"]
        wait_for(lambda: all(latest(a) > stored[a] + 2 for a in STAGES), what="the boards recording on")
    for gw_run, direct in zip(through, same_as_direct(served)):
        assert gw_run == direct  # the same output, errors and exit codes as through the gateway
    served.start()
    wait_for(lambda: all(served.rows(a)[-1] > stored[a] + 1 for a in STAGES), what="records after the restart")
    for a in STAGES:
        assert served.epoch(a) == epochs[a]  # the same boot of each board: its numbering went on
        got = served.rows(a, epochs[a])
        assert got == list(range(got[0], got[0] + len(got))), "stage %d: a record missing or doubled" % a
    with sqlite3.connect(served.db) as c:
        assert c.execute("SELECT COUNT(*) FROM gaps").fetchone() == (0,)
        # the restart opened no epoch: each stage's newest is the one it had before the SIGTERM
        assert c.execute("SELECT stage, MAX(epoch) FROM epochs GROUP BY stage ORDER BY stage").fetchall() == \
            sorted(epochs.items())
