"""The ``Store`` contract (``chachaml.store.base.Store``), checked on every backend.

Each test runs once per factory in ``conftest.BACKENDS`` (today: a SQLite file in ``tmp_path``
and ``":memory:"``). The first part drives the protocol directly, the way the fluent API does;
the second part goes through the public API with the backend made current, so a new backend
proves it serves ``chachaml.*`` unchanged. Nothing here may use SQL or backend internals: a
PostgreSQL or HTTP backend must be able to pass this file as it is (see ``conftest.py``).
"""

from __future__ import annotations

import math
import uuid
from typing import Any

import pytest

import chachaml
from chachaml import _lifecycle
from chachaml.entities import Dataset, Run
from chachaml.errors import (
    ConflictError,
    InvalidValueError,
    RunNotFoundError,
    RunStateError,
)
from chachaml.store.base import NewRun, RunFilter, Store

from .conftest import Backend

T0 = 1_700_000_000_000  # a fixed start time (ms): ordering tests never depend on the clock


def new_run(
    store: Store,
    *,
    run_id: str | None = None,
    experiment: str = "default",
    start_time: int = T0,
    name: str | None = None,
    parent_id: str | None = None,
    created_by: str | None = "alice",
    tags: dict[str, str] | None = None,
    env: dict[str, Any] | None = None,
) -> Run:
    return store.create_run(
        NewRun(
            id=run_id or uuid.uuid4().hex,
            experiment=experiment,
            start_time=start_time,
            owner=_lifecycle.owner(),  # this live process: never reaped as dead
            name=name,
            parent_id=parent_id,
            created_by=created_by,
            tags=tags or {},
            env=env or {},
        )
    )


def ids(runs: list[Run]) -> list[str]:
    return [r.id for r in runs]


def history(store: Store, run_id: str, key: str) -> list[tuple[int, float]]:
    return [(m.step, m.value) for m in store.metric_history(run_id, key)]


# -- run lifecycle ---------------------------------------------------------------------------------
def test_store_implements_the_protocol(store: Store) -> None:
    assert isinstance(store, Store)
    assert isinstance(store.uri, str) and store.uri
    assert store.closed is False


def test_created_run_is_running_and_reads_back_with_its_fields(store: Store) -> None:
    made = new_run(store, name="baseline", experiment="exp", tags={"team": "nlp"}, env={"python": "3.11.7"})
    got = store.get_run(made.id)
    assert got.status == "running"
    assert (got.id, got.name, got.experiment, got.start_time) == (made.id, "baseline", "exp", T0)
    assert got.end_time is None and got.parent_id is None and got.error is None
    assert got.created_by == "alice"
    assert got.tags == {"team": "nlp"}
    assert got.env == {"python": "3.11.7"}
    assert got.params == {} and got.metrics == {} and got.datasets == []
    assert made == got


def test_creating_a_run_creates_its_experiment(store: Store) -> None:
    new_run(store, experiment="fresh")
    assert [(e.name, e.run_count) for e in store.experiments()] == [("fresh", 1)]


def test_creating_a_run_with_an_existing_id_raises_conflict(store: Store) -> None:
    run = new_run(store, name="first")
    with pytest.raises(ConflictError, match=run.id):
        new_run(store, run_id=run.id, name="second")
    assert store.get_run(run.id).name == "first"
    assert len(store.find_runs(RunFilter())) == 1


def test_creating_a_run_under_an_unknown_parent_raises_run_not_found(store: Store) -> None:
    ghost = uuid.uuid4().hex
    with pytest.raises(RunNotFoundError, match=ghost):
        new_run(store, parent_id=ghost)
    assert store.find_runs(RunFilter()) == []


def test_child_run_records_its_parent(store: Store) -> None:
    parent = new_run(store)
    child = new_run(store, parent_id=parent.id, start_time=T0 + 1)
    assert store.get_run(child.id).parent_id == parent.id
    assert ids(store.find_runs(RunFilter(parent_id=parent.id))) == [child.id]


