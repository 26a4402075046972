"""The PostgreSQL server the tests use, and a fresh database per test.

``CHACHAML_TEST_POSTGRES_URL`` names a server and an existing database to connect through
(default: ``postgresql://postgres@127.0.0.1:5432/test``, trust auth, as ``.ci/run`` starts it).
Each test gets its own database (``CREATE DATABASE`` with a unique name, dropped after). When the
server cannot be reached, a test that needs it FAILS if ``CI`` is set, and is skipped otherwise.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

ADMIN_URL = os.environ.get("CHACHAML_TEST_POSTGRES_URL") or "postgresql://postgres@127.0.0.1:5432/test"


@functools.cache
def _unreachable() -> str | None:
    """Why the server cannot be used (None when it can), checked once per test session."""
    try:
        import psycopg
    except ImportError:
        return "psycopg is not installed (pip install -e '.[dev]')"
    try:
        psycopg.connect(ADMIN_URL, connect_timeout=5).close()
    except psycopg.Error as exc:
        return f"PostgreSQL at {ADMIN_URL} is unreachable: {str(exc).strip()}"
    return None


def require_postgres() -> None:
    """Fail (on CI) or skip (elsewhere) the calling test when the server is not there."""
    why = _unreachable()
    if why is None:
        return
    if os.environ.get("CI"):
        pytest.fail(f"{why}; CI must run the PostgreSQL tests (.ci/run starts the server)")
    pytest.skip(why)


@contextmanager
def fresh_database() -> Iterator[str]:
    """The URL of a new empty database on the test server, dropped on exit."""
    require_postgres()
    from chachaml.store.postgres import temporary_database

    with temporary_database(ADMIN_URL) as url:
        yield url
