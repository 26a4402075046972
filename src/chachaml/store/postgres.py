"""The PostgreSQL backend: ``use_store("postgresql://user:pw@host:5432/db")`` (extra ``postgres``).

Same contract, rules and semantics as the SQLite store (docs/adr/0021-postgresql-backend.md).
The SQL that is engine-neutral is the SQLite store's, shared through the adapter of
``_pg_base`` (run reads, tags, notes, datasets, resuming and ending, the registry, artifacts,
deleting and archiving); this module replaces what differs:

* metric writes: one statement that checks the run is running (``FOR SHARE``: a concurrent
  ``end_run`` waits for it, or it sees the run ended), upserts ``metric_summary`` -- whose row
  lock hands out the next default step, so concurrent writers never pick the same one -- and
  inserts the point; one round trip, one commit;
* run creation and experiments as upserts (no read-then-write race between processes);
* params under the run row's lock, so two processes cannot both "first" log different values;
* search through the PostgreSQL dialect of the query compiler (``_pg_dialect``);
* registry writes under one advisory lock (promotions from many processes serialise, so the
  previous production version is always the one archived), artifact commits and ``gc`` under
  another (``gc`` never takes a file being committed for an orphan).

Artifact bytes live behind the SQLite store's artifact seam (``_artifact_files``, docs/adr/0017):
a local folder or S3-compatible object storage (``s3://bucket/prefix``), chosen by
``artifacts=``, else ``$CHACHAML_ARTIFACTS``, else ``./chachaml-artifacts/`` (SPEC section 10).
Alerts, pipelines and the copy primitives are ``_pg_roles``'.
"""

from __future__ import annotations

import dataclasses
import secrets
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, BinaryIO, cast
from urllib.parse import urlencode, urlsplit, urlunsplit

from chachaml import _downsample
from chachaml._process import Liveness
from chachaml.entities import Artifact, Experiment, GcReport, Metric, ModelVersion, Run
from chachaml.rules import MAX_STEP, no_next_step, no_nul
from chachaml.store import _pg_dialect
from chachaml.store._locations import artifact_root_uri
from chachaml.store._pg_base import ARTIFACT_LOCK, REGISTRY_LOCK, PgConn, _passwords, parse_url
from chachaml.store._pg_roles import _MERGE_SUMMARY, PgRoles, _summaries
from chachaml.store._sqlite_base import chunks, marks
from chachaml.store._sqlite_lifecycle import RUN_TABLES
from chachaml.store.base import MetricIn, NewRun, RunFilter
from chachaml.store.sqlite import _RUN_COLS

__all__ = ["PostgresStore", "open_postgres", "temporary_database"]

DEFAULT_ORDER = "runs.start_time DESC, runs.seq DESC"  # newest first, ties in insertion order

# The hot path (see the module docstring). ``s`` is NULL for "the next step": the summary row's
# last_step + 1, taken under that row's lock; an explicit step below it leaves "latest" alone.
# After MAX_STEP there is no next step: NULL, which the NOT NULL constraint refuses (issue 7).
_LATER = "%(s)s::bigint IS NULL OR excluded.last_step >= ms.last_step"
_INSERT_METRIC = f"""
WITH ok AS (SELECT 1 FROM runs WHERE id = %(r)s AND status = 'running' FOR SHARE),
s AS (
    INSERT INTO metric_summary AS ms
        (run_id, key, last_step, last_value, last_is_nan, last_timestamp, min, max, count)
    SELECT %(r)s, %(k)s, coalesce(%(s)s::bigint, 0), nullif(%(v)s::float8, 'NaN'), %(n)s::int,
           %(t)s::bigint, nullif(%(v)s::float8, 'NaN'), nullif(%(v)s::float8, 'NaN'), 1 FROM ok
    ON CONFLICT (run_id, key) DO UPDATE SET
        last_step = CASE WHEN %(s)s::bigint IS NULL
                         THEN CASE WHEN ms.last_step < {MAX_STEP} THEN ms.last_step + 1 END
                         ELSE greatest(ms.last_step, excluded.last_step) END,
        last_value = CASE WHEN {_LATER} THEN excluded.last_value ELSE ms.last_value END,
        last_is_nan = CASE WHEN {_LATER} THEN excluded.last_is_nan ELSE ms.last_is_nan END,
        last_timestamp = CASE WHEN {_LATER} THEN excluded.last_timestamp ELSE ms.last_timestamp END,
        min = least(ms.min, excluded.min),
        max = greatest(ms.max, excluded.max),
        count = ms.count + 1
    RETURNING ms.last_step
)
INSERT INTO metrics (run_id, key, step, value, timestamp, is_nan)
SELECT %(r)s, %(k)s, coalesce(%(s)s::bigint, s.last_step), %(v)s::float8, %(t)s::bigint, %(n)s::int
FROM s
"""


