"""Several real processes (and threads) on one SQLite file at the same moment: nothing is lost.

Processes are started with the spawn method and wait at a barrier, so they open, migrate and
write the database at the same instant rather than one after the other (SPEC section 5).
"""

from __future__ import annotations

import multiprocessing
import sqlite3
import threading
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

import _workers_processes as workers
import chachaml
from chachaml.context import bind, snapshot
from chachaml.store._sqlite_schema import LATEST

pytestmark = pytest.mark.slow

JOIN_TIMEOUT_S = 180.0


def _run_all(target: Any, args_for: list[tuple[Any, ...]], errors: Path) -> None:
    """Start one spawn process per argument tuple, wait for all, fail with their tracebacks."""
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=target, args=args) for args in args_for]
    for p in procs:
        p.start()
    try:
        for p in procs:
            p.join(JOIN_TIMEOUT_S)
    finally:
        for p in procs:
            if p.is_alive():
                p.kill()
                p.join(10)
    reports = "\n".join(f.read_text() for f in sorted(errors.glob("*.txt")))
    assert [p.exitcode for p in procs] == [0] * len(procs), reports


def _barrier(n: int) -> Any:
    return multiprocessing.get_context("spawn").Barrier(n)


def test_sixteen_processes_creating_the_same_fresh_database_at_once_all_succeed(tmp_path: Path) -> None:
    db = tmp_path / "race.db"
    errors = tmp_path / "errors"
    errors.mkdir()
    barrier = _barrier(16)

    _run_all(
        workers.create_and_log_one_run,
        [(str(db), i, barrier, str(errors)) for i in range(16)],
        errors,
    )

    conn = sqlite3.connect(db)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert conn.execute("PRAGMA user_version").fetchone()[0] == LATEST
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        conn.close()
    with chachaml.with_store(db):
        runs = chachaml.runs(experiment="race")
        assert len(runs) == 16
        assert sorted(r.params["worker"] for r in runs) == list(range(16))
        assert {r.status for r in runs} == {"completed"}
        assert sorted(r.metrics["value"] for r in runs) == [float(i) for i in range(16)]


def test_four_processes_writing_their_own_runs_at_once_lose_nothing(tmp_path: Path) -> None:
    db = tmp_path / "writers.db"
    errors = tmp_path / "errors"
    errors.mkdir()
    n = 150
    barrier = _barrier(4)

    _run_all(workers.log_to_own_run, [(str(db), i, n, barrier, str(errors)) for i in range(4)], errors)

    with chachaml.with_store(db):
        runs = chachaml.runs(experiment="writers")
        assert sorted(r.params["worker"] for r in runs) == [0, 1, 2, 3]
        for run in runs:
            assert run.status == "completed"
            loss = chachaml.metric_history(run.id, "loss")
            assert [m.step for m in loss] == list(range(n))
            assert [m.value for m in loss] == [float(i) for i in range(n)]
            index = chachaml.metric_history(run.id, "index")
            assert [m.step for m in index] == list(range(n))
            assert {m.value for m in index} == {float(run.params["worker"])}
            assert run.metrics == {"loss": float(n - 1), "index": float(run.params["worker"])}


def test_four_processes_logging_the_same_key_of_one_run_get_unique_consecutive_steps(
    tmp_path: Path,
) -> None:
    db = tmp_path / "shared.db"
    errors = tmp_path / "errors"
    errors.mkdir()
    n = 150
    barrier = _barrier(4)

    with chachaml.with_store(db), chachaml.with_run("shared") as run:
        snap = snapshot()
        _run_all(workers.log_to_shared_run, [(snap, i, n, barrier, str(errors)) for i in range(4)], errors)

        shared = chachaml.metric_history(run.id, "shared")
        echo = chachaml.metric_history(run.id, "echo")
        assert chachaml.get_run(run.id).status == "running"

    assert sorted(m.step for m in shared) == list(range(4 * n))
    by_worker = Counter(int(m.value) // 1_000_000 for m in shared)
    assert by_worker == {i: n for i in range(4)}
    assert {int(m.value) for m in shared} == {i * 1_000_000 + j for i in range(4) for j in range(n)}
    # Within one worker, its own points keep their order.
    for i in range(4):
        mine = [int(m.value) % 1_000_000 for m in shared if int(m.value) // 1_000_000 == i]
        assert mine == list(range(n))
    assert sorted(m.step for m in echo) == list(range(4 * (n // 2)))


def test_four_processes_batching_the_same_key_of_one_run_get_unique_consecutive_steps(
    tmp_path: Path,
) -> None:
    db = tmp_path / "batched.db"
    errors = tmp_path / "errors"
    errors.mkdir()
    n = 100
    barrier = _barrier(4)

    with chachaml.with_store(db), chachaml.with_run("shared") as run:
        snap = snapshot()
        _run_all(
            workers.log_to_shared_run_batched, [(snap, i, n, barrier, str(errors)) for i in range(4)], errors
        )
        shared = chachaml.metric_history(run.id, "shared")

    assert sorted(m.step for m in shared) == list(range(4 * n))
    for i in range(4):
        mine = [int(m.value) % 1_000_000 for m in shared if int(m.value) // 1_000_000 == i]
        assert mine == list(range(n))


def test_eight_threads_logging_to_one_run_through_bind_lose_nothing(tmp_path: Path) -> None:
    n = 200
    start = threading.Barrier(8)
    failures: list[BaseException] = []

    def work(k: int) -> None:
        try:
            start.wait(60)
            for i in range(n):
                chachaml.log_metric("shared", float(k * 1_000_000 + i))
                chachaml.log_metric(f"thread{k}", float(i))
        except BaseException as exc:
            failures.append(exc)

    with chachaml.with_store(tmp_path / "threads.db"), chachaml.with_run("threads") as run:
        threads = [threading.Thread(target=bind(work), args=(k,)) for k in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(JOIN_TIMEOUT_S)
        assert not any(t.is_alive() for t in threads)
        assert failures == []

        shared = chachaml.metric_history(run.id, "shared")
        assert sorted(m.step for m in shared) == list(range(8 * n))
        assert Counter(int(m.value) // 1_000_000 for m in shared) == {k: n for k in range(8)}
        for k in range(8):
            own = chachaml.metric_history(run.id, f"thread{k}")
            assert [(m.step, m.value) for m in own] == [(i, float(i)) for i in range(n)]
        (last,) = [m.value for m in shared if m.step == 8 * n - 1]
        assert chachaml.get_run(run.id).metrics["shared"] == last