def test_end_run_records_status_end_time_and_error(store: Store) -> None:
    run = new_run(store)
    error = {"type": "ValueError", "message": "bad lr", "traceback": "Traceback ..."}
    assert store.end_run(run.id, "failed", T0 + 500, error) is True
    got = store.get_run(run.id)
    assert (got.status, got.end_time, got.duration) == ("failed", T0 + 500, 500)
    assert got.error == error


def test_end_run_on_a_finished_run_returns_false_and_changes_nothing(store: Store) -> None:
    run = new_run(store)
    assert store.end_run(run.id, "completed", T0 + 1) is True
    assert store.end_run(run.id, "failed", T0 + 2, {"type": "X", "message": "m", "traceback": ""}) is False
    got = store.get_run(run.id)
    assert (got.status, got.end_time, got.error) == ("completed", T0 + 1, None)


def test_resume_run_makes_a_finished_run_running_again_and_keeps_its_data(store: Store) -> None:
    run = new_run(store)
    store.log_batch(run.id, params={"lr": "0.1"}, metrics=[("loss", 0.5, None, T0)])
    store.end_run(run.id, "failed", T0 + 1, {"type": "E", "message": "m", "traceback": ""})
    resumed = store.resume_run(run.id, _lifecycle.owner(), T0 + 10)
    assert (resumed.status, resumed.end_time, resumed.error) == ("running", None, None)
    assert resumed.params == {"lr": 0.1} and resumed.metrics == {"loss": 0.5}
    store.log_metric(run.id, "loss", 0.4, None, T0 + 11)
    assert history(store, run.id, "loss") == [(0, 0.5), (1, 0.4)]


def test_resuming_an_unknown_run_raises_run_not_found(store: Store) -> None:
    ghost = uuid.uuid4().hex
    with pytest.raises(RunNotFoundError, match=ghost):
        store.resume_run(ghost, _lifecycle.owner(), T0)


def test_heartbeat_leaves_running_runs_running(store: Store) -> None:
    run = new_run(store)
    store.heartbeat([run.id], T0 + 60_000)
    store.heartbeat([], T0 + 60_000)
    assert store.get_run(run.id).status == "running"


# -- the write primitive ---------------------------------------------------------------------------
def test_log_batch_writes_params_metrics_and_tags_together(store: Store) -> None:
    run = new_run(store)
    store.log_batch(
        run.id,
        params={"lr": "0.1", "opt": '"adam"', "layers": "[64,32]"},
        metrics=[("loss", 0.5, None, T0), ("acc", 0.8, 3, T0)],
        tags={"stage": "dev"},
    )
    got = store.get_run(run.id)
    assert got.params == {"lr": 0.1, "opt": "adam", "layers": [64, 32]}
    assert got.metrics == {"loss": 0.5, "acc": 0.8}
    assert got.tags == {"stage": "dev"}
    assert history(store, run.id, "acc") == [(3, 0.8)]


def test_log_batch_with_a_conflicting_param_writes_nothing_of_the_batch(store: Store) -> None:
    run = new_run(store)
    store.log_batch(run.id, params={"lr": "0.1"})
    with pytest.raises(ConflictError) as info:
        store.log_batch(
            run.id,
            params={"new": "1", "lr": "0.2"},
            metrics=[("loss", 0.5, None, T0), ("loss", 0.4, None, T0)],
            tags={"stage": "dev"},
        )
    assert "lr" in str(info.value) and "0.1" in str(info.value) and "0.2" in str(info.value)
    got = store.get_run(run.id)
    assert got.params == {"lr": 0.1}
    assert got.metrics == {} and got.tags == {}
    assert store.metric_history(run.id, "loss") == []


def test_log_batch_relogging_the_same_param_value_is_a_no_op(store: Store) -> None:
    run = new_run(store)
    store.log_batch(run.id, params={"lr": "0.1", "opt": '"adam"'})
    store.log_batch(run.id, params={"lr": "0.1", "opt": '"adam"'})
    assert store.get_run(run.id).params == {"lr": 0.1, "opt": "adam"}


