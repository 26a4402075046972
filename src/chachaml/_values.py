"""Validate and normalise what users log: keys, params, metric values, tags, steps.

Everything here is pure (no store, no context) so it can be tested with hypothesis and reused
by every backend. Errors name the bad value and the fix (SPEC section 4).
"""

from __future__ import annotations

import enum
import json
import math
import os
import re
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from chachaml.errors import InvalidValueError

MAX_KEY_LEN = 250
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_good_keys: set[str] = set()  # cache: validating the same metric key every step is wasted work


def _short(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def check_key(key: Any, what: str = "key") -> str:
    """Return ``key`` if it is a valid key, else raise ``InvalidValueError``.

    A key is a non-empty ``str`` of at most 250 characters without control characters.
    """
    if key.__class__ is str and key in _good_keys:
        return key
    if not isinstance(key, str):
        raise InvalidValueError(
            f"{what} must be a str, got {type(key).__name__} {_short(key)}; pass a string such as 'loss'"
        )
    if not key:
        raise InvalidValueError(f"{what} must not be empty; pass a name such as 'loss'")
    if len(key) > MAX_KEY_LEN:
        raise InvalidValueError(
            f"{what} {_short(key)} is {len(key)} characters long; the limit is {MAX_KEY_LEN}"
        )
    m = _CONTROL.search(key)
    if m:
        raise InvalidValueError(
            f"{what} {_short(key)} contains the control character {m.group()!r} at position "
            f"{m.start()}; remove it"
        )
    if not key.isascii():
        check_text(key, what)
    if len(_good_keys) < 100_000:
        _good_keys.add(key)
    return key


def check_text(text: str, what: str = "text") -> str:
    """Refuse a ``str`` that cannot be stored as UTF-8 (a lone surrogate, e.g. from a
    ``surrogateescape``-decoded file name): SQLite would fail on it with a bare UnicodeEncodeError."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidValueError(
            f"{what} {_short(text)} contains {text[exc.start]!r} at position {exc.start}, a lone "
            "surrogate that is not valid text; decode the bytes it came from with errors='replace'"
        ) from None
    return text


def metric_value(value: Any, key: str = "") -> float:
    """Convert a metric value to ``float``; NaN and ±inf are kept.

    Accepts int, float, numpy scalars, 0-d tensors and anything with ``__float__``; rejects
    ``str``, ``bytes``, ``bool`` and ``None`` (they are almost always a bug).
    """
    cls = value.__class__
    if cls is float:
        return value  # type: ignore[no-any-return]
    if cls is int and -(2**53) <= value <= 2**53:
        return float(value)
    # numpy's bool is named "bool_" before numpy 2 and "bool" since
    if value is None or isinstance(value, str | bytes | bool) or cls.__name__ in ("bool_", "bool"):
        raise InvalidValueError(
            f"metric {key!r} value must be a real number, got {type(value).__name__} "
            f"{_short(value)}; log a number (use log_param or set_tag for text)"
        )
    try:
        return float(value)
    except OverflowError as exc:  # an int beyond 1.8e308
        raise InvalidValueError(
            f"metric {key!r} value {_short(value)} is too large for a float; log a smaller number "
            "(or float('inf') if that is what it means)"
        ) from exc
    except (TypeError, ValueError) as exc:
        raise InvalidValueError(
            f"metric {key!r} value {_short(value)} ({type(value).__name__}) is not a real number; "
            "log a single int or float (for arrays or tensors, log one element or a reduction)"
        ) from exc


_INT64 = range(-(2**63), 2**63)  # what an SQLite INTEGER holds


def step_value(step: Any) -> int:
    """Check an explicit step: an integer (numpy integers welcome), not a bool."""
    if step.__class__ is int and step in _INT64:
        return step
    if isinstance(step, bool) or not hasattr(step, "__index__"):
        raise InvalidValueError(
            f"step must be an int, got {type(step).__name__} {_short(step)}; "
            "pass an integer, or step=None for the next step"
        )
    step = int(step.__index__())
    if step not in _INT64:
        raise InvalidValueError(f"step {step} does not fit in 64 bits; pass a smaller integer")
    return step  # type: ignore[no-any-return]


def timestamp_value(ts: Any) -> int:
    """Integer milliseconds since the epoch; a ``datetime`` is converted."""
    if ts.__class__ is int and ts in _INT64:
        return ts
    if hasattr(ts, "timestamp") and callable(ts.timestamp):
        return int(ts.timestamp() * 1000)
    cls_name = ts.__class__.__name__
    if not isinstance(ts, bool | int | float) and cls_name not in ("bool_", "bool"):
        # numpy integers and floats (np.int64, np.float32) are welcome, as they are for step=
        if hasattr(ts, "__index__"):
            ts = int(ts.__index__())
        elif hasattr(ts, "__float__") and not isinstance(ts, str | bytes):
            ts = float(ts)
    if isinstance(ts, bool) or not isinstance(ts, int | float):
        raise InvalidValueError(
            f"timestamp must be integer milliseconds since the epoch (or a datetime), got {_short(ts)}"
        )
    if isinstance(ts, float) and not math.isfinite(ts):
        raise InvalidValueError(f"timestamp must be finite, got {ts!r}")
    if int(ts) not in _INT64:
        raise InvalidValueError(f"timestamp {_short(ts)} does not fit in 64 bits; pass milliseconds")
    return int(ts)


def _plain(value: Any) -> Any:
    """Normalise one param value to a JSON type (int, float, bool, None, str, list, dict)."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        # JSON has no NaN/inf; keep them readable and queryable as text instead of failing.
        return value if math.isfinite(value) else str(value)
    if isinstance(value, enum.Enum):
        return _plain(value.value)
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if type(value).__module__ == "numpy" and hasattr(value, "item") and getattr(value, "ndim", 0) == 0:
        return _plain(value.item())  # numpy scalar -> Python scalar
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    return str(value)


def _flatten(prefix: str, mapping: Mapping[Any, Any]) -> Iterator[tuple[str, Any]]:
    for k, v in mapping.items():
        if not isinstance(k, str):
            k = str(_plain(k))
        key = f"{prefix}.{k}" if prefix else k
        if isinstance(v, Mapping):
            if v:
                yield from _flatten(key, v)
            else:
                yield key, {}
        else:
            yield key, v


def params_items(mapping: Mapping[Any, Any]) -> dict[str, str]:
    """Flatten nested dicts with dots and encode each value as JSON text: ``{key: json}``."""
    if not isinstance(mapping, Mapping):
        raise InvalidValueError(
            f"params must be a mapping such as {{'lr': 0.1}}, got {type(mapping).__name__}"
        )
    out: dict[str, str] = {}
    for key, value in _flatten("", mapping):
        text = encode_param(value)
        if out.setdefault(check_key(key, "param key"), text) != text:  # {"a.b": 1, "a": {"b": 2}}
            raise InvalidValueError(
                f"param key {key!r} is given twice with different values ({out[key]} and {text}), "
                "once as a dotted key and once nested; keep only one of them"
            )
    return out


_json_str = json.encoder.encode_basestring  # what json.dumps(ensure_ascii=False) does to a str
# The scanner json.loads ends in (typeshed does not declare the attribute).
_json_scan: Callable[[str, int], tuple[Any, int]] = json.JSONDecoder().scan_once  # type: ignore[attr-defined]


def encode_param(value: Any) -> str:
    """JSON text of a normalised param value."""
    # Fast paths for the common scalars give exactly json.dumps' text, without its setup cost
    # (most of log_params' Python time; benchmarks/README.md).
    cls = value.__class__
    if cls is str:
        return _json_str(value)
    if cls is int:
        return int.__repr__(value)
    if cls is float and math.isfinite(value):
        return float.__repr__(value)
    return json.dumps(_plain(value), ensure_ascii=False, separators=(",", ":"), sort_keys=True)


def decode_param(text: str) -> Any:
    try:  # text from encode_param has no surrounding whitespace, so the scanner alone reads it
        value, end = _json_scan(text, 0)
    except (StopIteration, ValueError):
        return json.loads(text)  # raises the usual JSONDecodeError
    return value if end == len(text) else json.loads(text)


def tag_value(value: Any) -> str:
    """Tags are strings; ``Enum`` gives its ``.value``, everything else ``str()``."""
    if isinstance(value, enum.Enum):
        value = value.value
    return value if isinstance(value, str) else str(value)


def metric_points(
    metrics: Any, step: Any, timestamp: Any, now: int
) -> list[tuple[str, float, int | None, int]]:
    """``log_metrics``' input as checked points ``(key, value, step or None, timestamp)``."""
    if not isinstance(metrics, Mapping):
        raise InvalidValueError(f"metrics must be a mapping such as {{'loss': 0.3}}, got {metrics!r}")
    if step is not None:
        step = step_value(step)
    ts = now if timestamp is None else timestamp_value(timestamp)
    return [(check_key(k, "metric key"), metric_value(v, k), step, ts) for k, v in metrics.items()]
