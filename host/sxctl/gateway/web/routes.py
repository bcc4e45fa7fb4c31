"""The web view's HTTP routes (aiohttp): the page, the read API, the event stream, and the one
write (acknowledge) behind a login, its CSRF token and a same-origin check."""
import asyncio
import hmac
import json
import time

from aiohttp import web

from ... import monitor
from . import ACK_TIMEOUT_S, COOKIE, CSRF_HEADER, HEADERS, SSE_KEEPALIVE_S, STATIC, STATIC_TYPES, auth, log, view


@web.middleware
async def headers_middleware(request, handler):
    try:
        if request.method == "POST" and request.content_type != "application/json":
            # a plain form from another site cannot send JSON without the browser asking first (CORS)
            raise web.HTTPUnsupportedMediaType(text="send application/json")
        response = await handler(request)
    except web.HTTPException as e:
        response = e
    response.headers.update(HEADERS)
    return response


def add(app):
    r = app.router
    r.add_get("/", page)
    r.add_get("/static/{name}", static)
    r.add_get("/api/overview", overview)
    r.add_get("/api/events", events)
    r.add_get("/api/trend", trend)
    r.add_get("/api/alarms", alarms)
    r.add_get("/api/session", session_info)
    r.add_post("/api/login", login)
    r.add_post("/api/logout", logout)
    r.add_post("/api/ack", ack)


def _face(request):
    return request.app["face"]


def _json(data, status=200):
    return web.Response(text=json.dumps(data), status=status, content_type="application/json")


def _refuse(status, why):
    return _json({"ok": False, "error": why}, status)


async def page(request):
    return web.Response(body=(STATIC / "index.html").read_bytes(), content_type="text/html", charset="utf-8")


async def static(request):
    name = request.match_info["name"]
    path = STATIC / name
    kind = STATIC_TYPES.get(path.suffix)
    if "/" in name or name.startswith(".") or kind is None or not path.is_file():
        raise web.HTTPNotFound()
    return web.Response(body=path.read_bytes(), content_type=kind, charset="utf-8" if kind.startswith("text") else None)


async def overview(request):
    return web.Response(text=_face(request).overview_text(), content_type="application/json")


async def events(request):
    """Server-sent events: `overview` with the newest overview whenever the face has a new one."""
    face = _face(request)
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream", **HEADERS})
    await response.prepare(request)
    rounds = face.gw.logger.rounds if face.gw.logger else 0
    text = face.overview_text()
    try:
        await response.write(b"event: overview\ndata: " + text.encode() + b"\n\n")
        while True:
            async with face.changed:
                try:  # the next round's overview, not one of the round this client has seen
                    await asyncio.wait_for(face.changed.wait_for(lambda: face.current is None or face.current[1] > rounds),
                                           SSE_KEEPALIVE_S)
                except asyncio.TimeoutError:
                    text = None
                else:
                    if face.current is None:  # the gateway stops
                        break
                    text, rounds = face.current
            await response.write(b": keep-alive\n\n" if text is None else
                                 b"event: overview\ndata: " + text.encode() + b"\n\n")
    except (ConnectionResetError, asyncio.CancelledError):
        pass
    return response


async def trend(request):
    face = _face(request)
    q = request.query
    try:
        stage = int(q["stage"])
        end = float(q.get("end", time.time()))
        start = float(q.get("start", end - view.TREND_SPAN_S))
    except (KeyError, ValueError):
        return _refuse(400, "give stage=N and optionally start= and end= in Unix seconds")
    if stage not in face.gw.addrs or not start < end or end - start > 31 * 86400:
        return _refuse(400, "stage %d is not served here, or the window is empty or longer than 31 days" % stage)
    data = await asyncio.get_running_loop().run_in_executor(None, view.trend, face.gw.db, stage, start, end)
    return _json(data)


async def alarms(request):
    face = _face(request)
    data = await asyncio.get_running_loop().run_in_executor(None, view.alarms, face.gw, face.gw.db, face.names)
    return _json(data)


def _session(request):
    return _face(request).sessions.get(request.cookies.get(COOKIE))


def _same_origin(request):
    """A browser's write from another site carries that site's Origin: refuse it."""
    origin = request.headers.get("Origin")
    return origin is None or origin == "%s://%s" % (request.scheme, request.host) or \
        origin == "https://%s" % request.host  # behind a TLS proxy that forwards Host


async def session_info(request):
    face = _face(request)
    s = _session(request)
    return _json({"user": s.user if s else None, "csrf": s.csrf if s else None,
                  "logins": bool(face.sessions.users)})


async def login(request):
    face = _face(request)
    if not _same_origin(request):
        return _refuse(403, "a login from another site's page is refused")
    if not face.sessions.users:
        return _refuse(403, "no web users are set up on this gateway: run `python -m sxctl.gateway.web adduser NAME` "
                            "there (users file %s) and restart sxctl serve" % face.users_path)
    try:
        body = await request.json()
        user, password = str(body["user"]), str(body["password"])
    except (ValueError, KeyError, TypeError):
        return _refuse(400, "send JSON {\"user\": ..., \"password\": ...}")
    peer = request.remote or "?"
    session = await asyncio.get_running_loop().run_in_executor(None, face.sessions.login, user, password, peer)
    if session is None:
        log.warning("web login as %r from %s refused", user, peer)
        return _refuse(403, "wrong user or password (after %d failures in a row, wait %d s)"
                       % (auth.FAILS_BEFORE_PAUSE, auth.PAUSE_S))
    log.info("web login as %r from %s", user, peer)
    response = _json({"ok": True, "user": session.user, "csrf": session.csrf})
    response.set_cookie(COOKIE, session.id, httponly=True, samesite="Strict", path="/", secure=request.secure)
    return response


async def logout(request):
    _face(request).sessions.logout(request.cookies.get(COOKIE))
    response = _json({"ok": True})
    response.del_cookie(COOKIE, path="/")
    return response


async def ack(request):
    face = _face(request)
    s = _session(request)
    if s is None:
        return _refuse(401, "log in to acknowledge: the web view is read-only without a login")
    if not _same_origin(request) or not hmac.compare_digest(request.headers.get(CSRF_HEADER, ""), s.csrf):
        return _refuse(403, "refused: the request did not carry this session's CSRF token (reload the page)")
    try:
        stage = int((await request.json())["stage"])
    except (ValueError, KeyError, TypeError):
        return _refuse(400, "send JSON {\"stage\": N}")
    if stage not in face.gw.addrs:
        return _refuse(400, "stage %d is not served here" % stage)
    # As `sxctl monitor --ack` runs it, in the bus thread, signed by the gateway's bus client.
    future = face.gw.submit("web:%s" % s.user, lambda bus: monitor.acknowledge(bus, stage))
    try:
        said = await asyncio.wait_for(asyncio.wrap_future(future), ACK_TIMEOUT_S)
    except Exception as e:
        log.warning("web acknowledge of stage %d by %r failed: %s", stage, s.user, e)
        return _refuse(502, "stage %d: the acknowledge failed: %s" % (stage, e))
    log.info("web acknowledge by %r: %s", s.user, said)
    return _json({"ok": True, "said": said})
