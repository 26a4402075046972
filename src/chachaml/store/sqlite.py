"""The default backend: one SQLite file in WAL mode (docs/adr/0002, 0005).

Durability: every public write is one transaction, committed before the call returns
(``synchronous=NORMAL`` in WAL mode: a killed process loses nothing that was committed).
Concurrency: several processes may open, migrate and write the same file at once; writers
serialise on SQLite's lock with a busy timeout, and read-then-write sequences use
``BEGIN IMMEDIATE``. Threads share one connection behind a lock.
"""

from __future__ import annotations

import json
import sqlite3
import weakref
from collections.abc import Mapping, Sequence
from typing import Any

from chachaml._process import Liveness
from chachaml.entities import Dataset, Experiment, Metric, Run
from chachaml.errors import ConflictError, InvalidValueError, RunNotFoundError
from chachaml.rules import (
    MAX_STEP,
    PREFIX_CANDIDATES,
    next_step,
    no_next_step,
    param_conflict,
    resolve_prefix,
)
from chachaml.store import _sqlite_tiles as _tiles
from chachaml.store._sqlite_automation import AutomationMixin
from chachaml.store._sqlite_base import SqliteBase, _rollback, chunks, marks, point_value
from chachaml.store._sqlite_env import EnvReader, encode_env, store_packages
from chachaml.store._sqlite_journal import BASE as _JBASE
from chachaml.store._sqlite_journal import pack_record as _pack_record
from chachaml.store._sqlite_lifecycle import LifecycleMixin
from chachaml.store._sqlite_query import QueryMixin
from chachaml.store._sqlite_restore import RestoreMixin
from chachaml.store._sqlite_runs import RUN_COLS, LazyFields, assemble, lazy_runs, load_pending
from chachaml.store.base import MetricIn, NewRun, Owner, RunFilter

# Metric rows bind the value as given and is_nan as 1 or 0: SQLite stores a NaN float as NULL
# by itself (and a None value still fails the CHECK constraint, as it must). Only exact int,
# float and str parameters skip sqlite3's adapter lookup: a bool or None costs ~0.5 µs more.
# The hot path: one guarded statement, committed on return (autocommit). The EXISTS guard makes
# "never log to a finished run" hold across processes: for a run that is not running it yields a
# NULL step, which the NOT NULL constraint refuses (IntegrityError), so nothing is written. The
# step default is read under the same write lock, so two writers never pick the same step.
# VALUES, not INSERT ... SELECT: a SELECT that reads the table it inserts into makes SQLite
# stage the row in a temporary table first, which cost ~15 µs per call (benchmarks/README.md).
# The step: as given, else one past the highest step of this key in this run, else 0
# (the rule is chachaml.rules.next_step; here it is spelled in SQL to run inside the insert).
# At the largest 64-bit step there is no next one: SQLite's step + 1 would silently become a
# float, so it gives NULL instead (the third term is 0 only when the key has no point at all),
# the NOT NULL constraint refuses the row and _refuse_step_overflow names the cause (issue 7).
# Placeholders are plain ``?`` with the values repeated in text order, not numbered ``?1``:
# Python 3.12 warns when numbered (named) placeholders are bound to a sequence, and 3.14 refuses.
# A dict for named placeholders would cost a lookup per parameter on the hot path.
_STEP = (
    f"COALESCE(?, (SELECT CASE WHEN step < {MAX_STEP} THEN step + 1 END FROM metrics "
    "WHERE run_id = ? AND key = ? ORDER BY step DESC LIMIT 1), "
    "(SELECT 0 WHERE NOT EXISTS (SELECT 1 FROM metrics WHERE run_id = ? AND key = ?)))"
)
_INSERT_METRIC = f"""
INSERT INTO metrics (run_id, key, step, value, timestamp, is_nan)
VALUES (?, ?,
        CASE WHEN EXISTS (SELECT 1 FROM runs WHERE id = ? AND status = 'running') THEN {_STEP} END,
        ?, ?, ?)
"""
# The same inside a write transaction that checked the run's status already.
_INSERT_METRIC_NEXT = f"""
INSERT INTO metrics (run_id, key, step, value, timestamp, is_nan)
VALUES (?, ?, {_STEP}, ?, ?, ?)
"""
_SQL_STEPS = 64  # up to this many points per batch, steps are resolved by _INSERT_METRIC_NEXT
_INSERT_METRIC_STEP = (
    "INSERT INTO metrics (run_id, key, step, value, timestamp, is_nan) VALUES (?, ?, ?, ?, ?, ?)"
)

