"""Writing records copied from another store, with their ids and times (``chachaml migrate``).

The ordinary writes stamp the clock, pick steps and version numbers, and refuse finished runs;
a copy must keep what the source recorded. Three primitives, one per role (docs/adr/0017):

* ``restore_run`` -- a finished run with everything it logged except artifacts, in ONE
  transaction: a copy interrupted anywhere leaves the run either absent or whole;
* ``restore_artifact`` -- one artifact's bytes and row (bytes first, as ``log_artifact``),
  whatever the run's status; the same bytes again are a no-op;
* ``restore_model`` -- a model with its versions, aliases and history, in one transaction.

Each returns without writing when the record is already there, so running a copy again
writes only what is missing. The SQL is the engine-neutral subset (``?`` placeholders,
``ON CONFLICT``), so a store built on this one's SQL (PostgreSQL) inherits these methods.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, BinaryIO

from chachaml import entities
from chachaml._values import encode_param
from chachaml.entities import Metric, Run
from chachaml.errors import ArtifactNotFoundError, InvalidValueError, RunNotFoundError, StoreError
from chachaml.store._sqlite_artifacts import _COLS, ArtifactsMixin

if TYPE_CHECKING:  # defined on first use (chachaml._registry_entities)
    from chachaml.entities import Artifact, Model, ModelEvent

_BATCH = 5000  # metric rows per executemany: a long history streams in, never whole


class RestoreMixin(ArtifactsMixin):
    """``restore_run``, ``restore_artifact`` and ``restore_model`` (see the module docstring)."""

    def restore_run(self, run: Run, metrics: Iterable[Metric]) -> bool:
        """Write the finished ``run`` and its metric points as given; False if the id exists.

        Raises:
            InvalidValueError: the run is still ``running`` (copy it once it has ended).
            RunNotFoundError: its ``parent_id`` names no run here (copy the parent first).
        """
        if run.status == "running":
            raise InvalidValueError(
                f"run {run.id[:8]} is still running; only finished runs are copied (end it, or "
                "wait for it to end, then copy again)"
            )
        with self._tx() as conn:
            if conn.execute("SELECT 1 FROM runs WHERE id = ?", (run.id,)).fetchone() is not None:
                return False
            if run.parent_id is not None and (
                conn.execute("SELECT 1 FROM runs WHERE id = ?", (run.parent_id,)).fetchone() is None
            ):
                raise RunNotFoundError(
                    f"cannot copy run {run.id[:8]}: its parent run {run.parent_id!r} is not in "
                    f"{self.uri}; copy the parent first"
                )
            conn.execute(
                "INSERT INTO experiments (name, created) VALUES (?, ?) ON CONFLICT (name) DO NOTHING",
                (run.experiment, run.start_time),
            )
            conn.execute(
                "INSERT INTO runs (id, experiment, name, status, start_time, end_time, parent_id, "
                "created_by, note, error, env, archived) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    run.id,
                    run.experiment,
                    run.name,
                    run.status,
                    run.start_time,
                    run.end_time,
                    run.parent_id,
                    run.created_by,
                    run.note,
                    None if run.error is None else json.dumps(run.error),
                    json.dumps(run.env, default=str),
                    int(run.archived),
                ),
            )
            if run.params:
                conn.executemany(
                    "INSERT INTO params (run_id, key, value) VALUES (?, ?, ?)",
                    [(run.id, k, encode_param(v)) for k, v in run.params.items()],
                )
            if run.tags:
                conn.executemany(
                    "INSERT INTO tags (run_id, key, value) VALUES (?, ?, ?)",
                    [(run.id, k, v) for k, v in run.tags.items()],
                )
            for d in run.datasets:
                conn.execute(
                    "INSERT INTO datasets (run_id, name, role, source, n_rows, n_cols, features, "
                    "digest, created) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        run.id,
                        d.name,
                        d.role,
                        d.source,
                        d.n_rows,
                        d.n_cols,
                        None if d.features is None else json.dumps(d.features),
                        d.digest,
                        d.created if d.created is not None else run.start_time,
                    ),
                )
            # The value is bound as given, NaN included (SQLite stores it as NULL by itself, a
            # PostgreSQL float8 keeps it), with is_nan saying which: as the ordinary writes do.
            batch: list[tuple[str, str, int, float, int, int]] = []
            for m in metrics:
                batch.append((run.id, m.key, m.step, m.value, m.timestamp, 1 if m.value != m.value else 0))
                if len(batch) >= _BATCH:
                    self._insert_points(conn, batch)
                    batch = []
            self._insert_points(conn, batch)
        return True

    @staticmethod
    def _insert_points(conn: sqlite3.Connection, rows: list[tuple[str, str, int, float, int, int]]) -> None:
        if rows:
            conn.executemany(
                "INSERT INTO metrics (run_id, key, step, value, timestamp, is_nan) VALUES (?, ?, ?, ?, ?, ?)",
                rows,
            )

    def restore_artifact(self, artifact: Artifact, data: bytes | BinaryIO) -> Artifact:
        """Store an artifact copied from another store: its bytes (streamed, durable before the
        row) and its metadata as given, whatever the run's status.

        Returns the stored ``Artifact``; when the same bytes are already there nothing is written.

        Raises:
            RunNotFoundError: the run is not here (copy it first).
            ConflictError: other bytes are stored under that name.
            StoreError: the bytes read do not have ``artifact.sha256`` (a corrupt copy); no row.
        """
        run_id, name = artifact.run_id, artifact.name
        files = self._files()
        files.final_path(run_id, name)  # InvalidValueError before anything is written
        existing = self._restorable(run_id, name)
        if existing is not None and self._unchanged(existing, artifact.sha256, artifact.format, False):
            return existing
        self._claim(files)
        staged = files.stage(run_id, name, data)
        try:
            if staged.sha256 != artifact.sha256 or staged.size != artifact.size:
                raise StoreError(
                    f"copying artifact {name!r} of run {run_id[:8]}: the bytes read have sha256 "
                    f"{staged.sha256} ({staged.size} bytes), the source recorded {artifact.sha256} "
                    f"({artifact.size} bytes); the source's file changed or is damaged, nothing was "
                    "recorded"
                )
            with self._tx() as conn:
                existing = self._restorable(run_id, name, conn)
                if existing is not None and self._unchanged(existing, staged.sha256, artifact.format, False):
                    return existing
                self._check_folder_clash(conn, run_id, name)
                files.commit(staged, name)  # the bytes are in place before the row is written
                path = f"{run_id}/{name}"
                conn.execute(
                    f"INSERT INTO artifacts ({_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        run_id,
                        name,
                        path,
                        staged.size,
                        staged.sha256,
                        artifact.content_type,
                        artifact.format,
                        artifact.created,
                    ),
                )
        finally:
            files.discard(staged)  # a no-op once committed
        return entities.Artifact(
            run_id,
            name,
            staged.size,
            staged.sha256,
            artifact.content_type,
            artifact.format,
            artifact.created,
            path,
        )

    def _restorable(self, run_id: str, name: str, conn: sqlite3.Connection | None = None) -> Artifact | None:
        """The stored row for ``name`` (or None); ``RunNotFoundError`` if the run is not here."""
        if conn is None:
            try:
                return self.get_artifact(run_id, name)
            except ArtifactNotFoundError:
                return None
        if conn.execute("SELECT 1 FROM runs WHERE id = ?", (run_id,)).fetchone() is None:
            raise RunNotFoundError(f"cannot copy artifact {name!r}: run {run_id!r} is not in {self.uri}")
        found = conn.execute(
            f"SELECT {_COLS} FROM artifacts WHERE run_id = ? AND name = ?", (run_id, name)
        ).fetchone()
        if found is None:
            return None
        return entities.Artifact(
            found[0], found[1], found[3], found[4], found[5], found[6], found[7], found[2]
        )

    def restore_model(self, model: Model, history: Sequence[ModelEvent]) -> bool:
        """Write a model copied from another store -- description and times, every version as
        given (number, run, artifact, stage, description, created, created_by), aliases and
        history -- in one transaction; False (nothing written) if a model of that name exists.

        Raises:
            RunNotFoundError / ArtifactNotFoundError: a version's run or artifact is not here.
        """
        with self._tx() as conn:
            if conn.execute("SELECT 1 FROM models WHERE name = ?", (model.name,)).fetchone() is not None:
                return False
            for v in model.versions:
                if (
                    conn.execute(
                        "SELECT 1 FROM artifacts WHERE run_id = ? AND name = ?", (v.run_id, v.artifact)
                    ).fetchone()
                    is None
                ):
                    raise ArtifactNotFoundError(
                        f"cannot copy model {model.name!r} version {v.version}: run {v.run_id[:8]} "
                        f"has no artifact {v.artifact!r} in {self.uri}; copy the run first"
                    )
            conn.execute(
                "INSERT INTO models (name, description, created, updated) VALUES (?, ?, ?, ?)",
                (model.name, model.description, model.created, model.updated),
            )
            for v in model.versions:
                conn.execute(
                    "INSERT INTO model_versions (model, version, run_id, artifact, stage, description, "
                    "created, created_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        model.name,
                        v.version,
                        v.run_id,
                        v.artifact,
                        v.stage,
                        v.description,
                        v.created,
                        v.created_by,
                    ),
                )
            for alias, version in sorted(model.aliases.items()):
                conn.execute(
                    "INSERT INTO model_aliases (model, alias, version) VALUES (?, ?, ?)",
                    (model.name, alias, version),
                )
            for e in history:
                conn.execute(
                    "INSERT INTO registry_events (model, version, kind, alias, from_value, to_value, "
                    "who, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (model.name, e.version, e.kind, e.alias, e.from_value, e.to_value, e.who, e.at),
                )
        return True
