"""Requests, responses and JSON for the WSGI application (no framework: the stdlib only).

A ``Request`` wraps the WSGI environ with the few helpers the handlers need: typed query
parameters that fail with ``InvalidValueError`` (so bad input is a 400, never a 500), a JSON body
reader that enforces the content type (415) and a size limit (413), and a length-checked raw body
stream for artifact uploads. A ``Response`` is a status, headers and an iterable body.
"""

from __future__ import annotations

import io
import json
import math
from collections.abc import Callable, Iterable, Iterator
from typing import Any, BinaryIO
from urllib.parse import parse_qsl

from chachaml.errors import ChachamlError, InvalidValueError

#: The largest JSON body a write accepts (artifacts are streamed, without this limit).
MAX_JSON_BYTES = 16 * 1024 * 1024

_REASONS = {
    200: "OK",
    201: "Created",
    204: "No Content",
    304: "Not Modified",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    411: "Length Required",
    413: "Content Too Large",
    415: "Unsupported Media Type",
    500: "Internal Server Error",
}

JSON_TYPE = "application/json"


class HttpError(ChachamlError):
    """An error that is about HTTP itself (size, media type, method), with its status and type."""

    def __init__(self, status: int, message: str, *, type: str = "InvalidValueError") -> None:
        super().__init__(message)
        self.status = status
        self.type = type


def plain(value: Any) -> Any:
    """``value`` with NaN and infinities as the strings ``"NaN"``, ``"Infinity"``, ``"-Infinity"``.

    JSON has no such numbers (SPEC 9.2); everything else is returned as it is.
    """
    if isinstance(value, float):
        if math.isfinite(value):
            return value
        return "NaN" if value != value else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


def dumps(value: Any) -> bytes:
    """Strict JSON (never the non-standard ``NaN`` token) as UTF-8 bytes."""
    try:
        # The usual case has no NaN or infinity: the C encoder alone, no walk in Python
        # (a page of 100 runs: ~4 ms instead of ~10 ms).
        text = json.dumps(value, allow_nan=False, ensure_ascii=False, default=str)
    except ValueError:  # "Out of range float values are not JSON compliant"
        text = json.dumps(plain(value), allow_nan=False, ensure_ascii=False, default=str)
    return text.encode("utf-8")