_FEW = 16  # up to this many points a batch is written point by point (log_metrics)
# The summary rows of keys given a default step, made if missing (last_step -1: "no point yet",
# replaced by the batch's merge) and locked until the batch commits, in key order.
_LOCK_SUMMARIES = """
INSERT INTO metric_summary AS ms
    (run_id, key, last_step, last_value, last_is_nan, last_timestamp, min, max, count)
SELECT ?, k, -1, NULL, 0, 0, NULL, NULL, 0 FROM unnest(?::text[]) AS k ORDER BY k
ON CONFLICT (run_id, key) DO UPDATE SET count = ms.count
RETURNING key, last_step
"""
_INSERT_ROW = "INSERT INTO metrics (run_id, key, step, value, timestamp, is_nan) VALUES (?, ?, ?, ?, ?, ?)"


def _point(run_id: str, key: str, value: float, step: int | None, ts: int) -> dict[str, Any]:
    return {"r": run_id, "k": key, "s": step, "v": value, "t": ts, "n": 1 if value != value else 0}


# Rows of a deleted run beyond the SQLite store's list: its alert events, its applied batch ids.
# metric_tiles is SQLite's (docs/adr/0025): PostgreSQL reads windows from its metrics index.
_RUN_TABLES = (*(t for t in RUN_TABLES if t != "metric_tiles"), "alert_events", "applied_batches")


