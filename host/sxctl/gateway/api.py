"""The client API: JSON lines over the gateway's Unix socket (docs/gateway.md).

Each line a client sends is one request object, each line back its answer. The requests carry
the protocol's own messages by name (ESPHome's "one schema for every client"): a client asks
for what `sxctl` would have sent on the bus, the gateway sends it between the logger's rounds,
signs it with the plant key if it is a write, and returns the decoded reply, or the error with
the same text, kind and exit code as direct use. A write needs the token of the state file.

GatewayBus is the client side with BusClient's interface, so a verb runs unchanged on it.
"""
import hmac
import json
import logging
import os
import socket
import socketserver
import threading

from sxproto import messages

from .. import buslink, keys
from ..errors import SxctlError

log = logging.getLogger("sxctl.serve.api")
API_VERSION = 1
MAX_LINE = 64 * 1024
BY_NAME = {m.name: m for m in messages.ALL}
WRITES = frozenset(m.name for m in messages.WRITES)
REQUEST_TIMEOUT_S = 60.0


def plain(value):
    """A decoded message as JSON-able values (construct Containers without their private keys)."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items() if not str(k).startswith("_")}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, bytes):
        return value.hex()
    return value


def error_answer(e):
    kind = type(e).__name__
    out = {"ok": False, "error": str(e), "kind": kind, "exit_code": getattr(e, "exit_code", 1)}
    if isinstance(e, buslink.RemoteError):
        out.update(code=e.code, detail=e.detail, attempt=e.attempt)
    return out


class _Handler(socketserver.StreamRequestHandler):
    timeout = None  # an idle client holds only its own thread

    def handle(self):
        face = self.server.face
        while True:
            line = self.rfile.readline(MAX_LINE + 1)
            if not line:
                return
            if len(line) > MAX_LINE:
                self._send({"ok": False, "error": "request longer than %d bytes" % MAX_LINE, "kind": "BadRequest"})
                return
            try:
                request = json.loads(line)
                if not isinstance(request, dict):
                    raise ValueError("a request is a JSON object")
                answer = face.answer(request, id(self))
            except ValueError as e:
                answer = {"ok": False, "error": "bad request: %s" % e, "kind": "BadRequest", "exit_code": 2}
            self._send(answer)

    def _send(self, answer):
        self.wfile.write(json.dumps(answer).encode() + b"\n")
        self.wfile.flush()


class _Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


class ApiFace:
    """The Unix-socket server, one thread per connected client."""

    NAME = "api"

    def __init__(self, path, token):
        self.path = str(path)
        self.token = token
        self.server = None
        self.thread = None
        self.gw = None

    def describe(self):
        return "client API on %s" % self.path

    def start(self, gateway):
        self.gw = gateway
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass
        old = os.umask(0o117)  # socket 0660: the owner and its group
        try:
            self.server = _Server(self.path, _Handler)
        finally:
            os.umask(old)
        self.server.face = self
        self.thread = threading.Thread(target=self.server.serve_forever, name="api", daemon=True)
        self.thread.start()

    def stop(self):
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            try:
                os.unlink(self.path)
            except FileNotFoundError:
                pass

    def answer(self, request, client):
        op = request.get("op")
        if op == "hello":
            gw = self.gw
            return {"ok": True, "api": API_VERSION, "bus": gw.port, "bus_realpath": os.path.realpath(gw.port),
                    "stages": gw.addrs, "pid": os.getpid(), "fingerprint": buslink.FINGERPRINT,
                    "period": gw.period, "stale_s": gw.stale_s, "db": gw.db,
                    "token_file": getattr(gw, "token_file", None)}
        if op == "status":
            return {"ok": True, "status": self.gw.status(), "stats": self.gw.bus.stats.as_dict()}
        if op == "snapshot":
            return {"ok": True, "stages": self.gw.snapshot()}
        if op == "request":
            return self._request(request, client)
        raise ValueError("unknown op %r; ops are hello, status, snapshot, request" % op)

    def _request(self, request, client):
        name = request.get("message")
        message = BY_NAME.get(name)
        if message is None or message.is_reply:
            raise ValueError("unknown request message %r" % name)
        expect = request.get("expect")
        if expect is not None and expect not in BY_NAME:
            raise ValueError("unknown reply message %r" % expect)
        addr = request.get("addr")
        if not isinstance(addr, int):
            raise ValueError("addr must be a stage address")
        values = request.get("values")
        if name in WRITES and not hmac.compare_digest(str(request.get("token", "")), self.token):
            return {"ok": False, "kind": "KeyProblem", "exit_code": 1,
                    "error": "the gateway on %s refused %s: this client did not give the gateway's token; run "
                             "sxctl as a user that can read %s" % (self.gw.port, name, self.gw.token_file)}

        def run(bus):
            if message is messages.HELLO:
                reply_values, reply_name = bus.hello(addr), "INFO"
            else:
                reply = bus.request(addr, message, values, BY_NAME[expect] if expect else None)
                reply_values, reply_name = reply.values, reply.message.name
            return {"ok": True, "message": reply_name, "values": plain(reply_values),
                    "stats": bus.stats.as_dict()}

        try:
            return self.gw.submit("api:%s" % client, run).result(REQUEST_TIMEOUT_S)
        except Exception as e:  # the error goes to the client as direct use would have raised it
            return error_answer(e)


# the client side
class GatewayGone(Exception):
    """The state file names a live pid, but nothing listens on its socket: a gateway that was
    killed (its pid taken by another process since); nobody holds the bus."""


class Reply:
    def __init__(self, message, values):
        self.message = message
        self.values = values


class GatewayBus:
    """BusClient's interface (request, hello, signing_state, stats, port) through a gateway.

    From a state file (`state`: what state.find returned), or from the socket alone
    (`socket_path`, as --gateway names it): then the gateway's hello says which bus it holds."""

    def __init__(self, state=None, socket_path=None):
        path = socket_path or state["api"]
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            self.sock.connect(path)
        except (FileNotFoundError, ConnectionRefusedError):
            self.sock.close()
            if state is None:
                raise SxctlError("no gateway answers on %s: start `sxctl serve` for that bus, or leave out "
                                 "--gateway (and $%s) to use the bus directly" % (path, GATEWAY_ENV)) from None
            raise GatewayGone(state) from None
        except OSError as e:
            self.sock.close()
            if state is None:
                raise SxctlError("cannot reach a gateway on %s (%s): give the socket path of a running "
                                 "`sxctl serve` (its state file's \"api\")" % (path, e.strerror or e)) from None
            raise SxctlError("a gateway (pid %d) holds %s but its socket %s does not answer (%s); stop it or "
                             "wait until it has started" % (state["pid"], state["bus"], state["api"], e)) from None
        self.file = self.sock.makefile("rwb")
        self.token = None
        if state is None:
            hello = self.call({"op": "hello"})
            if not hello.get("ok") or "bus" not in hello:
                self.close()
                raise SxctlError("%s does not answer as an sxctl gateway does: give the socket of a running "
                                 "`sxctl serve`" % path)
            state = dict(hello, api=path)
        self.state = state
        self.port = state["bus"]  # the same output as direct use
        from . import state as state_mod
        self.token = state_mod.read_token(state)
        self.stats = buslink.LinkStats()

    def call(self, request):
        if self.token:
            request = dict(request, token=self.token)
        try:
            self.file.write(json.dumps(request).encode() + b"\n")
            self.file.flush()
            line = self.file.readline()
        except OSError as e:
            line, why = b"", str(e)
        else:
            why = "it closed the connection"
        if not line:
            where = self.state["bus"] if getattr(self, "state", None) else "its socket"
            raise SxctlError("the gateway on %s stopped answering (%s); see its log" % (where, why))
        return json.loads(line)

    def request(self, addr, message, values=None, expect=None):
        answer = self.call({"op": "request", "addr": addr, "message": message.name, "values": values,
                            "expect": expect.name if expect else None})
        if not answer.get("ok"):
            raise _error(addr, message, answer)
        self._stats(answer)
        return Reply(BY_NAME[answer["message"]], answer["values"])

    def hello(self, addr):
        return self.request(addr, messages.HELLO).values

    def signing_state(self, addr):
        return self.request(addr, messages.SIGNING_READ, expect=messages.SIGNING_STATE).values

    def keepalive(self, addr):
        """Nothing: the gateway's own rounds hold every keyed board's link (BusClient.keepalive)."""
        return None

    def _stats(self, answer):
        for k, v in answer.get("stats", {}).items():
            setattr(self.stats, k, v)

    def close(self):
        try:
            self.file.close()
        finally:
            self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


