"""The verbs that start, end and log to runs, and create experiments.

Each verb resolves the store and run through ``chachaml.context`` and delegates to the
``Client`` (``chachaml.client``), which validates and makes one call on the store. Two things
stay here because they are about the context: which run is current (``start_run`` pushes it,
``end_run`` pops it, ``with_run`` scopes it) and ``log_metric``'s hot path, which calls the
store directly for the usual call (a current run, a known key, a float; benchmarks/bench_core.py).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Mapping
from time import time_ns as _time_ns
from typing import Any, TypeVar, overload

from chachaml import _lifecycle, context
from chachaml._values import (
    _good_keys,
    check_key,
    metric_points,
    metric_value,
    step_value,
    timestamp_value,
)
from chachaml.entities import Dataset, Experiment, Run
from chachaml.rules import check_final_status
from chachaml.store import reopenable
from chachaml.store.base import Store

__all__ = [
    "create_experiment",
    "current_run",
    "delete_tag",
    "end_run",
    "log_dataset",
    "log_metric",
    "log_metrics",
    "log_param",
    "log_params",
    "set_experiment",
    "set_note",
    "set_tag",
    "set_tags",
    "start_run",
    "tracked",
    "with_run",
]

F = TypeVar("F", bound=Callable[..., Any])


class _Current:
    def __repr__(self) -> str:
        return "<current run>"


CURRENT: Any = _Current()  # default of parent_id: "the current run, if any"

_now = _lifecycle.now_ms
# Bound once: log_metric runs in tight loops.
_current_frame = context.current_frame
_batch_get = context._batch_cv.get


def _same_store(a: Store | None, b: Store) -> bool:
    return a is b or (a is not None and a.uri == b.uri and reopenable(b))


def _default_experiment() -> str:
    """The experiment of a new top-level run: ``set_experiment``'s, else ``$CHACHAML_EXPERIMENT``,
    else ``"default"`` (SPEC section 3)."""
    chosen = context.current_experiment()
    if chosen is not None:
        return chosen
    env = os.environ.get("CHACHAML_EXPERIMENT")
    if env:
        return check_key(env, "experiment name in $CHACHAML_EXPERIMENT")
    return "default"


def set_experiment(name: str | None) -> None:
    """Make ``name`` the experiment of new runs started without ``experiment=``.

    Precedence for a new run: an explicit ``experiment=``, else its parent's experiment (a
    child stays with its parent), else ``set_experiment``'s, else ``$CHACHAML_EXPERIMENT``,
    else ``"default"``. Like ``use_store`` it sets the process default at top level and holds
    for the block only inside a ``with_store`` block. The experiment is created by its first run.

    Args:
        name: the experiment name, or ``None`` to go back to ``$CHACHAML_EXPERIMENT`` / default.

    Raises:
        InvalidValueError: ``name`` is not a valid name (empty, not a str, control characters).
    """
    context.set_experiment(None if name is None else check_key(name, "experiment name"))


def _open_run(
    name: str | None,
    experiment: str | None,
    tags: Mapping[str, Any] | None,
    parent_id: Any,
    run_id: str | None,
) -> tuple[Store, Run]:
    """Create (or resume) a run in the current store; does not touch the run stacks."""
    client = context.client()
    store = client.store
    if experiment is not None:
        experiment = check_key(experiment, "experiment name")
    if parent_id is CURRENT:
        frame = context.current_frame()
        parent_id = frame.run_id if frame is not None and _same_store(frame.store, store) else None
    if experiment is None and parent_id is None and run_id is None:
        experiment = _default_experiment()  # a child takes its parent's (the Client reads it)
    run = client.start_run(name, experiment=experiment, tags=tags, parent_id=parent_id, run_id=run_id)
    _lifecycle.opened(store, run.id)
    return store, run


def start_run(
    name: str | None = None,
    *,
    experiment: str | None = None,
    tags: Mapping[str, Any] | None = None,
    parent_id: Any = CURRENT,
    run_id: str | None = None,
) -> Run:
    """Start a run and make it current until ``end_run()``.

    At top level (a notebook cell, a REPL, a script) the run goes on the process-level stack,
    which survives between cells; inside a ``with_run``/``with_store`` block it is pushed onto
    that block's context only. A run started while another is current becomes its child.

    Args:
        name: a label for people; need not be unique.
        experiment: the experiment it belongs to (created on first use); default: the parent's,
            else the one ``set_experiment`` chose, else ``$CHACHAML_EXPERIMENT``, else
            ``"default"``.
        tags: initial tags (values converted with ``str()``).
        parent_id: defaults to the current run; ``None`` for a top-level run; else a ``Run``,
            an id or a unique id prefix.
        run_id: resume this existing run (a ``Run``, an id or a unique prefix): its status goes
            back to running.

    Returns:
        the new ``Run`` (a snapshot; ``current_run()`` gives a fresh one).

    Raises:
        RunStateError: in an asyncio task, while another unfinished task's run is on top of the
            shared stack (concurrent tasks use ``with_run``, each in its own context).
    """
    context.check_stack_owner("start_run()")
    store, run = _open_run(name, experiment, tags, parent_id, run_id)
    context.push_frame(store, run.id)
    return run


def end_run(status: str = "completed") -> None:
    """End the run that ``start_run()`` pushed most recently in this layer (nothing if none).

    Like MLflow's ``end_run`` it returns nothing: reading the run back would cost more than
    ending it (``chachaml.last_run()`` or ``get_run(id)`` show it). A worker thread ends only
    runs it started itself.

    Raises:
        InvalidValueError: ``status`` is not a final status.
        RunStateError: the run on top was started by another asyncio task that is still running.
    """
    check_final_status(status)
    context.check_stack_owner("end_run()")
    frame = context.pop_frame()
    if frame is None:
        return
    if frame.store is not None and frame.store.closed:
        frame.store.get_run(frame.run_id or "")  # raises RunStateError naming the fix
    _lifecycle.finish(frame, status, None, _batch_get())


class with_run:
    """``with with_run(name, ...) as run:`` -- a run that is current only inside the block.

    Same arguments as ``start_run``. On normal exit the run is ``completed``; an exception marks
    it ``failed`` (type, message and traceback recorded) and is re-raised; ``KeyboardInterrupt``
    marks it ``killed``. Runs started with ``start_run()`` inside the block and left open are
    ended with it. Also a decorator: each call of the decorated function is a new run.
    """

    def __init__(
        self,
        name: str | None = None,
        *,
        experiment: str | None = None,
        tags: Mapping[str, Any] | None = None,
        parent_id: Any = CURRENT,
        run_id: str | None = None,
    ) -> None:
        self._kwargs: dict[str, Any] = dict(
            name=name, experiment=experiment, tags=tags, parent_id=parent_id, run_id=run_id
        )
        self._active: list[tuple[context.Frame, Any]] = []

    def __enter__(self) -> Run:
        k = self._kwargs
        store, run = _open_run(k["name"], k["experiment"], k["tags"], k["parent_id"], k["run_id"])
        self._active.append(context.enter_scope(store, run.id))
        return run

    def __exit__(self, et: Any, ev: Any, tb: Any) -> None:
        frame, token = self._active.pop()
        status, error = _lifecycle.outcome(et, ev, tb)
        batch = _batch_get()
        try:
            _lifecycle.end_left_open(context.frames_above(frame), status, error, batch)
            _lifecycle.finish(frame, status, error, batch)
        finally:
            context.leave_scope(frame, token)

    def __call__(self, fn: F) -> F:
        kwargs = dict(self._kwargs)
        if kwargs["name"] is None:
            kwargs["name"] = _func_name(fn)
        import inspect

        if inspect.isgeneratorfunction(fn) or inspect.isasyncgenfunction(fn):
            return _span_iteration(fn, kwargs)
        if inspect.iscoroutinefunction(fn):

            @functools.wraps(fn)
            async def run_async(*args: Any, **kw: Any) -> Any:
                with with_run(**kwargs):
                    return await fn(*args, **kw)

            return run_async  # type: ignore[return-value]

        @functools.wraps(fn)
        def run_sync(*args: Any, **kw: Any) -> Any:
            with with_run(**kwargs):
                return fn(*args, **kw)

        return run_sync  # type: ignore[return-value]


def _span_iteration(fn: F, kwargs: dict[str, Any]) -> F:
    """Decorate a generator (or async generator) function: each call is a run that starts at the
    first item and spans the whole iteration, in a context of the generator's own
    (``chachaml._generators``)."""
    import inspect

    from chachaml import _generators

    def make_block() -> with_run:
        return with_run(**kwargs)

    if inspect.isasyncgenfunction(fn):
        return _generators.spanning_async_generator(fn, make_block)  # type: ignore[return-value]
    return _generators.spanning_generator(fn, make_block)  # type: ignore[return-value]


def _func_name(fn: Any) -> str | None:
    """The run name for a decorated function: its qualified name without ``<locals>`` parts
    (``train``, ``Model.fit``), so a function defined inside another is named as written."""
    qualname = getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None)
    return None if qualname is None else str(qualname).rsplit("<locals>.", 1)[-1]


@overload
def tracked(fn: F) -> F: ...
@overload
def tracked(
    fn: None = None,
    *,
    name: str | None = None,
    experiment: str | None = None,
    tags: Mapping[str, Any] | None = None,
) -> Callable[[F], F]: ...
def tracked(
    fn: F | None = None,
    *,
    name: str | None = None,
    experiment: str | None = None,
    tags: Mapping[str, Any] | None = None,
) -> Any:
    """Decorator: every call of the function is a run named after it (``@tracked`` or
    ``@tracked(experiment=...)``); an exception marks that run failed and propagates."""

    def decorate(f: F) -> F:
        return with_run(name or _func_name(f), experiment=experiment, tags=tags)(f)

    return decorate(fn) if fn is not None else decorate


def current_run() -> Run | None:
    """The run log calls go to right now (a fresh snapshot), or None."""
    frame = context.current_frame()
    if frame is None or frame.store is None or frame.run_id is None:
        return None
    return frame.store.get_run(frame.run_id)


# -- logging ------------------------------------------------------------------------------------
def log_param(key: str, value: Any, *, overwrite: bool = False, run: Any = None) -> None:
    """Log one param. Params are immutable: the same value again is a no-op, another value
    raises ``ConflictError`` unless ``overwrite=True``. A dict value is flattened with dots."""
    client, ref = context.target(run)
    client.log_param(key, value, run=ref, overwrite=overwrite)


def log_params(params: Mapping[str, Any], *, overwrite: bool = False, run: Any = None) -> None:
    """Log several params at once, all or nothing (see ``log_param``)."""
    client, ref = context.target(run)
    client.log_params(params, run=ref, overwrite=overwrite)


def log_metric(
    key: str, value: Any, step: int | None = None, *, timestamp: Any = None, run: Any = None
) -> None:
    """Log one metric point, committed before this returns (unless inside ``batched()``).

    ``value`` is a real number (NaN and ±inf are kept); ``step=None`` means the next step for
    this key in this run (0, 1, 2, ...); ``timestamp`` is integer milliseconds (default: now).
    """
    # The hot path (benchmarks/bench_core.py): for the usual call (a current run, a key seen
    # before, a float) it makes no helper calls; the helpers do the same checks the long way.
    store: Store
    run_id: str
    frame = _current_frame() if run is None else None
    if frame is not None:
        store, run_id = frame.store, frame.run_id  # type: ignore[assignment]
    else:
        client, ref = context.target(run)
        store, run_id = client.store, client.resolve_run_id(ref)
    if key.__class__ is not str or key not in _good_keys:
        key = check_key(key, "metric key")
    if value.__class__ is not float:
        value = metric_value(value, key)
    if step is not None:
        step = step_value(step)
    ts = _time_ns() // 1_000_000 if timestamp is None else timestamp_value(timestamp)
    batch = _batch_get()
    if batch is None:
        store.log_metric(run_id, key, value, step, ts)
    else:
        batch.add(store, run_id, key, value, step, ts)


def log_metrics(
    metrics: Mapping[str, Any], step: int | None = None, *, timestamp: Any = None, run: Any = None
) -> None:
    """Log several metrics at one step in one transaction (all or nothing)."""
    client, ref = context.target(run)
    batch = _batch_get()
    if batch is None:
        client.log_metrics(metrics, step, run=ref, timestamp=timestamp)
        return
    run_id = client.resolve_run_id(ref)
    for k, v, s, t in metric_points(metrics, step, timestamp, _now()):
        batch.add(client.store, run_id, k, v, s, t)


def set_tag(key: str, value: Any, *, run: Any = None) -> None:
    """Set a tag (mutable, a string); allowed on finished runs with ``run=``."""
    client, ref = context.target(run)
    client.set_tag(key, value, run=ref)


def set_tags(tags: Mapping[str, Any], *, run: Any = None) -> None:
    """Set several tags at once."""
    client, ref = context.target(run)
    client.set_tags(tags, run=ref)


def delete_tag(key: str, *, run: Any = None) -> None:
    """Remove a tag (no error if it is not set)."""
    client, ref = context.target(run)
    client.delete_tag(key, run=ref)


def set_note(markdown: str, *, run: Any = None) -> None:
    """Set the run's note (markdown text), replacing any previous note."""
    client, ref = context.target(run)
    client.set_note(markdown, run=ref)


def log_dataset(
    name: str,
    *,
    role: str = "train",
    source: str | None = None,
    n_rows: int | None = None,
    n_cols: int | None = None,
    features: list[str] | None = None,
    digest: str | None = None,
    run: Any = None,
) -> Dataset:
    """Record a dataset the run used (metadata only: the data is not copied)."""
    client, ref = context.target(run)
    return client.log_dataset(
        name,
        run=ref,
        role=role,
        source=source,
        n_rows=n_rows,
        n_cols=n_cols,
        features=features,
        digest=digest,
    )


def create_experiment(name: str, *, description: str | None = None, owner: str | None = None) -> Experiment:
    """Create an experiment (or update its description/owner) and return it."""
    return context.client().create_experiment(name, description=description, owner=owner)
