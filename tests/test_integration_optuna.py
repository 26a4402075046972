"""The Optuna callback with the real Optuna, n_jobs > 1 included (issue 11 part 4)."""

from __future__ import annotations

import threading
from typing import Any

import pytest

import chachaml
from _frameworks import need

pytestmark = pytest.mark.frameworks

optuna = need("optuna")
from chachaml.integrations.optuna import ChachamlCallback  # noqa: E402

optuna.logging.set_verbosity(optuna.logging.WARNING)


def objective(trial: Any) -> float:
    x = trial.suggest_float("x", -4.0, 4.0)
    kind = trial.suggest_categorical("kind", ["a", "b"])
    trial.report(x * x, step=0)
    return (x - 1.0) ** 2 + (0.5 if kind == "b" else 0.0)


def children(parent: str) -> list[chachaml.Run]:
    return list(chachaml.runs(parent_id=parent))


def check_study(study: Any, study_run: str, n: int) -> None:
    kids = children(study_run)
    assert len(kids) == n
    assert sorted(int(r.tags["optuna.trial"]) for r in kids) == list(range(n))
    for run in kids:
        trial = study.trials[int(run.tags["optuna.trial"])]
        assert run.parent_id == study_run
        assert run.status == "completed" and run.tags["optuna.state"] == "COMPLETE"
        assert run.params == trial.params
        assert run.metrics["value"] == pytest.approx(trial.value)
        assert run.metrics["intermediate_value"] == pytest.approx(trial.intermediate_values[0])
    best = [r for r in kids if r.tags.get("optuna.best") == "true"]
    assert len(best) == 1, "exactly one best trial is tagged"
    assert int(best[0].tags["optuna.trial"]) == study.best_trial.number
    tags = chachaml.get_run(study_run).tags
    assert tags["optuna.best_trial"] == str(study.best_trial.number)
    assert tags["optuna.best_run"] == best[0].id
    assert float(tags["optuna.best_value"]) == pytest.approx(study.best_value)


def test_n_jobs_4_gives_one_child_per_trial_under_the_current_run_and_tags_the_best() -> None:
    chachaml.use_store("t.db")
    threads: set[str] = set()

    def tracking_objective(trial: Any) -> float:
        threads.add(threading.current_thread().name)
        return objective(trial)

    with chachaml.with_run("tune") as study_run:
        study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
        study.optimize(tracking_objective, n_trials=16, n_jobs=4, callbacks=[ChachamlCallback()])
        assert chachaml.current_run().id == study_run.id  # type: ignore[union-attr]
    assert len(threads) > 1, "the trials really ran in several threads"
    check_study(study, study_run.id, 16)
    assert chachaml.get_run(study_run.id).status == "completed"


def test_trials_never_land_in_a_threads_current_run() -> None:
    """A process-level run is current in every thread; the callback was given another run."""
    chachaml.use_store("t.db")
    study_run = chachaml.start_run("study")
    distractor = chachaml.start_run("current everywhere", parent_id=None)
    seen: set[str | None] = set()

    def peeking_objective(trial: Any) -> float:
        current = chachaml.current_run()
        seen.add(None if current is None else current.id)
        return objective(trial)

    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    study.optimize(peeking_objective, n_trials=8, n_jobs=4, callbacks=[ChachamlCallback(run=study_run)])
    assert seen == {distractor.id}, "the worker threads do see the distractor as current"
    assert children(distractor.id) == []
    check_study(study, study_run.id, 8)
    chachaml.end_run()
    chachaml.end_run()
    assert chachaml.get_run(study_run.id).status == "completed"


