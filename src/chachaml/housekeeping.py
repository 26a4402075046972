"""The lifecycle of data: delete_run, delete_experiment, archive_runs, unarchive_runs and
gc_artifacts. Each is a delegation to the ``Client`` of the current store."""

from __future__ import annotations

from typing import Any

from chachaml import context
from chachaml.entities import GcReport

__all__ = ["archive_runs", "delete_experiment", "delete_run", "gc_artifacts", "unarchive_runs"]


def delete_run(run: Any) -> None:
    """Delete a run for good: its params, metrics, tags, datasets, artifacts and their files.

    Child runs are kept; their ``parent_id`` becomes None. Accepts a ``Run``, an id or a
    unique id prefix.

    Raises:
        RunNotFoundError: no run has this id.
        ConflictError: the run backs a registered model version (archive it instead).
    """
    context.client().delete_run(run)


def delete_experiment(name: str) -> int:
    """Delete an experiment and all its runs for good (as ``delete_run``); returns how many runs.

    The name is free again afterwards: a new run or ``create_experiment`` starts it afresh.

    Raises:
        ExperimentNotFoundError: there is no such experiment.
        ConflictError: one of its runs backs a registered model version; nothing is deleted.
    """
    return context.client().delete_experiment(name)


def archive_runs(older_than_days: float | None = None, *, experiment: str | None = None) -> int:
    """Hide finished runs that started ``older_than_days`` ago or earlier from default listings.

    Returns how many runs were archived. Archived runs stay readable by id and are listed by
    ``runs(include_archived=True)``; ``unarchive_runs`` brings them back. Running runs are
    never archived. With no arguments, every finished run is archived.
    """
    return context.client().archive_runs(older_than_days=older_than_days, experiment=experiment)


def unarchive_runs(older_than_days: float | None = None, *, experiment: str | None = None) -> int:
    """Undo ``archive_runs`` for archived runs matching the same filters; returns how many."""
    return context.client().unarchive_runs(older_than_days=older_than_days, experiment=experiment)


def gc_artifacts(*, dry_run: bool = False) -> GcReport:
    """Remove orphan artifact files of the current store and report what was freed.

    Orphans are files without a metadata row (a crash between writing the bytes and recording
    them, or a run deleted while its files could not be removed) and abandoned temporary files.
    With ``dry_run=True`` nothing is removed. The report also lists recorded artifacts whose
    file is missing. (Named ``gc`` before issue 8, which shadowed the stdlib module.)
    """
    return context.client().gc_artifacts(dry_run=dry_run)