class PostgresStore(PgRoles):
    """A store in a PostgreSQL database. Open it with ``chachaml.use_store("postgresql://...")``.

    Subclassing ``SqliteStore`` shares its engine-neutral SQL (see the module docstring); every
    method below replaces one whose SQL or locking is SQLite's.
    """

    def __init__(self, target: str, *, is_dead: Liveness | None = None, artifacts: str | None = None) -> None:
        """Open lazily: the first call connects, and migrates the schema if needed.

        Args:
            target: ``postgresql://user:password@host:port/database``; ``?pool_size=N`` sets the
                connections per process (default 4, or ``$CHACHAML_PG_POOL_SIZE``).
            is_dead: liveness of running runs (default: this host's processes are probed, any
                other run is judged by its heartbeat).
            artifacts: where artifact bytes go (a folder, ``file://`` URI or
                ``s3://bucket/prefix``); default ``$CHACHAML_ARTIFACTS``, else ``./chachaml-artifacts``.
        """
        options = parse_url(target)[2]
        location = artifact_root_uri(artifacts or options.get("artifacts"))
        super().__init__(target, is_dead=is_dead, artifacts=location)
        if "artifacts" not in self._options:  # another process reopening uri finds the same place
            extra = ("&" if "?" in self.uri else "?") + urlencode({"artifacts": location})
            self.uri += extra
            if self._target + extra != self.uri:  # the URL has a password: reopen with it here
                _passwords[self.uri] = self._target + extra
        self._legacy = False  # no artifact folder of this store predates store ids

    def _identity(self) -> str:
        if self._store_id is None:
            with self._tx() as conn:
                conn.execute(
                    "INSERT INTO chachaml_meta (key, value) VALUES ('store_id', ?) "
                    "ON CONFLICT (key) DO NOTHING",
                    (secrets.randbits(63),),
                )
                row = conn.execute("SELECT value FROM chachaml_meta WHERE key = 'store_id'").fetchone()
            self._store_id = f"{int(row[0]):016x}"
        return self._store_id

    def _held_artifacts_before_markers(self) -> bool:
        return False

    # -- run lifecycle -------------------------------------------------------------------------
    # -- text PostgreSQL cannot hold: refused by name before the driver fails on it ---------
    def create_run(self, new: NewRun) -> Run:
        no_nul(new.name, "run name")
        _no_nul_tags(new.tags)
        return super().create_run(new)

    def log_batch(
        self,
        run_id: str,
        *,
        params: Mapping[str, str] | None = None,
        metrics: Sequence[MetricIn] = (),
        tags: Mapping[str, str] | None = None,
        overwrite: bool = False,
        batch_id: str | None = None,
    ) -> bool:
        _no_nul_tags(tags)
        return super().log_batch(
            run_id, params=params, metrics=metrics, tags=tags, overwrite=overwrite, batch_id=batch_id
        )

    def set_note(self, run_id: str, note: str) -> None:
        no_nul(note, "the note")
        super().set_note(run_id, note)

    def restore_run(self, run: Run, metrics: Iterable[Metric]) -> bool:
        no_nul(run.name, f"the name of run {run.id}")
        no_nul(run.note, f"the note of run {run.id}")
        _no_nul_tags(run.tags, f" of run {run.id}")
        return super().restore_run(run, metrics)

    def create_experiment(
        self, name: str, description: str | None, owner: str | None, now: int
    ) -> Experiment:
        with self._tx() as conn:
            conn.execute(
                "INSERT INTO experiments (name, description, owner, created) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (name) DO UPDATE SET "
                "description = coalesce(excluded.description, experiments.description), "
                "owner = coalesce(excluded.owner, experiments.owner)",
                (name, description, owner, now),
            )
        return next(e for e in self.experiments() if e.name == name)

    # -- writes --------------------------------------------------------------------------------
    def log_metric(self, run_id: str, key: str, value: float, step: int | None, ts: int) -> None:
        """``log_batch`` of one point: one statement, committed on return (autocommit)."""
        import psycopg

        with self._borrow() as raw:
            try:
                if raw.execute(_INSERT_METRIC, _point(run_id, key, value, step, ts)).rowcount == 1:
                    return
            except psycopg.errors.NotNullViolation as exc:
                raise no_next_step(run_id, key) from exc
            self._raise_not_running(
                cast(Any, PgConn(raw)), run_id, f"log metric {key!r} to"
            )  # the guard refused: gone or not running

    # -- engine hooks of the inherited log_batch ------------------------------------------------
    def _run_row_lock(self, params: bool) -> str:
        # FOR UPDATE serialises param writers of this run (immutability is read-then-write);
        # FOR SHARE keeps a concurrent end_run out until the batch commits.
        return " FOR UPDATE" if params else " FOR SHARE"

    def _seen_batch(self, conn: Any, run_id: str, batch_id: str) -> bool:
        """Record ``batch_id`` as applied to the run (table from schema migration 2); True if it was."""
        cur = conn.execute(
            "INSERT INTO applied_batches (run_id, batch_id) VALUES (?, ?) ON CONFLICT DO NOTHING",
            (run_id, batch_id),
        )
        return cur.rowcount == 0  # type: ignore[no-any-return]

    def _write_metrics(self, conn: Any, run_id: str, metrics: Sequence[MetricIn]) -> None:
        # A few points: one pipelined statement per point, each resolving its own step.
        if len(metrics) <= _FEW:
            self._write_few(conn, run_id, metrics)
            return
        # Many points (a remote store's batch): the summary rows of the keys that need a default
        # step are locked first, in key order (one writer at a time per run and key, as the
        # per-point statement does), the steps resolved here, then plain inserts and one summary
        # merge per key: a few statements per batch instead of a summary upsert per point.
        pg = cast(PgConn, conn)
        implicit = sorted({k for k, _, s, _ in metrics if s is None})
        top: dict[str, int] = {}
        if implicit:
            for key, last in pg.execute(_LOCK_SUMMARIES, (run_id, implicit)).fetchall():
                if last >= 0:
                    top[key] = last
        rows: list[tuple[str, str, int, float, int, int]] = []
        append = rows.append
        for k, v, s, ts in metrics:
            if s is None:
                s = top[k] + 1 if k in top else 0
                if s > MAX_STEP:
                    raise no_next_step(run_id, k)
                top[k] = s
            elif s > top.get(k, -1):
                top[k] = s
            append((run_id, k, s, v, ts, 1 if v != v else 0))
        pg.executemany(_INSERT_ROW, rows)
        pg.executemany(_MERGE_SUMMARY, sorted(_summaries(rows), key=lambda r: r[1]))

    def _write_few(self, conn: Any, run_id: str, metrics: Sequence[MetricIn]) -> None:
        import psycopg

        try:
            with cast(PgConn, conn).raw.cursor() as cur:
                cur.executemany(_INSERT_METRIC, [_point(run_id, k, v, s, ts) for k, v, s, ts in metrics])
        except psycopg.errors.NotNullViolation as exc:  # a key at MAX_STEP got step=None
            keys = sorted({k for k, _, s, _ in metrics if s is None})
            full = (
                self._write()
                .execute(
                    "SELECT min(key) FROM metrics WHERE run_id = ? AND step = ? "
                    f"AND key IN ({marks(len(keys))})",
                    (run_id, MAX_STEP, *keys),
                )
                .fetchone()
            )
            raise no_next_step(run_id, full[0] if full and full[0] else keys[0]) from exc

    # -- reads ---------------------------------------------------------------------------------
    _default_order = DEFAULT_ORDER  # runs.seq for SQLite's rowid

    def _where_sql(self, query: Any) -> tuple[str, list[Any]]:
        return _pg_dialect.compile_where(query)

    def _order_sql(self, order_by: str) -> tuple[str, list[Any]]:
        return _pg_dialect.compile_order(order_by)

    def _select(self, conn: Any, sql: str, args: list[Any]) -> list[Any]:
        """Run one SELECT that may carry a compiled user query in a READ ONLY transaction: values
        are bound and identifiers whitelisted, and even a compiler bug could not make it write."""
        raw = cast(PgConn, conn).raw
        with raw.transaction():
            raw.execute("SET TRANSACTION READ ONLY")
            return PgConn(raw).execute(sql, args).fetchall()

    def find_runs(self, flt: RunFilter) -> list[Run]:
        where, args, order = self._compile_filter(flt)  # a bad query raises before connecting
        sql = f"SELECT {_RUN_COLS} FROM runs WHERE {where} ORDER BY {order}"
        if flt.limit is not None:
            sql += " LIMIT ? OFFSET ?"
            args.extend([flt.limit, flt.offset])
        elif flt.offset:
            sql += " OFFSET ?"
            args.append(flt.offset)
        with self._reading() as conn:
            assert conn is not None
            rows = self._select(conn, sql, args)
        return self._lazy_runs(rows)  # params, metrics, ... read on first access (docs/adr/0024)

    def best_run(self, flt: RunFilter, key: str, mode: str) -> Run | None:
        """The matching run with the highest (``max``) or lowest (``min``) value of ``key``;
        NaN is no value; ties go to the run started first, then to the earliest step."""
        col, direction = {"max": ("ms.max", "DESC"), "min": ("ms.min", "ASC")}[mode]
        flt = dataclasses.replace(flt, order_by=None, limit=None, offset=0)
        where, args, _ = self._compile_filter(flt)
        with self._reading() as conn:
            assert conn is not None
            rows = self._select(
                conn,
                f"SELECT runs.id, {col} FROM runs JOIN metric_summary ms "
                "ON ms.run_id = runs.id AND ms.key = ? "
                f"WHERE {col} IS NOT NULL AND {where} "
                f"ORDER BY {col} {direction}, runs.start_time ASC, runs.seq ASC LIMIT 1",
                [key, *args],
            )
            if not rows:
                return None
            run_id, value = rows[0]
            step = conn.execute(
                "SELECT step FROM metrics WHERE run_id = ? AND key = ? AND value = ? "
                "ORDER BY step, seq LIMIT 1",
                (run_id, key, value),
            ).fetchone()
        run = self.get_run(run_id)
        return dataclasses.replace(run, best_value=value, best_step=None if step is None else step[0])

    def metric_history(self, run_id: str, key: str, *, after_step: int | None = None) -> list[Metric]:
        return self._history(run_id, key, after_step, None)

    def _history(self, run_id: str, key: str, after: int | None, before: int | None) -> list[Metric]:
        """The points of one key with ``after < step < before`` (each bound optional), in order."""
        sql = (
            "SELECT CASE is_nan WHEN 0 THEN value END, step, timestamp FROM metrics "
            "WHERE run_id = ? AND key = ?"
        )
        args: list[Any] = [run_id, key]
        if after is not None:
            sql += " AND step > ?"
            args.append(after)
        if before is not None:
            sql += " AND step < ?"
            args.append(before)
        with self._reading() as conn:
            assert conn is not None
            rows = conn.execute(sql + " ORDER BY step, seq", args).fetchall()
        return Metric._from_rows(key, rows)  # a NULL value is NaN

    def metric_window(
        self,
        run_id: str,
        key: str,
        *,
        after_step: int | None = None,
        before_step: int | None = None,
        max_points: int | None = None,
    ) -> tuple[list[Metric], int]:
        # The reference path (docs/adr/0025): the window's rows from the (run_id, key, step)
        # index, downsampled in Python.
        points = self._history(run_id, key, after_step, before_step)
        return _downsample.window(points, None, None, max_points)

    # -- the lifecycle of data -----------------------------------------------------------------
    def _delete_runs(self, conn: Any, run_ids: Sequence[str]) -> None:
        """Delete the rows of these runs inside the caller's transaction.

        The run rows are locked first: a metric write holds its run row ``FOR SHARE`` until it
        commits, so no point can slip in after its run's points were deleted.
        """
        if not run_ids:
            return
        for chunk in chunks(list(run_ids)):
            conn.execute(f"SELECT 1 FROM runs WHERE id IN ({marks(len(chunk))}) FOR UPDATE", chunk)
        self._check_deletable(conn, run_ids)
        for chunk in chunks(list(run_ids)):
            m = marks(len(chunk))
            for table in _RUN_TABLES:  # fixed names, never user input
                conn.execute(f"DELETE FROM {table} WHERE run_id IN ({m})", chunk)
            conn.execute(f"UPDATE runs SET parent_id = NULL WHERE parent_id IN ({m})", chunk)
            conn.execute(f"DELETE FROM runs WHERE id IN ({m})", chunk)

    def _check_deletable(self, conn: Any, run_ids: Sequence[str]) -> None:
        # Under the registry's lock: a version cannot be registered on a run being deleted.
        conn.execute("SELECT pg_advisory_xact_lock(?)", (REGISTRY_LOCK,))
        super()._check_deletable(conn, run_ids)

    # -- artifacts: commits and gc exclude each other ------------------------------------------
    def log_artifact(
        self,
        run_id: str,
        name: str,
        data: bytes | BinaryIO,
        *,
        format: str,
        content_type: str,
        created: int,
        overwrite: bool = False,
    ) -> Artifact:
        with self._locking(ARTIFACT_LOCK, shared=True):
            return super().log_artifact(
                run_id, name, data, format=format, content_type=content_type, created=created,
                overwrite=overwrite,
            )  # fmt: skip

    def gc_artifacts(self, *, dry_run: bool = False) -> GcReport:
        with self._locking(ARTIFACT_LOCK):
            return super().gc_artifacts(dry_run=dry_run)

    # -- the registry: one writer at a time ----------------------------------------------------
    def register_model(
        self,
        name: str,
        *,
        run_id: str,
        artifact: str,
        stage: str = "none",
        description: str | None = None,
        who: str | None = None,
        now: int,
    ) -> ModelVersion:
        with self._locking(REGISTRY_LOCK):
            return super().register_model(
                name, run_id=run_id, artifact=artifact, stage=stage, description=description,
                who=who, now=now,
            )  # fmt: skip

    def promote(
        self, name: str, version: int, stage: str, *, who: str | None = None, now: int
    ) -> ModelVersion:
        with self._locking(REGISTRY_LOCK):
            return super().promote(name, version, stage, who=who, now=now)

    def set_alias(
        self, name: str, alias: str, version: int, *, who: str | None = None, now: int
    ) -> ModelVersion:
        with self._locking(REGISTRY_LOCK):
            return super().set_alias(name, alias, version, who=who, now=now)

    def delete_alias(self, name: str, alias: str, *, who: str | None = None, now: int) -> bool:
        with self._locking(REGISTRY_LOCK):
            return super().delete_alias(name, alias, who=who, now=now)

    def set_model_description(
        self, name: str, description: str | None, *, version: int | None = None, now: int
    ) -> None:
        with self._locking(REGISTRY_LOCK):
            super().set_model_description(name, description, version=version, now=now)


