"""The ``RunStore`` role beyond runs and logging: search (``where=``, ``order_by``, ``best_run``),
metric summaries and the lifecycle of data (delete, archive). Every backend, no SQL."""

from __future__ import annotations

import math

import pytest

from chachaml.errors import ExperimentNotFoundError, QueryError, RunNotFoundError
from chachaml.store.base import RunFilter, Store

from .test_store_contract import T0, ids, new_run


def _sweep(store: Store) -> dict[str, str]:
    a = new_run(store, experiment="sweep", name="a", start_time=T0)
    b = new_run(store, experiment="sweep", name="b", start_time=T0 + 1)
    c = new_run(store, experiment="other", name="c", start_time=T0 + 2)
    store.log_batch(
        a.id, params={"lr": "0.1", "opt": '"adam"'}, metrics=[("acc", 0.5, 0, T0), ("acc", 0.9, 1, T0)]
    )
    store.log_batch(
        b.id, params={"lr": "0.01", "opt": '"sgd"'}, metrics=[("acc", 0.7, 0, T0), ("acc", 0.6, 1, T0)]
    )
    store.log_batch(c.id, params={"lr": "1"}, metrics=[("loss", float("nan"), 0, T0)], tags={"k": "v"})
    store.end_run(a.id, "completed", T0 + 10)
    return {"a": a.id, "b": b.id, "c": c.id}


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        ("params.lr < 0.05", ["b"]),
        ("params.opt = 'adam'", ["a"]),
        ("metrics.acc > 0.65", ["a"]),  # the latest value: a ends at 0.9, b at 0.6
        ("metrics.acc.max > 0.8", ["a"]),
        ("metrics.acc.min <= 0.5 or tags.k = 'v'", ["c", "a"]),
        ("status = 'completed'", ["a"]),
        ("experiment in ('other')", ["c"]),
        ("name like 'A%'", ["a"]),
        ("params.opt is null", ["c"]),
        ("not params.lr = 0.1", ["c", "b"]),
    ],
)
def test_find_runs_where(store: Store, where: str, expected: list[str]) -> None:
    names = _sweep(store)
    assert ids(store.find_runs(RunFilter(where=where))) == [names[n] for n in expected]


def test_find_runs_order_by_puts_missing_values_last(store: Store) -> None:
    names = _sweep(store)
    got = ids(store.find_runs(RunFilter(order_by="metrics.acc desc")))
    assert got == [names["a"], names["b"], names["c"]]
    got = ids(store.find_runs(RunFilter(order_by="params.lr asc", limit=2)))
    assert got == [names["b"], names["a"]]


def test_a_malformed_query_is_a_query_error_with_its_position(store: Store) -> None:
    with pytest.raises(QueryError) as info:
        store.find_runs(RunFilter(where="params.lr <"))
    assert info.value.position == len("params.lr <")


def test_best_run_max_and_min_with_the_step_and_ties_to_the_earliest(store: Store) -> None:
    names = _sweep(store)
    best = store.best_run(RunFilter(), "acc", "max")
    assert best is not None and (best.id, best.best_value, best.best_step) == (names["a"], 0.9, 1)
    worst = store.best_run(RunFilter(experiment="sweep"), "acc", "min")
    assert worst is not None and (worst.id, worst.best_value, worst.best_step) == (names["a"], 0.5, 0)
    assert store.best_run(RunFilter(where="params.lr < 0.05"), "acc", "max").id == names["b"]  # type: ignore[union-attr]
    assert store.best_run(RunFilter(), "loss", "max") is None  # NaN is never best
    assert store.best_run(RunFilter(), "nothing", "min") is None


def test_metric_history_after_a_step(store: Store) -> None:
    run = new_run(store)
    store.log_batch(run.id, metrics=[("m", float(i), i, T0) for i in range(5)])
    assert [m.step for m in store.metric_history(run.id, "m", after_step=2)] == [3, 4]
    assert store.metric_history(run.id, "m", after_step=4) == []


def test_metric_summaries_cover_every_step(store: Store) -> None:
    run = new_run(store)
    store.log_batch(run.id, metrics=[("acc", 0.2, 0, T0), ("acc", 0.9, 1, T0), ("acc", 0.5, 2, T0)])
    store.log_metric(run.id, "loss", float("nan"), None, T0)
    summary = store.metric_summaries(run.id)
    assert summary["acc"] == {"last": 0.5, "min": 0.2, "max": 0.9, "count": 3, "last_step": 2}
    assert math.isnan(summary["loss"]["last"]) and summary["loss"]["count"] == 1
    assert (summary["loss"]["min"], summary["loss"]["max"]) == (None, None)
    assert store.metric_summaries(new_run(store).id) == {}


def test_delete_run_removes_it_and_orphans_its_children(store: Store) -> None:
    parent = new_run(store)
    child = new_run(store, parent_id=parent.id, start_time=T0 + 1)
    store.log_batch(parent.id, params={"a": "1"}, metrics=[("m", 1.0, None, T0)], tags={"t": "x"})
    store.delete_run(parent.id)
    with pytest.raises(RunNotFoundError):
        store.get_run(parent.id)
    assert store.metric_history(parent.id, "m") == []
    assert store.get_run(child.id).parent_id is None
    with pytest.raises(RunNotFoundError):
        store.delete_run(parent.id)


def test_delete_experiment_deletes_its_runs_and_frees_the_name(store: Store) -> None:
    names = _sweep(store)
    assert store.delete_experiment("sweep") == 2
    assert ids(store.find_runs(RunFilter())) == [names["c"]]
    assert [e.name for e in store.experiments()] == ["other"]
    with pytest.raises(ExperimentNotFoundError, match="sweep"):
        store.delete_experiment("sweep")
    store.create_experiment("sweep", None, None, T0)
    assert store.delete_experiment("sweep") == 0


def test_archive_runs_hides_finished_runs_and_unarchive_brings_them_back(store: Store) -> None:
    names = _sweep(store)
    store.end_run(names["b"], "failed", T0 + 20)
    assert store.archive_runs(True, experiment="sweep", started_before=T0 + 1) == 1  # a only
    assert ids(store.find_runs(RunFilter())) == [names["c"], names["b"]]
    assert len(store.find_runs(RunFilter(include_archived=True))) == 3
    assert store.get_run(names["a"]).archived is True
    assert store.archive_runs(True) == 1  # b; c is running and never archived
    assert store.archive_runs(False) == 2
    assert store.get_run(names["a"]).archived is False
