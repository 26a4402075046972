"""The verbs that read runs back: get_run, runs, search_runs, last_run, metric_history,
experiments, current_user. Each is a delegation to the ``Client`` of the current store."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from chachaml import _process, context
from chachaml.entities import Experiment, Metric, Run
from chachaml.results import RunList

__all__ = [
    "current_user",
    "experiments",
    "get_run",
    "last_run",
    "metric_history",
    "runs",
    "search_runs",
]


def get_run(run_id: Any) -> Run:
    """The run with this id, or a unique prefix of it (like git); a ``Run`` gives a fresh copy.

    Raises:
        RunNotFoundError: no run has this id, or the prefix is ambiguous.
    """
    return context.client().get_run(run_id)


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
    return context.client().runs(
        experiment=experiment,
        status=status,
        name=name,
        parent_id=parent_id,
        created_by=created_by,
        tags=tags,
        where=where,
        order_by=order_by,
        limit=limit,
        offset=offset,
        include_archived=include_archived,
    )


def search_runs(where: str, **filters: Any) -> RunList:
    """``runs(where=where, ...)``: the query language over params, metrics, tags, attributes."""
    return runs(where=where, **filters)


def last_run(experiment: str | None = None, **filters: Any) -> Run | None:
    """The most recently started run matching the filters of ``runs()``, or None."""
    return context.client().last_run(experiment=experiment, **filters)


def metric_history(run_id: Any, key: str) -> list[Metric]:
    """Every point of one metric of one run, in step order (ties in logging order)."""
    return context.client().metric_history(run_id, key)


def experiments() -> list[Experiment]:
    """All experiments with their run counts, oldest first."""
    return context.client().experiments()


def current_user() -> str:
    """``$CHACHAML_USER``, else the operating-system user."""
    return _process.current_user()
