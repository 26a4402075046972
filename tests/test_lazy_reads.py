"""Issue 12's read side: runs from ``runs()`` read their fields lazily, in bulk; ``metric_history``
builds its points column by column. Both must read exactly what the eager code read.

docs/adr/0024-lazy-reads-and-first-use.md.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import pickle
import threading
from pathlib import Path

import pytest

import chachaml
import chachaml.context
from chachaml.entities import LAZY_RUN_FIELDS, Metric, Run
from chachaml.store.base import RunFilter
from chachaml.store.sqlite import SqliteStore


def _fill(path: Path, n: int = 12) -> list[str]:
    chachaml.use_store(str(path))
    ids = []
    for i in range(n):
        with chachaml.with_run(f"r{i}", tags={"team": "ab"[i % 2]}) as run:
            chachaml.log_params({"lr": 0.1 * (i + 1), "opt": ["sgd", "adam"][i % 2], "layers": [i, i]})
            chachaml.log_metrics({"acc": i / n, "loss": math.nan if i == 3 else 1 - i / n})
            if i % 3 == 0:
                chachaml.log_dataset("mnist", role="test", n_rows=i + 1, features=["a", "b"])
            ids.append(run.id)
    return ids


def _unread(run: Run) -> set[str]:
    """The lazy fields whose slot is still unset."""
    missing = set()
    for name in LAZY_RUN_FIELDS:
        try:
            object.__getattribute__(run, name)
        except AttributeError:
            missing.add(name)
    return missing


def _traced(store: SqliteStore) -> list[str]:
    statements: list[str] = []
    assert store._conn is not None
    store._conn.set_trace_callback(statements.append)
    return statements


def test_a_listing_reads_no_field_table_until_a_field_is_read_then_each_table_once(tmp_path: Path) -> None:
    _fill(tmp_path / "runs.db")
    store = chachaml.current_store()
    assert isinstance(store, SqliteStore)
    store.find_runs(RunFilter(limit=1))  # open the connection
    statements = _traced(store)
    runs = chachaml.runs(where="params.lr > 0.25")
    assert len(runs) == 10
    listed = list(statements)
    fields = ("params", "metric_summary", "tags", "datasets")
    assert not any(f"FROM {t} WHERE run_id IN" in s for s in listed for t in fields), listed
    assert not any("FROM env_packages" in s for s in listed)
    assert all(_unread(r) == set(LAZY_RUN_FIELDS) for r in runs)
    assert [r.name for r in runs] == [f"r{i}" for i in range(11, 1, -1)]  # attributes need no read
    statements.clear()
    assert runs[4].params["opt"] in ("sgd", "adam")  # one field of one run ...
    assert all(_unread(r) == set() for r in runs)  # ... reads every field of the whole list
    for table in fields:
        assert sum(f"FROM {table} WHERE run_id IN" in s for s in statements) == 1, (table, statements)
    statements.clear()
    assert [r.metrics for r in runs] and [r.env for r in runs]
    assert statements == []  # read once


def test_lazily_read_runs_equal_the_eagerly_read_ones_field_by_field(tmp_path: Path) -> None:
    ids = _fill(tmp_path / "runs.db")
    listed = chachaml.runs()
    eager = [chachaml.get_run(i) for i in reversed(ids)]
    assert [r.id for r in listed] == [r.id for r in eager]
    for lazy, whole in zip(listed, eager, strict=True):
        for name in Run.__dataclass_fields__:
            if name == "_lazy":
                continue
            a, b = getattr(lazy, name), getattr(whole, name)
            if name == "metrics":  # NaN != NaN: compare the NaN positions and the rest
                assert a.keys() == b.keys()
                assert all((math.isnan(a[k]) and math.isnan(b[k])) or a[k] == b[k] for k in a)
            else:
                assert a == b, name
    assert listed[8].metrics["loss"] != listed[8].metrics["loss"]  # r3's NaN survived
    assert listed[2].name == "r9" and listed[2].datasets[0].features == ["a", "b"]
    assert listed[0].env["packages"]["pytest"]


def test_a_lazy_run_compares_reprs_copies_pickles_and_replaces_like_an_eager_one(tmp_path: Path) -> None:
    ids = _fill(tmp_path / "runs.db", 3)
    whole = chachaml.get_run(ids[1])
    for probe in (
        lambda r: r == whole,
        lambda r: repr(r) == repr(whole),
        lambda r: r.to_dict() == whole.to_dict(),
        lambda r: pickle.loads(pickle.dumps(r)) == whole,
        lambda r: copy.copy(r) == whole,
        lambda r: copy.deepcopy(r) == whole,
        lambda r: dataclasses.replace(r, best_value=1.0) == dataclasses.replace(whole, best_value=1.0),
        lambda r: "<table>" in r._repr_html_(),
        lambda r: r.to_record() == whole.to_record(),
    ):
        (run,) = chachaml.runs(name="r1")  # a fresh, unread run each time
        assert _unread(run) == set(LAZY_RUN_FIELDS)
        assert probe(run)
    (run,) = chachaml.runs(name="r1")
    with pytest.raises(dataclasses.FrozenInstanceError):
        run.params = {}  # type: ignore[misc]
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        run.nope  # type: ignore[attr-defined]  # noqa: B018
    clone = pickle.loads(pickle.dumps(run))
    assert clone._lazy is None and run._lazy is None  # read, and the reader never travels


def test_runs_not_read_before_their_store_closes_are_read_at_close(tmp_path: Path) -> None:
    _fill(tmp_path / "runs.db", 4)
    with chachaml.with_store(str(tmp_path / "runs.db")):
        runs = chachaml.runs()
        assert _unread(runs[0]) == set(LAZY_RUN_FIELDS)
    assert [r.params["lr"] for r in runs] == pytest.approx([0.4, 0.3, 0.2, 0.1])
    store = SqliteStore(None)  # in memory
    try:
        with chachaml.with_store(store):
            with chachaml.with_run("mem"):
                chachaml.log_param("k", "v")
            listed = chachaml.runs()
    finally:
        store.close()
    assert listed[0].params == {"k": "v"}  # an in-memory store: read before it closed


def test_threads_reading_one_lazy_list_at_once_all_see_the_fields(tmp_path: Path) -> None:
    _fill(tmp_path / "runs.db", 8)
    runs = chachaml.runs()
    barrier = threading.Barrier(4)
    seen: list[list[float]] = []

    def read() -> None:
        barrier.wait()
        seen.append([r.params["lr"] for r in runs])

    threads = [threading.Thread(target=read) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert len(seen) == 4 and all(s == seen[0] for s in seen)
    assert seen[0] == pytest.approx([0.1 * (i + 1) for i in range(7, -1, -1)])


def test_metric_history_points_are_ordinary_frozen_metrics_with_nan_and_infinities(tmp_path: Path) -> None:
    chachaml.use_store(str(tmp_path / "runs.db"))
    values = [0.5, math.nan, math.inf, -math.inf, -0.0, 1e308, 3]
    with chachaml.with_run() as run:
        for step, v in enumerate(values):
            chachaml.log_metric("x", v, step=step * 2)
    got = chachaml.metric_history(run.id, "x")
    assert [m.step for m in got] == [0, 2, 4, 6, 8, 10, 12]
    assert math.isnan(got[1].value)
    assert [m.value for m in got if m.step != 2] == [0.5, math.inf, -math.inf, -0.0, 1e308, 3]
    assert all(type(m) is Metric and m.key == "x" and m.timestamp > 0 for m in got)
    assert got[0] == Metric("x", 0.5, 0, got[0].timestamp) and repr(got[0]) == "Metric('x', 0.5, step=0)"
    assert pickle.loads(pickle.dumps(got[2])) == got[2]
    with pytest.raises(dataclasses.FrozenInstanceError):
        got[0].value = 1.0  # type: ignore[misc]
    assert [m.step for m in chachaml.context.client().metric_history(run.id, "x", after_step=6)] == [
        8,
        10,
        12,
    ]
    assert Metric._from_rows("x", []) == []
