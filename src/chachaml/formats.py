"""Artifact formats: how a value becomes bytes and back (pickle, json, text, bytes, npy, table).

``FORMATS`` maps a format name to its ``Format``; add one with ``register_format``. The format
name is stored with each artifact and ``load_artifact`` decodes with it. Backend-neutral: the
``Client`` encodes before a store sees the bytes. **Loading a pickle runs code**: only load
artifacts from stores you trust.
"""

from __future__ import annotations

import io
import json
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, BinaryIO

from chachaml.errors import InvalidValueError, MissingDependencyError

__all__ = ["FORMATS", "Format", "content_type", "get_format", "guess_format", "register_format", "table"]


@dataclass(frozen=True, slots=True)
class Format:
    """How a value becomes bytes and back. ``decode`` reads from a binary file object."""

    name: str
    encode: Callable[[Any], bytes]
    decode: Callable[[BinaryIO], Any]
    content_type: str
    extension: str | None = None  # the usual file extension, for downloads and exports


#: Format name -> Format. The one place to add a format (``register_format``).
FORMATS: dict[str, Format] = {}


def register_format(
    name: str,
    *,
    encode: Callable[[Any], bytes],
    decode: Callable[[BinaryIO], Any],
    content_type: str,
    extension: str | None = None,
) -> Format:
    """Add (or replace) a format usable as ``log_artifact(..., format=name)``.

    The format name is stored with each artifact and ``load_artifact`` decodes with it, so a
    process that loads such an artifact must register the same format first.
    """
    fmt = Format(name, encode, decode, content_type, extension)
    FORMATS[name] = fmt
    return fmt


def _numpy() -> Any:
    try:
        import numpy
    except ImportError as exc:
        raise MissingDependencyError(
            "the 'npy' artifact format needs numpy, which is not installed; pip install numpy"
        ) from exc
    return numpy


def _encode_pickle(value: Any) -> bytes:
    import pickle  # here: only the pickle format needs it

    try:
        return pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception as exc:  # pickling raises many types (PicklingError, TypeError, AttributeError)
        raise InvalidValueError(
            f"cannot pickle {type(value).__name__} ({exc}); log its state instead (e.g. a dict of "
            "arrays), or save it to a file yourself and use chachaml.log_file"
        ) from exc


def _utf8(text: str) -> bytes:
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidValueError(
            f"the text holds the lone surrogate {text[exc.start]!r} at position {exc.start}, which is "
            "not valid UTF-8; fix the text, or store it with format='pickle'"
        ) from None


def _encode_json(value: Any) -> bytes:
    try:
        text = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError, RecursionError) as exc:  # unsupported type, circular reference
        raise InvalidValueError(
            f"cannot store {type(value).__name__} as JSON ({exc}); convert it to dicts, lists, str "
            "and numbers, or use format='pickle'"
        ) from exc
    return _utf8(text)


def _encode_text(value: Any) -> bytes:
    if not isinstance(value, str):
        raise InvalidValueError(
            f"format 'text' takes a str, got {type(value).__name__}; pass str(value), or use "
            "format='json' or 'pickle'"
        )
    return _utf8(value)


def _encode_bytes(value: Any) -> bytes:
    if not isinstance(value, bytes | bytearray | memoryview):
        raise InvalidValueError(
            f"format 'bytes' takes bytes, got {type(value).__name__}; encode it first, or let "
            "chachaml choose (format=None)"
        )
    return bytes(value)


def _encode_npy(value: Any) -> bytes:
    np = _numpy()
    arr = np.asarray(value)
    if arr.dtype.hasobject:
        raise InvalidValueError(
            f"an array of dtype {arr.dtype} holds Python objects and cannot be stored as .npy "
            "without pickling; use format='pickle'"
        )
    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=False)
    return buf.getvalue()


def _decode_npy(fh: BinaryIO) -> Any:
    return _numpy().load(fh, allow_pickle=False)


def _plain(v: Any) -> Any:
    """A JSON-friendly cell for ``log_table``: numpy scalars become numbers, the rest ``str``."""
    item = getattr(v, "item", None)
    if callable(item):
        try:
            return item()
        except (TypeError, ValueError):
            pass
    return str(v)


def _encode_table(value: Any) -> bytes:
    columns, rows = value
    return _utf8(json.dumps({"columns": columns, "rows": rows}, ensure_ascii=False, default=_plain))


