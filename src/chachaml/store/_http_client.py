"""A small HTTP client for the remote store: stdlib ``http.client``, one keep-alive connection
per thread, bearer token, JSON in and out, errors back as ``ChachamlError`` (ADR-0020)."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict
from typing import Any, BinaryIO
from urllib.parse import quote, urlencode, urlsplit

from chachaml.errors import AccessError, ChachamlError, InvalidValueError, StoreError, error_from_dict

__all__ = ["HttpClient", "Unreachable", "filter_json", "lines_body", "sized_body"]

#: How long a call waits for a server that refuses connections (restarting) before failing.
WAIT_S = float(os.environ.get("CHACHAML_SERVER_WAIT", "30"))
#: The largest JSON body a chachaml server takes (its ``MAX_JSON``): a larger call is refused
#: here, with its size, rather than cut off mid-send by the server's 413.
MAX_JSON_BYTES = 16 * 1024 * 1024


class Unreachable(StoreError):
    """The server could not be reached (connection refused, reset or timed out)."""


_RETRYABLE = (
    ConnectionError,
    http.client.RemoteDisconnected,
    http.client.BadStatusLine,
    TimeoutError,
    OSError,
)


class HttpClient:
    """Calls to one chachaml server.

    Args:
        url: ``http://host:port`` or ``https://host:port`` (a path prefix is kept).
        token: the bearer token, or None for a server without tokens.
        timeout: seconds a single request may take.
    """

    def __init__(self, url: str, token: str | None, timeout: float = 60.0) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise StoreError(f"{url!r} is not a server URL; use e.g. http://127.0.0.1:5000")
        self.url = url.rstrip("/")
        self.scheme = parts.scheme
        self.host = parts.hostname
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self.prefix = parts.path.rstrip("/")
        self.token = token
        self.timeout = timeout
        self._local = threading.local()
        self._all: set[http.client.HTTPConnection] = set()  # every thread's, to close at the end
        self._all_lock = threading.Lock()

    # -- connections --------------------------------------------------------------------------
    def _new(self) -> http.client.HTTPConnection:
        cls = http.client.HTTPSConnection if self.scheme == "https" else http.client.HTTPConnection
        return cls(self.host, self.port, timeout=self.timeout)

    def _conn(self) -> http.client.HTTPConnection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = self._new()
            with self._all_lock:
                self._all.add(conn)
        return conn

    def _drop(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None
            with self._all_lock:
                self._all.discard(conn)

    def headers(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        out = {"Accept": "application/json", "User-Agent": "chachaml-remote"}
        if self.token:
            out["Authorization"] = f"Bearer {self.token}"
        out.update(extra or {})
        return out

    def request(
        self,
        method: str,
        path: str,
        body: bytes | BinaryIO | None = None,
        headers: dict[str, str] | None = None,
        *,
        safe_retry: bool = True,
        wait_s: float | None = None,
    ) -> tuple[int, bytes]:
        """One request; returns (status, body).

        A connection refused (nothing was sent) is retried until ``wait_s`` (a server
        restarting), and so is a 503 (its database restarting) when ``safe_retry``; any other
        transport failure is retried once on a fresh connection when
        ``safe_retry`` (the request is a read or idempotent), else raised as ``Unreachable``.
        """
        deadline = time.monotonic() + (WAIT_S if wait_s is None else wait_s)
        delay = 0.05
        fresh_retry = True
        while True:
            conn = self._conn()
            try:
                conn.request(method, self.prefix + path, body=body, headers=self.headers(headers))
                resp = conn.getresponse()
                data = resp.read()
                if resp.getheader("Connection", "").lower() == "close":
                    self._drop()
                retry = resp.status == 503 and safe_retry and isinstance(body, bytes | None)
                if retry and time.monotonic() < deadline:
                    # the server's database is down or restarting: the same call, again, later
                    time.sleep(delay)
                    delay = min(delay * 2, 1.0)
                    continue
                return resp.status, data
            except ConnectionRefusedError as exc:
                self._drop()
                if time.monotonic() >= deadline:
                    raise Unreachable(self._down(exc)) from exc
                time.sleep(delay)  # a server restarting: poll until it answers or the deadline
                delay = min(delay * 2, 1.0)
            except _RETRYABLE as exc:
                self._drop()
                if not (safe_retry and fresh_retry) or not isinstance(body, bytes | None):
                    raise Unreachable(self._down(exc)) from exc
                fresh_retry = False  # a keep-alive connection the server closed: once more

    def _down(self, exc: BaseException) -> str:
        return (
            f"cannot reach the chachaml server at {self.url} ({type(exc).__name__}: {exc}); "
            "check that `chachaml server` runs there"
        )

    def error(self, status: int, data: bytes) -> ChachamlError:
        """The error a non-2xx answer carries."""
        try:
            err = json.loads(data.decode("utf-8"))["error"]
            exc = error_from_dict(err)
        except (ValueError, KeyError, TypeError, UnicodeDecodeError):
            exc = StoreError(f"the server at {self.url} answered {status}: {data[:200]!r}")
        if status == 401:
            return AccessError(
                f"the server at {self.url} refused the token (401: {exc}); pass a valid one with "
                "use_store(url, token=...) or set CHACHAML_TOKEN"
            )
        if status == 403 and "token" in str(exc).lower():
            return AccessError(f"the server at {self.url} refused the write (403): {exc}")
        return exc

    def call(self, method: str, args: dict[str, Any], *, idempotent: bool = True) -> Any:
        """``POST /api/v1/store/<method>`` with ``args``; the result, or the error raised."""
        body = json.dumps({"args": args}, default=str, separators=(",", ":")).encode("utf-8")
        if len(body) > MAX_JSON_BYTES:
            raise InvalidValueError(
                f"the {method} call is {len(body)} bytes of JSON; a request to {self.url} takes at "
                f"most {MAX_JSON_BYTES}"
            )
        status, data = self.request(
            "POST",
            f"/api/v1/store/{method}",
            body,
            {"Content-Type": "application/json"},
            safe_retry=idempotent,
        )
        if status >= 300:
            raise self.error(status, data)
        return json.loads(data.decode("utf-8"))["result"]

    def upload(self, run_id: str, name: str, data: bytes | BinaryIO, size: int, query: dict[str, Any]) -> Any:
        """Stream an artifact's bytes to the server (``PUT``); the artifact dict it stored."""
        path = f"/api/v1/store/artifact/{quote(run_id, safe='')}/{quote(name, safe='/')}?{urlencode(query)}"
        headers = {"Content-Type": "application/octet-stream", "Content-Length": str(size)}
        status, out = self.request("PUT", path, data, headers, safe_retry=isinstance(data, bytes))
        if status >= 300:
            raise self.error(status, out)
        return json.loads(out.decode("utf-8"))["result"]

    def download(self, run_id: str, name: str) -> BinaryIO:
        """The bytes of an artifact as a stream (its own connection; closing it closes that)."""
        conn = self._new()
        path = f"/api/v1/runs/{quote(run_id, safe='')}/artifacts/{quote(name, safe='/')}"
        try:
            conn.request("GET", self.prefix + path, headers=self.headers())
            resp = conn.getresponse()
        except _RETRYABLE as exc:
            conn.close()
            raise Unreachable(self._down(exc)) from exc
        if resp.status >= 300:
            data = resp.read()
            conn.close()
            raise self.error(resp.status, data)
        return resp

    def close(self) -> None:
        """Close every thread's connection (a request blocked in another thread fails at once)."""
        import socket

        self._drop()
        with self._all_lock:
            conns, self._all = list(self._all), set()
        for conn in conns:
            if conn.sock is not None:
                with contextlib.suppress(OSError):
                    conn.sock.shutdown(socket.SHUT_RDWR)


