"""The team tracking server: the WSGI application behind tokens, limits and an access log
(SPEC 10; ``chachaml server``; ADR-0020).

``TeamApp`` wraps ``chachaml.web.app.App`` and, in this order for every request:

1. ``GET /api/v1/health`` answers ``{"status": "ok"}`` without a token (load balancers);
2. with a tokens file, the bearer token (``Authorization: Bearer ...``, or the UI's
   ``chachaml_token`` cookie) is checked before anything else: missing or unknown -> 401, a
   ``read`` token on POST/PUT/PATCH/DELETE -> 403; nothing is read or written before that;
3. a body larger than the limit -> 413 (JSON bodies: 16 MiB; artifact uploads: ``--max-upload``);
4. ``/api/v1/store/...`` -> the store contract (``_store_rpc``); anything else -> the app.

What a ``write`` token creates has ``created_by`` = its name (``AttributedStore`` replaces what
the client claims; registry events record it as ``who``). Every request is one JSON line on the
access log. ``serve_team`` runs it with waitress (or the stdlib server) and stops gracefully on
SIGTERM/SIGINT: no new connections, requests in flight finish, then the store is closed.
"""

from __future__ import annotations

import contextvars
import json
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import replace
from http.cookies import SimpleCookie
from pathlib import Path
from typing import IO, Any

from chachaml.errors import InvalidValueError
from chachaml.web import _store_rpc
from chachaml.web._http import Request, Response, dumps
from chachaml.web.app import App, status_of

__all__ = ["AttributedStore", "TeamApp", "read_tokens", "serve_team"]

_WRITES = ("POST", "PUT", "PATCH", "DELETE")
_caller: contextvars.ContextVar[str | None] = contextvars.ContextVar("chachaml_caller", default=None)
MAX_JSON = 16 * 1024 * 1024
MAX_UPLOAD = 10 * 1024**3


def read_tokens(path: str | Path) -> dict[str, tuple[str, str]]:
    """The tokens file: ``name role token`` per line (``#`` comments, blank lines skipped).

    Returns:
        token -> (name, role).

    Raises:
        InvalidValueError: a malformed line, an unknown role or a repeated token (with its line).
    """
    out: dict[str, tuple[str, str]] = {}
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise InvalidValueError(f"cannot read the tokens file {str(path)!r}: {exc}") from exc
    for n, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split()
        if len(parts) != 3:
            raise InvalidValueError(f"{path}:{n}: expected 'name role token', got {len(parts)} field(s)")
        name, role, token = parts
        if role not in ("read", "write"):
            raise InvalidValueError(f"{path}:{n}: role {role!r} is not read or write")
        if len(token) < 16:
            raise InvalidValueError(f"{path}:{n}: the token of {name!r} is shorter than 16 characters")
        if token in out:
            raise InvalidValueError(f"{path}:{n}: the token of {name!r} repeats the one of {out[token][0]!r}")
        out[token] = (name, role)
    if not out:
        raise InvalidValueError(f"the tokens file {path} holds no token; add lines 'name role token'")
    return out


