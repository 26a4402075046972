"""The one WSGI application: routing, the JSON API, static assets, pages and errors (SPEC 9.2).

Routes:

* ``/api/v1/...`` -- the JSON API (``chachaml.web.api``), described by ``/api/v1/openapi.json``;
* ``/static/<path>`` -- files shipped in the package folder ``chachaml/web/static/``;
* ``/runs/<id>.json`` and the other page paths with ``.json`` -- the JSON twin of each page
  (Datasette style): the same document as its ``/api/v1`` endpoint;
* any other ``GET`` -- ``chachaml.web.pages.render(path, query)``; ``None`` means 404.

Every error is a JSON body ``{"error": {"type", "message"}}`` (HTML for pages) with the status of
SPEC 9.2. Handlers validate before they write, and a ``ChachamlError`` leaves the store as it was,
so bad input never gives a 500 and never changes anything.
"""

from __future__ import annotations

import hashlib
import html
import importlib
import mimetypes
import re
import sys
import traceback
from collections.abc import Callable, Iterable
from importlib import resources
from typing import Any

from chachaml.errors import (
    ChachamlError,
    ConflictError,
    InvalidValueError,
    MissingDependencyError,
    NoActiveRunError,
    NotFoundError,
    RunStateError,
    StoreUnavailableError,
)
from chachaml.web import api
from chachaml.web._http import (
    HttpError,
    Request,
    Response,
    error_response,
)
from chachaml.web.routes import ROUTES

__all__ = ["App", "create_app"]

_WRITE_METHODS = ("POST", "PUT", "PATCH", "DELETE")

# The JSON twin of each page: page path pattern -> API path template.
_TWINS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"^/(?:index|runs)\.json$"), "/api/v1/runs"),
    (re.compile(r"^/runs/(?P<id>[^/]+)\.json$"), "/api/v1/runs/{id}"),
    (re.compile(r"^/compare\.json$"), "/api/v1/compare"),
    (re.compile(r"^/experiments\.json$"), "/api/v1/experiments"),
    (re.compile(r"^/models\.json$"), "/api/v1/models"),
    (re.compile(r"^/models/(?P<id>[^/]+)\.json$"), "/api/v1/models/{id}"),
    (re.compile(r"^/pipelines\.json$"), "/api/v1/pipelines"),
    (re.compile(r"^/pipelines/(?P<id>[^/]+)\.json$"), "/api/v1/pipelines/{id}"),
    (re.compile(r"^/alerts\.json$"), "/api/v1/alerts"),
]


def _compile(pattern: str) -> re.Pattern[str]:
    out = "^"
    for part in re.split(r"(\{[^}]+\})", pattern):
        if part.startswith("{"):
            name, _, kind = part[1:-1].partition(":")
            out += f"(?P<{name}>.+)" if kind == "path" else f"(?P<{name}>[^/]+)"
        else:
            out += re.escape(part)
    return re.compile(out + "$")


def status_of(exc: ChachamlError) -> int:
    """The HTTP status of an error (SPEC 9.2)."""
    if isinstance(exc, HttpError):
        return exc.status
    if isinstance(exc, NotFoundError):
        return 404
    if isinstance(exc, ConflictError | RunStateError):
        return 409
    if isinstance(exc, InvalidValueError | NoActiveRunError):
        return 400
    if isinstance(exc, MissingDependencyError):
        return 501
    if isinstance(exc, StoreUnavailableError):
        return 503  # the database is down or restarting: the same request may succeed later
    return 500  # StoreError: the database failed, not the request


