"""The rules of alerts and pipelines, backend-neutral and pure (like ``chachaml.rules``).

The ``Client`` checks arguments with them before a store is touched; every backend shares the
decisions (``crosses``, ``alert_changed``), so SQLite, PostgreSQL and a server agree.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import urlsplit

from chachaml._values import check_key
from chachaml.automation_entities import Alert
from chachaml.errors import InvalidValueError

__all__ = [
    "ALERT_OPS",
    "DELIVERIES",
    "PIPELINE_STATUSES",
    "STEP_STATUSES",
    "alert_changed",
    "check_op",
    "check_steps",
    "check_threshold",
    "check_webhook",
    "crosses",
]

#: The comparison operators of an alert, as SPEC spells them.
ALERT_OPS: dict[str, Callable[[float, float], bool]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
}
#: A webhook delivery's states (None on an event means: the alert has no webhook).
DELIVERIES = ("pending", "delivered", "failed")
PIPELINE_STATUSES = ("running", "completed", "failed", "killed")
#: ``skipped`` is a step status only: a step after a failed one never ran, so it has no run.
STEP_STATUSES = ("pending", "running", "completed", "failed", "killed", "skipped")


def check_op(op: Any) -> str:
    """Return ``op`` if it is one of ``>``, ``>=``, ``<``, ``<=``; else ``InvalidValueError``."""
    if isinstance(op, str) and op in ALERT_OPS:
        return op
    raise InvalidValueError(
        f"alert op must be one of {', '.join(repr(o) for o in ALERT_OPS)}, got {op!r}; "
        "e.g. add_alert('loss-high', 'loss', '>', 2.0)"
    )


def check_threshold(threshold: Any) -> float:
    """A finite real number as ``float`` (an int, float or numpy scalar); else ``InvalidValueError``.

    NaN is refused (no value compares with it, so the alert could never fire) and so is ±inf
    (``> inf`` never fires, ``< inf`` fires for every finite value: almost surely a bug).
    """
    if (
        isinstance(threshold, str | bytes | bool)
        or threshold is None
        or type(threshold).__name__ in ("bool_", "bool")  # numpy bool before and since numpy 2
    ):
        raise InvalidValueError(
            f"alert threshold must be a real number, got {type(threshold).__name__} {threshold!r}; "
            "pass e.g. 2.0"
        )
    try:
        value = float(threshold)
    except (TypeError, ValueError, OverflowError) as exc:
        raise InvalidValueError(
            f"alert threshold must be a real number, got {type(threshold).__name__} {threshold!r}; "
            "pass e.g. 2.0"
        ) from exc
    if not math.isfinite(value):
        raise InvalidValueError(
            f"alert threshold must be a finite number, got {threshold!r}; a NaN or infinite "
            "threshold can never fire (or fires for every value)"
        )
    return value


def check_webhook(url: Any) -> str | None:
    """None, or an ``http://`` / ``https://`` URL with a host; else ``InvalidValueError``."""
    if url is None:
        return None
    if not isinstance(url, str):
        raise InvalidValueError(
            f"webhook must be a URL string such as 'https://hooks.example.com/x', got {type(url).__name__}"
        )
    try:
        parts = urlsplit(url)
    except ValueError as exc:  # e.g. an unbalanced '[' in the host
        raise InvalidValueError(
            f"webhook {url!r} is not a valid URL ({exc}); pass an http(s):// URL"
        ) from exc
    if parts.scheme not in ("http", "https") or not parts.hostname or any(c in url for c in " \r\n\t"):
        raise InvalidValueError(
            f"webhook {url!r} is not an http:// or https:// URL with a host; pass e.g. "
            "'https://hooks.example.com/chachaml'"
        )
    return url


def crosses(op: str, value: float, threshold: float) -> bool:
    """Whether ``value op threshold`` holds (a NaN value never crosses)."""
    return ALERT_OPS[op](value, threshold)


def alert_changed(
    old: Alert, metric: str, op: str, threshold: float, experiment: str | None, webhook: str | None
) -> bool:
    """Whether an upsert changes an alert (then it gets a new version and a new ``updated``,
    and every run may fire it again); the same definition again changes nothing."""
    return (old.metric, old.op, old.threshold, old.experiment, old.webhook) != (
        metric,
        op,
        threshold,
        experiment,
        webhook,
    )


def check_steps(steps: Any) -> list[tuple[str, Callable[[Any], Any]]]:
    """The steps of a pipeline as a list of ``(name, callable)`` with unique valid names.

    Raises:
        InvalidValueError: not a non-empty sequence of pairs, a bad or repeated name, or a
            second item that is not callable.
    """
    example = "e.g. [('load', load), ('train', train)]"
    if isinstance(steps, str | bytes) or not isinstance(steps, Sequence) or not steps:
        raise InvalidValueError(
            f"steps must be a non-empty list of (name, callable) pairs, {example}; got {steps!r:.80}"
        )
    out: list[tuple[str, Callable[[Any], Any]]] = []
    seen: set[str] = set()
    for i, pair in enumerate(steps):
        if isinstance(pair, str | bytes) or not isinstance(pair, Sequence) or len(pair) != 2:
            raise InvalidValueError(f"step {i} must be a (name, callable) pair, {example}; got {pair!r:.80}")
        name, fn = pair
        name = check_key(name, f"the name of step {i}")
        if name in seen:
            raise InvalidValueError(f"two steps are named {name!r}; give each step its own name")
        if not callable(fn):
            raise InvalidValueError(
                f"step {name!r} must be a callable taking the previous step's result, got "
                f"{type(fn).__name__} {fn!r:.60}"
            )
        seen.add(name)
        out.append((name, fn))
    return out