class AttributedStore:
    """A store whose new runs and registry changes are attributed to the authenticated caller."""

    def __init__(self, store: Any) -> None:
        self._store = store

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    def create_run(self, new: Any) -> Any:
        who = _caller.get()
        return self._store.create_run(new if who is None else replace(new, created_by=who))

    def _who(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        who = _caller.get()
        if who is not None:
            kwargs["who"] = who
        return kwargs

    def register_model(self, name: str, **kwargs: Any) -> Any:
        return self._store.register_model(name, **self._who(kwargs))

    def promote(self, name: str, version: int, stage: str, **kwargs: Any) -> Any:
        return self._store.promote(name, version, stage, **self._who(kwargs))

    def set_alias(self, name: str, alias: str, version: int, **kwargs: Any) -> Any:
        return self._store.set_alias(name, alias, version, **self._who(kwargs))

    def delete_alias(self, name: str, alias: str, **kwargs: Any) -> Any:
        return self._store.delete_alias(name, alias, **self._who(kwargs))


def _json(status: int, type_: str, message: str, headers: dict[str, str] | None = None) -> Response:
    body = dumps({"error": {"type": type_, "message": message}})
    return Response(body, status=status, content_type="application/json", headers=headers or {})


_TOKEN_PAGE = b"""<!doctype html><html><head><meta charset="utf-8"><title>chachaml: token</title></head>
<body><h1>chachaml</h1><p class="error">This server needs a token.</p>
<form id="f"><label>Token <input name="token" type="password" autofocus></label>
<button>Use it</button></form><script>
document.getElementById('f').onsubmit = function (e) {
  e.preventDefault();
  var t = this.token.value.trim();
  localStorage.setItem('chachaml_token', t);
  document.cookie = 'chachaml_token=' + encodeURIComponent(t) + '; path=/; SameSite=Strict';
  location.reload();
};
</script></body></html>"""


class TeamApp:
    """The server's WSGI callable (see the module docstring).

    Args:
        app: the inner ``App`` (its client's store should be an ``AttributedStore``).
        tokens: ``read_tokens`` output, or None for no authentication.
        max_upload: the largest artifact body, in bytes.
        access_log: where the JSON lines go (None: nowhere).
        check_alerts: check alerts for the points each store batch brings (SPEC 11); off only
            where the raw store contract itself is under test (the conformance suite).
    """

    def __init__(
        self,
        app: App,
        tokens: dict[str, tuple[str, str]] | None,
        *,
        max_upload: int = MAX_UPLOAD,
        access_log: IO[str] | None = None,
        check_alerts: bool = True,
    ) -> None:
        self.app = app
        self.tokens = tokens
        self.max_upload = max_upload
        self.access_log = access_log
        self.check_alerts = check_alerts
        self._log_lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        started = time.perf_counter()
        seen: dict[str, Any] = {}

        def recording(status: str, headers: list[tuple[str, str]], *exc: Any) -> Any:
            seen["status"] = int(status.split(" ", 1)[0])
            return start_response(status, headers, *exc)

        token = _caller.set(None)
        try:
            resp = self._gate(environ, seen)
            if resp is None:
                if environ.get("PATH_INFO", "") == "/api/v1/openapi.json":
                    resp = Response(dumps(openapi_document()), content_type="application/json")
                elif environ.get("PATH_INFO", "").startswith(_store_rpc.PREFIX):
                    req = Request(environ)
                    resp = _store_rpc.handle(
                        self.app.client.store,
                        req,
                        seen.get("user"),
                        status_of,
                        check_alerts=self.check_alerts,
                    )
                    req.drain()
                else:
                    return self.app(environ, recording)
            start_response(resp.status_line, list(resp.headers.items()))
            seen["status"] = resp.status
            return [resp.body] if isinstance(resp.body, bytes) else resp.body
        finally:
            _caller.reset(token)
            self._log(environ, seen, started)

    def _gate(self, environ: dict[str, Any], seen: dict[str, Any]) -> Response | None:
        """The refusal of a request (401, 403, 413), or None to let it through."""
        method = environ.get("REQUEST_METHOD", "GET").upper()
        path = environ.get("PATH_INFO", "")
        if path == "/api/v1/health" and method in ("GET", "HEAD"):
            return Response(dumps({"status": "ok"}), content_type="application/json")
        if self.tokens is not None:
            given = _bearer(environ)
            found = self.tokens.get(given) if given else None
            if found is None:
                if method == "GET" and not path.startswith("/api/"):
                    return Response(_TOKEN_PAGE, status=401, content_type="text/html; charset=utf-8")
                why = "no token given" if not given else "the token is not known to this server"
                return _json(401, "AccessError", f"{why}; send 'Authorization: Bearer <token>'",
                             {"WWW-Authenticate": 'Bearer realm="chachaml"'})  # fmt: skip
            name, role = found
            seen["user"] = name
            read_call = path.startswith(_store_rpc.PREFIX) and _store_rpc.is_read(path)
            if role == "read" and method in _WRITES and not read_call:
                return _json(403, "AccessError", f"the token of {name!r} may only read; use a write token")
            _caller.set(name)
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return _json(400, "InvalidValueError", "Content-Length is not a number")
        upload = method == "PUT" and (
            "/artifacts/" in path
            or path.startswith(_store_rpc.PREFIX + "artifact/")
            or path == _store_rpc.PREFIX + "restore_run"  # a copied run's points, streamed
        )
        limit = self.max_upload if upload else MAX_JSON
        if length > limit:
            return _json(413, "InvalidValueError", f"the body is {length} bytes; the limit is {limit}",
                         {"Connection": "close"})  # fmt: skip
        return None

    def _log(self, environ: dict[str, Any], seen: dict[str, Any], started: float) -> None:
        if self.access_log is None:
            return
        rec = {
            "ts": round(time.time(), 3),
            "remote": environ.get("REMOTE_ADDR"),
            "method": environ.get("REQUEST_METHOD"),
            "path": environ.get("PATH_INFO"),
            "status": seen.get("status"),
            "user": seen.get("user"),
            "ms": round((time.perf_counter() - started) * 1000, 2),
        }
        line = json.dumps(rec, ensure_ascii=False)
        with self._log_lock:
            try:
                self.access_log.write(line + "\n")
                self.access_log.flush()
            except (OSError, ValueError):
                pass  # a closed log must not fail requests


_ARGS = {"args": {"type": "object"}}


def openapi_document() -> dict[str, Any]:
    """The application's OpenAPI document plus what the team server adds: bearer tokens, the
    health endpoint and the store endpoint of the remote store (``_store_rpc``)."""
    from chachaml.web.openapi import document

    doc = document()
    err = {"description": "an error", "content": {"application/json": {"schema": {"type": "object"}}}}
    doc["components"].setdefault("securitySchemes", {})["bearer"] = {
        "type": "http",
        "scheme": "bearer",
        "description": "a token of the server's tokens file; read tokens get 403 on every write",
    }
    doc["security"] = [{"bearer": []}]
    doc["paths"]["/api/v1/health"] = {
        "get": {
            "operationId": "health",
            "summary": "liveness for load balancers (no token needed)",
            "security": [],
            "responses": {"200": {"description": '{"status": "ok"}'}},
        }
    }
    doc["paths"]["/api/v1/store/{method}"] = {
        "post": {
            "operationId": "store_call",
            "summary": "one call of the store contract (the remote store's endpoint; ADR-0020)",
            "description": "Body {\"args\": {...keyword arguments}}; answer {\"result\": ...}. Methods: "
            + ", ".join(sorted(_store_rpc.METHODS))
            + ". Numbers may be the tokens NaN and Infinity. log_batch takes batch_id: a repeat writes "
            "nothing and answers false.",
            "parameters": [{"name": "method", "in": "path", "required": True, "schema": {"type": "string"}}],
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": {"type": "object", "properties": _ARGS}}},
            },
            "responses": {"200": {"description": '{"result": ...}'}, "400": err, "401": err, "403": err,
                          "404": err, "409": err},
        }
    }  # fmt: skip
    doc["paths"]["/api/v1/store/restore_run"] = {
        "put": {
            "operationId": "store_restore_run_streamed",
            "summary": "restore_run with its points streamed, for a run of any length (ADR-0026)",
            "description": 'Body: JSON lines, first {"run": {...}}, then lists of [key, value, step, '
            "timestamp] points. Written in one transaction; a run already there answers false.",
            "requestBody": {"required": True, "content": {"application/x-ndjson": {}}},
            "responses": {"200": {"description": '{"result": true|false}'}, "400": err, "413": err},
        }
    }
    doc["paths"]["/api/v1/store/artifact/{run_id}/{name}"] = {
        "put": {
            "operationId": "store_log_artifact",
            "summary": "stream an artifact's bytes (raw body) as the store's log_artifact",
            "parameters": [
                {"name": n, "in": "path", "required": True, "schema": {"type": "string"}}
                for n in ("run_id", "name")
            ]
            + [
                {"name": n, "in": "query", "schema": {"type": "string"}}
                for n in ("format", "content_type", "created", "overwrite")
            ],
            "requestBody": {"required": True, "content": {"application/octet-stream": {}}},
            "responses": {"201": {"description": '{"result": artifact}'}, "400": err, "409": err, "413": err},
        }
    }
    return doc


