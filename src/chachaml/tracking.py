"""The verbs that start, end and log to runs.

Each verb resolves the store and run through ``chachaml.context``, validates and normalises its
input (``chachaml._values``), and makes one call on the store. Nothing else.
"""

from __future__ import annotations

import functools
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from time import time_ns as _time_ns
from typing import Any, TypeVar, overload

from chachaml import _lifecycle, context
from chachaml import system_metrics as _system_metrics
from chachaml._values import (
    _good_keys,
    check_key,
    metric_value,
    params_items,
    step_value,
    tag_value,
    timestamp_value,
)
from chachaml.entities import Dataset, Run
from chachaml.errors import InvalidValueError, NoActiveRunError, RunStateError
from chachaml.store.base import STATUSES, NewRun, Store

__all__ = [
    "batched",
    "current_run",
    "delete_tag",
    "end_run",
    "flush",
    "log_dataset",
    "log_metric",
    "log_metrics",
    "log_param",
    "log_params",
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
    return a is b or (a is not None and a.uri == b.uri and ":memory:" not in b.uri)


def _check_tags(tags: Mapping[str, Any] | None) -> dict[str, str]:
    if tags is None:
        return {}
    if not isinstance(tags, Mapping):
        raise InvalidValueError(f"tags must be a mapping such as {{'team': 'nlp'}}, got {tags!r}")
    return {check_key(k, "tag key"): tag_value(v) for k, v in tags.items()}


def _open_run(
    name: str | None,
    experiment: str,
    tags: Mapping[str, Any] | None,
    parent_id: Any,
    run_id: str | None,
) -> tuple[Store, Run]:
    """Create (or resume) a run in the current store; does not touch the run stacks."""
    store = context.current_store()
    if name is not None and not isinstance(name, str):
        raise InvalidValueError(f"run name must be a str or None, got {name!r}")
    experiment = check_key(experiment, "experiment name")
    clean_tags = _check_tags(tags)
    if run_id is not None:
        run = store.resume_run(store.get_run(run_id).id, _lifecycle.owner(), _now())
        if clean_tags:
            store.log_batch(run.id, tags=clean_tags)
    else:
        if parent_id is CURRENT:
            frame = context.current_frame()
            parent_id = frame.run_id if frame is not None and _same_store(frame.store, store) else None
        elif parent_id is not None:
            parent_id = store.get_run(parent_id).id
        run = store.create_run(
            NewRun(
                id=uuid.uuid4().hex,
                experiment=experiment,
                start_time=_now(),
                owner=_lifecycle.owner(),
                name=name,
                parent_id=parent_id,
                created_by=_lifecycle.current_user(),
                tags=clean_tags,
                env=_lifecycle.environment(),
            )
        )
    _lifecycle.opened(store, run.id)
    return store, run


def start_run(
    name: str | None = None,
    *,
    experiment: str = "default",
    tags: Mapping[str, Any] | None = None,
    parent_id: Any = CURRENT,
    run_id: str | None = None,
    system_metrics: bool | float | None = None,
) -> Run:
    """Start a run and make it current until ``end_run()``.

    At top level (a notebook cell, a REPL, a script) the run goes on the process-level stack,
    which survives between cells; inside a ``with_run``/``with_store`` block it is pushed onto
    that block's context only. A run started while another is current becomes its child.

    Args:
        name: a label for people; need not be unique.
        experiment: the experiment it belongs to (created on first use).
        tags: initial tags (values converted with ``str()``).
        parent_id: defaults to the current run; ``None`` for a top-level run.
        run_id: resume this existing run (id or unique prefix): its status goes back to running.
        system_metrics: sample CPU, memory, disk, network (and GPU) into the run: ``True``,
            or an interval in seconds; ``None`` follows ``CHACHAML_SYSTEM_METRICS``
            (see ``chachaml.system_metrics``).

    Returns:
        the new ``Run`` (a snapshot; ``current_run()`` gives a fresh one).
    """
    sampling = _system_metrics.requested(system_metrics)
    store, run = _open_run(name, experiment, tags, parent_id, run_id)
    context.push_frame(store, run.id)
    _system_metrics.start(sampling, store, run)
    return run


def end_run(status: str = "completed") -> None:
    """End the run that ``start_run()`` pushed most recently in this layer (nothing if none).

    Like MLflow's ``end_run`` it returns nothing: reading the run back would cost more than
    ending it (``chachaml.last_run()`` or ``get_run(id)`` show it).
    """
    if status not in STATUSES[1:]:
        raise InvalidValueError(
            f"status {status!r} is not a final status; use one of {', '.join(STATUSES[1:])}"
        )
    frame = context.pop_frame()
    if frame is None:
        return
    _system_metrics.stop(frame.run_id)
    if frame.store is not None and frame.store.closed:
        frame.store.get_run(frame.run_id or "")  # raises RunStateError naming the fix
    _lifecycle.finish(frame, status)


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
        experiment: str = "default",
        tags: Mapping[str, Any] | None = None,
        parent_id: Any = CURRENT,
        run_id: str | None = None,
        system_metrics: bool | float | None = None,
    ) -> None:
        self._kwargs: dict[str, Any] = dict(
            name=name,
            experiment=experiment,
            tags=tags,
            parent_id=parent_id,
            run_id=run_id,
            system_metrics=system_metrics,
        )
        self._active: list[tuple[context.Frame, Any]] = []

    def __enter__(self) -> Run:
        k = self._kwargs
        sampling = _system_metrics.requested(k["system_metrics"])
        store, run = _open_run(k["name"], k["experiment"], k["tags"], k["parent_id"], k["run_id"])
        self._active.append(context.enter_scope(store, run.id))
        _system_metrics.start(sampling, store, run)
        return run

    def __exit__(self, et: Any, ev: Any, tb: Any) -> None:
        frame, token = self._active.pop()
        _system_metrics.stop(frame.run_id)
        status, error = _lifecycle.outcome(et, ev, tb)
        try:
            _lifecycle.end_left_open(context.frames_above(frame), status, error)
            _lifecycle.finish(frame, status, error)
        finally:
            context.leave_scope(frame, token)

    def __call__(self, fn: F) -> F:
        kwargs = dict(self._kwargs)
        if kwargs["name"] is None:
            kwargs["name"] = _func_name(fn)
        import inspect

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
    experiment: str = "default",
    tags: Mapping[str, Any] | None = None,
) -> Callable[[F], F]: ...
def tracked(
    fn: F | None = None,
    *,
    name: str | None = None,
    experiment: str = "default",
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
def _target(run: Any) -> tuple[Store, str]:
    """The store and run id a log call writes to."""
    if run is None:
        frame = context.current_frame()
        if frame is None:
            raise NoActiveRunError(
                "no active run: call chachaml.start_run() first (or use `with chachaml.with_run():`),"
                " or pass run=<a Run or run id>"
            )
        return frame.store, frame.run_id  # type: ignore[return-value]
    run_id = run.id if isinstance(run, Run) else run
    if not isinstance(run_id, str):
        raise InvalidValueError(f"run= must be a Run or a run id, got {run!r}")
    frame = context.current_frame()
    if frame is not None and frame.run_id == run_id:
        return frame.store, run_id  # type: ignore[return-value]
    store = context.current_store()
    return store, store.get_run(run_id).id


def log_param(key: str, value: Any, *, overwrite: bool = False, run: Any = None) -> None:
    """Log one param. Params are immutable: the same value again is a no-op, another value
    raises ``ConflictError`` unless ``overwrite=True``. A dict value is flattened with dots."""
    store, run_id = _target(run)
    store.log_batch(run_id, params=params_items({check_key(key, "param key"): value}), overwrite=overwrite)


def log_params(params: Mapping[str, Any], *, overwrite: bool = False, run: Any = None) -> None:
    """Log several params at once, all or nothing (see ``log_param``)."""
    store, run_id = _target(run)
    items = params_items(params)
    if items:
        store.log_batch(run_id, params=items, overwrite=overwrite)


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
        store, run_id = _target(run)
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
    if not isinstance(metrics, Mapping):
        raise InvalidValueError(f"metrics must be a mapping such as {{'loss': 0.3}}, got {metrics!r}")
    store, run_id = _target(run)
    if step is not None:
        step = step_value(step)
    ts = _now() if timestamp is None else timestamp_value(timestamp)
    points = [(check_key(k, "metric key"), metric_value(v, k), step, ts) for k, v in metrics.items()]
    batch = context._batch_cv.get()
    if batch is not None:
        for k, v, s, t in points:
            batch.add(store, run_id, k, v, s, t)
    elif points:
        store.log_batch(run_id, metrics=points)


def set_tag(key: str, value: Any, *, run: Any = None) -> None:
    """Set a tag (mutable, a string); allowed on finished runs with ``run=``."""
    store, run_id = _target(run)
    store.log_batch(run_id, tags={check_key(key, "tag key"): tag_value(value)})


def set_tags(tags: Mapping[str, Any], *, run: Any = None) -> None:
    """Set several tags at once."""
    store, run_id = _target(run)
    clean = _check_tags(tags)
    if clean:
        store.log_batch(run_id, tags=clean)


def delete_tag(key: str, *, run: Any = None) -> None:
    """Remove a tag (no error if it is not set)."""
    store, run_id = _target(run)
    store.delete_tag(run_id, check_key(key, "tag key"))


def set_note(markdown: str, *, run: Any = None) -> None:
    """Set the run's note (markdown text), replacing any previous note."""
    if not isinstance(markdown, str):
        raise InvalidValueError(f"a note must be a str of markdown, got {type(markdown).__name__}")
    store, run_id = _target(run)
    store.set_note(run_id, markdown)


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
    store, run_id = _target(run)
    for label, n in (("n_rows", n_rows), ("n_cols", n_cols)):
        if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 0):
            raise InvalidValueError(f"{label} must be a non-negative int or None, got {n!r}")
    if features is not None and (isinstance(features, str | bytes) or not hasattr(features, "__iter__")):
        raise InvalidValueError(
            f"features must be a list of column names such as ['age', 'income'], got {features!r}"
        )
    ds = Dataset(
        name=check_key(name, "dataset name"),
        role=check_key(role, "dataset role"),
        source=None if source is None else str(source),
        n_rows=n_rows,
        n_cols=n_cols,
        features=None if features is None else [str(f) for f in features],
        digest=digest,
        created=_now(),
    )
    store.log_dataset(run_id, ds)
    return ds


