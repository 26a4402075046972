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
import functools
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from types import ModuleType
from typing import TYPE_CHECKING, Any

from chachaml.rules import validate_query
from chachaml.store._sqlite_base import SqliteBase
from chachaml.store.base import RunFilter

if TYPE_CHECKING:
    from chachaml.entities import Run
    from chachaml.store._sql_compile import IndexRange
    from chachaml.store._sqlite_dialect import SqliteDialect


# The query language and its compiler are imported on the first query, not with the store:
# opening a store and logging never need them (~5 ms of imports; docs/adr/0024).
@functools.cache
def _compiler() -> ModuleType:
    from chachaml.store import _sql_compile

    return _sql_compile


@functools.cache
def _dialect() -> SqliteDialect:
    from chachaml.store._sqlite_dialect import SQLITE

    return SQLITE


@functools.cache
def _allowed_functions() -> frozenset[str]:
    return frozenset(_dialect().allowed_functions | {"min", "max", "count"})


DEFAULT_ORDER = "runs.start_time DESC, runs.rowid DESC"  # newest first, ties in insertion order
_READABLE = frozenset({"runs", "params", "tags", "metric_summary", "metrics"})
#: Index-range probes count at most this many rows (inside covering indexes, ~0.05 µs a row);
#: a range this big never drives a plan.
PROBE_CAP = 20_000
#: SQL of an index range's value in its table (alias ``d``); the indexes are schema migrations 4-5.
_RANGE_VALUE = {
    "param": ("params", "json_extract(d.value, '$')"),
    "last": ("metric_summary", "d.last_value"),
    "min": ("metric_summary", "d.min"),
    "max": ("metric_summary", "d.max"),
}


def _range_sql(r: IndexRange) -> tuple[str, str, list[Any]]:
    """(table, conditions over alias ``d``, args) enumerating an index range by its index."""
    table, expr = _RANGE_VALUE[r.kind]
    conds, args = ["d.key = ?"], [r.key]
    if r.lo is not None:
        conds.append(f"{expr} {'>' if r.lo_strict else '>='} ?")
        args.append(r.lo)
    if r.hi is not None:
        conds.append(f"{expr} {'<' if r.hi_strict else '<='} ?")
        args.append(r.hi)
    return table, " AND ".join(conds), args


def _column(rows: list[Any], cols: str) -> list[Any]:
    """The ids of ``SELECT runs.id`` rows; the rows themselves for any other column list."""
    return [r[0] for r in rows] if cols == "runs.id" else rows


def _paging(limit: int | None, offset: int) -> tuple[str, list[Any]]:
    if limit is not None:
        return " LIMIT ? OFFSET ?", [limit, offset]
    return (" LIMIT -1 OFFSET ?", [offset]) if offset else ("", [])


