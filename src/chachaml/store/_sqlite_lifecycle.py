"""The lifecycle of data in the SQLite store: deleting runs and experiments, archiving runs.

Deleting is permanent and happens in one transaction: the run rows, their params, tags, metric
points, metric summaries, datasets and artifact rows; children of a deleted run keep living with
``parent_id = NULL``. The run's artifact folder is removed after the commit, so a crash in
between leaves at worst orphan files (which ``gc`` removes), never rows without their bytes.
``_check_deletable`` (the registry) may refuse first: then nothing is deleted.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from chachaml.errors import ExperimentNotFoundError, RunNotFoundError, StoreError
from chachaml.store._sqlite_base import SqliteBase, chunks, marks

if TYPE_CHECKING:
    from chachaml.store._artifact_files import ArtifactFiles

#: Tables whose rows belong to a run through a ``run_id`` column, deleted with it (every
#: connection is migrated to the latest schema before use, so all of them exist).
#: ``model_versions`` is deliberately absent: a run behind a version cannot be deleted.
RUN_TABLES = ("params", "tags", "metrics", "metric_summary", "metric_tiles", "datasets", "artifacts")


class LifecycleMixin(SqliteBase):
    def delete_run(self, run_id: str) -> None:
        """Delete one run and everything it logged (``RunNotFoundError`` if there is none)."""
        with self._tx() as conn:
            if conn.execute("SELECT 1 FROM runs WHERE id = ?", (run_id,)).fetchone() is None:
                raise RunNotFoundError(
                    f"cannot delete run {run_id!r}: no run has this id in {self.uri}; "
                    "list runs with chachaml.runs(include_archived=True)"
                )
            self._delete_runs(conn, [run_id])
        self._remove_run_folders([run_id])

    def delete_experiment(self, name: str) -> int:
        """Delete an experiment and all its runs; the name is free again. Returns the run count."""
        with self._tx() as conn:
            ids = [r[0] for r in conn.execute("SELECT id FROM runs WHERE experiment = ?", (name,))]
            known = conn.execute("SELECT 1 FROM experiments WHERE name = ?", (name,)).fetchone()
            if known is None and not ids:
                raise ExperimentNotFoundError(
                    f"cannot delete experiment {name!r}: there is no such experiment in {self.uri}; "
                    "list them with chachaml.experiments()"
                )
            self._delete_runs(conn, ids)
            conn.execute("DELETE FROM experiments WHERE name = ?", (name,))
        self._remove_run_folders(ids)
        return len(ids)

    def archive_runs(
        self, archived: bool, *, experiment: str | None = None, started_before: int | None = None
    ) -> int:
        """Set ``archived`` on matching runs and return how many changed.

        Archiving takes finished runs only (a dead run is reaped to ``killed`` first);
        unarchiving takes every archived run that matches.
        """
        where: list[str] = ["archived = ?"]
        args: list[Any] = [int(not archived)]
        if archived:
            where.append("status <> 'running'")
        if experiment is not None:
            where.append("experiment = ?")
            args.append(experiment)
        if started_before is not None:
            where.append("start_time < ?")
            args.append(started_before)
        with self._tx() as conn:
            self._reap_dead(conn)
            cur = conn.execute(
                f"UPDATE runs SET archived = ? WHERE {' AND '.join(where)}", [int(archived), *args]
            )
            return cur.rowcount

    # -- helpers ---------------------------------------------------------------------------------
    def _delete_runs(self, conn: sqlite3.Connection, run_ids: Sequence[str]) -> None:
        """Delete the rows of these runs inside the caller's transaction."""
        if not run_ids:
            return
        self._check_deletable(conn, run_ids)
        self._fold_in_tx(conn)  # summaries catch up before rows go away
        for chunk in chunks(list(run_ids)):
            m = marks(len(chunk))
            for table in RUN_TABLES:  # fixed names from this module, never user input
                conn.execute(f"DELETE FROM {table} WHERE run_id IN ({m})", chunk)
            conn.execute(f"UPDATE runs SET parent_id = NULL WHERE parent_id IN ({m})", chunk)
            conn.execute(f"DELETE FROM runs WHERE id IN ({m})", chunk)
        # Metric rows have plain rowids: after deleting the highest ones SQLite hands the same
        # rowids out again, below the fold watermark, and the next fold would skip those points.
        # Every remaining row is folded (see _fold_in_tx), so lowering the mark to the highest
        # remaining rowid is exact.
        conn.execute(
            "UPDATE chachaml_meta SET value = min(value, coalesce((SELECT max(rowid) FROM metrics), 0)) "
            "WHERE key = 'summary_rowid'"
        )

    def _files(self) -> ArtifactFiles:
        """Where the artifact bytes are (``ArtifactsMixin`` provides it)."""
        raise NotImplementedError

    def _remove_run_folders(self, run_ids: Sequence[str]) -> None:
        """Remove ``<artifact_root>/<run_id>`` of deleted runs (after the rows are gone)."""
        root = self.artifact_root
        if not root or not run_ids:
            return
        files = self._files()  # a folder, or object storage (docs/adr/0017)
        failed = []
        for run_id in run_ids:
            try:
                files.remove_run(run_id)  # never leaves the location, whatever an id looks like
            except (OSError, StoreError) as exc:
                failed.append(f"{root}/{run_id}: {exc}")
        if failed:
            raise StoreError(
                "the runs were deleted, but some of their artifact files could not be removed ("
                + "; ".join(failed)
                + "); remove them by hand, or run chachaml.gc_artifacts() later"
            )