def test_log_batch_with_overwrite_replaces_a_param(store: Store) -> None:
    run = new_run(store)
    store.log_batch(run.id, params={"lr": "0.1"})
    store.log_batch(run.id, params={"lr": "0.2"}, overwrite=True)
    assert store.get_run(run.id).params == {"lr": 0.2}


@pytest.mark.parametrize(
    "points", [[("loss", 0.5, None, T0)], [("loss", 0.5, None, T0), ("acc", 0.9, 2, T0)]]
)
def test_log_batch_with_a_batch_id_is_applied_once_per_run(
    store: Store, points: list[tuple[str, float, int | None, int]]
) -> None:
    run, other = new_run(store), new_run(store)
    assert store.log_batch(run.id, params={"lr": "0.1"}, metrics=points, batch_id="b-1") is True
    assert store.log_batch(run.id, params={"lr": "0.1"}, metrics=points, batch_id="b-1") is False  # resent
    assert history(store, run.id, "loss") == [(0, 0.5)]
    assert store.log_batch(run.id, metrics=points, batch_id="b-2") is True  # another batch is applied
    assert history(store, run.id, "loss") == [(0, 0.5), (1, 0.5)]
    assert store.log_batch(other.id, metrics=points, batch_id="b-1") is True  # ids are per run
    assert history(store, other.id, "loss") == [(0, 0.5)]
    assert store.log_batch(run.id, metrics=points) is True  # no id: always applied


@pytest.mark.parametrize(
    "batch",
    [
        {"params": {"lr": "0.1"}},
        {"metrics": [("loss", 0.5, None, T0)]},  # one point: the fast path
        {"metrics": [("loss", 0.5, 7, T0)]},
        {"metrics": [("loss", 0.5, None, T0), ("acc", 0.9, None, T0)]},
        {"params": {"lr": "0.1"}, "tags": {"t": "v"}},
    ],
    ids=["params", "one-metric", "one-metric-explicit-step", "metrics", "params-and-tags"],
)
def test_params_and_metrics_are_refused_on_a_finished_run(store: Store, batch: dict[str, Any]) -> None:
    run = new_run(store)
    store.log_batch(run.id, params={"kept": "1"}, metrics=[("kept", 1.0, None, T0)])
    store.end_run(run.id, "completed", T0 + 1)
    with pytest.raises(RunStateError, match="completed"):
        store.log_batch(run.id, **batch)
    got = store.get_run(run.id)
    assert got.params == {"kept": 1} and got.metrics == {"kept": 1.0} and got.tags == {}
    assert store.metric_history(run.id, "loss") == []


def test_single_metric_fast_path_is_refused_on_a_finished_run(store: Store) -> None:
    run = new_run(store)
    store.end_run(run.id, "killed", T0 + 1)
    with pytest.raises(RunStateError, match="killed"):
        store.log_metric(run.id, "loss", 0.5, None, T0)
    assert store.metric_history(run.id, "loss") == []


def test_a_dataset_is_refused_on_a_finished_run(store: Store) -> None:
    run = new_run(store)
    store.end_run(run.id, "completed", T0 + 1)
    with pytest.raises(RunStateError):
        store.log_dataset(run.id, Dataset("mnist", created=T0))
    assert store.get_run(run.id).datasets == []


def test_tags_and_notes_are_accepted_on_a_finished_run(store: Store) -> None:
    run = new_run(store, tags={"old": "x"})
    store.end_run(run.id, "completed", T0 + 1)
    store.log_batch(run.id, tags={"reviewed": "yes", "old": "y"})
    store.delete_tag(run.id, "old")
    store.set_note(run.id, "# looks *good*")
    got = store.get_run(run.id)
    assert got.tags == {"reviewed": "yes"}
    assert got.note == "# looks *good*"
    assert got.status == "completed"


def test_deleting_a_missing_tag_is_not_an_error(store: Store) -> None:
    run = new_run(store)
    store.delete_tag(run.id, "never-set")
    assert store.get_run(run.id).tags == {}