def _authorize(action: int, arg1: str | None, arg2: str | None, db: str | None, source: str | None) -> int:
    """SQLite authorizer for user queries: SELECT, reads of the run tables, whitelisted functions."""
    if action == sqlite3.SQLITE_SELECT:
        return sqlite3.SQLITE_OK
    if action == sqlite3.SQLITE_READ and arg1 in _READABLE:
        return sqlite3.SQLITE_OK
    if action == sqlite3.SQLITE_FUNCTION and (arg2 or "").lower() in _allowed_functions():
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
            sql, qargs = self._where_sql(flt_where)
            where.append(sql)
            args.extend(qargs)
        order = self._default_order
        if flt_order is not None:
            sql, oargs = self._order_sql(flt_order)
            order = f"{sql}, {self._default_order}"
            args.extend(oargs)
        return " AND ".join(where), args, order

    # The engine hooks of _compile_filter: PostgreSQL overrides these, nothing else of it.
    _default_order = DEFAULT_ORDER

    def _where_sql(self, query: Any) -> tuple[str, list[Any]]:
        return _compiler().compile_where(query, _dialect())  # type: ignore[no-any-return]

    def _order_sql(self, order_by: str) -> tuple[str, list[Any]]:
        return _compiler().compile_order(order_by, _dialect())  # type: ignore[no-any-return]

    @contextmanager
    def _read_only(self, conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
        """The connection with the query functions registered and the read-only authorizer on.

        Callers hold ``self._lock`` (inside ``_reading()``), so no other statement of this
        connection runs while the authorizer is installed.
        """
        if self._functions_on is not conn:
            for name, fn in _dialect().functions.items():
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

    def _page_ids(self, conn: sqlite3.Connection, flt: RunFilter, cols: str = "runs.id") -> list[Any]:
        """The matching runs on the requested page, in order (docs/adr/0018): their ids, or with
        ``cols`` (columns of ``runs``, qualified) those columns' rows, read by the same statement.

        One of three plans, all returning exactly what ``SELECT ... WHERE <query> ORDER BY
        <order> LIMIT ... OFFSET ...`` over every run would:

        - **drive**: enumerate the most selective index range the query implies
          (``_sql_compile.index_ranges``: a param range, a metric aggregate range), test each
          of those runs, sort them. Chosen when the range holds fewer runs than the walk would
          visit (counted by a capped probe of the index).
        - **metric walk**: for ``order_by`` led by a metric's last/min/max, walk its
          ``metric_summary`` index in order, test each run, stop at the page's end; then the
          runs without a value (missing key, NaN), which sort last.
        - **walk**: the query as written; SQLite walks the order's index (newest first:
          ``runs_by_archived_start``) and stops at the page's end.
        """
        where, args, order = self._compile_filter(flt)
        flt_where, flt_order = validate_query(flt.where, flt.order_by)
        limit, offset = flt.limit, flt.offset
        from chachaml.query import parse_order_by

        sql_compile = _compiler()
        keys = parse_order_by(flt_order) if flt_order is not None else []
        lead = keys[0].field if keys else None
        indexed = sql_compile.INDEXED_AGGREGATES
        metric_walk = lead is not None and lead.kind == "metric" and lead.agg in indexed
        drive: list[IndexRange] = []
        if flt_where is not None:
            drive = self._driving_ranges(conn, sql_compile.index_ranges(flt_where), limit, offset)
        if drive:
            parts = [_range_sql(r) for r in drive]
            rargs = [a for _, _, part_args in parts for a in part_args]
            if len(parts) == 1:
                table, conds, _ = parts[0]
                source, test = f"{table} d", f"{conds} AND "
            else:  # the runs in every range: each is necessary, so their intersection is too
                union = " INTERSECT ".join(f"SELECT d.run_id FROM {t} d WHERE {c}" for t, c, _ in parts)
                source, test = f"({union}) d", ""
            page, pargs = _paging(limit, offset)
            sql = (
                f"SELECT {cols} FROM {source} CROSS JOIN runs ON runs.id = d.run_id "
                f"WHERE {test}{where} ORDER BY {order}{page}"
            )
            return _column(self._select(conn, sql, [*rargs, *args, *pargs]), cols)
        if not metric_walk:
            page, pargs = _paging(limit, offset)
            sql = f"SELECT {cols} FROM runs WHERE {where} ORDER BY {order}{page}"
            return _column(self._select(conn, sql, [*args, *pargs]), cols)
        return self._metric_walk(conn, flt, keys, limit, offset, cols)

    def _driving_ranges(
        self, conn: sqlite3.Connection, ranges: list[IndexRange], limit: int | None, offset: int
    ) -> list[IndexRange]:
        """The index ranges to drive the plan from (the runs in all of them), or none when
        walking in order visits fewer runs.

        Each range's size is counted from its index, up to ``PROBE_CAP`` rows; the ranges under
        the cap drive together. A walk in order visits about (offset + limit) / selectivity
        runs before the page is full, the selectivity estimated as the product of the ranges'
        fractions of all runs (assumed independent); driving is chosen when the smallest range
        is smaller than that, and at once when it is no larger than offset + limit.
        """
        if not ranges:
            return []
        total = conn.execute("SELECT max(rowid) FROM runs").fetchone()[0] or 0
        if total == 0:
            return []
        need = total if limit is None else min(total, offset + limit)
        counted: list[tuple[int, IndexRange]] = []
        selectivity = 1.0
        for r in ranges:
            table, conds, rargs = _range_sql(r)
            sql = f"SELECT count(*) FROM (SELECT 1 FROM {table} d WHERE {conds} LIMIT ?)"
            n = self._select(conn, sql, [*rargs, PROBE_CAP])[0][0]
            if limit is not None and n <= need:  # a walk visits at least `need` runs
                return [r]
            if n < PROBE_CAP:
                counted.append((n, r))
            selectivity *= max(n, 1) / total
        if not counted:
            return []
        counted.sort(key=lambda pair: pair[0])
        walk = total if limit is None else min(total, need / selectivity)
        return [r for _, r in counted] if counted[0][0] < walk else []

    def _metric_walk(
        self,
        conn: sqlite3.Connection,
        flt: RunFilter,
        keys: list[Any],
        limit: int | None,
        offset: int,
        cols: str = "runs.id",
    ) -> list[Any]:
        """The page ordered by a metric aggregate: runs holding a value in index order, then
        the runs without one (they sort last), each group tie-broken like the full ``ORDER BY``."""
        lead = keys[0]
        col = _RANGE_VALUE[lead.field.agg][1].replace("d.", "o.")
        where, args, _ = self._compile_filter(dataclasses.replace(flt, order_by=None))
        rest, rargs = _compiler().compile_order_keys(keys[1:], _dialect())
        tail = f"{rest}, {DEFAULT_ORDER}" if rest else DEFAULT_ORDER
        valued = (
            f"FROM metric_summary o CROSS JOIN runs ON runs.id = o.run_id "
            f"WHERE o.key = ? AND {col} IS NOT NULL AND {where}"
        )
        page, pargs = _paging(limit, offset)
        direction = "DESC" if lead.descending else "ASC"  # no NULLS LAST: valued rows only, in index order
        ids = _column(
            self._select(
                conn,
                f"SELECT {cols} {valued} ORDER BY {col} {direction}, {tail}{page}",
                [lead.field.key, *args, *rargs, *pargs],
            ),
            cols,
        )
        if limit is not None and len(ids) == limit:
            return ids
        skip = 0
        if not ids and offset:  # the page starts past every valued run: skip the rest of the offset
            valued_count = self._select(conn, f"SELECT count(*) {valued}", [lead.field.key, *args])[0][0]
            skip = max(0, offset - valued_count)
        page, pargs = _paging(None if limit is None else limit - len(ids), skip)
        ids += _column(
            self._select(
                conn,
                f"SELECT {cols} FROM runs WHERE {where} AND NOT EXISTS (SELECT 1 FROM metric_summary o "
                f"WHERE o.run_id = runs.id AND o.key = ? AND {col} IS NOT NULL) ORDER BY {tail}{page}",
                [*args, lead.field.key, *rargs, *pargs],
            ),
            cols,
        )
        return ids

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
