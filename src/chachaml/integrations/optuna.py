"""Optuna: ``ChachamlCallback``, one child run per trial under a study run.

    from chachaml.integrations.optuna import ChachamlCallback
    with chachaml.with_run("tune"):
        study.optimize(objective, n_trials=50, n_jobs=4, callbacks=[ChachamlCallback()])

Each finished trial becomes a child run of the study run, with the trial's params, its value(s)
as metrics (and intermediate values at their steps), and its state; the best trial's run is
tagged ``optuna.best=true`` and the study run gets ``optuna.best_trial`` / ``optuna.best_value``
/ ``optuna.best_run``. Safe with ``n_jobs > 1``: Optuna calls callbacks from its worker threads,
and every write names its run and parent explicitly, never a thread's current run.
Needs the extra ``optuna`` (``pip install 'chachaml[optuna]'``).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from typing import Any

import chachaml
from chachaml._optional import require
from chachaml.errors import InvalidValueError
from chachaml.integrations._hook import HookRun, status_of, through, watch

require("optuna", "optuna")

__all__ = ["ChachamlCallback"]

# Optuna trial state -> run status. A pruned trial was stopped on purpose before its end.
_STATUS = {"COMPLETE": "completed", "PRUNED": "killed", "FAIL": "failed"}


class ChachamlCallback:
    """An Optuna callback (``study.optimize(..., callbacks=[cb])``) logging each trial as a run.

    The study run is picked when the callback is made: the run given, else the current run (the
    usual case: make the callback inside ``with chachaml.with_run(...)``), else a new run this
    callback starts then. Optuna has no end-of-study callback, so a study run the callback
    started is ended after each trial's callback and reopened by the next one: it is
    ``completed`` when ``optimize`` returns. Used as ``with ChachamlCallback() as cb:`` the
    run stays open for the whole block and ends with it (``failed`` if ``optimize`` raised,
    which the per-trial form cannot know).

    Args:
        run: the study run (a ``Run`` or an id) instead of the current one.
        name: the name of a study run the callback starts.
        experiment: the experiment of a study run the callback starts.
        tags: tags of a study run the callback starts.
        metric_name: the metric name of the objective's value, or one name per objective of a
            multi-objective study (default ``value``, ``value_0``, ``value_1``, ...).
    """

    def __init__(
        self,
        run: Any = None,
        *,
        name: str | None = None,
        experiment: str | None = None,
        tags: Mapping[str, Any] | None = None,
        metric_name: str | Sequence[str] = "value",
    ) -> None:
        if not isinstance(metric_name, str) and not (
            isinstance(metric_name, Sequence) and all(isinstance(n, str) for n in metric_name)
        ):
            raise InvalidValueError(f"metric_name must be a str or a list of str, got {metric_name!r}")
        self._metric_name = metric_name
        tags = {"framework": "optuna", **(tags or {})}
        self._study = HookRun(run, name=name, experiment=experiment, tags=tags)
        study_id = self._study.begin()
        study_run = self._study.in_context(chachaml.get_run, study_id)
        self._store = self._study.in_context(chachaml.current_store)
        self._experiment: str = study_run.experiment
        # One callback at a time: Optuna's worker threads run trials in parallel, and their
        # callbacks (a few writes each) take turns. Every write names its run explicitly.
        self._lock = threading.RLock()
        self._managed = False  # inside ``with``: the block, not each trial, ends the study run
        self._trial_runs: dict[int, str] = {}
        self._best: set[int] = set()
        watch(self)  # an exception escaping optimize: the raising trial, the study run (on_uncaught)

    @property
    def run_id(self) -> str:
        """The id of the study run (a new one after a study run this callback started failed)."""
        assert self._study.run_id is not None
        return self._study.run_id

    def __enter__(self) -> ChachamlCallback:
        with self._lock:
            self._managed = True
            if self._study.owned and not self._study.active:
                self._study.begin()
        return self

    def __exit__(self, et: Any, ev: Any, tb: Any) -> None:
        with self._lock:
            self._managed = False
            if ev is not None:
                self._log_raising_trial(ev)
            self.end(status_of(ev), ev)

    def on_uncaught(self, exc: BaseException) -> None:
        """An exception reached the top level (a script's end, a prompt, a notebook cell): if it
        escaped an ``optimize`` this callback was given, the trial that raised it (Optuna calls no
        callback for it) becomes a child run with the error, and the study run this callback
        started is reopened and ended ``failed`` (``killed`` for Ctrl-C) with the exception."""
        with self._lock:
            if self._managed or through(exc.__traceback__, self._in_optimize) is None:
                return  # not from our optimize, or a ``with`` block that ends the run itself
            self._log_raising_trial(exc)
            if not self._study.owned or self._study.failed:
                return  # the user's run (theirs to end), or one already ended with a failure
            if not self._study.active:
                self._study.begin()
            self._study.end(status_of(exc), exc)

    def on_exit(self) -> None:
        """Nothing: a study run still open at exit is ended by the exit handler, like any run."""

    def _in_optimize(self, frame: Any) -> bool:
        """Whether ``frame`` is Optuna's optimize loop running with this callback."""
        if frame.f_globals.get("__name__") != "optuna.study._optimize":
            return False
        callbacks = frame.f_locals.get("callbacks")
        return isinstance(callbacks, list | tuple) and any(c is self for c in callbacks)

    def _log_raising_trial(self, exc: BaseException) -> str | None:
        """Log the trial whose objective raised ``exc`` out of ``optimize`` (found in the
        traceback: Optuna marks it FAIL and re-raises without calling callbacks)."""
        frame = through(
            exc.__traceback__,
            lambda f: (
                f.f_globals.get("__name__") == "optuna.study._optimize" and f.f_code.co_name == "_run_trial"
            ),
        )
        if frame is None:
            return None
        study, trial = frame.f_locals.get("study"), frame.f_locals.get("trial")
        number = getattr(trial, "number", None)
        if study is None or number is None or number in self._trial_runs:
            return None
        frozen = next((t for t in study.get_trials(deepcopy=False) if t.number == number), None)
        if frozen is None:
            return None
        self._trial_runs[number] = self._log_trial(study, frozen, exc)
        return self._trial_runs[number]

    def end(self, status: str = "completed", exc: BaseException | None = None) -> None:
        """End the study run if this callback started it (a given or current run is left alone)."""
        with self._lock:
            self._study.end(status, exc)

    def trial_run_id(self, number: int) -> str | None:
        """The id of the child run of trial ``number`` (None if it has not finished yet)."""
        with self._lock:
            return self._trial_runs.get(number)

    def _names(self, n: int) -> list[str]:
        if not isinstance(self._metric_name, str):
            names = list(self._metric_name)
            if len(names) != n:
                raise InvalidValueError(f"metric_name has {len(names)} names for {n} objective values")
            return names
        return [self._metric_name] if n == 1 else [f"{self._metric_name}_{i}" for i in range(n)]

    def __call__(self, study: Any, trial: Any) -> None:
        """Log ``trial`` (a ``FrozenTrial``) as a child run, then retag the best trial.

        A study run this callback started outside ``with`` is reopened for the call and ended
        after it: Optuna has no end-of-study callback, so the study run is ``completed`` as of
        the last finished trial when ``optimize`` returns.
        """
        with self._lock:
            auto = self._study.owned and not self._managed
            if auto and not self._study.active:
                self._study.begin()
            try:
                self._trial_runs[trial.number] = self._log_trial(study, trial)
                self._tag_best(study)
            finally:
                if auto:
                    self._study.end()

    def _log_trial(self, study: Any, trial: Any, exc: BaseException | None = None) -> str:
        """Write ``trial`` as a child run of the study run; ``exc``: the exception its objective
        raised, recorded with the run (type, message, traceback) as for a raising block."""
        state = trial.state.name
        # with_store: this thread's own clean room on the study's store, whatever thread it is.
        # A run started in it and left open ends with the block's outcome: exc's, when given.
        room = chachaml.with_store(self._store)
        room.__enter__()
        outcome: BaseException | None = exc
        try:
            child = chachaml.start_run(
                f"trial {trial.number}",
                experiment=self._experiment,
                parent_id=self.run_id,
                tags={"optuna.trial": trial.number, "optuna.state": state, "optuna.study": study.study_name},
            )
            if trial.params:
                chachaml.log_params(trial.params, run=child.id)
            for step, value in sorted(trial.intermediate_values.items()):
                chachaml.log_metric("intermediate_value", value, step=step, run=child.id)
            values = trial.values or []
            named = zip(self._names(len(values)), values, strict=True)
            metrics = {k: v for k, v in named if v is not None}
            if metrics:
                chachaml.log_metrics(metrics, run=child.id)
            if exc is None:
                chachaml.end_run(_STATUS.get(state, "completed"))
        except BaseException as error:
            outcome = error
            raise
        finally:
            room.__exit__(
                type(outcome) if outcome else None, outcome, outcome.__traceback__ if outcome else None
            )
        return str(child.id)

    def _tag_best(self, study: Any) -> None:
        try:
            if len(study.directions) > 1:
                best = {t.number for t in study.best_trials}
            else:
                best = {study.best_trial.number}
        except ValueError:  # no completed trial yet
            best = set()
        # A best trial whose callback has not run yet is tagged by that callback (it runs later).
        best &= set(self._trial_runs)
        with chachaml.with_store(self._store):
            for number in sorted(self._best - best):
                chachaml.delete_tag("optuna.best", run=self._trial_runs[number])
            for number in sorted(best - self._best):
                chachaml.set_tag("optuna.best", "true", run=self._trial_runs[number])
            self._best = best
            if len(best) == 1 and len(study.directions) == 1:
                (number,) = best
                chachaml.set_tags(
                    {
                        "optuna.best_trial": number,
                        "optuna.best_value": study.best_value,
                        "optuna.best_run": self._trial_runs[number],
                    },
                    run=self.run_id,
                )
