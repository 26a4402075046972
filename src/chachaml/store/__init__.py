"""Backends and the one function that opens them from a target.

A target is a path (``str`` / ``PathLike``) to a SQLite file, ``":memory:"``, a URI
(``sqlite:///relative.db``, ``sqlite:////absolute.db``, ``postgresql://...``) or a ``Store``.
"""

from __future__ import annotations

import os
from typing import Any

from chachaml.errors import InvalidValueError, MissingDependencyError
from chachaml.store.base import Store

__all__ = ["Store", "is_store", "open_store", "store_path"]


def is_store(target: Any) -> bool:
    """Whether ``target`` is already a store object (anything with the store methods)."""
    return not isinstance(target, str | bytes | os.PathLike) and hasattr(target, "log_batch")


def store_path(target: Any) -> str | None:
    """The absolute file path a SQLite target names, or None for memory / other backends."""
    if isinstance(target, os.PathLike):
        target = str(os.fspath(target))
    if not isinstance(target, str):
        raise InvalidValueError(
            f"a store target must be a path, a URI or a Store, got {type(target).__name__} "
            f"{target!r}; pass e.g. 'runs.db'"
        )
    if not target:
        raise InvalidValueError("the store path is empty; pass a file name such as 'runs.db'")
    if "\x00" in target:  # the OS would refuse it with a bare ValueError
        raise InvalidValueError(
            f"the store path {target!r} contains a NUL character ('\\x00'), which no file name "
            "can hold; remove it, e.g. use_store('runs.db')"
        )
    if target.startswith("sqlite:///"):
        target = target[len("sqlite:///") :]
    elif "://" in target:
        return None
    if target == ":memory:":
        return None
    return str(os.path.abspath(os.path.expanduser(target)))


def open_store(target: Any) -> Store:
    """Open the store ``target`` names (nothing is created on disk until the first write)."""
    if is_store(target):
        return target  # type: ignore[no-any-return]
    from chachaml.store.sqlite import SqliteStore

    path = store_path(target)
    if path is not None:
        return SqliteStore(path)
    text = os.fspath(target)
    if text in (":memory:", "sqlite:///:memory:"):
        return SqliteStore(None)
    scheme = text.split("://", 1)[0]
    if scheme in ("postgresql", "postgres"):
        raise MissingDependencyError(
            f"{text.split('@')[-1]!r}: the PostgreSQL backend is not part of this chachaml "
            "release yet; use a SQLite file for now (chachaml.use_store('runs.db'))"
        )
    raise InvalidValueError(
        f"unknown store URI scheme {scheme!r} in {text!r}; use a file path, ':memory:' or sqlite:///path.db"
    )
