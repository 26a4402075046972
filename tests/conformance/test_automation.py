"""The ``AutomationStore`` role: alerts, their events and pipelines (issue 11). Every backend, no SQL."""

from __future__ import annotations

import math

import pytest

from chachaml.automation_entities import Alert, Pipeline, PipelineStep
from chachaml.errors import InvalidValueError, NotFoundError
from chachaml.store.base import AlertPoint, Store

from .test_store_contract import T0, new_run


def _alert(store: Store, name: str = "hot", **kw: object) -> Alert:
    args: dict[str, object] = dict(
        metric="loss", op=">", threshold=2.0, experiment=None, webhook=None, now=T0
    )
    args.update(kw)
    return store.put_alert(name, **args)  # type: ignore[arg-type]


# -- alerts --------------------------------------------------------------------------------------
def test_put_alert_creates_then_changes_and_the_same_definition_changes_nothing(store: Store) -> None:
    a = _alert(store)
    assert a == Alert("hot", "loss", ">", 2.0, None, None, T0, T0, 1)
    assert _alert(store, now=T0 + 5) == a  # same definition: not a change
    b = _alert(store, threshold=3.0, webhook="http://127.0.0.1:9/x", now=T0 + 9)
    assert (b.version, b.created, b.updated, b.threshold, b.webhook) == (
        2,
        T0,
        T0 + 9,
        3.0,
        "http://127.0.0.1:9/x",
    )
    assert store.get_alert("hot") == b


def test_get_alert_of_an_unknown_name_is_not_found(store: Store) -> None:
    with pytest.raises(NotFoundError, match="'nope'"):
        store.get_alert("nope")


def test_alerts_are_listed_by_name(store: Store) -> None:
    assert store.alerts() == []
    _alert(store, "b")
    _alert(store, "a", experiment="mnist", op="<=")
    assert [(a.name, a.op, a.experiment) for a in store.alerts()] == [("a", "<=", "mnist"), ("b", ">", None)]


def test_delete_alert_removes_it_and_its_history(store: Store) -> None:
    run = new_run(store)
    alert = _alert(store)
    store.log_batch(run.id, metrics=[("loss", 5.0, 0, T0)])
    assert len(store.add_alert_events(alert, store.alert_candidates(alert), T0)) == 1
    assert store.delete_alert("hot") is True
    assert store.delete_alert("hot") is False
    assert store.alerts() == [] and store.alert_history("hot") == []
    again = _alert(store)  # a new alert of the same name starts afresh: only new points count
    assert again.version == 1 and store.alert_candidates(again) == []
    store.log_batch(run.id, metrics=[("loss", 6.0, 1, T0)])
    assert [p.run_id for p in store.alert_candidates(again)] == [run.id]


def test_alert_candidates_take_each_runs_latest_point_at_the_highest_step(store: Store) -> None:
    a = new_run(store, run_id="a" * 32)
    b = new_run(store, run_id="b" * 32, experiment="other")
    alert = _alert(store)
    store.log_batch(a.id, metrics=[("loss", 1.0, 5, T0), ("loss", 9.0, 2, T0 + 1)])  # step 5 is latest
    store.log_batch(b.id, metrics=[("loss", 3.0, 0, T0), ("loss", 4.0, 0, T0 + 1)])  # same step: last logged
    store.log_batch(b.id, metrics=[("acc", 3.0, 0, T0)])
    store.end_run(b.id, "completed", T0 + 2)  # finished runs are in scope too
    got = store.alert_candidates(alert)
    assert got == [AlertPoint(a.id, "default", 5, 1.0, T0), AlertPoint(b.id, "other", 0, 4.0, T0 + 1)]


def test_alert_candidates_are_limited_by_experiment_run_ids_and_archiving(store: Store) -> None:
    a = new_run(store, experiment="mnist")
    b = new_run(store, experiment="mnist")
    c = new_run(store, experiment="cifar")
    alert = _alert(store, experiment="mnist")
    for r in (a, b, c):
        store.log_batch(r.id, metrics=[("loss", 5.0, 0, T0)])
    assert sorted(p.run_id for p in store.alert_candidates(alert)) == sorted([a.id, b.id])
    assert [p.run_id for p in store.alert_candidates(alert, [b.id, c.id])] == [b.id]
    assert store.alert_candidates(alert, []) == []
    store.end_run(a.id, "completed", T0 + 1)
    store.archive_runs(True, experiment="mnist")
    assert [p.run_id for p in store.alert_candidates(alert)] == [b.id]


def test_alert_candidates_need_a_point_logged_after_the_alert_was_put(store: Store) -> None:
    old = new_run(store)
    late = new_run(store)
    store.log_batch(old.id, metrics=[("loss", 5.0, 0, T0)])
    store.log_batch(late.id, metrics=[("loss", 5.0, 3, T0)])
    alert = _alert(store, now=T0)
    assert store.alert_candidates(alert) == []
    store.log_batch(late.id, metrics=[("loss", 0.5, 1, T0 - 60_000)])  # logged now, stamped earlier
    assert store.alert_candidates(alert) == [AlertPoint(late.id, "default", 3, 5.0, T0)]
    assert store.alert_candidates(alert, [late.id, old.id]) == [AlertPoint(late.id, "default", 3, 5.0, T0)]
    changed = _alert(store, threshold=1.0, now=T0 + 1)
    assert store.alert_candidates(changed) == [] and store.alert_candidates(alert) == []  # stale: none


