"""Run search for the SQLite store: filters, the ``where=`` language, ordering, paging, best run.

User queries are parsed by ``chachaml.query`` and compiled by ``_sql_compile`` to parameterised
SQL (values and keys bound, identifiers from a fixed whitelist), so they are read-only by
construction. As a second wall,
every statement that carries a compiled query runs under an SQLite authorizer that denies
anything but reading the run tables and calling the few functions the compiler emits
(``_read_only``): even a compiler bug could not make a query write.
"""

from __future__ import annotations

import dataclasses
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from chachaml.rules import validate_query
from chachaml.store import _sql_compile
from chachaml.store._sqlite_base import SqliteBase
from chachaml.store._sqlite_dialect import SQLITE
from chachaml.store.base import RunFilter

if TYPE_CHECKING:
    from chachaml.entities import Run

DEFAULT_ORDER = "runs.start_time DESC, runs.rowid DESC"  # newest first, ties in insertion order
_READABLE = frozenset({"runs", "params", "tags", "metric_summary", "metrics"})
_ALLOWED_FUNCTIONS = SQLITE.allowed_functions | {"min", "max", "count"}


def _authorize(action: int, arg1: str | None, arg2: str | None, db: str | None, source: str | None) -> int:
    """SQLite authorizer for user queries: SELECT, reads of the run tables, whitelisted functions."""
    if action == sqlite3.SQLITE_SELECT:
        return sqlite3.SQLITE_OK
    if action == sqlite3.SQLITE_READ and arg1 in _READABLE:
        return sqlite3.SQLITE_OK
    if action == sqlite3.SQLITE_FUNCTION and (arg2 or "").lower() in _ALLOWED_FUNCTIONS:
        return sqlite3.SQLITE_OK
    return sqlite3.SQLITE_DENY


class QueryMixin(SqliteBase):
    _functions_on: sqlite3.Connection | None = None  # the connection our SQL functions live on

    if TYPE_CHECKING:

        def get_run(self, run_id: str) -> Run: ...

    def _compile_filter(self, flt: RunFilter) -> tuple[str, list[Any], str]:
        """(WHERE clause, its bound values then the ORDER BY's, ORDER BY clause) for ``runs`` rows."""
        where, args = ["1 = 1"], []
        if not flt.include_archived:
            where.append("runs.archived = 0")
        for col in ("experiment", "status", "name", "parent_id", "created_by"):
            value = getattr(flt, col)
            if value is not None:
                where.append(f"runs.{col} = ?")
                args.append(value)
        for k, v in (flt.tags or {}).items():
            where.append(
                "EXISTS (SELECT 1 FROM tags t WHERE t.run_id = runs.id AND t.key = ? AND t.value = ?)"
            )
            args.extend([k, v])
        # The Client validated these already; a store called directly checks them the same way.
        flt_where, flt_order = validate_query(flt.where, flt.order_by)
        if flt_where is not None:
            sql, qargs = _sql_compile.compile_where(flt_where, SQLITE)
            where.append(sql)
            args.extend(qargs)
        order = DEFAULT_ORDER
        if flt_order is not None:
            sql, oargs = _sql_compile.compile_order(flt_order, SQLITE)
            order = f"{sql}, {DEFAULT_ORDER}"
            args.extend(oargs)
        return " AND ".join(where), args, order

    @contextmanager
    def _read_only(self, conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
        """The connection with the query functions registered and the read-only authorizer on.

        Callers hold ``self._lock`` (inside ``_reading()``), so no other statement of this
        connection runs while the authorizer is installed.
        """
        if self._functions_on is not conn:
            for name, fn in SQLITE.functions.items():
                conn.create_function(name, 1, fn, deterministic=True)
            self._functions_on = conn
        conn.set_authorizer(_authorize)
        try:
            yield conn
        finally:
            conn.set_authorizer(None)

    def _select(self, conn: sqlite3.Connection, sql: str, args: list[Any]) -> list[Any]:
        """Run one SELECT that may carry a compiled user query, read-only (see the module doc)."""
        with self._read_only(conn):
            return conn.execute(sql, args).fetchall()

    def best_run(self, flt: RunFilter, key: str, mode: str) -> Run | None:
        """The matching run holding the highest (``max``) or lowest (``min``) value of ``key``.

        Every step counts (``metric_summary`` keeps each run's min and max); NaN is no value,
        and runs that never logged a number for ``key`` are ignored. Ties go to the run that
        started first, and within a run to the earliest step.
        """
        col, direction = {"max": ("ms.max", "DESC"), "min": ("ms.min", "ASC")}[mode]
        flt = dataclasses.replace(flt, order_by=None, limit=None, offset=0)
        where, args, _ = self._compile_filter(flt)
        with self._reading() as conn:
            if conn is None:
                return None
            rows = self._select(
                conn,
                "SELECT runs.id, " + col + " FROM runs JOIN metric_summary ms "
                "ON ms.run_id = runs.id AND ms.key = ? "
                f"WHERE {col} IS NOT NULL AND {where} "
                f"ORDER BY {col} {direction}, runs.start_time ASC, runs.rowid ASC LIMIT 1",
                [key, *args],
            )
            if not rows:
                return None
            run_id, value = rows[0]
            step = conn.execute(
                "SELECT step FROM metrics WHERE run_id = ? AND key = ? AND value = ? "
                "ORDER BY step, rowid LIMIT 1",
                (run_id, key, value),
            ).fetchone()
            run = self.get_run(run_id)
        return dataclasses.replace(run, best_value=value, best_step=None if step is None else step[0])