_KINDS = {"NoAnswer": buslink.NoAnswer, "SchemaMismatch": buslink.SchemaMismatch, "KeyProblem": keys.KeyProblem}


def _error(addr, message, answer):
    if answer.get("kind") == "RemoteError":
        e = buslink.RemoteError(addr, message, answer["code"], answer["detail"])
        e.attempt = answer.get("attempt", 0)
        return e
    e = _KINDS.get(answer.get("kind"), SxctlError)(answer.get("error", "the gateway failed"))
    e.exit_code = answer.get("exit_code", 1)
    return e


GATEWAY_ENV = "SXCTL_GATEWAY"


def socket_of(target):
    """The client API socket that --gateway names: its path, a unix:// URL, or the gateway's state
    file (`<bus>.json`)."""
    for scheme in ("unix://", "unix:"):
        if target.startswith(scheme):
            target = target[len(scheme):]
            break
    else:
        if "://" in target:
            raise SxctlError("--gateway %s: a gateway's client API is a Unix socket; give its path (e.g. "
                             "/run/sxctl/dev_ttyUSB0.sock) or unix:///path" % target)
    if target.endswith(".json"):
        try:
            with open(target) as f:
                return json.load(f)["api"]
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise SxctlError("--gateway %s: not a gateway's state file (%s)" % (target, e)) from None
    return target


def connect(target, port=None):
    """The gateway --gateway names; refused if it holds another bus than `port` (when given)."""
    bus = GatewayBus(socket_path=socket_of(target))
    if port is not None and os.path.realpath(port) != bus.state.get("bus_realpath"):
        theirs = bus.state["bus"]
        bus.close()
        raise SxctlError("the gateway on %s holds bus %s, not %s: leave out --bus, or name the gateway of %s"
                         % (target, theirs, port, port))
    return bus


def bus_for(port, baud=115200, **kw):
    """The bus for a verb: through the gateway whose state file says it holds `port`, else the port
    itself."""
    from . import state

    from ..buslock import BusBusy

    found = state.find(port)
    if found is not None:
        try:
            return GatewayBus(found)
        except GatewayGone:
            pass
    try:
        return buslink.BusClient(port, baud=baud, **kw)
    except BusBusy as e:
        if "`sxctl serve`" not in str(e):
            raise
        # A gateway holds the bus, but its state file is not where this process looks.
        raise BusBusy("%s: its state file is not in %s; name it with --gateway SOCKET (or $%s), or give "
                      "this process the gateway's state folder ($%s)" % (e, state.folder(), GATEWAY_ENV,
                                                                         state.ENV)) from None
