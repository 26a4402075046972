"""Connection, transactions, migrations and read-time housekeeping of the SQLite backend.

``SqliteBase`` is what the role mixins (runs, queries, artifacts and registry) share; the store
users get is ``chachaml.store.sqlite.SqliteStore``, which combines them.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import sqlite3
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, NoReturn, TypeVar

from chachaml._process import Liveness, is_dead_here, now_ms
from chachaml._process import state as _process
from chachaml.errors import InvalidValueError, RunNotFoundError, RunStateError, SchemaVersionError, StoreError
from chachaml.store import _sqlite_tiles as _tiles
from chachaml.store._sqlite_env import split_legacy_packages
from chachaml.store._sqlite_journal import JournalMixin
from chachaml.store._sqlite_schema import LATEST, MIGRATIONS

T = TypeVar("T")
BUSY_TIMEOUT_S = 30.0
CHUNK = 500  # ids per IN (...) list

_SUMMARY_INTO = """
INSERT INTO metric_summary
    (run_id, key, last_step, last_value, last_is_nan, last_timestamp, min, max, count)
"""
_SUMMARY_MERGE = """
ON CONFLICT (run_id, key) DO UPDATE SET
    last_value = CASE WHEN excluded.last_step >= last_step THEN excluded.last_value ELSE last_value END,
    last_is_nan = CASE WHEN excluded.last_step >= last_step THEN excluded.last_is_nan ELSE last_is_nan END,
    last_timestamp = CASE WHEN excluded.last_step >= last_step
                          THEN excluded.last_timestamp ELSE last_timestamp END,
    last_step = max(last_step, excluded.last_step),
    min = CASE WHEN min IS NULL THEN excluded.min WHEN excluded.min IS NULL THEN min
               ELSE min(min, excluded.min) END,
    max = CASE WHEN max IS NULL THEN excluded.max WHEN excluded.max IS NULL THEN max
               ELSE max(max, excluded.max) END,
    count = count + excluded.count
"""
# The fold of a range of metric rowids, in SQL (for long tails).
_FOLD = (
    _SUMMARY_INTO
    + """SELECT run_id, key, step, value, is_nan, timestamp, mn, mx, n FROM (
    SELECT run_id, key, step, value, is_nan, timestamp,
           min(value) OVER w AS mn, max(value) OVER w AS mx, count(*) OVER w AS n,
           row_number() OVER (PARTITION BY run_id, key ORDER BY step DESC, rowid DESC) AS rn
    FROM metrics WHERE rowid > ? AND rowid <= ?
    WINDOW w AS (PARTITION BY run_id, key)
) WHERE rn = 1"""
    + _SUMMARY_MERGE
)
# The same fold with the summaries computed in Python (``_summaries``), merged the same way:
# for a short tail (a few runs' points, the usual case between two reads) the window query's set-up
# costs more than the work; this is ~3x cheaper there (benchmarks/README.md).
_FOLD_ROWS = _SUMMARY_INTO + "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)" + _SUMMARY_MERGE
_FOLD_IN_PYTHON = 500  # rowids; above this the SQL fold is used
# (newest metric rowid, watermark): what a fold would take, read in one statement.
_FOLD_RANGE = (
    "SELECT (SELECT max(rowid) FROM metrics), (SELECT value FROM chachaml_meta WHERE key = 'summary_rowid')"
)


# A dead run ends at the last thing known about it: the later of its heartbeat and the newest
# metric point, artifact or dataset it logged (issue 7, defect 9: a 30 s run killed before its
# first beat must not end at its start). Never later than the reader's clock, since a point's
# ``timestamp=`` is the user's, nor before its start. SQL's multi-argument max() returns NULL if
# any argument is NULL, hence the coalesce() around each.
_REAP = """
UPDATE runs SET status = 'killed', error = :error, end_time = max(start_time, min(:now, max(
    coalesce(heartbeat, start_time),
    coalesce((SELECT max(timestamp) FROM metrics WHERE run_id = :id), 0),
    coalesce((SELECT max(created) FROM artifacts WHERE run_id = :id), 0),
    coalesce((SELECT max(created) FROM datasets WHERE run_id = :id), 0))))
