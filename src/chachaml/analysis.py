"""The verbs that analyse and tidy runs: best_run, compare_runs, export_runs, inspect, and the
lifecycle of data (delete_run, delete_experiment, archive_runs, unarchive_runs).

Like every fluent verb, each resolves the store through ``chachaml.context``, validates its
input and makes one call on the store. The query language itself is ``chachaml.query``.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import IO, Any

from chachaml import _display, _lifecycle, context
from chachaml._values import check_key
from chachaml.entities import Comparison, Run
from chachaml.errors import InvalidValueError
from chachaml.reading import _filter, full_run_id, runs

__all__ = [
    "archive_runs",
    "best_run",
    "compare_runs",
    "delete_experiment",
    "delete_run",
    "export_runs",
    "inspect",
    "unarchive_runs",
]

DAY_MS = 86_400_000


def best_run(
    metric: str,
    *,
    experiment: str | None = None,
    mode: str = "max",
    where: str | None = None,
    **filters: Any,
) -> Run | None:
    """The run holding the best value of ``metric`` at any step, or None if no run logged it.

    Every step of every matching run counts (any status unless filtered); runs that never
    logged a number for ``metric`` are ignored, NaN is never best. The returned ``Run`` has
    ``best_value`` and ``best_step`` set. Ties go to the run that started first, and within a
    run to the earliest step.

    Args:
        metric: the metric key, e.g. ``"val_acc"``.
        experiment: only runs of this experiment.
        mode: ``"max"`` (default) or ``"min"`` (for losses).
        where: a query narrowing the runs, e.g. ``"params.model = 'resnet'"``.
        **filters: the other filters of ``runs()`` (status, tags, include_archived, ...).

    Raises:
        InvalidValueError: ``mode`` is not ``"max"`` or ``"min"``.
        QueryError: ``where`` is malformed.
    """
    metric = check_key(metric, "metric key")
    if mode not in ("max", "min"):
        raise InvalidValueError(f"mode must be 'max' or 'min', got {mode!r}; use mode='min' for a loss")
    for bad in ("order_by", "limit", "offset"):
        if bad in filters:
            raise InvalidValueError(f"best_run() takes no {bad}=; it returns one run")
    flt = _filter(
        experiment,
        filters.pop("status", None),
        filters.pop("name", None),
        filters.pop("parent_id", None),
        filters.pop("created_by", None),
        filters.pop("tags", None),
        where,
        None,
        None,
        0,
        filters.pop("include_archived", False),
    )
    if filters:
        raise InvalidValueError(
            f"best_run() got unexpected arguments {sorted(filters)}; it takes the filters of runs()"
        )
    return context.current_store().best_run(flt, metric, mode)


def compare_runs(ids: Iterable[Any]) -> Comparison:
    """Params and latest metrics of these runs side by side (a ``Comparison``).

    ``ids`` are run ids, unique id prefixes or ``Run`` objects (a ``RunList`` works), in the
    order the columns should have. Each of ``params`` and ``metrics`` splits keys into ``same``
    (key -> the shared value), ``differ`` and ``partial`` (key -> values aligned with the runs,
    ``None`` where a run lacks the key).

    Raises:
        InvalidValueError: ``ids`` is not a list of runs (e.g. None) or is empty.
        RunNotFoundError: an id matches no run.
    """
    if isinstance(ids, str | Run):
        raise InvalidValueError("compare_runs() takes a list of runs or ids, e.g. compare_runs([a, b])")
    if not isinstance(ids, Iterable):
        raise InvalidValueError(
            f"compare_runs() takes a list of runs or ids, got {type(ids).__name__} {ids!r}; "
            "pass e.g. compare_runs([a, b]) or compare_runs(runs(limit=3))"
        )
    store = context.current_store()
    wanted = list(ids)
    if not wanted:
        raise InvalidValueError("compare_runs() needs at least one run id; pass e.g. runs(limit=3)")
    return Comparison.of([store.get_run(full_run_id(store, r)) for r in wanted])


def export_runs(experiment: str | None = None, **filters: Any) -> list[dict[str, Any]]:
    """``runs(experiment, **filters).to_records()``: flat dicts ready for pandas, CSV or JSON.

    Each record has the run attributes (``id``, ``name``, ``status``, ``start_time``, ...) then
    ``params.<key>``, ``metrics.<key>`` (latest values) and ``tags.<key>`` columns, which can
    never overwrite an attribute.
    """
    return runs(experiment, **filters).to_records()


def delete_run(run: Any) -> None:
    """Delete a run for good: its params, metrics, tags, datasets, artifacts and their files.

    Child runs are kept; their ``parent_id`` becomes None. Accepts a ``Run``, an id or a
    unique id prefix.

    Raises:
        RunNotFoundError: no run has this id.
        ConflictError: the run backs a registered model version (archive it instead).
    """
    store = context.current_store()
    store.delete_run(full_run_id(store, run))


def delete_experiment(name: str) -> int:
    """Delete an experiment and all its runs for good (as ``delete_run``); returns how many runs.

    The name is free again afterwards: a new run or ``create_experiment`` starts it afresh.

    Raises:
        ExperimentNotFoundError: there is no such experiment.
        ConflictError: one of its runs backs a registered model version; nothing is deleted.
    """
    return context.current_store().delete_experiment(check_key(name, "experiment name"))


def _started_before(older_than_days: float | None) -> int | None:
    if older_than_days is None:
        return None
    if isinstance(older_than_days, bool) or not isinstance(older_than_days, int | float):
        raise InvalidValueError(f"older_than_days must be a number of days, got {older_than_days!r}")
    if not older_than_days >= 0:  # also refuses NaN
        raise InvalidValueError(f"older_than_days must be >= 0, got {older_than_days!r}")
    return _lifecycle.now_ms() - int(older_than_days * DAY_MS)


def archive_runs(older_than_days: float | None = None, *, experiment: str | None = None) -> int:
    """Hide finished runs that started more than ``older_than_days`` ago from default listings.

    Returns how many runs were archived. Archived runs stay readable by id and are listed by
    ``runs(include_archived=True)``; ``unarchive_runs`` brings them back. Running runs are
    never archived. With no arguments, every finished run is archived.
    """
    started_before = _started_before(older_than_days)
    exp = None if experiment is None else check_key(experiment, "experiment name")
    return context.current_store().archive_runs(True, experiment=exp, started_before=started_before)


def unarchive_runs(older_than_days: float | None = None, *, experiment: str | None = None) -> int:
    """Undo ``archive_runs`` for archived runs matching the same filters; returns how many."""
    started_before = _started_before(older_than_days)
    exp = None if experiment is None else check_key(experiment, "experiment name")
    return context.current_store().archive_runs(False, experiment=exp, started_before=started_before)


# -- REPL helper ----------------------------------------------------------------------------------
def _value(v: Any) -> str:
    return v if isinstance(v, str) else repr(v)


def _section(title: str, items: dict[str, Any]) -> list[str]:
    if not items:
        return []
    width = max(len(k) for k in items)
    return [f"{title} ({len(items)})"] + [f"  {k.ljust(width)}  {_value(items[k])}" for k in sorted(items)]


def inspect(run: Any, *, file: IO[str] | None = None) -> None:
    """Print everything about one run: attributes, params, latest metrics, tags, note, datasets,
    artifacts and child runs. Accepts a ``Run``, an id or a unique id prefix."""
    store = context.current_store()
    r = store.get_run(full_run_id(store, run))
    head = {
        "experiment": r.experiment,
        "status": r.status + (" (archived)" if r.archived else ""),
        "started": _display.fmt_time(r.start_time),
        "ended": _display.fmt_time(r.end_time) or "-",
        "duration": _display.fmt_duration(r.duration) or "-",
        "parent": r.parent_id or "-",
        "created by": r.created_by or "-",
    }
    lines = [f"Run {r.id}" + (f" {r.name!r}" if r.name else "")]
    lines += [f"  {k.ljust(10)}  {v}" for k, v in head.items()]
    if r.error:
        lines.append(f"  {'error'.ljust(10)}  {r.error.get('type')}: {r.error.get('message')}")
    lines += _section("params", r.params)
    lines += _section("metrics (latest)", r.metrics)
    lines += _section("tags", r.tags)
    if r.note:
        lines += ["note"] + [f"  {line}" for line in r.note.splitlines()]
    if r.datasets:
        lines.append(f"datasets ({len(r.datasets)})")
        lines += [
            f"  {d.name}  role={d.role}"
            + (f"  {d.n_rows}x{d.n_cols}" if d.n_rows is not None else "")
            + (f"  source={d.source}" if d.source else "")
            for d in r.datasets
        ]
    list_artifacts = getattr(store, "list_artifacts", None)
    artifacts = list_artifacts(r.id) if callable(list_artifacts) else []
    if artifacts:
        lines.append(f"artifacts ({len(artifacts)})")
        lines += [f"  {a.name}  {a.size} bytes  {a.format}" for a in artifacts]
    children = runs(parent_id=r.id, include_archived=True)
    if children:
        lines.append(f"children ({len(children)})")
        lines += [f"  {c.short_id}  {c.name or ''}  {c.status}" for c in children]
    print("\n".join(lines), file=file or sys.stdout)
