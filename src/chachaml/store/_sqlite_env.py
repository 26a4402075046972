"""``Run.env`` in the SQLite store: the installed-package list stored once per distinct set.

``Run.env["packages"]`` (every installed distribution, a few KB) is the same for every run of a
virtual environment, and decoding it per run doubled the cost of ``runs()`` over 1,000 runs.
So a run row keeps the rest of its environment as JSON with the packages replaced by their
digest, and the ``env_packages`` table (schema migration 5) holds each distinct package list
once, keyed by the sha256 of its JSON text. Readers decode a package list once and cache it by
digest (a digest names one text forever), and every run gets its own copy of the dict, so
``Run.env`` reads exactly as before. docs/adr/0018-query-plans-at-scale.md.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["EnvReader", "encode_env", "split_legacy_packages"]

_CACHE_SIZE = 64  # distinct package lists kept decoded per store


def sha256_hex(data: bytes) -> str:
    """``hashlib.sha256(data).hexdigest()``, by CPython's built-in SHA-256 when it has one.

    ``import hashlib`` loads OpenSSL (~3 ms, a fifth of the first-use budget of
    benchmarks/bench_core.py) to hash one package list per process; the built-in module gives
    the same digest. ``hashlib`` remains the fallback (other interpreters, other versions).
    """
    import importlib

    for name in ("_sha256", "_sha2"):  # CPython <= 3.11, >= 3.12
        try:
            module: Any = importlib.import_module(name)
        except ImportError:
            continue
        return str(module.sha256(data).hexdigest())
    import hashlib

    return hashlib.sha256(data).hexdigest()


def encode_env(env: Mapping[str, Any]) -> tuple[str, str | None, str | None]:
    """(the run's env JSON, its packages digest or None, the packages JSON or None).

    Only a dict under ``"packages"`` moves out; its key stays in place holding the digest, so
    the key order of ``Run.env`` survives the round trip.
    """
    packages = env.get("packages")
    if not isinstance(packages, dict):
        return json.dumps(dict(env), default=str), None, None
    global _last
    if _last is not None and _last[0] == packages:  # every run of a process: the same list
        text, digest = _last[1], _last[2]
    else:
        text = json.dumps(packages, default=str)
        digest = sha256_hex(text.encode("utf-8", "surrogatepass"))
        _last = (dict(packages), text, digest)
    return json.dumps({**env, "packages": digest}, default=str), digest, text


# The last package list encoded (a copy), its JSON and digest: comparing a list with the copy
# costs a fraction of encoding and hashing it again for every run of the process.
_last: tuple[dict[str, Any], str, str] | None = None


def store_packages(conn: sqlite3.Connection, digest: str | None, text: str | None) -> None:
    """Keep one copy of a package list (inside the caller's write transaction; the SQL is
    PostgreSQL's too)."""
    if digest is not None:
        conn.execute(
            "INSERT INTO env_packages (digest, packages) VALUES (?, ?) ON CONFLICT (digest) DO NOTHING",
            (digest, text),
        )


class EnvReader:
    """Decodes run rows' env columns, each distinct package list once per store."""

    def __init__(self) -> None:
        self._packages: dict[str, dict[str, Any]] = {}

    def load(self, conn: sqlite3.Connection, digests: Iterable[str | None]) -> None:
        """Read the package lists of ``digests`` that are not decoded yet (one statement)."""
        missing = sorted({d for d in digests if d is not None and d not in self._packages})
        if not missing:
            return
        if len(self._packages) + len(missing) > _CACHE_SIZE:
            self._packages.clear()
        for i in range(0, len(missing), 500):
            chunk = missing[i : i + 500]
            rows = conn.execute(
                f"SELECT digest, packages FROM env_packages WHERE digest IN ({','.join('?' * len(chunk))})",
                chunk,
            )
            for digest, text in rows:
                self._packages[digest] = json.loads(text)

    def env(self, text: str | None, digest: str | None) -> dict[str, Any]:
        """The run's ``env`` dict from its row (``load`` was called with ``digest`` first)."""
        if text is None:
            return {}
        env: dict[str, Any] = json.loads(text)
        if digest is not None:
            packages = self._packages.get(digest)
            # A package list missing from the table (a hand-edited file) reads as empty.
            env["packages"] = {} if packages is None else dict(packages)
        return env


def split_legacy_packages(conn: sqlite3.Connection) -> None:
    """Migration 5's data step: move inline package lists of older rows into ``env_packages``."""
    rows = conn.execute("SELECT rowid, env FROM runs WHERE env LIKE '%\"packages\"%'").fetchall()
    updates = []
    for rowid, text in rows:
        try:
            env = json.loads(text)
        except ValueError:
            continue  # not JSON: leave the row as it is (it reads as it did)
        if not isinstance(env, dict):
            continue
        env_text, digest, packages = encode_env(env)
        if digest is not None:
            store_packages(conn, digest, packages)
            updates.append((env_text, digest, rowid))
    conn.executemany("UPDATE runs SET env = ?, env_packages = ? WHERE rowid = ?", updates)