@pytest.mark.parametrize(
    "write",
    [
        lambda s, r: s.log_batch(r, params={"a": "1"}),
        lambda s, r: s.log_batch(r, metrics=[("m", 1.0, None, T0), ("n", 1.0, None, T0)]),
        lambda s, r: s.log_batch(r, tags={"a": "1"}),
        lambda s, r: s.log_metric(r, "m", 1.0, None, T0),
        lambda s, r: s.delete_tag(r, "a"),
        lambda s, r: s.set_note(r, "note"),
        lambda s, r: s.log_dataset(r, Dataset("d", created=T0)),
    ],
    ids=["params", "metrics", "tags", "metric", "delete_tag", "set_note", "dataset"],
)
def test_writes_to_an_unknown_run_raise_run_not_found(store: Store, write: Any) -> None:
    new_run(store)  # the database exists; only the run is missing
    ghost = uuid.uuid4().hex
    with pytest.raises(RunNotFoundError, match=ghost[:8]):
        write(store, ghost)


# -- steps, history, latest values -----------------------------------------------------------------
def test_implicit_steps_count_from_zero_per_key_and_per_run(store: Store) -> None:
    a, b = new_run(store), new_run(store, start_time=T0 + 1)
    for v in (0.9, 0.8, 0.7):
        store.log_metric(a.id, "loss", v, None, T0)
    store.log_metric(a.id, "acc", 0.1, None, T0)
    store.log_metric(b.id, "loss", 5.0, None, T0)
    assert history(store, a.id, "loss") == [(0, 0.9), (1, 0.8), (2, 0.7)]
    assert history(store, a.id, "acc") == [(0, 0.1)]
    assert history(store, b.id, "loss") == [(0, 5.0)]


def test_explicit_steps_are_kept_and_implicit_steps_continue_after_the_highest(store: Store) -> None:
    run = new_run(store)
    store.log_metric(run.id, "loss", 1.0, 10, T0)
    store.log_metric(run.id, "loss", 2.0, 5, T0)
    store.log_metric(run.id, "loss", 3.0, None, T0)
    store.log_batch(run.id, metrics=[("loss", 4.0, None, T0), ("loss", 5.0, 100, T0)])
    assert history(store, run.id, "loss") == [(5, 2.0), (10, 1.0), (11, 3.0), (12, 4.0), (100, 5.0)]


def test_an_explicit_low_step_in_a_batch_does_not_pull_implicit_steps_back(store: Store) -> None:
    run = new_run(store)
    store.log_metric(run.id, "loss", 1.0, 50, T0)
    store.log_batch(run.id, metrics=[("loss", 2.0, 10, T0), ("loss", 3.0, None, T0), ("acc", 4.0, None, T0)])
    assert history(store, run.id, "loss") == [(10, 2.0), (50, 1.0), (51, 3.0)]
    assert history(store, run.id, "acc") == [(0, 4.0)]


def test_implicit_steps_inside_one_batch_increase(store: Store) -> None:
    run = new_run(store)
    store.log_batch(
        run.id, metrics=[("loss", 0.3, None, T0), ("loss", 0.2, None, T0), ("acc", 1.0, None, T0)]
    )
    assert history(store, run.id, "loss") == [(0, 0.3), (1, 0.2)]
    assert history(store, run.id, "acc") == [(0, 1.0)]


def test_metric_history_is_in_step_order_with_ties_in_logging_order(store: Store) -> None:
    run = new_run(store)
    for step, value in [(2, 0.2), (0, 0.0), (1, 0.1), (1, 0.15), (0, 0.05)]:
        store.log_metric(run.id, "m", value, step, T0 + step)
    points = store.metric_history(run.id, "m")
    assert [(p.step, p.value) for p in points] == [(0, 0.0), (0, 0.05), (1, 0.1), (1, 0.15), (2, 0.2)]
    assert all(p.key == "m" and isinstance(p.timestamp, int) for p in points)
    assert [p.timestamp for p in points] == [T0, T0, T0 + 1, T0 + 1, T0 + 2]


