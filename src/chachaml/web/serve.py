"""Serve the application with the standard library's threaded HTTP server (``chachaml ui``).

The stdlib server is enough for one person on one machine; the team server of SPEC section 10
uses a production WSGI server instead. It binds 127.0.0.1 unless told otherwise, prints
``chachaml UI at http://HOST:PORT/`` as its first line (then flushes, so a parent process or a
test can read the port chosen for ``--port 0``), and stops cleanly on Ctrl-C.
"""

from __future__ import annotations

import socket
import socketserver
import sys
from collections.abc import Callable
from typing import IO, Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer

__all__ = ["loopback_only", "make_server", "serve", "url_of"]


class _Server(socketserver.ThreadingMixIn, WSGIServer):
    """One thread per connection; threads are daemons so Ctrl-C never waits on a slow client."""

    daemon_threads = True
    allow_reuse_address = True


class _Server6(_Server):
    address_family = socket.AF_INET6


class _Handler(WSGIRequestHandler):
    """Quiet by default: a page load makes dozens of requests; errors still reach stderr."""

    quiet = True

    def log_message(self, format: str, *args: Any) -> None:
        if not self.quiet:
            super().log_message(format, *args)

    def log_error(self, format: str, *args: Any) -> None:
        WSGIRequestHandler.log_message(self, format, *args)


def make_server(app: Callable[..., Any], host: str = "127.0.0.1", port: int = 5050) -> WSGIServer:
    """A started-but-not-serving server bound to ``host:port`` (``port=0``: a free port)."""
    cls = _Server6 if ":" in host else _Server
    server = cls((host, port), _Handler)
    server.set_app(app)
    return server


def url_of(server: WSGIServer) -> str:
    host, port = server.server_address[:2]
    text = host.decode() if isinstance(host, bytes) else str(host)
    shown = f"[{text}]" if ":" in text else text
    return f"http://{shown}:{port}/"


_LOOPBACK = {"127.0.0.1", "localhost", "::1"}


def _hostname(host_header: str) -> str:
    """``127.0.0.1`` of ``127.0.0.1:5050``, ``::1`` of ``[::1]:5050``."""
    if host_header.startswith("["):
        return host_header[1:].split("]", 1)[0]
    return host_header.rsplit(":", 1)[0] if host_header.count(":") == 1 else host_header


def loopback_only(app: Callable[..., Any]) -> Callable[..., Any]:
    """Refuse requests whose ``Host`` is not a loopback name (403).

    A server bound to 127.0.0.1 is still reachable from a web page of another site through DNS
    rebinding (the attacker's name resolves to 127.0.0.1); such requests carry the attacker's
    name in ``Host``, so checking it keeps the local store private.
    """

    def guarded(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        host = _hostname(environ.get("HTTP_HOST", "127.0.0.1")).lower()
        if host not in _LOOPBACK:
            body = (
                b'{"error": {"type": "ChachamlError", "message": "this server only answers requests '
                b'for 127.0.0.1 or localhost"}}'
            )
            start_response(
                "403 Forbidden", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
            )
            return [body]
        return app(environ, start_response)

    return guarded


def serve(
    app: Callable[..., Any],
    *,
    host: str = "127.0.0.1",
    port: int = 5050,
    open_browser: bool = False,
    verbose: bool = False,
    out: IO[str] | None = None,
) -> None:
    """Serve ``app`` until interrupted (Ctrl-C returns normally).

    Args:
        app: the WSGI application (``chachaml.web.app.create_app(client)``).
        host: the address to bind; 127.0.0.1 keeps the UI on this machine.
        port: the port; 0 takes a free one (the printed URL says which).
        open_browser: open the URL with the ``webbrowser`` module once listening.
        verbose: log every request to stderr.
        out: where the first line goes (default: stdout).
    """
    _Handler.quiet = not verbose
    if host in _LOOPBACK:
        app = loopback_only(app)
    server = make_server(app, host, port)
    url = url_of(server)
    stream = out or sys.stdout
    print(f"chachaml UI at {url}", file=stream, flush=True)
    if open_browser:
        import webbrowser

        webbrowser.open(url)
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
