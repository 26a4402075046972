"""Connections, transactions, migrations and read-time reaping of the PostgreSQL backend.

The PostgreSQL store reuses the SQL the SQLite store's role mixins already speak (the registry,
artifacts, deleting and archiving, run reads: plain SQL with ``?`` placeholders) through a small
**engine adapter**: ``PgConn`` has the ``execute`` / ``executemany`` shape of an ``sqlite3``
connection, turns ``?`` into psycopg's ``%s`` and fetches results eagerly, so the borrowed
connection can go back to the pool at once. What SQLite does with its file lock, PostgreSQL does
with row locks and advisory transaction locks (docs/adr/0021-postgresql-backend.md).

Connections come from a ``psycopg_pool.ConnectionPool`` in autocommit mode: a single-statement
write (``log_metric``) is one round trip and one commit; ``_tx()`` wraps several statements in
one transaction. The pool is per process: a forked child opens its own and never touches the
parent's sockets.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import json
import os
import re
import select
import threading
import weakref
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, NoReturn
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from chachaml._process import Liveness, now_ms
from chachaml._process import state as _process
from chachaml.errors import (
    InvalidValueError,
    RunStateError,
    SchemaVersionError,
    StoreError,
    StoreUnavailableError,
)
from chachaml.store._pg_schema import LATEST, MIGRATION_LOCK, MIGRATIONS
from chachaml.store._sqlite_base import SqliteBase, _unencodable

if TYPE_CHECKING:
    import sqlite3

    import psycopg
    from psycopg_pool import ConnectionPool

DEFAULT_POOL_SIZE = 4  # connections per process; ?pool_size=N in the URL changes it
CONNECT_TIMEOUT_S = 10
#: How long a call waits for a pooled connection before failing with ``StoreUnavailableError``
#: (the database down or restarting, or every connection busy); a server answers it with 503.
POOL_WAIT_S = 10.0
#: Advisory transaction locks (fixed bigints): registry writes, and artifact commits vs gc.
REGISTRY_LOCK = 0x63686163686D01
ARTIFACT_LOCK = 0x63686163686D02
ALERT_LOCK = 0x63686163686D03  # alert definitions: a new name is inserted by one writer
_OPTIONS = ("pool_size", "artifacts")  # query parameters of the URL that are chachaml's

_passwords: dict[str, str] = {}  # masked URL -> full URL, so store.uri reopens in this process
_abandoned: list[Any] = []  # pools a forked child inherited: never closed (their sockets are the parent's)
_open_pools: weakref.WeakKeyDictionary[Any, int] = weakref.WeakKeyDictionary()  # pool -> its pid


@atexit.register
def _close_pools() -> None:
    """Close the pools of stores left open, so their worker threads end before the interpreter."""
    for pool, pid in list(_open_pools.items()):
        with contextlib.suppress(Exception):
            if not pool.closed and pid == os.getpid():  # never a parent's, inherited by fork
                pool.close(timeout=1.0)


@functools.lru_cache(maxsize=1024)
def pg_sql(sql: str) -> str:
    """SQL written with ``?`` placeholders (the shared SQL's) in psycopg's ``%s`` style."""
    return sql.replace("%", "%%").replace("?", "%s")


@functools.lru_cache(maxsize=256)
def pg_named_sql(sql: str) -> str:
    """SQL written with sqlite3's named placeholders (``:name``) in psycopg's ``%(name)s``
    style; a ``::type`` cast is left alone."""
    return re.sub(r"(?<![:\w]):([A-Za-z_]\w*)", r"%(\1)s", sql.replace("%", "%%"))


class _Result:
    """A statement's rows, fetched eagerly: what callers of ``sqlite3.Cursor`` use of it."""

    __slots__ = ("_rows", "rowcount")

    def __init__(self, rows: list[Any], rowcount: int) -> None:
        self._rows = rows
        self.rowcount = rowcount

    def fetchone(self) -> Any:
        return self._rows[0] if self._rows else None

    def fetchall(self) -> list[Any]:
        return self._rows

    def __iter__(self) -> Iterator[Any]:
        return iter(self._rows)


class PgConn:
    """The ``sqlite3.Connection`` shape over one psycopg connection (see the module docstring)."""

    def __init__(self, raw: psycopg.Connection[Any]) -> None:
        self.raw = raw

    def execute(self, sql: str, args: Sequence[Any] | Mapping[str, Any] = ()) -> _Result:
        if isinstance(args, Mapping):  # named placeholders, as sqlite3 binds a dict
            cur = self.raw.execute(pg_named_sql(sql), dict(args))
        else:
            cur = self.raw.execute(pg_sql(sql), list(args))
        rows = cur.fetchall() if cur.description is not None else []
        return _Result(rows, cur.rowcount)

    def executemany(self, sql: str, rows: Any) -> None:
        with self.raw.cursor() as cur:
            cur.executemany(pg_sql(sql), list(rows))

    @property
    def in_transaction(self) -> bool:
        from psycopg.pq import TransactionStatus

        return bool(self.raw.info.transaction_status != TransactionStatus.IDLE)


class _AutoConn(PgConn):
    """Borrows a pooled connection per statement (``_write()`` outside a transaction)."""

    def __init__(self, store: PostgresBase) -> None:
        self.store = store

    def execute(self, sql: str, args: Sequence[Any] | Mapping[str, Any] = ()) -> _Result:
        with self.store._borrow() as raw:
            return PgConn(raw).execute(sql, args)

    def executemany(self, sql: str, rows: Any) -> None:
        with self.store._borrow() as raw:
            PgConn(raw).executemany(sql, rows)

    @property
    def in_transaction(self) -> bool:
        return False


def parse_url(target: str) -> tuple[str, str, dict[str, str]]:
    """(URL for psycopg, the same with the password masked, chachaml's options from the query)."""
    parts = urlsplit(target)
    query = parse_qsl(parts.query, keep_blank_values=True)
    options = {k: v for k, v in query if k in _OPTIONS}
    rest = urlencode([(k, v) for k, v in query if k not in _OPTIONS])
    conninfo = urlunsplit((parts.scheme, parts.netloc, parts.path, rest, parts.fragment))
    netloc = parts.netloc
    if parts.password is not None:
        user, _, host = netloc.rpartition("@")
        netloc = f"{user.partition(':')[0]}:***@{host}"
    masked = urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
    return conninfo, masked, options


def pool_size(options: dict[str, str], target: str) -> int:
    """The pool's ``max_size``: ``?pool_size=N``, else ``$CHACHAML_PG_POOL_SIZE``, else 4.

    Raises:
        InvalidValueError: not a positive whole number.
    """
    raw = options.get("pool_size", os.environ.get("CHACHAML_PG_POOL_SIZE", str(DEFAULT_POOL_SIZE)))
    if not raw.isdigit() or int(raw) < 1:
        raise InvalidValueError(
            f"pool_size={raw!r} in {target!r} is not a positive whole number; "
            f"write e.g. ?pool_size={DEFAULT_POOL_SIZE}"
        )
    return int(raw)


def _check_idle(conn: psycopg.Connection[Any]) -> None:
    """The pool's check of a connection it hands out (psycopg-pool's ``check``).

    An idle connection has nothing to read: a readable socket means the server sent something,
    usually its goodbye (a restart, an administrator ending the session). Then one empty query
    finds out, and a dead connection raises, so the pool replaces it instead of handing a broken
    one to a write. The usual case costs one ``select`` call, not a round trip.
    """
    readable, _, _ = select.select([conn.fileno()], [], [], 0)
    if readable:
        conn.execute("")


class PostgresBase(SqliteBase):
    """What the role mixins rely on (``_tx``, ``_reading``, ``_write``, errors), for PostgreSQL.

    It subclasses ``SqliteBase`` only so that the shared mixins' ``super()`` calls resolve; every
    method that touches SQLite is replaced here.
    """

    def __init__(self, target: str, *, is_dead: Liveness | None = None) -> None:
        """Parse ``target`` (nothing connects yet); see ``PostgresStore`` for the arguments."""
        super().__init__(None, is_dead=is_dead)
        self._target = target
        self._conninfo, masked, options = parse_url(target)
        if masked != target:
            _passwords[masked] = target
        self.uri = masked  # never the password: it goes into error messages
        self._options = options
        self._pool_size = pool_size(options, masked)
        self._pool: ConnectionPool[Any] | None = None
        self._pool_pid = -1
        self._pool_lock = threading.Lock()
        self._held = threading.local()  # advisory locks the next transactions of this thread take

    def __repr__(self) -> str:
        return f"<PostgresStore {self.uri}{' closed' if self._closed else ''}>"

    # -- the pool --------------------------------------------------------------------------------
    def _get_pool(self) -> ConnectionPool[Any]:
        if self._closed:
            raise RunStateError(
                f"the store {self.uri} is closed; open it again with chachaml.use_store({self.uri!r})"
            )
        pool = self._pool
        if pool is not None and self._pool_pid == _process.pid:
            return pool
        with self._pool_lock:
            if self._pool is not None and self._pool_pid != _process.pid:
                _abandoned.append(self._pool)  # the parent's, inherited through fork
                self._pool = None
            if self._pool is None:
                self._pool = self._open_pool()
                self._pool_pid = _process.pid
                _open_pools[self._pool] = _process.pid
            return self._pool

    def _open_pool(self) -> ConnectionPool[Any]:
        from chachaml._optional import require

        require("psycopg", "postgres")
        require("psycopg_pool", "postgres")
        import psycopg
        from psycopg_pool import ConnectionPool

        # One direct connection first: a wrong URL or a server that is down fails here, at once
        # and with the driver's reason (a pool would retry until its timeout), and it migrates.
        try:
            with psycopg.connect(self._conninfo, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S) as raw:
                migrate(raw, self.uri)
        except psycopg.OperationalError as exc:
            raise StoreUnavailableError(
                f"cannot connect to the PostgreSQL database {self.uri}: {str(exc).strip()}; check "
                "that the server runs and that the URL (user, password, host, port, database) is right"
            ) from exc
        except psycopg.Error as exc:
            raise self._error(exc) from exc
        pool: ConnectionPool[Any] = ConnectionPool(
            self._conninfo,
            min_size=1,
            max_size=self._pool_size,
            kwargs={"autocommit": True, "connect_timeout": CONNECT_TIMEOUT_S},
            check=_check_idle,
            timeout=POOL_WAIT_S,
            open=False,
            name=f"chachaml {self.uri}",
        )
        pool.open(wait=False)
        return pool

    @contextmanager
    def _borrow(self) -> Iterator[psycopg.Connection[Any]]:
        """A pooled connection (autocommit) for the block; driver errors become chachaml's."""
        pool = self._get_pool()  # first: it says which extra to install when psycopg is missing
        import psycopg

        try:
            with pool.connection() as raw:
                yield raw
        except psycopg.Error as exc:
            raise self._error(exc) from exc
        except UnicodeEncodeError as exc:  # a lone surrogate in a value: refused, nothing written
            raise _unencodable(exc) from exc

    def close(self) -> None:
        with self._pool_lock:
            pool, self._pool = self._pool, None
            if pool is not None and self._pool_pid == os.getpid():
                pool.close()
            self._closed = True

    # -- transactions ----------------------------------------------------------------------------
    @contextmanager
    def _locking(self, key: int, *, shared: bool = False) -> Iterator[None]:
        """Make every ``_tx()`` of this thread inside the block take an advisory lock first."""
        held = getattr(self._held, "keys", ())
        self._held.keys = (*held, (key, shared))
        try:
            yield
        finally:
            self._held.keys = held

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        """One transaction on a pooled connection, committed on exit, rolled back on error.

        Yields the adapter typed as the ``sqlite3.Connection`` the shared mixins annotate: it
        offers what they use of one (``execute``, ``executemany``, ``in_transaction``).
        """
        with self._borrow() as raw, raw.transaction():
            conn = PgConn(raw)
            for key, shared in getattr(self._held, "keys", ()):
                fn = "pg_advisory_xact_lock_shared" if shared else "pg_advisory_xact_lock"
                conn.execute(f"SELECT {fn}(?)", (key,))
            yield conn  # type: ignore[misc]

    def _write(self) -> sqlite3.Connection:
        return _AutoConn(self)  # type: ignore[return-value]

    @contextmanager
    def _reading(self) -> Iterator[sqlite3.Connection | None]:
        """A pooled connection for reads, after marking dead runs ``killed``."""
        with self._borrow() as raw:
            conn = PgConn(raw)
            self._reap_dead(conn)  # type: ignore[arg-type]
            yield conn  # type: ignore[misc]

    @contextmanager
    def _plain_read(self) -> Iterator[sqlite3.Connection | None]:
        """A pooled connection for reads that need no reaping (see ``SqliteBase._plain_read``)."""
        with self._borrow() as raw:
            yield PgConn(raw)  # type: ignore[misc]

    def _error(self, exc: Exception) -> StoreError:
        import psycopg

        if isinstance(exc, psycopg.DataError | psycopg.errors.UntranslatableCharacter) and (
            "0x00" in str(exc) or "\\u0000" in str(exc)
        ):
            raise InvalidValueError(
                f"PostgreSQL text cannot hold the NUL character (\\x00) ({exc}); remove it from the "
                "value, or log it as an artifact"
            ) from exc
        if isinstance(exc, psycopg.OperationalError):  # the server went away, restarts, or is busy
            return StoreUnavailableError(
                f"the PostgreSQL database {self.uri} cannot be reached now ({str(exc).strip()}); "
                "the call did not complete: try it again once the database is back"
            )
        return StoreError(f"the PostgreSQL database {self.uri} failed: {str(exc).strip()}")

    # -- housekeeping done on read -----------------------------------------------------------
    def _reap_dead(self, conn: sqlite3.Connection) -> None:
        """Mark running runs whose process is gone as ``killed`` (docs/adr/0006).

        The liveness function decides: by default a run of this host and PID namespace is
        probed, any other by its heartbeat, since the database server has no ``/proc`` of the
        writer.
        """
        rows = conn.execute(
            "SELECT id, host, pid, proc_start, heartbeat FROM runs WHERE status = 'running'"
        ).fetchall()
        now = now_ms()
        for run_id, host, pid, *_ in [r for r in rows if self._is_dead(r[1], r[2], r[3], r[4], now)]:
            error = json.dumps(
                {
                    "type": "ProcessDied",
                    "message": f"the process {pid} on {host} that ran this run is gone "
                    "(killed or crashed) and never ended it",
                    "traceback": "",
                }
            )
            conn.execute(_REAP, (error, now, run_id, run_id, run_id, run_id))

    def _fold(self, conn: sqlite3.Connection) -> None:
        """Nothing to fold: every metric write keeps ``metric_summary`` current."""

    def _fold_in_tx(self, conn: sqlite3.Connection) -> None:
        """Nothing to fold (see ``_fold``)."""

    def _fold_quietly(self) -> None:
        """Nothing to fold (see ``_fold``)."""


# A dead run ends at the last thing known about it (see _sqlite_base._REAP); greatest() and
# least() skip NULLs in PostgreSQL.
_REAP = """
UPDATE runs SET status = 'killed', error = ?, end_time = greatest(start_time, least(?::bigint, greatest(
    heartbeat, start_time,
    (SELECT max(timestamp) FROM metrics WHERE run_id = ?),
    (SELECT max(created) FROM artifacts WHERE run_id = ?),
    (SELECT max(created) FROM datasets WHERE run_id = ?))))
WHERE id = ? AND status = 'running'
"""


def schema_version(raw: psycopg.Connection[Any], uri: str) -> int:
    """The database's schema version (0: no chachaml tables yet); refuses a newer one."""
    row = raw.execute("SELECT to_regclass('chachaml_schema') IS NOT NULL").fetchone()
    if not row or not row[0]:
        return 0
    found = raw.execute("SELECT max(version) FROM chachaml_schema").fetchone()
    current = int(found[0]) if found and found[0] is not None else 0
    if current > LATEST:
        _newer(uri, current)
    return current


def _newer(uri: str, current: int) -> NoReturn:
    raise SchemaVersionError(
        f"the database {uri} has schema version {current}, newer than the {LATEST} this chachaml "
        "understands; upgrade chachaml (pip install -U 'chachaml[postgres]')"
    )


def migrate(raw: psycopg.Connection[Any], uri: str) -> None:
    """Bring the schema to ``LATEST``, each migration in one transaction with its version row.

    An advisory lock serialises processes migrating the same database at once; the version is
    read again under it, so each migration is applied exactly once.
    """
    if schema_version(raw, uri) == LATEST:
        return
    with raw.transaction():
        raw.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
        raw.execute(
            "CREATE TABLE IF NOT EXISTS chachaml_schema "
            "(version INTEGER PRIMARY KEY, applied BIGINT NOT NULL)"
        )
        current = schema_version(raw, uri)
        for number, statements in MIGRATIONS:
            if number > current:
                for stmt in statements:
                    raw.execute(stmt)
                raw.execute(
                    "INSERT INTO chachaml_schema (version, applied) VALUES (%s, %s)", (number, now_ms())
                )