def test_nan_and_infinities_round_trip_through_history_and_latest(store: Store) -> None:
    run = new_run(store)
    store.log_batch(run.id, metrics=[("a", math.nan, None, T0), ("b", math.inf, None, T0)])
    store.log_metric(run.id, "c", -math.inf, None, T0)
    store.log_metric(run.id, "d", math.nan, None, T0)
    store.log_metric(run.id, "d", 1.5, None, T0)
    values = [p.value for p in store.metric_history(run.id, "d")]
    assert math.isnan(values[0]) and values[1] == 1.5
    got = store.get_run(run.id).metrics
    assert math.isnan(got["a"]) and got["b"] == math.inf and got["c"] == -math.inf and got["d"] == 1.5
    store.log_metric(run.id, "d", math.nan, None, T0)
    assert math.isnan(store.get_run(run.id).metrics["d"])


def test_latest_metric_is_the_value_at_the_highest_step_even_when_logged_out_of_order(store: Store) -> None:
    run = new_run(store)
    store.log_metric(run.id, "acc", 0.9, 5, T0)
    assert store.get_run(run.id).metrics == {"acc": 0.9}  # a read between the writes
    store.log_metric(run.id, "acc", 0.1, 3, T0 + 1)
    store.log_batch(run.id, metrics=[("acc", 0.2, 4, T0 + 2), ("acc", 0.3, 1, T0 + 2)])
    assert store.get_run(run.id).metrics == {"acc": 0.9}
    assert store.find_runs(RunFilter())[0].metrics == {"acc": 0.9}


def test_latest_metric_on_a_tied_step_is_the_point_logged_last(store: Store) -> None:
    run = new_run(store)
    store.log_batch(run.id, metrics=[("acc", 0.1, 7, T0), ("acc", 0.2, 7, T0)])
    assert store.get_run(run.id).metrics == {"acc": 0.2}
    store.log_metric(run.id, "acc", 0.3, 7, T0)  # the same step again, after a read
    assert store.get_run(run.id).metrics == {"acc": 0.3}
    store.log_metric(run.id, "acc", 0.0, 6, T0)
    assert store.get_run(run.id).metrics == {"acc": 0.3}


def test_datasets_are_returned_with_the_run_in_logging_order(store: Store) -> None:
    run = new_run(store)
    train = Dataset(
        "mnist",
        role="train",
        source="s3://b/train",
        n_rows=60000,
        n_cols=784,
        features=["px0", "px1"],
        digest="abc",
        created=T0,
    )
    test = Dataset("mnist", role="test", n_rows=10000, created=T0 + 1)
    store.log_dataset(run.id, train)
    store.log_dataset(run.id, test)
    assert store.get_run(run.id).datasets == [train, test]


# -- reads -----------------------------------------------------------------------------------------
def test_get_run_accepts_a_unique_id_prefix(store: Store) -> None:
    run = new_run(store, run_id="abcdef" + uuid.uuid4().hex[6:])
    new_run(store, run_id="abc999" + uuid.uuid4().hex[6:])
    assert store.get_run("abcd").id == run.id
    assert store.get_run(run.id[:10]).id == run.id
    assert store.get_run("ABCDEF").id == run.id  # hex ids: case does not matter


def test_get_run_with_an_ambiguous_prefix_names_the_candidates(store: Store) -> None:
    a = new_run(store, run_id="abc1" + uuid.uuid4().hex[4:])
    b = new_run(store, run_id="abc2" + uuid.uuid4().hex[4:])
    with pytest.raises(InvalidValueError) as info:
        store.get_run("abc")
    message = str(info.value)
    assert "'abc'" in message and a.id in message and b.id in message


def test_get_run_with_an_unknown_id_raises_run_not_found(store: Store) -> None:
    new_run(store, run_id="a" * 32)
    with pytest.raises(RunNotFoundError, match="'b'"):
        store.get_run("b")
    with pytest.raises(RunNotFoundError):
        store.get_run("a" * 33)
    with pytest.raises(InvalidValueError):
        store.get_run("")