def _decode_table(fh: BinaryIO) -> list[dict[str, Any]]:
    data = json.load(fh)
    columns = data["columns"]
    return [dict(zip(columns, row, strict=True)) for row in data["rows"]]


def _decode_pickle(fh: BinaryIO) -> Any:
    import pickle

    return pickle.load(fh)


register_format(
    "pickle",
    encode=_encode_pickle,
    decode=_decode_pickle,  # runs code from the file: see the module docstring
    content_type="application/x-python-pickle",
    extension=".pkl",
)
register_format(
    "json", encode=_encode_json, decode=json.load, content_type="application/json", extension=".json"
)
register_format(
    "text",
    encode=_encode_text,
    decode=lambda fh: fh.read().decode("utf-8"),
    content_type="text/plain; charset=utf-8",
    extension=".txt",
)
register_format(
    "bytes",
    encode=_encode_bytes,
    decode=lambda fh: fh.read(),
    content_type="application/octet-stream",
    extension=None,
)
register_format(
    "npy", encode=_encode_npy, decode=_decode_npy, content_type="application/x-npy", extension=".npy"
)
register_format(
    "table",
    encode=_encode_table,
    decode=_decode_table,
    content_type="application/vnd.chachaml.table+json",
    extension=".json",
)


def _is_ndarray(value: Any) -> bool:
    np = sys.modules.get("numpy")  # an array exists only if numpy was imported: never import it here
    return np is not None and isinstance(value, np.ndarray)


def guess_format(value: Any) -> str:
    """The format ``format=None`` picks: bytes -> bytes, str -> text, numpy array -> npy, else pickle."""
    if isinstance(value, bytes | bytearray | memoryview):
        return "bytes"
    if isinstance(value, str):
        return "text"
    if _is_ndarray(value):
        return "npy"
    return "pickle"


def content_type(fmt: Format, name: str) -> str:
    """Refine the format's content type from the name for raw formats (``.md``, ``.png``, ...)."""
    if fmt.name not in ("text", "bytes"):
        return fmt.content_type
    import mimetypes  # here: it imports urllib.parse and ipaddress (~3 ms)

    guessed, _ = mimetypes.guess_type(name, strict=False)
    if guessed is None:
        return fmt.content_type
    if fmt.name == "text":
        return f"{guessed}; charset=utf-8" if guessed.startswith("text/") else fmt.content_type
    return guessed


def get_format(name: str) -> Format:
    fmt = FORMATS.get(name)
    if fmt is None:
        raise InvalidValueError(
            f"unknown artifact format {name!r}; use one of {', '.join(sorted(FORMATS))}, "
            "or add it with chachaml.artifacts.register_format"
        )
    return fmt


def table(rows: Any) -> tuple[list[str], list[list[Any]]]:
    """(columns, rows) from a list of dicts, a (headers, rows) pair, or a pandas/polars frame."""
    if hasattr(rows, "columns") and (hasattr(rows, "itertuples") or hasattr(rows, "rows")):
        columns = [str(c) for c in rows.columns]
        body = rows.itertuples(index=False, name=None) if hasattr(rows, "itertuples") else rows.rows()
        return columns, [list(r) for r in body]
    if isinstance(rows, tuple) and len(rows) == 2 and not isinstance(rows[0], Mapping):
        headers, body = rows
        columns = [str(h) for h in headers]
        out = [list(r) for r in body]
        for i, r in enumerate(out):
            if len(r) != len(columns):
                raise InvalidValueError(
                    f"table row {i} has {len(r)} cells but there are {len(columns)} headers {columns}"
                )
    elif (
        isinstance(rows, Sequence)
        and not isinstance(rows, str | bytes)
        and all(isinstance(r, Mapping) for r in rows)
    ):
        columns = list(dict.fromkeys(str(k) for r in rows for k in r))
        out = [[next((v for k, v in r.items() if str(k) == c), None) for c in columns] for r in rows]
    else:
        raise InvalidValueError(
            "log_table takes a list of dicts, a (headers, rows) pair or a DataFrame, "
            f"got {type(rows).__name__}"
        )
    if len(set(columns)) != len(columns):
        raise InvalidValueError(f"table headers must be unique, got {columns}")
    return columns, out