def _bearer(environ: dict[str, Any]) -> str | None:
    auth = environ.get("HTTP_AUTHORIZATION", "")
    if auth[:7].lower() == "bearer ":
        return auth[7:].strip() or None
    cookie = environ.get("HTTP_COOKIE")
    if cookie:
        jar: SimpleCookie = SimpleCookie()
        try:
            jar.load(cookie)
        except Exception:
            return None
        morsel = jar.get("chachaml_token")
        if morsel is not None:
            from urllib.parse import unquote

            return unquote(morsel.value) or None
    return None


LOOPBACK = ("127.0.0.1", "localhost", "::1")
DRAIN_S = 30.0  # how long a stopping server lets requests in flight finish


def _drain_waitress(server: Any) -> None:
    """Stop listening, let every request already started (being received, run or answered)
    finish, close idle keep-alive connections, then stop the worker threads."""
    import time as _time

    server.accepting = False
    server.del_channel()
    server.socket.close()
    end = _time.monotonic() + DRAIN_S
    while _time.monotonic() < end:
        busy = False
        for ch in list(server.active_channels.values()):
            if ch.requests or getattr(ch, "request", None) is not None or ch.total_outbufs_len:
                busy = True
            else:
                ch.handle_close()  # idle keep-alive: nothing of a request is lost
        if not busy:
            break
        server.asyncore.loop(timeout=0.05, map=server._map, use_poll=server.adj.asyncore_use_poll, count=1)
    server.task_dispatcher.shutdown(timeout=DRAIN_S)


