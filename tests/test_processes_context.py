"""Context across processes: ``snapshot()`` in the parent, ``attach()`` in spawned pool workers.

Workers live in ``tests/_workers_context.py`` because spawned processes import them by name.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pytest

import _workers_context as workers
import chachaml
from chachaml import context
from chachaml.errors import InvalidValueError
from chachaml.store.base import Store

pytestmark = pytest.mark.slow


def in_spawn_pool(fn: Callable[..., Any], calls: Iterable[tuple[Any, ...]], processes: int = 2) -> list[Any]:
    pool = multiprocessing.get_context("spawn").Pool(processes)
    try:
        results = pool.starmap(fn, list(calls))
    finally:
        pool.close()
        pool.join()
    return results


def read(db: Path, run_id: str) -> chachaml.Run:
    with chachaml.with_store(db):
        return chachaml.get_run(run_id)


def points(db: Path, run_id: str, key: str) -> list[tuple[int, float]]:
    with chachaml.with_store(db):
        return [(m.step, m.value) for m in chachaml.metric_history(run_id, key)]


def test_snapshot_is_picklable_and_names_the_store_file_and_run(tmp_path: Path) -> None:
    import pickle

    chachaml.use_store(tmp_path / "p.db")
    run = chachaml.start_run("parent")
    snap = pickle.loads(pickle.dumps(context.snapshot()))
    assert snap.run_id == run.id
    assert str(tmp_path / "p.db") in snap.store_uri


def test_points_logged_by_spawned_workers_under_attach_land_on_the_parents_run(tmp_path: Path) -> None:
    db = tmp_path / "p.db"
    chachaml.use_store(db)
    parent = chachaml.start_run("parent")
    snap = context.snapshot()

    results = in_spawn_pool(workers.log_points, [(snap, i, 25) for i in range(4)])

    assert all(seen == parent.id for _, seen in results)
    assert all(pid != os.getpid() for pid, _ in results)
    for i in range(4):
        assert points(db, parent.id, f"worker{i}") == [(s, float(s)) for s in range(25)]
    shared = points(db, parent.id, "shared")
    assert sorted(v for _, v in shared) == [0.0, 1.0, 2.0, 3.0]
    assert sorted(s for s, _ in shared) == [0, 1, 2, 3]  # next-step chosen safely across processes


def test_attach_in_workers_does_not_end_the_parents_run(tmp_path: Path) -> None:
    db = tmp_path / "p.db"
    chachaml.use_store(db)
    parent = chachaml.start_run("parent")

    in_spawn_pool(workers.log_points, [(context.snapshot(), i, 3) for i in range(2)])

    assert read(db, parent.id).status == "running"
    current = chachaml.current_run()
    assert current is not None and current.id == parent.id
    chachaml.log_metric("parent_after", 1.0)  # the parent can still log
    chachaml.end_run()
    assert read(db, parent.id).status == "completed"


def test_with_run_in_a_worker_under_attach_is_a_completed_child_of_the_parents_run(tmp_path: Path) -> None:
    db = tmp_path / "p.db"
    chachaml.use_store(db)
    parent = chachaml.start_run("parent")

    ids = in_spawn_pool(workers.child_with_run, [(context.snapshot(), i) for i in range(3)])

    assert len(set(ids)) == 3
    for i, run_id in enumerate(ids):
        child = read(db, run_id)
        assert (child.name, child.parent_id, child.status) == (f"trial-{i}", parent.id, "completed")
        assert (child.params, child.metrics) == ({"index": i}, {"score": float(i)})
    assert read(db, parent.id).metrics == {}


def test_start_run_left_open_in_a_worker_is_ended_when_attach_exits(tmp_path: Path) -> None:
    db = tmp_path / "p.db"
    chachaml.use_store(db)
    parent = chachaml.start_run("parent")

    ids = in_spawn_pool(workers.child_left_open, [(context.snapshot(), i) for i in range(2)])

    for i, run_id in enumerate(ids):
        child = read(db, run_id)
        assert (child.parent_id, child.status, child.metrics) == (parent.id, "completed", {"score": float(i)})
    assert read(db, parent.id).status == "running"


def test_attached_run_is_current_only_inside_the_attach_block(tmp_path: Path) -> None:
    chachaml.use_store(tmp_path / "p.db")
    parent = chachaml.start_run("parent")

    ((inside, after),) = in_spawn_pool(workers.current_after_attach, [(context.snapshot(),)], processes=1)

    assert (inside, after) == (parent.id, None)


def test_snapshot_under_the_pytest_fixture_reaches_workers(chachaml_store: Store, tmp_path: Path) -> None:
    with chachaml.with_run("in-fixture") as run:
        results = in_spawn_pool(workers.log_points, [(context.snapshot(), 0, 5)], processes=1)
    assert results[0][1] == run.id
    assert chachaml.get_run(run.id).metrics == {"worker0": 4.0, "shared": 0.0}
    assert chachaml.get_run(run.id).status == "completed"


def test_snapshot_of_a_memory_store_raises_invalid_value_error(tmp_path: Path) -> None:
    chachaml.use_store(":memory:")
    chachaml.start_run("in-memory")
    with pytest.raises(InvalidValueError, match=r":memory:|in-memory"):
        context.snapshot()
    with chachaml.with_store(":memory:"), pytest.raises(InvalidValueError):
        context.snapshot()