def sized_body(data: bytes | BinaryIO) -> tuple[bytes | BinaryIO, int, Any]:
    """The body, its size and a temporary file to close (a stream whose size is unknown is
    copied to disk first, never into memory)."""
    if isinstance(data, bytes | bytearray | memoryview):
        raw = bytes(data)
        return raw, len(raw), None
    with contextlib.suppress(OSError, AttributeError, ValueError):
        start = data.tell()
        end = data.seek(0, os.SEEK_END)
        data.seek(start)
        return data, end - start, None
    import shutil
    import tempfile

    temp = tempfile.TemporaryFile()  # noqa: SIM115 -- returned, closed by the caller
    shutil.copyfileobj(data, temp, 1 << 20)
    size = temp.tell()
    temp.seek(0)
    return temp, size, temp


def filter_json(flt: Any) -> dict[str, Any]:
    """A ``RunFilter`` as the JSON object the tracking server's ``find_runs`` takes."""
    d = asdict(flt)
    d["tags"] = None if flt.tags is None else dict(flt.tags)
    return d


@contextmanager
def lines_body(
    head: dict[str, Any], rows: Iterable[Any], chunk: int = 5000
) -> Iterator[tuple[BinaryIO, int]]:
    """A JSON-lines request body in a temporary file (never in memory): ``head`` on the first line,
    then ``rows`` in lists of ``chunk`` a line (NaN and infinities as JSON's NaN tokens); yields
    the file, at its start, and its size."""
    import tempfile

    def line(value: Any) -> bytes:
        return json.dumps(value, default=str, separators=(",", ":")).encode("utf-8") + b"\n"

    with tempfile.TemporaryFile() as body:
        body.write(line(head))
        block: list[Any] = []
        for row in rows:
            block.append(row)
            if len(block) >= chunk:
                body.write(line(block))
                block = []
        if block:
            body.write(line(block))
        size = body.tell()
        body.seek(0)
        yield body, size
