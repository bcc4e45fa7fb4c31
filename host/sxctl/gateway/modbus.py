"""The Modbus TCP face: every stage as a Modbus unit, served from the gateway's latest telemetry.

Reads are answered from the core's StageState (pymodbus's datastore-and-updater pattern: the
bus thread keeps the data current, a request never waits on the field). Writes, when the plant
file turns them on for the client's address, go to the bus thread as one request each and are
answered after the board confirmed. The register map is registers.py (docs/modbus.md).
"""
import asyncio
import contextvars
import logging
import os
import struct
import threading

from pymodbus.constants import ExcCodes
from pymodbus.datastore import ModbusServerContext
from pymodbus.exceptions import ModbusIOException, NoSuchIdException
from pymodbus.pdu import ExceptionResponse
from pymodbus.server import ModbusTcpServer
from pymodbus.server.requesthandler import ServerRequestHandler
from pymodbus.transaction import TransactionManager
from sxproto import config_items, messages

from ..buslink import NoAnswer, RemoteError
from ..commands import set as set_verb
from ..errors import SxctlError
from . import registers

log = logging.getLogger("sxctl.serve.modbus")
DEFAULT_LISTEN = ("127.0.0.1", 5020)
READ_INPUT, READ_HOLDING = 4, 3
WRITE_FUNCTIONS = (6, 16, 22, 23)
MAX_MBAP_LENGTH = 254  # unit id + a PDU of at most 253 bytes (Modbus application protocol 1.1b3)
MODBUS_NICE = 10  # the Modbus thread's nice value above the gateway's
WRITE_TIMEOUT_S = 10.0  # the bus thread answers within a round plus the write's retries
_peer = contextvars.ContextVar("modbus_peer", default=None)
_TASKS = set()
logging.getLogger("pymodbus").setLevel(logging.CRITICAL)  # a client's garbage is not our error


def listen_address(text):
    """HOST:PORT as --modbus takes it."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError("give HOST:PORT, e.g. 127.0.0.1:5020")
    return host or "127.0.0.1", int(port)


_READ_REQUEST = struct.Struct(">HHHBBHH")  # MBAP header, function 4, address, count
_READ_ANSWER = struct.Struct(">HHHBBB")  # MBAP header, function 4, byte count


class _Handler(ServerRequestHandler):
    """Knows the client's address while its request runs (the write allow-list needs it), and
    answers a request pymodbus cannot decode with the exception the Modbus spec names for it.

    A valid read of input registers, what SCADA polls all day, is answered right here from the
    stage's packed block, without pymodbus's decode, PDU objects and task (about a fifth of the
    CPU per read, which on a busy plant PC is what keeps the tail latency down). Anything else,
    and any read while an earlier request of this connection is still running (answers stay in
    order), takes pymodbus's path."""

    pending = 0  # requests of this connection on pymodbus's path not yet answered

    def callback_data(self, data, addr=None):
        if len(data) >= 7:  # an MBAP header: protocol 0, a length that holds a unit and a function
            _, protocol, length = struct.unpack_from(">HHH", data)
            if protocol != 0 or not 2 <= length <= MAX_MBAP_LENGTH:
                log.info("modbus client %s sent a malformed MBAP header (protocol %d, length %d): "
                         "connection closed", _peer_of(self.transport), protocol, length)
                self.transport.close()
                return len(data)
        fast = 0
        while not self.pending and len(data) - fast >= _READ_REQUEST.size:
            answer = self.server.context.read_input_answer(*_READ_REQUEST.unpack_from(data, fast))
            if answer is None:
                break
            self.transport.write(answer)
            fast += _READ_REQUEST.size
        if fast:
            if fast == len(data):
                return fast
            data = data[fast:]
        try:
            used = fast + TransactionManager.callback_data(self, data, addr)
        except ModbusIOException as exc:
            # Inside one MBAP frame (7 header bytes, then the function code): a function pymodbus
            # has is refused for its values (e.g. a count above 125), any other as illegal.
            fc = data[7] & 0x7F if len(data) > 7 else 0
            code = ExcCodes.ILLEGAL_VALUE if fc in self.server.decoder.pdu_table else ExcCodes.ILLEGAL_FUNCTION
            self.server_send(ExceptionResponse(fc, exception_code=code, device_id=exc.dev_id,
                                               transaction=exc.transaction_id), addr)
            return fast + len(data)
        if self.last_pdu:
            self.pending += 1
            self.loop.call_soon(self.handle_later)
        return used

    def handle_later(self):
        # Already in the server's loop: a task of its own, without pymodbus's thread-safe hand-over
        # (which costs about 1 ms of wake-ups per request). The set keeps running tasks referenced.
        task = self.loop.create_task(self.handle_request())
        _TASKS.add(task)
        task.add_done_callback(self._answered)

    def _answered(self, task):
        _TASKS.discard(task)
        self.pending -= 1

    async def handle_request(self):
        _peer.set(_peer_of(self.transport))
        await super().handle_request()