# -- batching -----------------------------------------------------------------------------------
_Points = list[tuple[str, float, int | None, int]]  # (key, value, step or None, timestamp)


class _Batch:
    """Metric points buffered by ``batched()``, per run, in logging order.

    A ``step=None`` stays ``None`` until the flush: the store resolves it inside the write
    transaction, so batches flushed by several processes into one run never share a step.
    A run's buffer is written as soon as it holds ``FLUSH_EVERY`` points, so memory stays flat
    however long the block runs (SPEC section 6); writing early only makes points durable sooner.
    """

    FLUSH_EVERY = 10_000

    def __init__(self) -> None:
        # Held while writing too, so concurrent flushes land in logging order.
        self.lock = threading.Lock()
        self.points: dict[tuple[int, str], _Points] = {}
        self.stores: dict[int, Store] = {}
        # The run the last point went to (and its buffer): a loop logs to one run.
        self.last: tuple[Store | None, str | None, _Points] = (None, None, [])

    def add(self, store: Store, run_id: str, key: str, value: float, step: int | None, ts: int) -> None:
        with self.lock:
            last_store, last_run, points = self.last
            if store is not last_store or run_id != last_run:
                found = self.points.get((id(store), run_id))
                if found is None:
                    found = self.points[id(store), run_id] = []
                    self.stores[id(store)] = store
                points = found
                self.last = (store, run_id, points)
            points.append((key, value, step, ts))
            if len(points) >= self.FLUSH_EVERY:
                del self.points[id(store), run_id]
                self.last = (None, None, [])
                store.log_batch(run_id, metrics=points)

    def flush(self, store: Store | None = None, run_id: str | None = None) -> None:
        """Write buffered points (all, or one run's), run by run, each in one transaction.

        One run's failure (it was ended elsewhere) does not lose the other runs' points.
        """
        failure: Exception | None = None
        with self.lock:
            for (sid, rid), points in list(self.points.items()):
                st = self.stores[sid]
                if (store is not None and st is not store) or (run_id is not None and rid != run_id):
                    continue
                del self.points[sid, rid]
                self.last = (None, None, [])
                try:
                    st.log_batch(rid, metrics=points)
                except RunStateError as exc:
                    failure = failure or exc
        if failure is not None:
            raise failure


def flush() -> None:
    """Write what ``batched()`` has buffered so far (a no-op outside ``batched()``)."""
    batch = context._batch_cv.get()
    if batch is not None:
        batch.flush()


@contextmanager
def batched() -> Iterator[None]:
    """Buffer metric writes inside the block and write them in one transaction on exit.

    For tight loops: points are not durable until the block exits (or ``flush()``), and a run
    ended inside the block gets its points written first. Params and tags are never buffered.
    """
    batch = _Batch()
    token = context._batch_cv.set(batch)
    try:
        yield
    finally:
        context._batch_cv.reset(token)
        batch.flush()
