"""Backends, and the scheme registry that opens one from a target.

A target is a path (``str`` / ``PathLike``) to a SQLite file, ``":memory:"``, a URI or a
``Store``. A URI's scheme picks a factory from ``SCHEMES``, imported only when used:

* ``sqlite`` (``sqlite:///relative.db``, ``sqlite:////absolute.db``): ``chachaml.store.sqlite``.
* ``postgresql`` / ``postgres`` (``postgresql://user:pw@host:5432/db``):
  ``chachaml.store.postgres``, with psycopg 3 from the extra ``postgres``.
* ``http`` / ``https`` (a tracking server): ``chachaml.store.remote`` (``token=`` option, else
  ``$CHACHAML_TOKEN``).

A new backend registers itself with ``register_scheme("name", "package.module:factory")``; the
factory takes the target text and keyword options (``is_dead=`` for liveness) and returns a
``Store``.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from typing import Any

from chachaml.errors import InvalidValueError
from chachaml.store.base import LocalArtifacts, Store

__all__ = [
    "SCHEMES",
    "LocalArtifacts",
    "Store",
    "is_store",
    "open_store",
    "register_scheme",
    "reopenable",
    "store_path",
]

Factory = Callable[..., Store]

#: URI scheme -> factory, or "module:function" imported on first use (``import chachaml`` stays cheap).
SCHEMES: dict[str, Factory | str] = {
    "sqlite": "chachaml.store.sqlite:open_sqlite",
    "postgresql": "chachaml.store.postgres:open_postgres",
    "postgres": "chachaml.store.postgres:open_postgres",
    "http": "chachaml.store.remote:open_remote",
    "https": "chachaml.store.remote:open_remote",
}


def register_scheme(scheme: str, factory: Factory | str) -> None:
    """Make ``open_store("<scheme>://...")`` call ``factory(target, **options)``.

    Args:
        scheme: the URI scheme, e.g. ``"postgresql"``.
        factory: a callable, or ``"module:function"`` to import lazily.
    """
    SCHEMES[scheme] = factory


def is_store(target: Any) -> bool:
    """Whether ``target`` is already a store object (anything with the store methods)."""
    return not isinstance(target, str | bytes | os.PathLike) and hasattr(target, "log_batch")


def reopenable(store: Any) -> bool:
    """Whether another process (or another open) reaching ``store.uri`` sees the same data:
    False for an in-memory store, whose data lives only in this object."""
    return not str(store.uri).endswith(":memory:")


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


def _factory(scheme: str) -> Factory | None:
    found = SCHEMES.get(scheme)
    if isinstance(found, str):
        module, _, name = found.partition(":")
        found = getattr(importlib.import_module(module), name)
    return found


def open_store(target: Any, **options: Any) -> Store:
    """Open the store ``target`` names (nothing is created on disk until the first write).

    Args:
        target: a path, ``":memory:"``, a URI whose scheme is in ``SCHEMES``, or a ``Store``
            (returned as it is).
        **options: passed to the backend's factory (``is_dead=`` liveness; ``artifacts=`` the
            artifact location of a store that is not a SQLite file).

    Raises:
        InvalidValueError: an empty path, a non-path, or an unknown URI scheme.
        MissingDependencyError: the backend's optional package is not installed.
        StoreError: a known backend that is not available (yet).
    """
    if is_store(target):
        return target  # type: ignore[no-any-return]
    path = store_path(target)
    text = os.fspath(target)
    if path is not None or text in (":memory:", "sqlite:///:memory:"):
        factory = _factory("sqlite")
        assert factory is not None
        return factory(path, **options)
    scheme = text.split("://", 1)[0]
    factory = _factory(scheme)
    if factory is None:
        raise InvalidValueError(
            f"unknown store URI scheme {scheme!r} in {text!r}; use a file path, ':memory:' or "
            f"sqlite:///path.db (known schemes: {', '.join(sorted(SCHEMES))})"
        )
    return factory(text, **options)