def _peer_of(transport):
    peer = transport.get_extra_info("peername") if transport else None
    return peer[0] if peer else None


class _Server(ModbusTcpServer):
    def callback_new_connection(self):
        return _Handler(self, self.trace_packet, self.trace_pdu, self.trace_connect)


class StagesContext(ModbusServerContext):
    """pymodbus's datastore interface over the gateway's stages."""

    def __init__(self, gateway, writes=False, allow=()):
        self.old_simulator = True  # take the async get/set interface below as it is
        self.simdevices = []
        self.gw = gateway
        self.writes = writes
        self.allow = frozenset(allow)
        self.refused_writes = 0

    def device_ids(self):
        return list(self.gw.addrs)

    def _state(self, unit):
        state = self.gw.states.get(unit)
        if state is None:
            raise NoSuchIdException("unit %s is not a stage of this gateway" % unit)
        return state

    def read_input_answer(self, tid, protocol, length, unit, function, address, count):
        """The whole answer frame to a valid read of input registers (the fields of its MBAP
        header and PDU), or None for any other request: pymodbus's path answers those."""
        state = self.gw.states.get(unit)
        if (protocol or length != 6 or function != READ_INPUT or state is None
                or not (1 <= count and address + count <= registers.BLOCK_SIZE)):
            return None
        block = registers.input_bytes(state)
        return _READ_ANSWER.pack(tid, 0, 3 + 2 * count, unit, READ_INPUT, 2 * count) + block[2 * address:2 * (address + count)]

    async def async_getValues(self, device_id, func_code, address, count=1):
        state = self._state(device_id)
        if func_code == READ_INPUT:
            size = registers.BLOCK_SIZE
        elif func_code in (READ_HOLDING,) + WRITE_FUNCTIONS:
            size = registers.HOLDING_SIZE
        else:
            return ExcCodes.ILLEGAL_FUNCTION
        if not (0 <= address and count >= 1 and address + count <= size):
            return ExcCodes.ILLEGAL_ADDRESS
        regs = registers.encode_input(state) if func_code == READ_INPUT else holding_values(state)
        return regs[address:address + count]

    async def async_setValues(self, device_id, func_code, address, values):
        self._state(device_id)
        if func_code not in WRITE_FUNCTIONS:
            return ExcCodes.ILLEGAL_FUNCTION
        if not (0 <= address and address + len(values) <= registers.HOLDING_SIZE):
            return ExcCodes.ILLEGAL_ADDRESS
        peer = _peer.get()
        if not self.writes or peer not in self.allow:
            self.refused_writes += 1
            log.warning("modbus write from %s to unit %d refused: %s", peer, device_id,
                        "writes are off" if not self.writes else "address not in modbus_allow")
            return ExcCodes.ILLEGAL_FUNCTION
        for offset, word in enumerate(values):
            reg = registers.HOLDING_BY_ADDRESS[address + offset]
            raw = word - 0x10000 if reg.kind == "int16" and word & 0x8000 else word
            future = self.gw.submit("modbus:%s" % peer, lambda bus, r=reg, v=raw: write(bus, device_id, r, v))
            try:
                await asyncio.wait_for(asyncio.wrap_future(future), WRITE_TIMEOUT_S)
            except NoAnswer:
                return ExcCodes.DEVICE_FAILURE
            except (RemoteError, SxctlError, ValueError) as e:
                log.warning("modbus write of %s=%d to unit %d refused: %s", reg.name, raw, device_id, e)
                return ExcCodes.ILLEGAL_VALUE
            except (asyncio.TimeoutError, RuntimeError):  # not sent: the timeout cancelled the request
                return ExcCodes.DEVICE_FAILURE
            log.info("modbus write from %s: unit %d %s=%d applied", peer, device_id, reg.name, raw)
        return None