def serve_team(
    app: Callable[..., Any],
    *,
    host: str,
    port: int,
    engine: str = "waitress",
    threads: int = 8,
    max_upload: int = MAX_UPLOAD,
    out: IO[str] | None = None,
    on_stop: Callable[[], None] | None = None,
) -> None:
    """Serve ``app`` until SIGTERM or SIGINT, then stop gracefully.

    Args:
        engine: ``waitress`` (production, threaded) or ``stdlib`` (tests, no dependency).
        out: where ``chachaml UI at http://H:P/`` goes (default stdout), flushed at once.
        on_stop: called after the last request finished (closes the store).

    Raises:
        MissingDependencyError: waitress is not installed (``pip install 'chachaml[server]'``).
    """
    stream = out or sys.stdout
    stop = threading.Event()

    def _stop(signum: int, frame: Any) -> None:
        stop.set()  # only a flag: raising here could cut a request's parsing in half

    old = {s: signal.signal(s, _stop) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        if engine == "waitress":
            _run_waitress(app, host, port, threads, max_upload, stream, stop)
        else:
            _run_stdlib(app, host, port, stream, stop)
    finally:
        for s, h in old.items():
            signal.signal(s, h)
    if on_stop is not None:
        on_stop()


def _run_waitress(
    app: Callable[..., Any], host: str, port: int, threads: int, max_upload: int, stream: IO[str],
    stop: threading.Event,
) -> None:  # fmt: skip
    from chachaml._optional import require

    waitress_server = require("waitress.server", "server")
    server = waitress_server.create_server(
        app, host=host, port=port, threads=threads, ident="chachaml",
        max_request_body_size=max_upload, clear_untrusted_proxy_headers=True,
    )  # fmt: skip
    eff_host = getattr(server, "effective_host", host)
    eff_port = getattr(server, "effective_port", port)
    shown = f"[{eff_host}]" if ":" in str(eff_host) else eff_host
    print(f"chachaml UI at http://{shown}:{eff_port}/", file=stream, flush=True)
    try:
        while not stop.is_set():  # select wakes on the signal (EINTR) and rechecks the flag
            server.asyncore.loop(timeout=0.2, map=server._map, use_poll=server.adj.asyncore_use_poll, count=1)
    finally:
        _drain_waitress(server)


def _run_stdlib(
    app: Callable[..., Any], host: str, port: int, stream: IO[str], stop: threading.Event
) -> None:
    from chachaml.web.serve import make_server, url_of

    std = make_server(app, host, port)
    std.daemon_threads = False  # type: ignore[attr-defined]  # server_close joins requests in flight
    print(f"chachaml UI at {url_of(std)}", file=stream, flush=True)
    loop = threading.Thread(target=std.serve_forever, kwargs={"poll_interval": 0.2}, name="chachaml-serve")
    loop.start()
    try:
        while not stop.wait(0.5):
            pass
    finally:
        std.shutdown()
        loop.join()
        std.server_close()