class Response:
    """A status, headers and a body (bytes, or an iterable of bytes that is streamed)."""

    def __init__(
        self,
        body: bytes | Iterable[bytes] = b"",
        *,
        status: int = 200,
        content_type: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.status = status
        self.headers: dict[str, str] = dict(headers or {})
        if content_type is not None:
            self.headers["Content-Type"] = content_type
        self.body = body
        if isinstance(body, bytes):
            self.headers["Content-Length"] = str(len(body))

    @property
    def status_line(self) -> str:
        return f"{self.status} {_REASONS.get(self.status, 'Unknown')}"


def json_response(value: Any, status: int = 200) -> Response:
    return Response(dumps(value), status=status, content_type=JSON_TYPE)


def error_response(status: int, type_: str, message: str, extra: dict[str, Any] | None = None) -> Response:
    """The error body of SPEC 9.2: ``{"error": {"type", "message"}}`` (plus details)."""
    err: dict[str, Any] = {"type": type_, "message": message}
    if extra:
        err.update(extra)
    return json_response({"error": err}, status)


class _Body(io.RawIOBase):
    """The request body, at most ``Content-Length`` bytes; ending early is an error.

    Raising (rather than returning EOF) on a short body makes the store discard the partial
    upload: a dropped connection never stores a truncated artifact.
    """

    def __init__(self, stream: BinaryIO, length: int) -> None:
        self._stream = stream
        self._left = length
        self._length = length

    def readable(self) -> bool:
        return True

    def readinto(self, buf: Any) -> int:
        if self._left <= 0:
            return 0
        view = memoryview(buf).cast("B")[: self._left]
        data = self._stream.read(len(view))
        if not data:
            raise InvalidValueError(
                f"the request body ended after {self._length - self._left} of the {self._length} "
                "bytes its Content-Length announced; send the whole body again"
            )
        n = len(data)
        view[:n] = data
        self._left -= n
        return n


class _Counting:
    """The WSGI input stream, counting what was read (so the rest can be drained)."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream
        self.count = 0

    def read(self, n: int = -1) -> bytes:
        data: bytes = self._stream.read(n)
        self.count += len(data)
        return data


class Request:
    """One HTTP request: method, path, query parameters, headers and body helpers."""

    def __init__(self, environ: dict[str, Any]) -> None:
        self.environ = environ
        self._input = _Counting(environ.get("wsgi.input") or io.BytesIO())
        self.method: str = environ.get("REQUEST_METHOD", "GET").upper()
        raw_path = environ.get("PATH_INFO", "") or "/"
        # WSGI hands PATH_INFO as latin-1 decoded bytes; the URL's bytes are UTF-8.
        try:
            self.path = raw_path.encode("latin-1").decode("utf-8")
        except (UnicodeEncodeError, UnicodeDecodeError):
            self.path = raw_path
        self.query: dict[str, str] = dict(
            parse_qsl(environ.get("QUERY_STRING", ""), keep_blank_values=True, errors="replace")
        )
        self.params: dict[str, str] = {}  # filled by the router from the path pattern

    def header(self, name: str) -> str | None:
        key = name.upper().replace("-", "_")
        if key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            value = self.environ.get(key)
        else:
            value = self.environ.get(f"HTTP_{key}")
        return value or None

    # -- query parameters -------------------------------------------------------------------
    def text(self, name: str) -> str | None:
        value = self.query.get(name)
        if value is not None and "\x00" in value:
            raise InvalidValueError(f"query parameter {name}= contains a NUL character")
        return value if value not in (None, "") else None

    def integer(self, name: str, default: int | None, *, low: int = 0, high: int | None = None) -> int | None:
        raw = self.text(name)
        if raw is None:
            return default
        try:
            value = int(raw, 10)
        except ValueError:
            raise InvalidValueError(f"query parameter {name}={raw!r} is not an integer") from None
        if value < low or (high is not None and value > high):
            upper = f" and {high}" if high is not None else ""
            raise InvalidValueError(
                f"query parameter {name}={value} is out of range; use a value between {low}{upper}"
            )
        return value

    def boolean(self, name: str) -> bool:
        raw = self.text(name)
        if raw is None:
            return False
        low = raw.lower()
        if low in ("1", "true", "yes", "on"):
            return True
        if low in ("0", "false", "no", "off"):
            return False
        raise InvalidValueError(f"query parameter {name}={raw!r} is not a boolean; use true or false")

    # -- bodies -----------------------------------------------------------------------------
    def content_length(self) -> int | None:
        raw = self.header("Content-Length")
        if raw is None:
            return None
        try:
            n = int(raw)
        except ValueError:
            raise HttpError(400, f"Content-Length {raw!r} is not a number") from None
        if n < 0:
            raise HttpError(400, f"Content-Length {n} is negative")
        return n

    def json(self) -> dict[str, Any]:
        """The body as a JSON object (415 if not JSON, 413 if too large, 400 if malformed)."""
        ctype = (self.header("Content-Type") or "").split(";")[0].strip().lower()
        if ctype != JSON_TYPE:
            raise HttpError(
                415,
                f"this endpoint takes a JSON body; send Content-Type: application/json (got {ctype!r})",
            )
        length = self.content_length() or 0
        if length > MAX_JSON_BYTES:
            raise HttpError(
                413, f"the JSON body is {length} bytes; the limit is {MAX_JSON_BYTES}; send smaller batches"
            )
        raw = self._input.read(length) if length else b""
        try:
            value = json.loads(raw.decode("utf-8")) if raw.strip() else {}
        except (UnicodeDecodeError, ValueError) as exc:
            raise InvalidValueError(f"the request body is not valid UTF-8 JSON: {exc}") from None
        if not isinstance(value, dict):
            raise InvalidValueError(f"the request body must be a JSON object, got {type(value).__name__}")
        return value

    def stream(self) -> BinaryIO:
        """The raw body as a stream of exactly ``Content-Length`` bytes (411 without one)."""
        length = self.content_length()
        if length is None:
            raise HttpError(
                411,
                "an upload needs a Content-Length header (curl sets it with --data-binary @file)",
                type="InvalidValueError",
            )
        return io.BufferedReader(_Body(self._input, length), 1 << 20)  # type: ignore[arg-type]

    def drain(self) -> None:
        """Read and drop what is left of a body of at most ``MAX_JSON_BYTES`` bytes.

        A client still sending its body when the reply comes (an error before the body was
        read) would otherwise see a reset connection instead of the JSON error.
        """
        try:
            left = (self.content_length() or 0) - self._input.count
        except HttpError:
            return
        if 0 < left <= MAX_JSON_BYTES:
            while left > 0:
                block = self._input.read(min(left, 1 << 16))
                if not block:
                    return
                left -= len(block)


Handler = Callable[[Any, Request], Response]


def chunks(fh: BinaryIO, size: int = 1 << 16) -> Iterator[bytes]:
    """Read ``fh`` in chunks and close it at the end (or when the server stops early)."""
    try:
        while True:
            block = fh.read(size)
            if not block:
                return
            yield block
    finally:
        fh.close()