WHERE id = :id AND status = 'running'
"""


def _summaries(rows: Iterable[tuple[Any, ...]]) -> Iterable[list[Any]]:
    """Per (run_id, key) summary rows of metric rows given in rowid order, as ``_FOLD`` makes
    them: the point of the highest step (ties: the last one), min and max ignoring NaN (NULL),
    and the count of all points."""
    out: dict[tuple[str, str], list[Any]] = {}
    for run_id, key, step, value, is_nan, ts in rows:
        s = out.get((run_id, key))
        if s is None:
            out[run_id, key] = [run_id, key, step, value, is_nan, ts, value, value, 1]
            continue
        if step >= s[2]:
            s[2], s[3], s[4], s[5] = step, value, is_nan, ts
        if value is not None:
            if s[6] is None or value < s[6]:
                s[6] = value
            if s[7] is None or value > s[7]:
                s[7] = value
        s[8] += 1
    return out.values()


def chunks(ids: Sequence[str]) -> Iterator[Sequence[str]]:
    for i in range(0, len(ids), CHUNK):
        yield ids[i : i + CHUNK]


def marks(n: int) -> str:
    return ",".join("?" * n)


def point_value(value: float | None, is_nan: int) -> float:
    return float("nan") if is_nan else value  # type: ignore[return-value]


class SqliteBase(JournalMixin):
    """Shared machinery of the SQLite store: one connection behind a lock, opened lazily."""

    def __init__(self, path: str | None, *, is_dead: Liveness | None = None) -> None:
        """Open lazily: nothing is read or created until the first call.

        Args:
            path: a file path, or ``None`` for a private in-memory database.
            is_dead: how reads tell that the process owning a running run is gone (it is then
                marked ``killed``). Default ``chachaml._process.is_dead_here``: probe this
                host's processes, trust the heartbeat for other hosts. A server passes
                ``is_dead_by_heartbeat``: its clients' pids mean nothing on its host.
        """
        self.path = path
        self._is_dead: Liveness = is_dead or is_dead_here
        self.uri = f"sqlite:///{path}" if path else "sqlite:///:memory:"
        self._conn: sqlite3.Connection | None = None
        self._pid = os.getpid()
        self._lock = threading.RLock()
        self._closed = False
        # True once the file turned out not to be writable (permissions, a read-only mount):
        # reads skip the fold and the reaping of dead runs, writes fail naming the cause.
        self._readonly = False
        # This process's write-behind journal (docs/adr/0023), made on the first log call; the
        # pid it was tried for (a forked child makes its own).
        self._journal = None
        self._journal_pid = -1

    # -- connection management ---------------------------------------------------------------
    @property
    def closed(self) -> bool:
        return self._closed

    def __repr__(self) -> str:
        state = " closed" if self._closed else ""
        return f"<SqliteStore {self.path or ':memory:'}{state}>"

    def close(self) -> None:
        with self._lock:
            if self._conn is not None and self._pid == os.getpid():
                self._journal_close()
                self._fold_quietly()
                self._conn.close()
            self._conn = None
            self._closed = True

    def _connection(self, create: bool) -> sqlite3.Connection | None:
        """The open connection; ``None`` when ``create`` is false and the file does not exist.

        Reads never create the database file (SPEC section 8).
        """
        if self._closed:
            raise RunStateError(
                f"the store {self.uri} is closed; open it again with chachaml.use_store({self.path!r})"
                if self.path
                else "this in-memory store is closed and its data is gone; open a new one with "
                "chachaml.use_store(':memory:'), or use a file to keep runs"
            )
        if self._conn is not None:
            if self._pid == _process.pid:
                return self._conn
            # A forked child must not use its parent's connection; open its own.
            self._conn, self._pid = None, _process.pid
        if self.path and not create and not os.path.exists(self.path):
            return None
        try:
            self._conn = self._open()
            if self.path and not self._readonly:
                self._replay_dead(self._conn)  # journals of processes that died (docs/adr/0023)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open the database {self.uri}: {exc}") from exc
        return self._conn

    def _open(self) -> sqlite3.Connection:
        if self.path:
            parent = os.path.dirname(os.path.abspath(self.path))
            if not os.path.isdir(parent):
                raise StoreError(
                    f"cannot create the database {self.path!r}: the folder {parent!r} does not "
                    "exist; create it first or choose another path"
                )
        if self.path and os.path.exists(self.path) and not os.access(self.path, os.W_OK):
            conn = self._open_readonly()  # a read-only mount says so here, even to root
        else:
            conn = _connect(self.path or ":memory:")
            try:
                if self.path:
                    # Refuse a newer database before anything writes to it (the WAL switch
                    # rewrites the file header).
                    _schema_version(conn, self.uri)
                    _retry_locked(lambda: conn.execute("PRAGMA journal_mode=WAL").fetchone())
                conn.execute("PRAGMA synchronous=NORMAL")
                _migrate(conn, self.uri)
            except sqlite3.OperationalError as exc:
                conn.close()
                if not (self.path and _is_readonly(exc)):
                    raise
                conn = self._open_readonly()
            except BaseException:
                conn.close()
                raise
        _open_stores.add(self)
        return conn

    def _open_readonly(self) -> sqlite3.Connection:
        """A read-only connection to a file this process cannot write (issue 7, defect 7).

        ``mode=ro`` first: it sees other processes' commits. A WAL database needs its ``-shm``
        file, which SQLite cannot create in a read-only folder; then ``immutable=1`` reads the
        file as of its last checkpoint, with no locking at all (nothing can write it here).
        """
        assert self.path is not None
        from pathlib import Path  # here: pathlib imports urllib.parse and ipaddress

        uri = Path(os.path.abspath(self.path)).as_uri()
        failure: sqlite3.OperationalError | None = None
        for flag in ("mode=ro", "immutable=1"):
            conn = _connect(f"{uri}?{flag}", uri=True)
            try:
                version = _schema_version(conn, self.uri)
            except sqlite3.OperationalError as exc:
                conn.close()
                failure = exc
                continue
            except BaseException:
                conn.close()
                raise
            if version < LATEST:
                conn.close()
                raise StoreError(
                    f"the database {self.uri} is read-only (file permissions or a read-only mount) "
                    f"and has schema version {version}, older than the {LATEST} this chachaml "
                    "reads; open it once with write access to upgrade it, or copy it somewhere "
                    "writable"
                )
            self._readonly = True
            return conn
        assert failure is not None
        raise failure

    def _write(self) -> sqlite3.Connection:
        conn = self._conn  # fast path: open, and opened by this process (not inherited via fork)
        if conn is not None and self._pid == _process.pid:
            return conn
        conn = self._connection(create=True)
        assert conn is not None
        return conn

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        """One write transaction, taken with BEGIN IMMEDIATE (read-then-write safe)."""
        with self._lock:
            conn = self._write()
            self._drain_journal()  # journaled points first: rowid order stays logging order
            try:
                conn.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise self._error(exc) from exc
            try:
                yield conn
            except UnicodeEncodeError as exc:  # a lone surrogate in a value: refused, nothing written
                _rollback(conn)
                raise _unencodable(exc) from exc
            except sqlite3.Error as exc:  # disk full, I/O error, ...: the driver error stays chained
                _rollback(conn)
                raise self._error(exc) from exc
            except BaseException:
                _rollback(conn)
                raise
            try:
                conn.execute("COMMIT")
            except sqlite3.Error as exc:
                _rollback(conn)
                raise self._error(exc) from exc

    def _error(self, exc: sqlite3.Error) -> StoreError:
        hint = ""
        if self._readonly or _is_readonly(exc):
            hint = (
                "; the file is read-only (file permissions or a read-only mount): chachaml can read"
                " it but not write to it, so copy it somewhere writable to add to it"
            )
        elif "locked" in str(exc) or "busy" in str(exc):
            hint = (
                f"; another process held the write lock for more than {BUSY_TIMEOUT_S:.0f}s,"
                " try again or use batched() to write less often"
            )
        return StoreError(f"the database {self.uri} failed: {exc}{hint}")

    @contextmanager
    def _reading(self) -> Iterator[sqlite3.Connection | None]:
        """A connection for reads (None if the file does not exist yet), after housekeeping."""
        self._drain_siblings()
        with self._lock:
            try:
                conn = self._connection(create=False)
                if conn is not None and not self._readonly:
                    self._drain_journal()  # this process sees its own points at once
                    self._replay_dead(conn)  # and those of processes that died since it opened
                    self._reap_dead(conn)
                    self._fold(conn)
                yield conn
            except sqlite3.Error as exc:
                raise self._error(exc) from exc
            except UnicodeEncodeError as exc:
                raise _unencodable(exc) from exc

    @contextmanager
    def _plain_read(self) -> Iterator[sqlite3.Connection | None]:
        """A connection for reads of what housekeeping never changes (alert definitions): no
        dead-run reaping, no summary fold, so a server can look them up on every batch."""
        with self._lock:
            try:
                yield self._connection(create=False)
            except sqlite3.Error as exc:
                raise self._error(exc) from exc

    # -- housekeeping done on read -----------------------------------------------------------
    def _reap_dead(self, conn: sqlite3.Connection) -> None:
        """Mark running runs whose process is gone as ``killed`` (docs/adr/0006)."""
        rows = conn.execute(
            "SELECT id, host, pid, proc_start, heartbeat FROM runs WHERE status = 'running'"
        ).fetchall()
        now = now_ms()
        dead = [r for r in rows if self._is_dead(r[1], r[2], r[3], r[4], now)]
        try:
            self._mark_killed(conn, dead, now)
        except sqlite3.OperationalError as exc:
            if not _is_readonly(exc):  # a file SQLite opened read-only by itself: read as stored
                raise
            self._readonly = True

    @staticmethod
    def _mark_killed(conn: sqlite3.Connection, dead: Sequence[Any], now: int) -> None:
        for run_id, host, pid, _, _ in dead:
            error = json.dumps(
                {
                    "type": "ProcessDied",
                    "message": f"the process {pid} on {host} that ran this run is gone "
                    "(killed or crashed) and never ended it",
                    "traceback": "",
                }
            )
            conn.execute(_REAP, {"error": error, "id": run_id, "now": now})

    def _fold(self, conn: sqlite3.Connection) -> None:
        """Fold metric points written since the last read into ``metric_summary``."""
        hi, wm = conn.execute(_FOLD_RANGE).fetchone()
        if hi is None or hi <= wm:
            return
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                self._fold_in_tx(conn)
                conn.execute("COMMIT")
            except BaseException:
                _rollback(conn)
                raise
        except sqlite3.OperationalError as exc:
            if not _is_readonly(exc):
                raise
            self._readonly = True  # summaries stay as they were (ADR-0005)

    def _fold_quietly(self) -> None:
        """Fold before this process lets go of the file (``close()``, interpreter exit).

        Then ``metric_summary`` is complete for plain SQL once a script has ended
        (docs/schema.md; issue 7, defect 11). A failure (the file was locked for the whole busy
        timeout, or it is read-only) only leaves the summary lagging: the points are safe in
        ``metrics`` and the next read folds them, so it must not turn a clean exit into an error.
        """
        with self._lock:
            conn = self._conn
            if conn is None or self._pid != os.getpid() or not self.path or conn.in_transaction:
                return
            with contextlib.suppress(sqlite3.Error):
                self._fold(conn)

    def _fold_in_tx(self, conn: sqlite3.Connection) -> None:
        """``_fold`` inside the caller's write transaction (``delete_run`` folds before deleting)."""
        hi, wm = conn.execute(_FOLD_RANGE).fetchone()
        if hi is not None and hi > wm:
            if hi - wm <= _FOLD_IN_PYTHON:
                tail = conn.execute(
                    "SELECT run_id, key, step, value, is_nan, timestamp FROM metrics "
                    "WHERE rowid > ? AND rowid <= ? ORDER BY rowid",
                    (wm, hi),
                )
                conn.executemany(_FOLD_ROWS, _summaries(tail))
            else:
                conn.execute(_FOLD, (wm, hi))
            _tiles.maintain(conn, wm, hi)
            conn.execute("UPDATE chachaml_meta SET value = ? WHERE key = 'summary_rowid'", (hi,))

    def _raise_not_running(
        self,
        conn: sqlite3.Connection,
        run_id: str,
        doing: str,
        cause: sqlite3.Error | None = None,
        accepts: str = "params and metrics",
    ) -> NoReturn:
        """Refuse a write to a run that is gone or not running, saying which and what to do."""
        row = conn.execute("SELECT status FROM runs WHERE id = ?", (run_id,)).fetchone()
        if cause is not None and row is not None and row[0] == "running":
            raise self._error(cause) from cause  # not the guard: some other constraint failed
        if row is None:
            raise RunNotFoundError(
                f"cannot {doing} run {run_id!r}: no such run (was it deleted?); "
                "start a new run with chachaml.start_run()"
            )
        raise RunStateError(
            f"cannot {doing} run {run_id[:8]}: it is {row[0]}, and only running runs accept {accepts}; "
            f"start a new run, or resume this one with start_run(run_id={run_id!r})"
        )

    # -- hooks the role mixins extend -----------------------------------------------------------
    @property
    def artifact_root(self) -> str | None:
        """The artifact folder next to the database file (None for an in-memory store).

        ``x.db`` -> ``x-artifacts`` (SPEC); any other name -> ``<name>.artifacts``, which no
        ``.db`` file's folder can be: ``runs`` and ``runs.db`` never share one (issue 7).
        """
        if not self.path:
            return None
        root, ext = os.path.splitext(self.path)
        return root + "-artifacts" if ext == ".db" else self.path + ".artifacts"

    def _check_deletable(self, conn: sqlite3.Connection, run_ids: Sequence[str]) -> None:
        """Raise if these runs may not be deleted (the registry refuses runs behind versions)."""


