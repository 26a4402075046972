"""Run rows to ``Run`` objects for the SQLite store (and PostgreSQL, which inherits it).

``get_run`` assembles a run whole. ``find_runs`` (``runs()``, ``search_runs()``) returns runs
built from their ``runs`` rows alone: ``params``, ``metrics``, ``tags``, ``env`` and
``datasets`` are read when one of them is first read, for every run of the result at once,
one statement per table (``LazyFields``). A query whose answer is only looked at by id, name
or status then costs little more than the query itself (issue 12: ``where=`` over 1,000 runs
within 2x a query returning only the ids). docs/adr/0024-lazy-reads-and-first-use.md.
"""

from __future__ import annotations

import json
import threading
import weakref
from contextlib import AbstractContextManager
from itertools import repeat
from typing import Any, Protocol

from chachaml._values import decode_param
from chachaml.entities import Dataset, Run, _bulk_new
from chachaml.store._sqlite_base import chunks, marks, point_value
from chachaml.store._sqlite_env import EnvReader

__all__ = ["RUN_COLS", "LazyFields", "assemble", "lazy_runs", "load_pending"]

RUN_COLS = (
    "id, experiment, name, status, start_time, end_time, parent_id, created_by, note, error, env, archived, "
    "env_packages"
)


class _Reader(Protocol):
    """What the lazy fields need of their store."""

    @property
    def _env_reader(self) -> EnvReader: ...

    def _reading(self) -> AbstractContextManager[Any]: ...


def _fields(
    conn: Any, ids: list[str]
) -> tuple[
    dict[str, dict[str, Any]],
    dict[str, dict[str, float]],
    dict[str, dict[str, str]],
    dict[str, list[Dataset]],
]:
    """(params, metrics, tags, datasets) of the runs ``ids``, each by run id (one statement per
    table and chunk of ids)."""
    params: dict[str, dict[str, Any]] = {i: {} for i in ids}
    metrics: dict[str, dict[str, float]] = {i: {} for i in ids}
    tags: dict[str, dict[str, str]] = {i: {} for i in ids}
    datasets: dict[str, list[Dataset]] = {i: [] for i in ids}
    for chunk in chunks(ids):
        m = marks(len(chunk))
        for rid, k, v in conn.execute(f"SELECT run_id, key, value FROM params WHERE run_id IN ({m})", chunk):
            params[rid][k] = decode_param(v)
        for rid, k, v, nan in conn.execute(
            f"SELECT run_id, key, last_value, last_is_nan FROM metric_summary WHERE run_id IN ({m})",
            chunk,
        ):
            metrics[rid][k] = point_value(v, nan)
        for rid, k, v in conn.execute(f"SELECT run_id, key, value FROM tags WHERE run_id IN ({m})", chunk):
            tags[rid][k] = v
        for rid, *d in conn.execute(
            "SELECT run_id, name, role, source, n_rows, n_cols, features, digest, created "
            f"FROM datasets WHERE run_id IN ({m}) ORDER BY id",
            chunk,
        ):
            datasets[rid].append(
                Dataset(
                    name=d[0],
                    role=d[1],
                    source=d[2],
                    n_rows=d[3],
                    n_cols=d[4],
                    features=None if d[5] is None else json.loads(d[5]),
                    digest=d[6],
                    created=d[7],
                )
            )
    return params, metrics, tags, datasets


def assemble(conn: Any, envs: EnvReader, rows: list[Any]) -> list[Run]:
    """Whole runs from their ``runs`` rows (``RUN_COLS``), every field read now."""
    envs.load(conn, [r[12] for r in rows])
    params, metrics, tags, datasets = _fields(conn, [r[0] for r in rows])
    return [
        Run(
            id=r[0],
            experiment=r[1],
            name=r[2],
            status=r[3],
            start_time=r[4],
            end_time=r[5],
            parent_id=r[6],
            created_by=r[7],
            note=r[8],
            error=None if r[9] is None else json.loads(r[9]),
            env=envs.env(r[10], r[12]),
            archived=bool(r[11]),
            params=params[r[0]],
            metrics=metrics[r[0]],
            tags=tags[r[0]],
            datasets=datasets[r[0]],
        )
        for r in rows
    ]


class LazyFields:
    """The lazy fields of one ``find_runs`` result: read for all its runs on first access."""

    def __init__(self, store: _Reader, envs: list[tuple[str | None, str | None]]) -> None:
        self._store: _Reader | None = store
        self._runs: list[Run] = []  # set once the runs exist
        self._envs = envs  # (env JSON, packages digest) per run
        self._lock = threading.Lock()

    @property
    def pending(self) -> bool:
        return self._store is not None

    def load(self) -> None:
        """Read params, metrics, tags, datasets and env of every run of the result (once)."""
        with self._lock:
            store = self._store
            if store is None:
                return
            runs = self._runs
            with store._reading() as conn:
                if conn is None:  # the file went away: nothing was logged to these runs
                    found: tuple[dict[str, Any], ...] = ({}, {}, {}, {})
                    envs: list[dict[str, Any]] = [{} for _ in runs]
                else:
                    found = _fields(conn, [run.id for run in runs])
                    reader = store._env_reader
                    reader.load(conn, [digest for _, digest in self._envs])
                    envs = [reader.env(text, digest) for text, digest in self._envs]
            params, metrics, tags, datasets = found
            set_ = object.__setattr__
            for run, env in zip(runs, envs, strict=True):
                rid = run.id
                set_(run, "params", params.get(rid, {}))
                set_(run, "metrics", metrics.get(rid, {}))
                set_(run, "tags", tags.get(rid, {}))
                set_(run, "datasets", datasets.get(rid, []))
                set_(run, "env", env)
                set_(run, "_lazy", None)
            self._store = None
            self._runs = []
            self._envs = []


def lazy_runs(store: _Reader, rows: list[Any], pending: weakref.WeakSet[LazyFields]) -> list[Run]:
    """Runs from their ``runs`` rows (``RUN_COLS``), the lazy fields unread (``LazyFields``).

    The runs are built column by column (``entities._bulk_new``); ``pending`` is the store's
    set of unread results, read before the store closes (``load_pending``).
    """
    n = len(rows)
    if n == 0:
        return []
    cols = list(zip(*rows, strict=True))
    errors = [None if e is None else json.loads(e) for e in cols[9]]
    lazy = LazyFields(store, list(zip(cols[10], cols[12], strict=True)))
    runs: list[Run] = _bulk_new(
        Run,
        n,
        {
            "id": cols[0],
            "experiment": cols[1],
            "name": cols[2],
            "status": cols[3],
            "start_time": cols[4],
            "end_time": cols[5],
            "parent_id": cols[6],
            "created_by": cols[7],
            "note": cols[8],
            "error": errors,
            "archived": map(bool, cols[11]),
            "best_value": repeat(None, n),
            "best_step": repeat(None, n),
            "_lazy": repeat(lazy, n),
        },
    )
    lazy._runs = runs
    pending.add(lazy)
    return runs


def load_pending(pending: weakref.WeakSet[LazyFields]) -> None:
    """Read every unread result of a store about to close (call it without the store's lock:
    a result's ``load`` takes its own lock, then the store's)."""
    for lazy in list(pending):
        if lazy.pending:
            lazy.load()
    pending.clear()
