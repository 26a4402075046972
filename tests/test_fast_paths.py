"""The shortcuts taken for speed (benchmarks/README.md) give the same results as the long way."""

from __future__ import annotations

import json
import math
import os
import random
import sqlite3
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

import chachaml
from chachaml._values import decode_param, encode_param
from chachaml.batching import _Batch
from chachaml.errors import ConflictError, RunNotFoundError, RunStateError
from chachaml.store._sqlite_base import _FOLD
from chachaml.store.base import NewRun, Owner
from chachaml.store.sqlite import SqliteStore


def _summaries(path: Path) -> list[tuple[object, ...]]:
    with sqlite3.connect(path) as conn:
        return sorted(conn.execute("SELECT * FROM metric_summary").fetchall())


def _summaries_of_one_sql_fold(path: Path) -> list[tuple[object, ...]]:
    """What the window-function fold makes of every metric row at once (rolled back after)."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("DELETE FROM metric_summary")
        conn.execute(_FOLD, (0, conn.execute("SELECT max(rowid) FROM metrics").fetchone()[0]))
        rows = sorted(conn.execute("SELECT * FROM metric_summary").fetchall())
        conn.execute("ROLLBACK")
        return rows
    finally:
        conn.close()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_folding_in_small_steps_gives_the_summaries_of_one_big_sql_fold(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    path = tmp_path / "fold.db"

    def value(key: str) -> float:
        if rng.random() < 0.05:
            return float("nan")  # ignored by min and max, counted, and can be the latest
        if key == "c" and rng.random() < 0.05:
            return rng.choice([float("inf"), float("-inf")])
        return rng.uniform(-10, 10)

    with chachaml.with_store(path) as store:
        ids = [chachaml.start_run(f"r{i}").id for i in range(3)]
        until_read = 3
        for _ in range(2000):
            key = rng.choice("abcxy")
            if key in "xy":  # explicit steps only, in a small range: many ties on the highest step
                step: int | None = rng.randrange(0, 4)
            else:  # mostly the next step, sometimes a lower or equal one
                step = rng.choice([None, None, None, rng.randrange(0, 40)])
            # Straight to the store: log_metric(run=...) would read (and so fold) to resolve the id.
            store.log_metric(rng.choice(ids), key, value(key), step, 1)
            until_read -= 1
            if until_read == 0:  # mostly short tails (folded in Python), sometimes long (in SQL)
                chachaml.get_run(ids[0])
                until_read = rng.choice([1, 3, 50, 150, 300, 450, 600])
        chachaml.get_run(ids[0])
        for _ in ids:
            chachaml.end_run()
    assert _summaries(path) == _summaries_of_one_sql_fold(path)
    assert sum(r[-1] for r in _summaries(path)) == 2000


def test_a_run_ended_by_another_process_refuses_log_metric_and_keeps_its_points(tmp_path: Path) -> None:
    path = tmp_path / "guard.db"
    with chachaml.with_store(path):
        run = chachaml.start_run("r")
        chachaml.log_metric("loss", 1.0, timestamp=1_000)
        with sqlite3.connect(path) as other:  # not through this store: only the SQL guard can see it
            other.execute("UPDATE runs SET status = 'completed', end_time = 2000 WHERE id = ?", (run.id,))
        # The journal (docs/adr/0023) accepts the call; the drain keeps what was logged before the
        # run's end and refuses the rest with a warning, and the next call raises. Nothing logged
        # after the end reaches the finished run.
        chachaml.log_metric("loss", 2.0, timestamp=3_000)
        with pytest.warns(RuntimeWarning, match=r"1 metric point\(s\) .* not written: the run is completed"):
            chachaml.flush()
        with pytest.raises(RunStateError, match="another process ended it"):
            chachaml.log_metric("loss", 2.0)
        with pytest.raises(RunStateError, match="completed"):
            chachaml.log_metric("loss", 2.0)
        with pytest.raises(RunStateError, match="completed"):
            chachaml.log_metrics({"a": 1.0, "b": 2.0})
        assert [m.value for m in chachaml.metric_history(run.id, "loss")] == [1.0]
        with sqlite3.connect(path) as other:
            other.execute("DELETE FROM runs WHERE id = ?", (run.id,))
        with pytest.raises(RunNotFoundError):
            chachaml.log_metric("loss", 3.0)


def test_create_run_with_a_taken_id_raises_conflict_and_writes_nothing(tmp_path: Path) -> None:
    store = SqliteStore(str(tmp_path / "ids.db"))
    owner = Owner(host="h", pid=os.getpid(), proc_start="")
    new = NewRun(id="a" * 32, experiment="e1", start_time=1, owner=owner)
    store.create_run(new)
    with pytest.raises(ConflictError, match="already exists"):
        store.create_run(NewRun(id="a" * 32, experiment="e2", start_time=2, owner=owner))
    assert [e.name for e in store.experiments()] == ["e1"]
    store.close()


@pytest.mark.parametrize("n_before", [1, 100])  # a short batch resolves steps in SQL, a long one in Python
def test_implicit_steps_in_one_batch_continue_after_the_highest_step_logged_before(
    tmp_path: Path, n_before: int
) -> None:
    with chachaml.with_store(tmp_path / "steps.db"):
        run = chachaml.start_run("r")
        chachaml.log_metric("x", 0.0, step=3)
        with chachaml.batched():
            for i in range(n_before):
                chachaml.log_metric("filler", float(i))
            for step in [None, 10, None, 2, None]:
                chachaml.log_metric("x", 1.0, step)
        assert [m.step for m in chachaml.metric_history(run.id, "x")] == [2, 3, 4, 10, 11, 12]
        assert [m.step for m in chachaml.metric_history(run.id, "filler")] == list(range(n_before))
        chachaml.end_run()


def test_batched_writes_a_full_buffer_before_the_block_ends(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_Batch, "FLUSH_EVERY", 5)
    path = tmp_path / "flat.db"

    def stored() -> int:
        with sqlite3.connect(path) as conn:
            return int(conn.execute("SELECT count(*) FROM metrics WHERE key = 'loss'").fetchone()[0])

    with chachaml.with_store(path) as store:
        run = chachaml.start_run("r")
        with chachaml.batched():
            # store.flush() drains the journal (docs/adr/0023) into SQLite, not the batch buffer.
            for _ in range(4):
                chachaml.log_metric("loss", 1.0)
            store.flush()  # type: ignore[attr-defined]
            assert stored() == 0
            chachaml.log_metric("loss", 1.0)
            store.flush()  # type: ignore[attr-defined]
            assert stored() == 5
            chachaml.log_metric("loss", 1.0)
            store.flush()  # type: ignore[attr-defined]
            assert stored() == 5
        store.flush()  # type: ignore[attr-defined]
        assert stored() == 6
        assert [m.step for m in chachaml.metric_history(run.id, "loss")] == list(range(6))
        chachaml.end_run()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_writes_through_its_own_connection(tmp_path: Path) -> None:
    path = tmp_path / "fork.db"
    with chachaml.with_store(path) as store:
        run = chachaml.start_run("r")
        chachaml.log_metric("loss", 1.0)
        parent_conn = store._conn  # type: ignore[attr-defined]
        pid = os.fork()
        if pid == 0:  # the child: exit codes say what went wrong
            code = 1
            try:
                store.log_metric(run.id, "child", 2.0, None, 1)
                code = 0 if store._pid == os.getpid() and store._conn is not parent_conn else 2  # type: ignore[attr-defined]
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        chachaml.log_metric("loss", 3.0)
        assert store._conn is parent_conn  # type: ignore[attr-defined]
        assert [m.value for m in chachaml.metric_history(run.id, "child")] == [2.0]
        assert [m.value for m in chachaml.metric_history(run.id, "loss")] == [1.0, 3.0]
        chachaml.end_run()


def _json(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=True)


@given(st.one_of(st.text(), st.integers(), st.floats(allow_nan=False, allow_infinity=False), st.booleans()))
def test_encode_param_gives_the_text_of_json_dumps(value: object) -> None:
    assert encode_param(value) == _json(value)
    assert decode_param(encode_param(value)) == value


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_encode_param_keeps_non_finite_floats_as_text(value: float) -> None:
    assert encode_param(value) == _json(str(value))
    assert math.isnan(float(decode_param(encode_param(value)))) == math.isnan(value)


@pytest.mark.parametrize("text", ["1", " 1", "1 ", '"a b"', "[1, 2]", '{"b": {"a": null}}', "-0.0", "true"])
def test_decode_param_reads_what_json_loads_reads(text: str) -> None:
    assert decode_param(text) == json.loads(text)


@pytest.mark.parametrize("text", ["", "1 2", "{", "nul", "[1,]"])
def test_decode_param_raises_json_errors_for_text_that_is_not_json(text: str) -> None:
    with pytest.raises(json.JSONDecodeError):
        decode_param(text)
