"""pytest plugin (entry point ``pytest11``): the ``chachaml_store`` fixture.

::

    def test_training_logs_loss(chachaml_store):
        with chachaml.with_run("t"):
            chachaml.log_metric("loss", 0.1)
        assert chachaml.last_run().metrics["loss"] == 0.1

The fixture is a fresh SQLite store in ``tmp_path``, current for the test (a ``with_store``
block: runs started in the test and left open are ended, ``use_store`` inside the test rebinds
only the test's store), gone after it. No ``./chachaml.db`` is created. It is a sync fixture on
purpose: async fixtures cannot reset ContextVars on older pytest-asyncio (docs/testing.md).

``CHACHAML_TEST_STORE`` runs the same tests on another backend: ``:memory:`` gives each test a
fresh in-memory store; a PostgreSQL URL gives each test a new database on that server
(``chachaml.store.postgres.temporary_database``), dropped after it; any other target (a URI of
another backend) is opened as it is, and that backend must hand each test an empty store.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from chachaml.store.base import Store


@pytest.fixture
def chachaml_store(tmp_path: Path) -> Iterator[Store]:
    """A fresh chachaml store for one test, made current and discarded afterwards."""
    from chachaml.context import with_store

    target = os.environ.get("CHACHAML_TEST_STORE") or tmp_path / "chachaml.db"
    if str(target).startswith(("postgresql://", "postgres://")):
        from chachaml.store.postgres import temporary_database

        # A database of its own per test, dropped after it; artifacts in tmp_path.
        with (
            temporary_database(str(target)) as url,
            with_store(url, artifacts=tmp_path / "artifacts") as store,
        ):
            yield store
        return
    with with_store(target) as store:
        yield store