# File stores this process has opened. At interpreter exit each folds what it logged, whether
# its runs ended in a block, by ``end_run()`` or at exit; folding at every ``end_run`` instead
# would add a summary upsert to each run's commit (benchmarks/bench_core.py, "1,000 runs").
_open_stores: weakref.WeakSet[SqliteBase] = weakref.WeakSet()


@atexit.register
def _fold_at_exit() -> None:
    for store in list(_open_stores):
        if not store.closed:
            with contextlib.suppress(Exception):
                store._journal_close()
            store._fold_quietly()


def _connect(target: str, *, uri: bool = False) -> sqlite3.Connection:
    return sqlite3.connect(
        target,
        timeout=BUSY_TIMEOUT_S,
        isolation_level=None,
        check_same_thread=False,
        cached_statements=256,
        uri=uri,
    )


def _is_readonly(exc: sqlite3.Error) -> bool:
    """Whether SQLite refused a write because the file cannot be written (SQLITE_READONLY)."""
    code = getattr(exc, "sqlite_errorcode", None)
    return (code & 0xFF) == 8 if isinstance(code, int) else "readonly database" in str(exc)


def _unencodable(exc: UnicodeEncodeError) -> InvalidValueError:
    """SQLite stores UTF-8; a ``str`` with a lone surrogate cannot be bound. Name it."""
    from chachaml._values import check_text

    try:
        check_text(exc.object if isinstance(exc.object, str) else "", "the value")
    except InvalidValueError as err:
        return err
    return InvalidValueError(f"a value could not be stored as UTF-8 text ({exc}); pass valid text")


