"""The operator web view: an aiohttp server in its own thread, started and stopped with the gateway.

It serves one page (static/, the package's own HTML, CSS and JS: no CDN, nothing fetched from
elsewhere) and a small JSON API over the gateway's current state and its SQLite log:

- GET  /api/overview          every stage's tile (view.overview)
- GET  /api/events            server-sent events: the overview again when it changed, at most once
                              per poll round
- GET  /api/trend?stage=&start=&end=   means over the log (view.trend)
- GET  /api/alarms            current alarms and the log's alarm events
- GET  /api/session           who is logged in, the CSRF token, whether logins are set up
- POST /api/login, /api/logout, /api/ack {"stage": N}

Read-only without a login; acknowledging needs a session (auth.py) and its CSRF token, and goes
to the bus thread as `sxctl monitor --ack` would run it, signed with the plant key by the
gateway's bus client. Binds to loopback unless told otherwise (docs/web.md: behind a TLS proxy).
"""
import asyncio
import json
import logging
import pathlib
import threading

from ...errors import SxctlError

log = logging.getLogger("sxctl.serve.web")
DEFAULT_LISTEN = ("127.0.0.1", 8080)
STATIC = pathlib.Path(__file__).with_name("static")
STATIC_TYPES = {".html": "text/html", ".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml"}
COOKIE = "sxctl_session"
CSRF_HEADER = "X-CSRF-Token"
ACK_TIMEOUT_S = 10.0
WATCH_S = 0.05  # how often the event stream looks for a new state
SSE_KEEPALIVE_S = 15.0
# The page may load and connect to the gateway only: the browser itself refuses anything else.
HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                               "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


def listen_address(text):
    """HOST:PORT as --http takes it."""
    host, sep, port = str(text).rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError("give HOST:PORT, e.g. 127.0.0.1:8080")
    return host.strip("[]") or DEFAULT_LISTEN[0], int(port)


class WebFace:
    NAME = "web"

    def __init__(self, listen, plant=None, users_file=None):
        self.listen_text = listen
        self.names = {s.address: s.name for s in plant.stages} if plant is not None else {}
        self.users_path = users_file
        self.gw = None
        self.loop = None
        self.thread = None
        self.runner = None
        self.error = None
        self.port = None
        self.sessions = None
        self.changed = None  # asyncio.Condition: the overview the streams send changed
        self.current = None  # (json text, poll round) of the newest overview

    def describe(self):
        return "web view on http://%s:%d/ (%s)" % (self.listen[0], self.port, (
            "acknowledge after a login; users in %s" % self.users_path) if self.sessions.users else
            "read-only: no users in %s" % self.users_path)

    def start(self, gateway):
        from . import auth

        try:
            self.listen = listen_address(self.listen_text)
        except ValueError as e:
            raise SxctlError("--http %s: %s" % (self.listen_text, e)) from None
        self.gw = gateway
        self.users_path = self.users_path or auth.users_file()
        self.sessions = auth.Sessions(auth.load_users(self.users_path))
        ready = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(ready,), name="web", daemon=True)
        self.thread.start()
        ready.wait(30)
        if self.error is not None:
            raise SxctlError("cannot serve the web view on %s:%d: %s; give another --http HOST:PORT"
                             % (self.listen[0], self.listen[1], self.error))

    def stop(self):
        if self.loop is not None and self.loop.is_running():
            asyncio.run_coroutine_threadsafe(self._shutdown(), self.loop).result(10)
        if self.thread is not None:
            self.thread.join(10)

    # the server's thread
    def _run(self, ready):
        from aiohttp import web

        self.loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self.loop)
        self.done = asyncio.Event()

        async def main():
            try:
                self.runner = web.AppRunner(self._app(), handle_signals=False, access_log=None)
                await self.runner.setup()
                site = web.TCPSite(self.runner, self.listen[0], self.listen[1])
                await site.start()
                self.port = site._server.sockets[0].getsockname()[1]
            except Exception as e:
                self.error = e
                return
            finally:
                ready.set()
            watcher = asyncio.ensure_future(self._watch())
            await self.done.wait()
            watcher.cancel()
            await self.runner.cleanup()

        try:
            self.loop.run_until_complete(main())
        finally:
            self.loop.close()

    async def _shutdown(self):
        self.done.set()
        async with self.changed:
            self.current = None
            self.changed.notify_all()  # ends every event stream

    def _app(self):
        from aiohttp import web

        from . import routes

        app = web.Application(middlewares=[routes.headers_middleware], client_max_size=16 * 1024)
        app["face"] = self
        routes.add(app)
        self.changed = asyncio.Condition()
        return app

    def overview_text(self):
        from . import view

        return json.dumps(view.overview(self.gw, self.names))

    async def _watch(self):
        """Keep self.current the newest (overview text, poll round): a new one after a poll round
        ended in which the stages changed, so at most one per round, with every stage of it.
        (Stages read between rounds, on catch-up or for a client, go with the next round.)"""
        last_rounds, last_key = -1, None
        while True:
            await asyncio.sleep(WATCH_S)
            rounds = self.gw.logger.rounds if self.gw.logger else 0
            if rounds == last_rounds:
                continue
            key = tuple((s.record, s.epoch, s.online, s.unacked_now(), s.cal_id, s.cal_time, s.fresh())
                        for s in (self.gw.states[a] for a in self.gw.addrs))
            last_rounds = rounds
            if key == last_key:
                continue
            last_key = key
            async with self.changed:
                self.current = (self.overview_text(), rounds)
                self.changed.notify_all()