_RUN_COLS = RUN_COLS  # (PostgresStore imports it from here)
_PAGE_COLS = ", ".join(f"runs.{c.strip()}" for c in RUN_COLS.split(","))


def _refuse_step_overflow(conn: sqlite3.Connection, run_id: str, keys: Sequence[str]) -> None:
    """Raise ``InvalidValueError`` if one of ``keys`` already holds the largest 64-bit step, so
    ``step=None`` has no next step; return quietly if none does (another cause failed)."""
    for key in dict.fromkeys(keys):
        row = conn.execute(
            "SELECT 1 FROM metrics WHERE run_id = ? AND key = ? AND step = ?", (run_id, key, MAX_STEP)
        ).fetchone()
        if row is not None:
            raise no_next_step(run_id, key)


class SqliteStore(RestoreMixin, AutomationMixin, QueryMixin, LifecycleMixin, SqliteBase):
    """A store in one SQLite file (or in memory). Open it with ``chachaml.use_store(path)``.

    This class holds run lifecycle, logging and run reads; queries, artifacts and the model
    registry live in their mixins (``_sqlite_query``, ``_sqlite_artifacts``), deleting and
    archiving in ``_sqlite_lifecycle``, alerts and pipelines in ``_sqlite_automation``, copies
    with their ids and times in ``_sqlite_restore`` (whose mixin brings the artifacts one).
    """

    @property
    def _env_reader(self) -> EnvReader:
        """Package lists decoded so far, by digest (``_sqlite_env``); made on first use."""
        reader: EnvReader | None = self.__dict__.get("_envs")
        if reader is None:
            reader = self.__dict__["_envs"] = EnvReader()
        return reader

    # -- run lifecycle -------------------------------------------------------------------------
    def create_run(self, new: NewRun) -> Run:
        with self._tx() as conn:
            if (
                new.parent_id is not None
                and conn.execute("SELECT 1 FROM runs WHERE id = ?", (new.parent_id,)).fetchone() is None
            ):
                raise RunNotFoundError(
                    f"parent run {new.parent_id!r} does not exist; pass the id of an existing run "
                    "as parent_id, or parent_id=None"
                )
            # Portable SQL (SQLite and PostgreSQL, which inherits this method): a taken id is a
            # row not inserted, found without a lookup first (one statement less).
            conn.execute(
                "INSERT INTO experiments (name, created) VALUES (?, ?) ON CONFLICT (name) DO NOTHING",
                (new.experiment, new.start_time),
            )
            env, digest, packages = encode_env(new.env)  # the package list once (docs/adr/0018)
            cur = conn.execute(
                "INSERT INTO runs (id, experiment, name, status, start_time, parent_id, created_by, "
                "env, env_packages, host, pid, proc_start, heartbeat) "
                "VALUES (?, ?, ?, 'running', ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING",
                (
                    new.id,
                    new.experiment,
                    new.name,
                    new.start_time,
                    new.parent_id,
                    new.created_by,
                    env,
                    digest,
                    new.owner.host,
                    new.owner.pid,
                    new.owner.proc_start,
                    new.start_time,
                ),
            )
            if cur.rowcount != 1:
                raise ConflictError(
                    f"a run with id {new.id!r} already exists; resume it with "
                    f"start_run(run_id={new.id!r}) or let chachaml choose a new id"
                )
            known: set[str] = self.__dict__.setdefault("_stored_digests", set())
            if digest not in known:  # (rows of env_packages are never deleted)
                store_packages(conn, digest, packages)
            if new.tags:
                conn.executemany(
                    "INSERT INTO tags (run_id, key, value) VALUES (?, ?, ?)",
                    [(new.id, k, v) for k, v in new.tags.items()],
                )
        if digest is not None:
            known.add(digest)  # committed: later runs of this store skip the insert
        return Run(
            id=new.id,
            experiment=new.experiment,
            status="running",
            start_time=new.start_time,
            name=new.name,
            parent_id=new.parent_id,
            created_by=new.created_by,
            tags=dict(new.tags),
            env=dict(new.env),
        )

    def resume_run(self, run_id: str, owner: Owner, now: int) -> Run:
        if self._journal is not None:
            self._journal.refused.pop(run_id, None)
        with self._tx() as conn:
            cur = conn.execute(
                "UPDATE runs SET status = 'running', end_time = NULL, error = NULL, host = ?, "
                "pid = ?, proc_start = ?, heartbeat = ? WHERE id = ?",
                (owner.host, owner.pid, owner.proc_start, now, run_id),
            )
            if cur.rowcount != 1:
                raise RunNotFoundError(
                    f"cannot resume run {run_id!r}: no run has this id; check the id with "
                    "chachaml.runs(), or start a new run without run_id"
                )
        return self.get_run(run_id)

    def end_run(
        self, run_id: str, status: str, end_time: int, error: Mapping[str, str] | None = None
    ) -> bool:
        with self._tx() as conn:
            cur = conn.execute(
                "UPDATE runs SET status = ?, end_time = ?, error = ? WHERE id = ? AND status = 'running'",
                (status, end_time, json.dumps(dict(error)) if error else None, run_id),
            )
        if self._journal is not None:
            self._journal.forget_run(run_id)  # the next log call to it checks (and is refused)
        return cur.rowcount == 1

    def heartbeat(self, run_ids: Sequence[str], now: int) -> None:
        if not run_ids:
            return
        with self._tx() as conn:
            for chunk in chunks(list(run_ids)):
                conn.execute(
                    f"UPDATE runs SET heartbeat = ? WHERE status = 'running' AND id IN ({marks(len(chunk))})",
                    (now, *chunk),
                )

    # -- writes ----------------------------------------------------------------------------
    def log_metric(self, run_id: str, key: str, value: float, step: int | None, ts: int) -> None:
        """Fast path of ``log_batch`` for a single point: one record copied into the journal
        (docs/adr/0023), else one autocommitted statement."""
        j = self._journal
        if j is not None:
            ref = j.refs.get((run_id, key))  # present: the run is running, the key is fine
            if ref is not None and (step is None or step < MAX_STEP):
                with j.lock:
                    seg = j.seg
                    i = seg.next
                    if i < seg.capacity and j.refs.get((run_id, key)) == ref:
                        if step is None:
                            _pack_record(seg.mm, _JBASE + (i << 5), 0, value, ts, ref | 1, i + 1)
                        else:
                            _pack_record(seg.mm, _JBASE + (i << 5), step, value, ts, ref, i + 1)
                        seg.next = i + 1
                        return
        if self._journal_points(run_id, ((key, value, step, ts),)):
            return
        with self._lock:
            conn = self._write()
            self._drain_journal()  # journaled points first (logging order)
            try:
                nan = 1 if value != value else 0  # an int: a bool would cost sqlite3's adapter lookup
                args = (run_id, key, run_id, step, run_id, key, run_id, key, value, ts, nan)
                conn.execute(_INSERT_METRIC, args)
                return
            except sqlite3.IntegrityError as exc:  # the guard refused: the run is not running
                refused = exc
            except sqlite3.Error as exc:
                raise self._error(exc) from exc
            if step is None:  # or there is no next step (see _STEP)
                _refuse_step_overflow(conn, run_id, [key])
            self._raise_not_running(conn, run_id, f"log metric {key!r} to", refused)

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
        if len(metrics) == 1 and not params and not tags and batch_id is None:
            self.log_metric(run_id, *metrics[0])
            return True
        if metrics and not params and not tags and batch_id is None and self._journal_points(run_id, metrics):
            return True
        with self._tx() as conn:
            row = conn.execute(
                f"SELECT status FROM runs WHERE id = ?{self._run_row_lock(bool(params))}", (run_id,)
            ).fetchone()
            if batch_id is not None and row is not None and self._seen_batch(conn, run_id, batch_id):
                return False  # a resent batch (docs/adr/0020): applied once, in its own transaction
            if row is None or (row[0] != "running" and (params or metrics)):
                self._raise_not_running(conn, run_id, "log params or metrics to")
            if params:
                self._write_params(conn, run_id, params, overwrite)
            if metrics:
                self._write_metrics(conn, run_id, metrics)
            if tags:
                conn.executemany(
                    "INSERT INTO tags (run_id, key, value) VALUES (?, ?, ?) "
                    "ON CONFLICT (run_id, key) DO UPDATE SET value = excluded.value",
                    [(run_id, k, v) for k, v in tags.items()],
                )
        return True

    # -- engine hooks of log_batch (PostgreSQL overrides them) --------------------------------
    def _run_row_lock(self, params: bool) -> str:
        """What follows the run-row SELECT of a batch: nothing here (BEGIN IMMEDIATE holds the
        database's write lock for the whole transaction)."""
        return ""

    def _seen_batch(self, conn: sqlite3.Connection, run_id: str, batch_id: str) -> bool:
        """Record ``batch_id`` as applied to the run in this transaction; True if it was already.

        The table is made on first use (``IF NOT EXISTS``) rather than by a schema migration, so
        databases that never see a remote client are unchanged. Rows outlive a deleted run; that is
        harmless (ids are uuids and the run id is part of the key).
        """
        conn.execute(
            "CREATE TABLE IF NOT EXISTS applied_batches (run_id TEXT NOT NULL, batch_id TEXT NOT NULL, "
            "PRIMARY KEY (run_id, batch_id)) WITHOUT ROWID"
        )
        cur = conn.execute(
            "INSERT OR IGNORE INTO applied_batches (run_id, batch_id) VALUES (?, ?)", (run_id, batch_id)
        )
        return cur.rowcount == 0

    def _write_params(
        self, conn: sqlite3.Connection, run_id: str, params: Mapping[str, str], overwrite: bool
    ) -> None:
        keys = list(params)
        existing: dict[str, str] = {}
        for chunk in chunks(keys):
            existing.update(
                conn.execute(
                    f"SELECT key, value FROM params WHERE run_id = ? AND key IN ({marks(len(chunk))})",
                    (run_id, *chunk),
                ).fetchall()
            )
        if not overwrite:
            for k in keys:
                old = existing.get(k)
                conflict = None if old is None else param_conflict(run_id, k, old, params[k])
                if conflict is not None:
                    raise conflict
        conn.executemany(
            "INSERT INTO params (run_id, key, value) VALUES (?, ?, ?) "
            "ON CONFLICT (run_id, key) DO UPDATE SET value = excluded.value",
            [(run_id, k, v) for k, v in params.items() if k not in existing or overwrite],
        )

    def _write_metrics(self, conn: sqlite3.Connection, run_id: str, metrics: Sequence[MetricIn]) -> None:
        # Points are written in the order given: an implicit step continues after an explicit one
        # logged before it in the same batch, and rowid order stays logging order (ties in "latest").
        # Implicit steps are resolved here, under the write lock, so writers in other processes
        # (batched() flushes included) never pick the same step.
        if len(metrics) <= _SQL_STEPS:
            # A few points (log_metrics): SQLite resolves each step=None as it inserts the row,
            # which costs less than a lookup statement per key.
            try:
                conn.executemany(
                    _INSERT_METRIC_NEXT,
                    [
                        (run_id, k, s, run_id, k, run_id, k, v, ts, 1 if v != v else 0)
                        for k, v, s, ts in metrics
                    ],
                )
            except sqlite3.IntegrityError:  # the run is running (checked): no next step?
                _refuse_step_overflow(conn, run_id, [k for k, _, s, _ in metrics if s is None])
                raise
            return
        # Many points (a batched() flush): one lookup per implicit key, then plain inserts.
        top: dict[str, int] = {}  # highest step per key: this batch's, and the database's once looked up
        looked: set[str] = set()
        rows: list[tuple[str, str, int, float, int, int]] = []
        append = rows.append
        for k, v, s, ts in metrics:
            if s is None:
                if k not in looked:
                    looked.add(k)
                    db = conn.execute(
                        "SELECT max(step) FROM metrics WHERE run_id = ? AND key = ?", (run_id, k)
                    ).fetchone()[0]
                    if db is not None and db > top.get(k, -1):
                        top[k] = db
                s = next_step(top.get(k))
                if s > MAX_STEP:
                    raise no_next_step(run_id, k)
                top[k] = s
            elif s > top.get(k, -1):
                top[k] = s
            append((run_id, k, s, v, ts, 1 if v != v else 0))
        conn.executemany(_INSERT_METRIC_STEP, rows)

    def delete_tag(self, run_id: str, key: str) -> None:
        with self._tx() as conn:
            self._require_run(conn, run_id)
            conn.execute("DELETE FROM tags WHERE run_id = ? AND key = ?", (run_id, key))

    def set_note(self, run_id: str, note: str) -> None:
        with self._tx() as conn:
            self._require_run(conn, run_id)
            conn.execute("UPDATE runs SET note = ? WHERE id = ?", (note, run_id))

    def log_dataset(self, run_id: str, dataset: Dataset) -> None:
        with self._tx() as conn:
            st = conn.execute("SELECT status FROM runs WHERE id = ?", (run_id,)).fetchone()
            if st is None or st[0] != "running":
                self._raise_not_running(conn, run_id, "log a dataset to")
            conn.execute(
                "INSERT INTO datasets (run_id, name, role, source, n_rows, n_cols, features, "
                "digest, created) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    run_id,
                    dataset.name,
                    dataset.role,
                    dataset.source,
                    dataset.n_rows,
                    dataset.n_cols,
                    None if dataset.features is None else json.dumps(dataset.features),
                    dataset.digest,
                    dataset.created,
                ),
            )

    def _require_run(self, conn: sqlite3.Connection, run_id: str) -> None:
        if conn.execute("SELECT 1 FROM runs WHERE id = ?", (run_id,)).fetchone() is None:
            raise RunNotFoundError(f"no run has the id {run_id!r}; check it with chachaml.runs()")

    def create_experiment(
        self, name: str, description: str | None, owner: str | None, now: int
    ) -> Experiment:
        with self._tx() as conn:
            row = conn.execute(
                "SELECT description, owner FROM experiments WHERE name = ?", (name,)
            ).fetchone()
            if row is None:
                conn.execute(
                    "INSERT INTO experiments (name, description, owner, created) VALUES (?, ?, ?, ?)",
                    (name, description, owner, now),
                )
            else:
                conn.execute(
                    "UPDATE experiments SET description = coalesce(?, description), "
                    "owner = coalesce(?, owner) WHERE name = ?",
                    (description, owner, name),
                )
        return next(e for e in self.experiments() if e.name == name)

    # -- reads -----------------------------------------------------------------------------
    def get_run(self, run_id: str) -> Run:
        if not isinstance(run_id, str) or not run_id:
            raise InvalidValueError(f"a run id must be a non-empty str, got {run_id!r}")
        with self._reading() as conn:
            rows: list[Any] = []
            if conn is not None:
                rows = conn.execute(f"SELECT {_RUN_COLS} FROM runs WHERE id = ?", (run_id,)).fetchall()
                if not rows:
                    prefix = run_id.lower()
                    rows = conn.execute(
                        f"SELECT {_RUN_COLS} FROM runs WHERE id >= ? AND id < ? LIMIT {PREFIX_CANDIDATES}",
                        (prefix, prefix + "\U0010ffff"),
                    ).fetchall()
            if len(rows) != 1:
                resolve_prefix(run_id, [r[0] for r in rows], self.uri)  # raises: none or several
            assert conn is not None
            return self._assemble(conn, rows)[0]

    def find_runs(self, flt: RunFilter) -> list[Run]:
        self._compile_filter(flt)  # a bad query raises even before the file exists
        with self._reading() as conn:
            if conn is None:
                return []
            # The page's rows in one read-only, planned statement (_sqlite_query).
            return self._lazy_runs(self._page_ids(conn, flt, _PAGE_COLS))

    def _assemble(self, conn: sqlite3.Connection, rows: list[Any]) -> list[Run]:
        """Whole runs from their rows (``get_run``)."""
        return assemble(conn, self._env_reader, rows)

    def _lazy_runs(self, rows: list[Any]) -> list[Run]:
        """Runs from their rows whose params, metrics, tags, env and datasets are read on first
        access, for all of them at once (``find_runs``; docs/adr/0024)."""
        pending: weakref.WeakSet[LazyFields] | None = self.__dict__.get("_pending_fields")
        if pending is None:
            pending = self.__dict__["_pending_fields"] = weakref.WeakSet()
        return lazy_runs(self, rows, pending)

    def close(self) -> None:
        """Close the connection; results of ``find_runs`` not read yet are read first."""
        pending = self.__dict__.get("_pending_fields")
        if pending and not self.closed:
            load_pending(pending)
        super().close()

    def metric_history(self, run_id: str, key: str, *, after_step: int | None = None) -> list[Metric]:
        with self._reading() as conn:
            if conn is None:
                return []
            # A NaN is stored as NULL with is_nan = 1: NULL reads back as NaN (Metric._from_rows).
            sql = (
                "SELECT CASE is_nan WHEN 0 THEN value END, step, timestamp FROM metrics "
                "WHERE run_id = ? AND key = ?"
            )
            args: list[Any] = [run_id, key]
            if after_step is not None:
                sql += " AND step > ?"
                args.append(after_step)
            return Metric._from_rows(key, conn.execute(sql + " ORDER BY step, rowid", args).fetchall())

    def metric_window(
        self,
        run_id: str,
        key: str,
        *,
        after_step: int | None = None,
        before_step: int | None = None,
        max_points: int | None = None,
    ) -> tuple[list[Metric], int]:
        with self._reading() as conn:
            if conn is None:
                return [], 0
            # One snapshot for the several reads; points another process logged since the fold
            # above are folded first, under the write lock, so the tiles hold them (ADR-0025).
            conn.execute("BEGIN")
            try:
                if not self._readonly and _tiles.unfolded(conn, run_id, key):
                    conn.execute("COMMIT")
                    conn.execute("BEGIN IMMEDIATE")
                    self._fold_in_tx(conn)
                found = _tiles.window(conn, run_id, key, after_step, before_step, max_points)
            except BaseException:
                _rollback(conn)
                raise
            conn.execute("COMMIT")
            return found

    def metric_summaries(self, run_id: str) -> dict[str, dict[str, Any]]:
        with self._reading() as conn:
            if conn is None:
                return {}
            return {
                key: {
                    "last": point_value(last, nan),
                    "min": mn,
                    "max": mx,
                    "count": n,
                    "last_step": step,
                }
                for key, last, nan, mn, mx, n, step in conn.execute(
                    "SELECT key, last_value, last_is_nan, min, max, count, last_step "
                    "FROM metric_summary WHERE run_id = ? ORDER BY key",
                    (run_id,),
                )
            }

    def experiments(self) -> list[Experiment]:
        with self._reading() as conn:
            if conn is None:
                return []
            rows = conn.execute(
                "SELECT e.name, e.description, e.owner, e.created, "
                "(SELECT count(*) FROM runs r WHERE r.experiment = e.name) "
                "FROM experiments e ORDER BY e.created, e.name"
            ).fetchall()
        return [Experiment(name=n, description=d, owner=o, created=c, run_count=k) for n, d, o, c, k in rows]


def open_sqlite(
    path: str | None, *, is_dead: Liveness | None = None, artifacts: str | None = None
) -> SqliteStore:
    """The ``sqlite`` factory of the scheme registry: a file path, or None for ``:memory:``.

    ``artifacts`` (a folder, ``file://`` or ``s3://bucket/prefix``) puts the artifact bytes
    there instead of in the folder next to the database (docs/adr/0017).
    """
    return SqliteStore(path, is_dead=is_dead, artifacts=artifacts)