def test_find_runs_lists_newest_start_first_and_ties_newest_insert_first(store: Store) -> None:
    early = new_run(store, start_time=T0, name="early")
    tie1 = new_run(store, start_time=T0 + 5, name="tie1")
    late = new_run(store, start_time=T0 + 9, name="late")
    tie2 = new_run(store, start_time=T0 + 5, name="tie2")
    tie3 = new_run(store, start_time=T0 + 5, name="tie3")
    assert ids(store.find_runs(RunFilter())) == [late.id, tie3.id, tie2.id, tie1.id, early.id]


def _filter_fixture(store: Store) -> dict[str, str]:
    a = new_run(store, experiment="exp1", name="a", created_by="alice", tags={"team": "nlp", "gpu": "1"})
    b = new_run(store, experiment="exp1", name="b", created_by="bob", tags={"team": "nlp"}, start_time=T0 + 1)
    c = new_run(store, experiment="exp2", name="a", created_by="bob", parent_id=a.id, start_time=T0 + 2)
    store.end_run(b.id, "failed", T0 + 3)
    return {"a": a.id, "b": b.id, "c": c.id}


@pytest.mark.parametrize(
    ("flt", "expected"),
    [
        (RunFilter(), ["c", "b", "a"]),
        (RunFilter(experiment="exp1"), ["b", "a"]),
        (RunFilter(experiment="nope"), []),
        (RunFilter(status="failed"), ["b"]),
        (RunFilter(status="running"), ["c", "a"]),
        (RunFilter(name="a"), ["c", "a"]),
        (RunFilter(created_by="bob"), ["c", "b"]),
        (RunFilter(tags={"team": "nlp"}), ["b", "a"]),
        (RunFilter(tags={"team": "nlp", "gpu": "1"}), ["a"]),
        (RunFilter(tags={"team": "cv"}), []),
        (RunFilter(experiment="exp1", created_by="bob", status="failed"), ["b"]),
        (RunFilter(limit=2), ["c", "b"]),
        (RunFilter(limit=2, offset=1), ["b", "a"]),
        (RunFilter(offset=2), ["a"]),
        (RunFilter(limit=0), []),
    ],
)
def test_find_runs_filters(store: Store, flt: RunFilter, expected: list[str]) -> None:
    names = _filter_fixture(store)
    assert ids(store.find_runs(flt)) == [names[n] for n in expected]


def test_find_runs_by_parent(store: Store) -> None:
    names = _filter_fixture(store)
    assert ids(store.find_runs(RunFilter(parent_id=names["a"]))) == [names["c"]]
    assert ids(store.find_runs(RunFilter(parent_id=names["c"]))) == []


def test_find_runs_returns_params_latest_metrics_and_tags(store: Store) -> None:
    run = new_run(store, tags={"t": "v"})
    store.log_batch(run.id, params={"lr": "0.1"}, metrics=[("loss", 0.5, 0, T0), ("loss", 0.25, 1, T0)])
    (found,) = store.find_runs(RunFilter())
    assert (found.params, found.metrics, found.tags) == ({"lr": 0.1}, {"loss": 0.25}, {"t": "v"})


def test_experiments_report_their_run_counts(store: Store) -> None:
    new_run(store, experiment="a")
    new_run(store, experiment="b", start_time=T0 + 1)
    new_run(store, experiment="b", start_time=T0 + 2)
    store.create_experiment("empty", "nothing yet", "carol", T0 + 3)
    counts = {e.name: e.run_count for e in store.experiments()}
    assert counts == {"a": 1, "b": 2, "empty": 0}


def test_create_experiment_returns_it_and_updates_an_existing_one(store: Store) -> None:
    made = store.create_experiment("vision", "cnn sweep", "carol", T0)
    assert (made.name, made.description, made.owner, made.created, made.run_count) == (
        "vision",
        "cnn sweep",
        "carol",
        T0,
        0,
    )
    again = store.create_experiment("vision", "resnet sweep", None, T0 + 100)
    assert (again.description, again.owner, again.created) == ("resnet sweep", "carol", T0)
    assert [e.name for e in store.experiments()] == ["vision"]


