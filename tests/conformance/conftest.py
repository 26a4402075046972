"""The backends the conformance suite runs against, as factories.

Every test in ``test_store_contract.py`` takes the ``backend`` fixture and runs once per entry
of ``BACKENDS``. A factory receives the test's ``tmp_path`` and returns a ``Backend``: an EMPTY
store (no runs, no experiments) plus, for file-based stores, the path that must not appear
before the first write.

Adding a backend is adding one factory here, nothing else:

* PostgreSQL: each test gets a new database on the test server (``tests/_postgres.py``:
  ``CHACHAML_TEST_POSTGRES_URL``, default the local server ``.ci/run`` starts), dropped in
  ``Backend.close``; artifacts in ``tmp_path``. Unreachable server: the test fails on CI and
  is skipped elsewhere.
* An HTTP tracking server: start it on a store in ``tmp_path`` and return a client store
  pointing at it, the same way (``CHACHAML_TEST_SERVER=1`` would be the switch).
"""

from __future__ import annotations

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


def _postgres(tmp_path: Path) -> Backend:
    database = fresh_database()
    url = database.__enter__()
    try:
        store = open_store(url, artifacts=str(tmp_path / "artifacts"))
    except BaseException:
        database.__exit__(None, None, None)
        raise
    return Backend("postgres", store, cleanups=[lambda: database.__exit__(None, None, None)])


BACKENDS: list[tuple[str, Callable[[Path], Backend]]] = [
    ("sqlite-file", _sqlite_file),
    ("sqlite-memory", _sqlite_memory),
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