def test_alert_candidates_after_the_newest_points_were_deleted(store: Store) -> None:
    keep = new_run(store)
    gone = new_run(store)
    store.log_batch(keep.id, metrics=[("loss", 1.0, 0, T0)])
    store.log_batch(gone.id, metrics=[("loss", 1.0, i, T0) for i in range(5)])
    alert = _alert(store)
    store.end_run(gone.id, "completed", T0)
    store.delete_run(gone.id)
    store.log_batch(keep.id, metrics=[("loss", 5.0, 1, T0)])  # new, whatever ids a backend reuses
    assert [(p.run_id, p.value) for p in store.alert_candidates(alert)] == [(keep.id, 5.0)]


def test_alert_candidates_keep_a_nan_latest_value(store: Store) -> None:
    run = new_run(store)
    alert = _alert(store)
    store.log_batch(run.id, metrics=[("loss", float("nan"), 0, T0)])
    (point,) = store.alert_candidates(alert)
    assert math.isnan(point.value)


def test_add_alert_events_fire_each_run_once_per_alert_version(store: Store) -> None:
    a = new_run(store, run_id="a" * 32)
    b = new_run(store, run_id="b" * 32)
    alert = _alert(store, webhook="http://127.0.0.1:9/x")
    store.log_batch(a.id, metrics=[("loss", 5.0, 0, T0)])
    store.log_batch(b.id, metrics=[("loss", 6.0, 0, T0)])
    points = store.alert_candidates(alert)
    first = store.add_alert_events(alert, points[:1], T0 + 1)
    assert [(e.run_id, e.value, e.step, e.fired, e.delivery, e.attempts) for e in first] == [
        (a.id, 5.0, 0, T0 + 1, "pending", 0)
    ]
    second = store.add_alert_events(alert, points, T0 + 2)  # a fired already: only b is new
    assert [e.run_id for e in second] == [b.id] and second[0].id > first[0].id
    assert store.alert_candidates(alert) == []
    assert [e.run_id for e in store.alert_history("hot")] == [a.id, b.id]
    changed = _alert(store, threshold=1.0, now=T0 + 3)
    store.log_batch(a.id, metrics=[("loss", 7.0, 1, T0 + 3)])
    assert store.add_alert_events(alert, points, T0 + 4) == []  # read before the change: refused
    (event,) = store.add_alert_events(changed, store.alert_candidates(changed), T0 + 4)
    assert (event.run_id, event.value, event.threshold, event.delivery) == (a.id, 7.0, 1.0, None)


def test_deleting_a_run_deletes_its_alert_events(store: Store) -> None:
    run = new_run(store)
    alert = _alert(store)
    store.log_batch(run.id, metrics=[("loss", 5.0, 0, T0)])
    store.add_alert_events(alert, store.alert_candidates(alert), T0)
    store.end_run(run.id, "completed", T0)
    store.delete_run(run.id)
    assert store.alert_history("hot") == []


def test_set_alert_delivery_records_the_webhooks_outcome(store: Store) -> None:
    run = new_run(store)
    alert = _alert(store, webhook="http://127.0.0.1:9/x")
    store.log_batch(run.id, metrics=[("loss", 5.0, 0, T0)])
    (event,) = store.add_alert_events(alert, store.alert_candidates(alert), T0)
    store.set_alert_delivery(event.id, "failed", 3, "HTTP 500 Internal Server Error")
    store.set_alert_delivery(event.id + 1000, "delivered", 1, None)  # a gone event: no error
    (stored,) = store.alert_history("hot")
    assert (stored.delivery, stored.attempts, stored.error) == ("failed", 3, "HTTP 500 Internal Server Error")
    assert stored.webhook == "http://127.0.0.1:9/x" and stored.op == ">" and stored.metric == "loss"


def test_alert_history_of_an_unknown_alert_is_empty(store: Store) -> None:
    assert store.alert_history("nope") == []


# -- pipelines -----------------------------------------------------------------------------------
def _pipeline(pid: str, name: str = "etl", created: int = T0, status: str = "running") -> Pipeline:
    steps = (PipelineStep("load", "completed", "r" * 32), PipelineStep("train", "running", "s" * 32))
    return Pipeline(pid, name, status, steps, created, created)


def test_put_pipeline_creates_and_replaces_with_its_steps(store: Store) -> None:
    p = _pipeline("a" * 32)
    store.put_pipeline(p)
    assert store.get_pipeline(p.id) == p
    done = Pipeline(p.id, "etl", "failed", (PipelineStep("load", "completed", "r" * 32),
                                              PipelineStep("train", "failed", "s" * 32),
                                              PipelineStep("eval", "skipped")), T0, T0 + 7)  # fmt: skip
    store.put_pipeline(done)
    assert store.get_pipeline(p.id) == done
    assert store.pipelines() == [done]


def test_get_pipeline_by_unique_prefix_and_its_errors(store: Store) -> None:
    store.put_pipeline(_pipeline("ab" + "0" * 30))
    store.put_pipeline(_pipeline("ac" + "0" * 30))
    assert store.get_pipeline("ab").id == "ab" + "0" * 30
    with pytest.raises(InvalidValueError, match="several pipelines"):
        store.get_pipeline("a")
    with pytest.raises(NotFoundError, match="'ff'"):
        store.get_pipeline("ff")


def test_pipelines_are_newest_first_filtered_by_name_and_limited(store: Store) -> None:
    store.put_pipeline(_pipeline("a" * 32, "etl", T0))
    store.put_pipeline(_pipeline("b" * 32, "train", T0 + 1))
    store.put_pipeline(_pipeline("c" * 32, "etl", T0 + 2, "completed"))
    assert [p.id[0] for p in store.pipelines()] == ["c", "b", "a"]
    assert [p.id[0] for p in store.pipelines(name="etl")] == ["c", "a"]
    assert [p.id[0] for p in store.pipelines(limit=2)] == ["c", "b"]
    assert [s.name for s in store.pipelines(limit=1)[0].steps] == ["load", "train"]
