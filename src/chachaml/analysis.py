"""The verbs that analyse runs: best_run, compare_runs, export_runs, and ``inspect_run`` (print
everything about one run). Deleting and archiving are in ``chachaml.housekeeping``."""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import IO, Any

from chachaml import _display, context
from chachaml.entities import Run
from chachaml.results import Comparison

__all__ = ["best_run", "compare_runs", "export_runs", "inspect_run"]


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
    return context.client().best_run(metric, experiment=experiment, mode=mode, where=where, **filters)


def compare_runs(ids: Iterable[Any]) -> Comparison:
    """Params and latest metrics of these runs side by side (a ``Comparison``).

    ``ids`` are run ids, unique id prefixes or ``Run`` objects (a ``RunList`` works), in the
    order the columns should have. Each of ``params`` and ``metrics`` splits keys into ``same``
    (key -> the shared value), ``differ`` and ``partial`` (key -> values aligned with the runs,
    ``None`` where a run lacks the key).

    Raises:
        InvalidValueError: no runs were given.
        RunNotFoundError: an id matches no run.
    """
    return context.client().compare_runs(ids)


def export_runs(experiment: str | None = None, **filters: Any) -> list[dict[str, Any]]:
    """``runs(experiment, **filters).to_records()``: flat dicts ready for pandas, CSV or JSON.

    Each record has the run attributes (``id``, ``name``, ``status``, ``start_time``, ...) then
    ``params.<key>``, ``metrics.<key>`` (latest values) and ``tags.<key>`` columns, which can
    never overwrite an attribute.
    """
    return context.client().export_runs(experiment=experiment, **filters)


# -- REPL helper ----------------------------------------------------------------------------------
def _value(v: Any) -> str:
    return v if isinstance(v, str) else repr(v)


def _section(title: str, items: dict[str, Any]) -> list[str]:
    if not items:
        return []
    width = max(len(k) for k in items)
    return [f"{title} ({len(items)})"] + [f"  {k.ljust(width)}  {_value(items[k])}" for k in sorted(items)]


def inspect_run(run: Any, *, file: IO[str] | None = None) -> None:
    """Print everything about one run: attributes, params, latest metrics, tags, note, datasets,
    artifacts and child runs. Accepts a ``Run``, an id or a unique id prefix.

    (Named ``inspect`` before issue 8: that name shadowed the stdlib module under
    ``from chachaml import *``; ``chachaml.inspect`` still works, with a DeprecationWarning.)
    """
    client = context.client()
    r = client.get_run(run)
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
    artifacts = client.list_artifacts(r.id)
    if artifacts:
        lines.append(f"artifacts ({len(artifacts)})")
        lines += [f"  {a.name}  {a.size} bytes  {a.format}" for a in artifacts]
    children = client.runs(parent_id=r.id, include_archived=True)
    if children:
        lines.append(f"children ({len(children)})")
        lines += [f"  {c.short_id}  {c.name or ''}  {c.status}" for c in children]
    print("\n".join(lines), file=file or sys.stdout)
