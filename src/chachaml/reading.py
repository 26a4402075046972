"""The verbs that read runs back: get_run, runs, last_run, metric_history, experiments."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from chachaml import _lifecycle, context
from chachaml._values import check_key, tag_value
from chachaml.entities import Experiment, Metric, Run, RunList
from chachaml.errors import InvalidValueError
from chachaml.store.base import STATUSES, RunFilter, Store

__all__ = [
    "create_experiment",
    "current_user",
    "experiments",
    "get_run",
    "last_run",
    "metric_history",
    "runs",
    "search_runs",
]


def full_run_id(store: Store, run: Any) -> str:
    """The full id of the run ``run`` names: a ``Run``, a run id or a unique id prefix.

    A 32-character id is taken as it is: the store reports an unknown run when it is used.
    """
    run_id = run_ref(run)
    return run_id if len(run_id) == 32 else store.get_run(run_id).id


def run_ref(run: Any, what: str = "run") -> str:
    """The id (or id prefix) that ``run`` gives: a ``Run`` gives its id, a ``str`` is itself.

    Every argument naming a run accepts a ``Run`` as well as an id, as ``run=`` does.
    """
    run_id = run.id if isinstance(run, Run) else run
    if not isinstance(run_id, str) or not run_id:
        raise InvalidValueError(
            f"{what} must be a Run or a run id (str), got {type(run).__name__} {run!r}; "
            "pass the Run itself or run.id"
        )
    return run_id


def get_run(run_id: str | Run) -> Run:
    """The run with this id, or a unique prefix of it (like git); a ``Run`` gives a fresh copy.

    Raises:
        RunNotFoundError: no run has this id, or the prefix is ambiguous.
    """
    return context.current_store().get_run(run_ref(run_id, "get_run()'s argument"))


def _text_filter(value: Any, what: str) -> str | None:
    """A filter given as text: None (no filter) or a ``str``; any other type would match nothing."""
    if value is None or isinstance(value, str):
        return value
    raise InvalidValueError(
        f"{what}= filters by text, got {type(value).__name__} {value!r}; pass a str such as "
        f"{what}='baseline' (or leave it out)"
    )


def _parent_filter(parent_id: Any) -> str | None:
    """The full id for ``parent_id=``: a ``Run``, a full id, or a unique prefix resolved here.

    A prefix must be resolved before it reaches SQL, where it would match no run and the
    filter would be silently empty.
    """
    if parent_id is None:
        return None
    ref = run_ref(parent_id, "parent_id=")
    return ref if len(ref) == 32 else context.current_store().get_run(ref).id


def _filter(
    experiment: str | None,
    status: str | None,
    name: str | None,
    parent_id: Any,
    created_by: str | None,
    tags: Mapping[str, Any] | None,
    where: str | None,
    order_by: str | None,
    limit: int | None,
    offset: int,
    include_archived: bool,
) -> RunFilter:
    if status is not None and status not in STATUSES:
        raise InvalidValueError(f"status {status!r} is not one of {', '.join(STATUSES)}")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 0):
        raise InvalidValueError(f"limit must be a non-negative int or None, got {limit!r}")
    if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
        raise InvalidValueError(f"offset must be a non-negative int, got {offset!r}")
    if tags is not None and not isinstance(tags, Mapping):
        raise InvalidValueError(f"tags must be a mapping such as {{'team': 'nlp'}}, got {tags!r}")
    return RunFilter(
        experiment=_text_filter(experiment, "experiment"),
        status=status,
        name=_text_filter(name, "name"),
        parent_id=_parent_filter(parent_id),
        created_by=_text_filter(created_by, "created_by"),
        tags=None if tags is None else {k: tag_value(v) for k, v in tags.items()},  # as set_tag stores
        where=where,
        order_by=order_by,
        limit=limit,
        offset=offset,
        include_archived=include_archived,
    )


def runs(
    experiment: str | None = None,
    *,
    status: str | None = None,
    name: str | None = None,
    parent_id: str | Run | None = None,
    created_by: str | None = None,
    tags: Mapping[str, Any] | None = None,
    where: str | None = None,
    order_by: str | None = None,
    limit: int | None = None,
    offset: int = 0,
    include_archived: bool = False,
) -> RunList:
    """Runs matching every given filter, newest ``start_time`` first.

    Args:
        experiment, status, name, created_by: equality filters (text).
        parent_id: children of this run: a ``Run``, an id or a unique id prefix.
        tags: runs having all these tag values.
        where: a query string, e.g. ``"params.lr < 0.1 and metrics.acc.max > 0.9"``.
        order_by: e.g. ``"metrics.acc desc"`` (default: newest first).
        limit, offset: paging; all matching runs by default.
        include_archived: also list archived runs.
    """
    flt = _filter(
        experiment,
        status,
        name,
        parent_id,
        created_by,
        tags,
        where,
        order_by,
        limit,
        offset,
        include_archived,
    )
    return RunList(context.current_store().find_runs(flt))


def search_runs(where: str, **filters: Any) -> RunList:
    """``runs(where=where, ...)``: the query language over params, metrics, tags, attributes."""
    return runs(where=where, **filters)


def last_run(experiment: str | None = None, **filters: Any) -> Run | None:
    """The most recently started run matching the filters of ``runs()``, or None."""
    found = runs(experiment, limit=1, **filters)
    return found[0] if found else None


def metric_history(run_id: str, key: str) -> list[Metric]:
    """Every point of one metric of one run, in step order (ties in logging order)."""
    store = context.current_store()
    key = check_key(key, "metric key")
    run_id = full_run_id(store, run_id)
    points = store.metric_history(run_id, key)
    if not points:
        store.get_run(run_id)  # an unknown run raises RunNotFoundError instead of returning []
    return points


def experiments() -> list[Experiment]:
    """All experiments with their run counts, oldest first."""
    return context.current_store().experiments()


def create_experiment(name: str, *, description: str | None = None, owner: str | None = None) -> Experiment:
    """Create an experiment (or update its description/owner) and return it."""
    name = check_key(name, "experiment name")
    return context.current_store().create_experiment(
        name, description, owner or _lifecycle.current_user(), _lifecycle.now_ms()
    )


def current_user() -> str:
    """``$CHACHAML_USER``, else the operating-system user."""
    return _lifecycle.current_user()
