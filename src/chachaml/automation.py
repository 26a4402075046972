"""The verbs of alerts and pipelines (SPEC section 11; docs/automation.md).

Each delegates to the ``Client`` of the current store. The pipeline verbs hand the ``Client`` a
run scope (``_scope``) that works like ``with_run``: each step's run is the current run while the
step runs (``chachaml.log_metric`` inside a step logs to it), and the runs get the usual
lifecycle (the heartbeat, a status at process exit, ``batched()`` points flushed first).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from chachaml import _lifecycle, context
from chachaml._api_alerts import WEBHOOK_WAIT_S
from chachaml.automation_entities import Alert, AlertEvent, Pipeline
from chachaml.entities import Run

__all__ = [
    "add_alert",
    "alert_history",
    "alerts",
    "check_alerts",
    "get_pipeline",
    "pipelines",
    "remove_alert",
    "resume_pipeline",
    "run_pipeline",
]


def add_alert(
    name: str,
    metric: str,
    op: str,
    threshold: float,
    *,
    experiment: str | None = None,
    webhook: str | None = None,
) -> Alert:
    """Create the alert ``name`` or change it (an upsert); see ``Client.add_alert``.

    >>> add_alert("loss-high", "loss", ">", 2.0, webhook="https://hooks.example.com/x")  # doctest: +SKIP
    """
    return context.client().add_alert(name, metric, op, threshold, experiment=experiment, webhook=webhook)


def alerts() -> list[Alert]:
    """Every alert of the current store, by name."""
    return context.client().alerts()


def remove_alert(name: str) -> None:
    """Remove an alert and its history (``NotFoundError`` if there is none of that name)."""
    context.client().remove_alert(name)


def check_alerts(
    *, run_ids: Iterable[Any] | None = None, wait: float | None = WEBHOOK_WAIT_S
) -> list[AlertEvent]:
    """Evaluate every alert now and return the events fired by this call (``Client.check_alerts``).

    No log call ever evaluates alerts: call this where a check belongs, e.g. every N steps.
    Webhook failures are recorded in ``alert_history``, never raised.
    """
    return context.client().check_alerts(run_ids=run_ids, wait=wait)


def alert_history(name: str) -> list[AlertEvent]:
    """The events of the alert ``name``, oldest first (``NotFoundError`` for an unknown alert)."""
    return context.client().alert_history(name)


@contextmanager
def _scope(name: str, parent_id: str | None, run_id: str | None, experiment: str | None) -> Iterator[Run]:
    """A run current for the block, ended with the block's outcome: the steps of
    ``tracking.with_run`` (a verb module may not import another; docs/architecture.md)."""
    client = context.client()
    store = client.store
    if experiment is None and parent_id is None and run_id is None:
        # start_run's precedence (SPEC section 3); the Client falls back to "default".
        experiment = context.current_experiment() or os.environ.get("CHACHAML_EXPERIMENT") or None
    run = client.start_run(name, experiment=experiment, parent_id=parent_id, run_id=run_id)
    _lifecycle.opened(store, run.id)
    frame, token = context.enter_scope(store, run.id)
    status, error = "completed", None
    try:
        yield run
    except BaseException as exc:
        status, error = _lifecycle.outcome(type(exc), exc, exc.__traceback__)
        raise
    finally:
        batch = context._batch_cv.get()
        try:
            _lifecycle.end_left_open(context.frames_above(frame), status, error, batch)
            _lifecycle.finish(frame, status, error, batch)
        finally:
            context.leave_scope(frame, token)


def run_pipeline(
    name: str,
    steps: Sequence[tuple[str, Callable[[Any], Any]]],
    *,
    experiment: str | None = None,
) -> Any:
    """Run named steps in order as one pipeline run with a child run per step; return the last
    step's result (``Client.run_pipeline``).

    Each callable receives the previous step's result (the first receives None) and runs with
    its step's run current. Inside a run, the pipeline run is that run's child. A failing step
    marks itself and the pipeline ``failed``, the later steps ``skipped``, and re-raises.

    >>> run_pipeline("etl", [("load", load), ("train", train)])  # doctest: +SKIP
    """
    client = context.client()
    frame = context.current_frame()
    parent = frame.run_id if frame is not None and frame.store is client.store else None
    return client.run_pipeline(name, steps, experiment=experiment, parent_id=parent, run_scope=_scope)


def resume_pipeline(pipeline: Any, *, steps: Sequence[tuple[str, Callable[[Any], Any]]] | None = None) -> Any:
    """Continue a failed pipeline in the process that ran it (``Client.resume_pipeline``):
    completed steps keep their results, the failed step and the later ones run again."""
    return context.client().resume_pipeline(pipeline, steps=steps, run_scope=_scope)


def pipelines(*, name: str | None = None, limit: int | None = None) -> list[Pipeline]:
    """Pipelines of the current store, newest first."""
    return context.client().pipelines(name=name, limit=limit)


def get_pipeline(pipeline: Any) -> Pipeline:
    """One pipeline with its steps (each ``name``, ``status``, ``run_id``), by id or id prefix."""
    return context.client().get_pipeline(pipeline)
