"""The team commands of the command line: ``chachaml server`` and ``chachaml sync`` (SPEC 10)."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from typing import Any

from chachaml.errors import ChachamlError, InvalidValueError

__all__ = ["add_commands", "cmd_server", "cmd_sync"]


class UnsafeBindError(ChachamlError):
    """A server without tokens was asked to listen on a non-loopback address."""


def cmd_server(args: argparse.Namespace) -> int:
    """``chachaml server``: the tracking server (see ``chachaml.web.server``)."""
    from chachaml.client import Client
    from chachaml.store import open_store
    from chachaml.web.app import create_app
    from chachaml.web.server import LOOPBACK, AttributedStore, TeamApp, read_tokens, serve_team

    tokens = read_tokens(args.tokens) if args.tokens else None
    if tokens is None and args.host not in LOOPBACK and not args.insecure_no_auth:
        raise UnsafeBindError(
            f"refusing to serve {args.host} without tokens: anyone who reaches it could read and "
            "change every run; pass --tokens FILE (lines 'name role token'), or "
            "--insecure-no-auth if a proxy in front does the authentication"
        )
    target = getattr(args, "store", None) or os.environ.get("CHACHAML_STORE") or "chachaml.db"
    if target.startswith(("http://", "https://")):
        raise InvalidValueError(f"--store {target!r} is a server; the server needs a database")
    options: dict[str, Any] = {}
    if args.artifacts:
        options["artifacts"] = args.artifacts
    try:
        store = open_store(target, **options)
    except TypeError as exc:  # a backend without an artifact location option
        raise InvalidValueError(
            f"--artifacts {args.artifacts!r} is not supported by the store {target!r} in this "
            f"chachaml ({exc}); leave --artifacts out to keep artifacts beside the store"
        ) from None
    client = Client(AttributedStore(store))
    log = None if args.access_log == "-" else sys.stderr
    if args.access_log not in (None, "-"):
        log = open(args.access_log, "a", encoding="utf-8")  # noqa: SIM115 -- kept open while serving
    app = TeamApp(create_app(client), tokens, max_upload=args.max_upload, access_log=log)

    def stop() -> None:
        store.close()
        if log is not None and log is not sys.stderr:
            log.close()

    serve_team(app, host=args.host, port=args.port, engine=args.wsgi, threads=args.threads,
               max_upload=args.max_upload, on_stop=stop)  # fmt: skip
    return 0


def cmd_sync(args: argparse.Namespace) -> int:
    """``chachaml sync``: send the spools dead processes left for a server; 0 once it has them."""
    from chachaml.store.remote import RemoteStore

    target = getattr(args, "store", None) or os.environ.get("CHACHAML_STORE") or ""
    if not target.startswith(("http://", "https://")):
        raise InvalidValueError(
            f"sync sends a spool to a server; --store {target or '(unset)'!r} is not a server URL "
            "such as http://tracking:5000 (or set CHACHAML_STORE)"
        )
    store = RemoteStore(target)
    try:
        waiting = store._pending()
        store.flush(timeout=args.timeout)
    finally:
        store.close()
    print(f"sent {waiting} point(s) to {target}" if waiting else f"nothing to send to {target}")
    return 0


def add_commands(add: Callable[..., Any]) -> None:
    """Add ``server`` and ``sync`` with the CLI's ``add(name, fn, help, json=)`` helper."""
    p = add("server", cmd_server, "the team tracking server (API and UI, with tokens)", json=False)
    p.add_argument("--artifacts", metavar="URI", help="where artifact bytes live (default: beside the store)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=5000, help="port (default 5000; 0 takes a free one)")
    p.add_argument("--tokens", metavar="FILE", help="tokens file: 'name role token' per line")
    p.add_argument("--insecure-no-auth", action="store_true", help="allow a non-loopback bind without tokens")
    p.add_argument("--max-upload", type=int, default=10 * 1024**3, metavar="BYTES",
                   help="largest artifact upload (default 10 GiB; larger: 413)")  # fmt: skip
    p.add_argument("--threads", type=int, default=8, help="worker threads (default 8)")
    p.add_argument("--wsgi", choices=("waitress", "stdlib"), default="waitress",
                   help="the WSGI server (default waitress, from the 'server' extra)")  # fmt: skip
    p.add_argument("--access-log", metavar="PATH", help="JSON lines access log (default stderr; '-': none)")
    p = add("sync", cmd_sync, "send this machine's spool for a server (--store URL) to it", json=False)
    p.add_argument("--timeout", type=float, default=600.0, help="give up after this many seconds")