class App:
    """The WSGI application over one ``Client`` (see the module docstring)."""

    def __init__(self, client: Any, *, read_only: bool = False) -> None:
        self.client = client
        self.read_only = read_only
        self.routes = [(m, _compile(p), getattr(api, h)) for m, p, h in ROUTES]
        self.batches = api.BatchLog()
        self._static: dict[str, tuple[bytes, str, str]] = {}
        #: Where ``/static/`` files come from: the package folder (a test may point it elsewhere).
        self.static_root: Any = resources.files("chachaml.web").joinpath("static")

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        try:
            req = Request(environ)
            resp = self.handle(req)
            req.drain()
        except Exception:  # a bug: never leak a traceback to the client, log it here
            traceback.print_exc(file=sys.stderr)
            resp = error_response(500, "InternalError", "the server failed; see its log for details")
        if environ.get("REQUEST_METHOD", "GET").upper() == "HEAD":
            close = getattr(resp.body, "close", None)
            if close is not None:
                close()
            resp.body = b""
        start_response(resp.status_line, list(resp.headers.items()))
        return [resp.body] if isinstance(resp.body, bytes) else resp.body

    # -- dispatch ---------------------------------------------------------------------------
    def handle(self, req: Request) -> Response:
        """The response to one request (errors included)."""
        method = "GET" if req.method == "HEAD" else req.method
        path = req.path
        if path.startswith("/api/"):
            return self._api(req, method, path)
        if method in _WRITE_METHODS:
            return error_response(405, "InvalidValueError", f"{method} is not allowed on {path}")
        if path.startswith("/static/"):
            return self._static_file(req, path[len("/static/") :])
        for pattern, target in _TWINS:
            m = pattern.match(path)
            if m:
                ident = m.groupdict().get("id", "")
                return self._api(req, "GET", target.format(id=ident))
        return self._page(req, path)

    def _api(self, req: Request, method: str, path: str) -> Response:
        allowed: list[str] = []
        for route_method, pattern, handler in self.routes:
            m = pattern.match(path)
            if m is None:
                continue
            allowed.append(route_method)
            if route_method != method:
                continue
            if method in _WRITE_METHODS:
                refused = self._refuse_write(req)
                if refused is not None:
                    return refused
            req.params = m.groupdict()
            try:
                return handler(self, req)  # type: ignore[no-any-return]
            except ChachamlError as exc:
                return _error(exc)
            except OverflowError as exc:  # a number too large for the database to bind: bad input
                return error_response(
                    400, "InvalidValueError", f"a number in the request is too large: {exc}"
                )
        if allowed:
            resp = error_response(
                405, "InvalidValueError", f"{method} is not allowed on {path}; use {', '.join(allowed)}"
            )
            resp.headers["Allow"] = ", ".join(allowed + (["HEAD"] if "GET" in allowed else []))
            return resp
        return error_response(
            404, "NotFoundError", f"no API endpoint at {path}; see /api/v1/openapi.json for the list"
        )

    def _refuse_write(self, req: Request) -> Response | None:
        if self.read_only:
            return error_response(403, "ChachamlError", "this server is read-only; writes are refused")
        origin = req.header("Origin")
        host = req.header("Host")
        if origin is not None and host is not None and origin.split("://", 1)[-1] != host:
            # A page of another site posting to the local UI (CSRF): browsers always send Origin.
            return error_response(
                403, "ChachamlError", f"cross-origin write from {origin!r} refused; write from {host}"
            )
        return None

    # -- static files and pages -------------------------------------------------------------
    def _static_file(self, req: Request, rel: str) -> Response:
        cached = self._static.get(rel)
        if cached is None:
            parts = rel.split("/")
            if not rel or any(_bad_part(p) for p in parts):
                return _html_error(404, f"no static file {rel!r}")
            node = self.static_root
            for p in parts:
                node = node.joinpath(p)
            try:
                if not node.is_file():
                    return _html_error(404, f"no static file {rel!r}")
                data = node.read_bytes()
            except (OSError, ValueError):
                return _html_error(404, f"no static file {rel!r}")
            cached = (data, _content_type(rel), '"' + hashlib.sha256(data).hexdigest()[:32] + '"')
            self._static[rel] = cached
        data, ctype, etag = cached
        headers = {"ETag": etag, "Cache-Control": "no-cache"}  # revalidate: cheap 304s, never stale
        if req.header("If-None-Match") == etag:
            return Response(b"", status=304, headers=headers)
        return Response(data, content_type=ctype, headers=headers)

    def _page(self, req: Request, path: str) -> Response:
        try:
            # h9-ui's module; imported lazily so the API works (and starts fast) without it.
            pages: Any = importlib.import_module("chachaml.web.pages")
        except ImportError as exc:
            if exc.name != "chachaml.web.pages":
                raise
            return _html_error(404, f"no page at {path}")
        try:
            body = pages.render(path, dict(req.query))
        except ChachamlError as exc:
            return _html_error(status_of(exc), str(exc))
        if body is None:
            return _html_error(404, f"no page at {path}")
        return Response(
            body.encode("utf-8"),
            content_type="text/html; charset=utf-8",
            headers={"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"},
        )


def _error(exc: ChachamlError) -> Response:
    extra: dict[str, Any] = {}
    position = getattr(exc, "position", None)
    if isinstance(position, int):
        extra["position"] = position
    type_ = exc.type if isinstance(exc, HttpError) else type(exc).__name__
    return error_response(status_of(exc), type_, str(exc), extra)


def _bad_part(part: str) -> bool:
    """A path segment that could leave the static folder or name a hidden file."""
    return part in ("", ".", "..") or part.startswith(".") or "\\" in part or "\x00" in part


def _html_error(status: int, message: str) -> Response:
    body = (
        "<!doctype html><html><head><meta charset='utf-8'><title>chachaml</title></head>"
        f"<body><h1>{status}</h1><p class='error'>{html.escape(message)}</p>"
        "<p><a href='/'>All runs</a></p></body></html>"
    )
    return Response(body.encode("utf-8"), status=status, content_type="text/html; charset=utf-8")


_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".html": "text/html; charset=utf-8",
    ".svg": "image/svg+xml",
    ".json": "application/json",
    ".map": "application/json",
    ".woff2": "font/woff2",
    ".png": "image/png",
    ".ico": "image/x-icon",
}


def _content_type(name: str) -> str:
    dot = name.rfind(".")
    ext = name[dot:].lower() if dot >= 0 else ""
    return _TYPES.get(ext) or mimetypes.guess_type(name)[0] or "application/octet-stream"


def create_app(client: Any, *, read_only: bool = False) -> App:
    """The WSGI application serving ``client``'s store.

    Args:
        client: a ``chachaml.client.Client``; every handler goes through it.
        read_only: refuse every write (POST, PUT, PATCH, DELETE) with 403.

    Returns:
        a WSGI callable (``app(environ, start_response)``).
    """
    return App(client, read_only=read_only)