def open_postgres(
    target: str, *, is_dead: Liveness | None = None, artifacts: str | None = None
) -> PostgresStore:
    """The ``postgresql`` / ``postgres`` factory of the scheme registry."""
    return PostgresStore(_passwords.get(target, target), is_dead=is_dead, artifacts=artifacts)


@contextmanager
def temporary_database(url: str) -> Iterator[str]:
    """A fresh, empty database on the server ``url`` points at, dropped on exit (for tests).

    ``CREATE DATABASE`` with a unique name through ``url``'s own database (which must exist and
    allow it), yielding the URL of the new one; on exit its connections are ended and it is
    dropped. The pytest fixture ``chachaml_store`` uses it when ``CHACHAML_TEST_STORE`` is a
    PostgreSQL URL, so each test gets its own database.
    """
    from chachaml._optional import require

    psycopg = require("psycopg", "postgres")
    conninfo, _, _ = parse_url(url)
    parts = urlsplit(conninfo)
    name = f"chachaml_test_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(conninfo, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')  # a fixed alphabet: nothing to quote
    try:
        yield urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))
    finally:
        with psycopg.connect(conninfo, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _no_nul_tags(tags: Mapping[str, str] | None, where: str = "") -> None:
    for key, value in (tags or {}).items():
        no_nul(value, f"the value of tag {key!r}{where}")