def holding_values(state):
    out = []
    for reg in registers.HOLDING:
        if reg.name == "mode":
            value = state.raw.get("mode") if state.raw else None
        elif reg.name == "alarm_ack":
            value = state.unacked_now()
        elif reg.name == "ph_setpoint" and state.raw:
            value = state.raw.get("ph_setpoint")
        else:
            value = state.config.get(reg.name)
        if value is None:
            out.append(registers.INT16_INVALID if reg.kind == "int16" else registers.UINT16_INVALID)
        else:
            out.append(value & 0xFFFF)
    return out


def write(bus, addr, reg, raw):
    """One holding-register write, checked as `sxctl set` checks it; returns the applied value
    after updating the state the faces serve. Runs in the bus thread."""
    if reg.name == "alarm_ack":
        state = bus.request(addr, messages.ALARM_ACK, {"mask": raw}, expect=messages.ALARM_STATE).values
        return state["alarms_unacked"]
    if reg.name == "mode":
        if raw not in messages.MODES:
            raise ValueError("mode %d: must be one of %s" % (raw, ", ".join("%d" % m for m in messages.MODES)))
        text = messages.MODES[raw]
    else:
        from .. import plantfile
        text = plantfile.engineering(config_items.BY_NAME[reg.name], raw).split(" ")[0]
    ((key, value, _),) = set_verb.parse(["%s=%s" % (reg.name, text)])  # the rules of `sxctl set`
    bus.hello(addr)  # refuses a board built from another schema, as `sxctl set` does
    if key == "mode":
        ack = bus.request(addr, messages.SET_MODE, dict(mode=value, manual_output=set_verb.BUMPLESS),
                          expect=messages.MODE_ACK).values
        return ack["mode"]
    loop = set_verb.SETPOINT_LOOPS[key]
    return bus.request(addr, messages.SET_SETPOINT, dict(loop=loop, value=value),
                       expect=messages.SETPOINT_ACK).values["value"]


class ModbusFace:
    """The pymodbus server in its own thread and event loop, started and stopped with the gateway."""

    NAME = "modbus"

    def __init__(self, listen=DEFAULT_LISTEN, writes=False, allow=()):
        self.listen = listen
        self.writes = writes
        self.allow = tuple(allow)
        self.loop = None
        self.server = None
        self.thread = None
        self.context = None
        self.error = None

    def describe(self):
        return "Modbus TCP on %s:%d, writes %s" % (self.listen[0], self.bound_port(), (
            "on for " + ", ".join(self.allow)) if self.writes else "off")

    def bound_port(self):
        try:
            return self.server.transport.sockets[0].getsockname()[1]
        except (AttributeError, IndexError, TypeError):
            return self.listen[1]

    def start(self, gateway):
        self.context = StagesContext(gateway, self.writes, self.allow)
        ready = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(ready,), name="modbus", daemon=True)
        self.thread.start()
        ready.wait(30)
        if self.error is not None:
            raise SxctlError("cannot serve Modbus TCP on %s:%d: %s; give another --modbus HOST:PORT"
                             % (self.listen[0], self.listen[1], self.error))

    def _run(self, ready):
        # SCADA's reads yield the CPU to the bus: the logger's rounds (and the boards, on a
        # simulated plant) come first when the machine is short of CPU.
        try:
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), os.getpriority(os.PRIO_PROCESS, 0) + MODBUS_NICE)
        except OSError:
            pass
        self.loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self.loop)

        async def main():
            try:
                self.server = _Server(self.context, address=self.listen)
                await self.server.serve_forever(background=True)
            except Exception as e:
                self.error, self.server = e, None
                return
            finally:
                ready.set()
            await self.server.serving

        try:
            self.loop.run_until_complete(main())
        finally:
            self.loop.close()

    def stop(self):
        if self.server is not None and self.loop is not None and self.loop.is_running():
            asyncio.run_coroutine_threadsafe(self.server.shutdown(), self.loop).result(10)
        if self.thread is not None:
            self.thread.join(10)
