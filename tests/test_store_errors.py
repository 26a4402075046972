"""Driver errors inside a write transaction surface as StoreError, chained, and write nothing."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

import chachaml
from chachaml.errors import StoreError
from chachaml.store.sqlite import SqliteStore


def test_a_constraint_failure_inside_a_transaction_is_a_store_error_chained_from_sqlite(
    tmp_path: Path,
) -> None:
    store = SqliteStore(str(tmp_path / "s.db"))
    with chachaml.with_store(store):
        run = chachaml.start_run("r")
        chachaml.log_metric("loss", 0.5)
        # 'paused' is not a status: the CHECK constraint of the runs table refuses it.
        with pytest.raises(StoreError, match="CHECK constraint") as info:
            store.end_run(run.id, "paused", 0)
        assert isinstance(info.value.__cause__, sqlite3.IntegrityError)
        assert store.get_run(run.id).status == "running"  # rolled back, nothing changed
        chachaml.log_metric("loss", 0.4)  # the store is still usable
        chachaml.end_run()
    reread = SqliteStore(str(tmp_path / "s.db"))
    assert [m.value for m in reread.metric_history(run.id, "loss")] == [0.5, 0.4]
    assert reread.get_run(run.id).status == "completed"
