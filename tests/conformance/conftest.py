"""The backends the conformance suite runs against, as factories.

Every test in ``test_store_contract.py`` takes the ``backend`` fixture and runs once per entry
of ``BACKENDS``. A factory receives the test's ``tmp_path`` and returns a ``Backend``: an EMPTY
store (no runs, no experiments) plus, for file-based stores, the path that must not appear
before the first write.

``sqlite-s3`` is a SQLite file whose artifact bytes live in S3-compatible object storage
(moto's server over HTTP, ``tests/_s3.py``): the whole suite, artifacts included, runs on the
object-storage seam too. Without moto it skips; on CI (``CI`` set) it fails.

Adding a backend is adding one factory here, nothing else:

* PostgreSQL: each test gets a new database on the test server (``tests/_postgres.py``:
  ``CHACHAML_TEST_POSTGRES_URL``, default the local server ``.ci/run`` starts), dropped in
  ``Backend.close``; artifacts in ``tmp_path``. Unreachable server: the test fails on CI and
  is skipped elsewhere.
* ``remote``: a tracking server (``chachaml.web.server.TeamApp`` on a real HTTP server in a
  thread) over a SQLite file in ``tmp_path``, and a ``RemoteStore`` pointing at it.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from _postgres import fresh_database
from chachaml.store import open_store
from chachaml.store.base import Store


@dataclass
class Backend:
    """A store under test, and how to tell whether it has created anything on disk yet."""

    name: str
    store: Store
    file: Path | None = None  # the database file, for backends that create one lazily
    cleanups: list[Callable[[], None]] = field(default_factory=list)

    def close(self) -> None:
        if not self.store.closed:
            self.store.close()
        for fn in self.cleanups:
            fn()


def _sqlite_file(tmp_path: Path) -> Backend:
    path = tmp_path / "conformance.db"
    return Backend("sqlite-file", open_store(path), file=path)


def _sqlite_memory(tmp_path: Path) -> Backend:
    return Backend("sqlite-memory", open_store(":memory:"))


def _sqlite_s3(tmp_path: Path) -> Backend:
    """A SQLite file whose artifact bytes live in S3 (moto's server over HTTP; tests/_s3.py)."""
    import _s3

    saved = {k: os.environ.get(k) for k in _s3.environ()}
    os.environ.update(_s3.environ())

    def restore() -> None:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v

    path = tmp_path / "conformance.db"
    store = open_store(path, artifacts=_s3.new_location())
    return Backend("sqlite-s3", store, file=path, cleanups=[restore])


def _postgres(tmp_path: Path) -> Backend:
    database = fresh_database()
    url = database.__enter__()
    try:
        store = open_store(url, artifacts=str(tmp_path / "artifacts"))
    except BaseException:
        database.__exit__(None, None, None)
        raise
    return Backend("postgres", store, cleanups=[lambda: database.__exit__(None, None, None)])


def _remote(tmp_path: Path) -> Backend:
    """A remote store talking to a real HTTP server (in a thread) over a temp SQLite file."""
    from tests._teamserver import InProcessServer

    from chachaml.store.remote import RemoteStore

    # The raw store contract is under test here: the server's own alert checks (SPEC 11, tested
    # in tests/test_web_automation.py) would fire events the automation tests expect to make.
    server = InProcessServer(str(tmp_path / "server.db"), check_alerts=False)
    made = Backend("remote", RemoteStore(server.url, spool_root=str(tmp_path / "state")))
    made.cleanups.append(server.close)
    return made


BACKENDS: list[tuple[str, Callable[[Path], Backend]]] = [
    ("sqlite-file", _sqlite_file),
    ("sqlite-memory", _sqlite_memory),
    ("sqlite-s3", _sqlite_s3),
    ("remote", _remote),
    ("postgres", _postgres),
]


@pytest.fixture(params=[factory for _, factory in BACKENDS], ids=[name for name, _ in BACKENDS])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    """One empty store of each backend in turn; closed after the test."""
    made: Backend = request.param(tmp_path)
    try:
        yield made
    finally:
        made.close()


@pytest.fixture
def store(backend: Backend) -> Store:
    return backend.store