def test_reads_on_a_store_whose_file_does_not_exist_return_empty_and_create_nothing(
    backend: Backend,
) -> None:
    store = backend.store
    assert store.find_runs(RunFilter()) == []
    assert store.experiments() == []
    assert store.metric_history(uuid.uuid4().hex, "loss") == []
    with pytest.raises(RunNotFoundError):
        store.get_run("abc")
    if backend.file is not None:
        assert not backend.file.exists()
        assert list(backend.file.parent.iterdir()) == []


def test_a_closed_store_refuses_calls_with_run_state_error(store: Store) -> None:
    run = new_run(store)
    store.close()
    assert store.closed is True
    for call in (
        lambda: store.get_run(run.id),
        lambda: store.find_runs(RunFilter()),
        lambda: store.log_metric(run.id, "m", 1.0, None, T0),
        lambda: store.log_batch(run.id, params={"a": "1"}),
        lambda: new_run(store),
    ):
        with pytest.raises(RunStateError, match="closed"):
            call()


# -- the same contract through the public API ------------------------------------------------------
def test_public_api_logs_and_reads_back_through_the_backend(store: Store) -> None:
    with chachaml.with_store(store):
        with chachaml.with_run("api", experiment="conf", tags={"k": "v"}) as run:
            chachaml.log_params({"lr": 0.1, "opt": {"name": "adam"}})
            for loss in (0.9, 0.5):
                chachaml.log_metric("loss", loss)
            chachaml.log_metrics({"acc": 0.7, "f1": 0.6}, step=3)
            chachaml.log_dataset("mnist", n_rows=10)
        got = chachaml.get_run(run.id)
        assert got.status == "completed"
        assert got.params == {"lr": 0.1, "opt.name": "adam"}
        assert got.metrics == {"loss": 0.5, "acc": 0.7, "f1": 0.6}
        assert [(m.step, m.value) for m in chachaml.metric_history(run.id, "loss")] == [(0, 0.9), (1, 0.5)]
        assert [d.name for d in got.datasets] == ["mnist"]
        assert [(e.name, e.run_count) for e in chachaml.experiments()] == [("conf", 1)]
    assert store.closed is False  # a Store object passed to with_store is left open


def test_public_api_resumes_a_run_by_id(store: Store) -> None:
    with chachaml.with_store(store):
        with chachaml.with_run("r") as run:
            chachaml.log_metric("loss", 1.0)
        with chachaml.with_run(run_id=run.id[:8]) as again:
            assert again.id == run.id and again.status == "running"
            chachaml.log_metric("loss", 0.5)
        assert [m.step for m in chachaml.metric_history(run.id, "loss")] == [0, 1]
        assert chachaml.get_run(run.id).status == "completed"


def test_public_api_refuses_logging_to_a_finished_run_and_keeps_what_was_logged(store: Store) -> None:
    with chachaml.with_store(store):
        with chachaml.with_run("done") as run:
            chachaml.log_param("lr", 0.1)
            chachaml.log_metric("loss", 0.5)
        with pytest.raises(RunStateError):
            chachaml.log_metric("loss", 0.4, run=run)
        with pytest.raises(RunStateError):
            chachaml.log_param("other", 1, run=run.id)
        chachaml.set_tag("reviewed", "yes", run=run)
        got = chachaml.get_run(run.id)
        assert (got.params, got.metrics, got.tags) == ({"lr": 0.1}, {"loss": 0.5}, {"reviewed": "yes"})


def test_public_api_lists_runs_newest_first(store: Store) -> None:
    with chachaml.with_store(store):
        made = []
        for i in range(3):
            with chachaml.with_run(f"r{i}") as run:
                made.append(run.id)
        assert chachaml.runs().ids == made[::-1]
        last = chachaml.last_run()
        assert last is not None and last.id == made[-1]


def test_public_api_get_run_by_prefix_and_unknown(store: Store) -> None:
    with chachaml.with_store(store):
        with chachaml.with_run() as run:
            pass
        assert chachaml.get_run(run.id[:6]).id == run.id
        with pytest.raises(RunNotFoundError):
            chachaml.get_run("zzzz")