def _rollback(conn: sqlite3.Connection) -> None:
    """Roll back if a transaction is still open (SQLite may already have rolled it back)."""
    if conn.in_transaction:
        conn.execute("ROLLBACK")


def _retry_locked(fn: Callable[[], T], deadline_s: float = BUSY_TIMEOUT_S) -> T:
    """Retry ``fn`` while SQLite says "database is locked".

    ``PRAGMA journal_mode=WAL`` on a brand-new file can fail that way without consulting the
    busy handler when many processes open it at the same instant.
    """
    end = time.monotonic() + deadline_s
    delay = 0.001
    while True:
        try:
            return fn()
        except sqlite3.OperationalError as exc:
            if ("locked" not in str(exc) and "busy" not in str(exc)) or time.monotonic() > end:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 0.05)


def _schema_version(conn: sqlite3.Connection, uri: str) -> int:
    """The database's schema version; ``SchemaVersionError`` if a newer chachaml wrote it."""
    current = _retry_locked(lambda: int(conn.execute("PRAGMA user_version").fetchone()[0]))
    if current > LATEST:
        raise SchemaVersionError(
            f"the database {uri} has schema version {current}, newer than the {LATEST} this "
            "chachaml understands; upgrade chachaml (pip install -U chachaml)"
        )
    return current


def _migrate(conn: sqlite3.Connection, uri: str) -> None:
    """Bring the schema to ``LATEST``; refuse a database written by a newer version."""
    current = _schema_version(conn, uri)
    if current == LATEST:
        return
    _retry_locked(lambda: conn.execute("BEGIN IMMEDIATE"))
    try:
        current = _schema_version(conn, uri)  # another process may have migrated while we waited
        for number, statements in MIGRATIONS:
            if number > current:
                for stmt in statements:
                    conn.execute(stmt)
                if number == 5:  # data moves in Python: SQLite has no sha256 (_sqlite_env)
                    split_legacy_packages(conn)
                if number == 7:  # the min/max pyramid of the long histories folded so far
                    _tiles.backfill(conn)
                conn.execute(f"PRAGMA user_version = {int(number)}")
        conn.execute("COMMIT")
    except BaseException:
        _rollback(conn)
        raise