def test_with_no_current_run_the_callback_owns_a_study_run_ended_by_its_block() -> None:
    chachaml.use_store("t.db")
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=2))
    with ChachamlCallback(name="search", experiment="tuning") as callback:
        assert chachaml.current_run() is None, "the study run is not made current"
        study.optimize(objective, n_trials=4, n_jobs=2, callbacks=[callback])
        assert chachaml.get_run(callback.run_id).status == "running"
    run = chachaml.get_run(callback.run_id)
    assert (run.name, run.experiment, run.status) == ("search", "tuning", "completed")
    check_study(study, run.id, 4)
    assert {r.experiment for r in children(run.id)} == {"tuning"}


def test_with_no_current_run_and_no_with_block_the_study_run_is_completed_when_optimize_returns() -> None:
    chachaml.use_store("t.db")
    callback = ChachamlCallback(name="auto")
    assert chachaml.get_run(callback.run_id).status == "running"
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=5))
    study.optimize(objective, n_trials=6, n_jobs=3, callbacks=[callback])
    assert chachaml.current_run() is None
    run = chachaml.get_run(callback.run_id)
    assert (run.name, run.status) == ("auto", "completed")
    check_study(study, run.id, 6)
    study.optimize(objective, n_trials=2, callbacks=[callback])
    assert chachaml.get_run(callback.run_id).status == "completed"
    check_study(study, run.id, 8)
    assert len(chachaml.runs()) == 9, "one study run and its 8 trials"


def test_failed_and_pruned_trials_get_their_own_status_and_a_raising_study_fails_its_run() -> None:
    chachaml.use_store("t.db")

    def flaky(trial: Any) -> float:
        x = trial.suggest_float("x", 0.0, 1.0)
        if trial.number == 1:
            raise ValueError("bad trial")
        if trial.number == 2:
            raise optuna.TrialPruned()
        if trial.number == 4:
            raise KeyError("not caught")
        return x

    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=3))
    with pytest.raises(KeyError), ChachamlCallback() as callback:
        study.optimize(flaky, n_trials=6, catch=(ValueError,), callbacks=[callback])
    statuses = {
        int(r.tags["optuna.trial"]): (r.status, r.tags["optuna.state"]) for r in children(callback.run_id)
    }
    assert statuses == {
        0: ("completed", "COMPLETE"),
        1: ("failed", "FAIL"),
        2: ("killed", "PRUNED"),
        3: ("completed", "COMPLETE"),
        4: ("failed", "FAIL"),
    }, "Optuna calls no callback for trial 4, whose exception escapes optimize: the block logs it"
    study_run = chachaml.get_run(callback.run_id)
    assert study_run.status == "failed" and study_run.error is not None
    assert study_run.error["type"] == "KeyError"
    assert callback.trial_run_id(1) is not None
    raised = chachaml.get_run(callback.trial_run_id(4) or "")
    assert raised.error is not None and raised.error["type"] == "KeyError" and "x" in raised.params
    best = [r for r in children(callback.run_id) if r.tags.get("optuna.best") == "true"]
    assert [int(r.tags["optuna.trial"]) for r in best] == [study.best_trial.number]


def test_a_multi_objective_study_names_each_value_and_tags_the_pareto_front() -> None:
    chachaml.use_store("t.db")

    def two(trial: Any) -> tuple[float, float]:
        x = trial.suggest_float("x", 0.0, 1.0)
        return x, 1.0 - x * x

    with chachaml.with_run("mo") as study_run:
        study = optuna.create_study(
            directions=["minimize", "maximize"], sampler=optuna.samplers.RandomSampler(seed=4)
        )
        study.optimize(two, n_trials=5, callbacks=[ChachamlCallback(metric_name=["cost", "gain"])])
    kids = children(study_run.id)
    assert all({"cost", "gain"} <= set(r.metrics) for r in kids)
    front = {t.number for t in study.best_trials}
    assert {int(r.tags["optuna.trial"]) for r in kids if r.tags.get("optuna.best") == "true"} == front
    with pytest.raises(chachaml.InvalidValueError, match="metric_name"):
        ChachamlCallback(metric_name=3)  # type: ignore[arg-type]
