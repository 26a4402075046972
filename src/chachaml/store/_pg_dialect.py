"""The PostgreSQL dialect of the query compiler (``chachaml.store._sql_compile``).

Only what differs from SQLite is here. The AST, the whitelist of identifiers and the
"missing key matches nothing" rules are the shared compiler's; PostgreSQL adds:

* typed params through ``jsonb``: a param's JSON type is ``jsonb_typeof(p.value_json)``; under
  that type test it is read as the literal's type, so ``params.lr < 0.1`` compares numbers and
  ``params.lr = '0.1'`` never matches the number 0.1;
* real booleans: PostgreSQL refuses SQLite's ``ELSE 0`` in a boolean ``CASE``;
* ``like`` lowers both sides (``lower()`` under the database's collation: Unicode-aware) and
  reads a JSON string param as text (``#>> '{}'``).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import Any, ClassVar

from chachaml.query import Compare, Field, InList, Like, Node, Value, is_wide_int, parse_order_by, parse_where
from chachaml.store._sql_compile import _Compiler, _Sql

__all__ = ["POSTGRES", "PostgresDialect", "compile_order", "compile_where"]


class PostgresDialect:
    """The engine-specific pieces for PostgreSQL (see ``SqliteDialect`` for each member)."""

    name = "postgresql"
    # The stores' SQL is written with ``?`` and turned into psycopg's ``%s`` in one place
    # (``_pg_base.pg_sql``), so compiled queries use ``?`` as well.
    placeholder = "?"
    number_types: tuple[str, ...] = ("number",)
    text_types: tuple[str, ...] = ("string",)
    bool_types: tuple[str, ...] = ("boolean",)
    null_type = "null"
    functions: ClassVar[dict[str, Callable[[Any], Any]]] = {}
    allowed_functions: ClassVar[frozenset[str]] = frozenset({"jsonb_typeof", "lower"})

    def json_type(self, col: str) -> str:
        return f"jsonb_typeof({col}_json)"  # p.value -> the generated jsonb column p.value_json

    def json_value(self, col: str) -> str:
        return f"{col}_json"

    def json_text(self, col: str) -> str:
        return col  # jsonb keeps numbers exact; the shared compiler's wide-int path is not used

    def bool_value(self, b: bool) -> Any:
        return b

    def like(self, expr: str) -> str:
        # The database's collation, not the columns' "C": lower() under "C" folds ASCII only.
        return f"lower(({expr}) COLLATE \"default\") LIKE {self.placeholder} ESCAPE '\\'"

    def like_pattern(self, pattern: str) -> str:
        return pattern.lower()

    def order_term(self, expr: str, descending: bool) -> str:
        return f"{expr} {'DESC' if descending else 'ASC'} NULLS LAST"


POSTGRES = PostgresDialect()


class _PgCompiler(_Compiler):
    """The shared compiler with PostgreSQL's booleans and typed reads of ``jsonb`` params.

    Under its type test, a param is read as the literal's type: numbers as ``float8`` (so a
    literal beyond JSON, such as ``1e400`` = infinity, still compares), strings as text in byte
    order (``COLLATE "C"``, as SQLite compares), booleans as ``boolean``, an integer beyond 64
    bits as ``numeric`` (exact).
    """

    def type_test(self, value: Value) -> str:
        # An integer beyond 64 bits is an ordinary JSON number here: numeric compares it exactly.
        return super().type_test(0 if is_wide_int(value) else value)

    @staticmethod
    def typed(value: Value) -> str:
        if is_wide_int(value):
            return "({V})::numeric"
        if isinstance(value, bool):
            return "({V})::boolean"
        if isinstance(value, str):
            return "(({V}) #>> '{}') COLLATE \"C\""
        return "({V})::float8"

    def bind(self, value: Value) -> Any:
        return value

    # PostgreSQL text cannot hold NUL, so no stored value equals a literal containing one; such
    # literals compile to what they mean instead of failing when bound (SQL's NULL for a run
    # that lacks the field, as everywhere). In byte order, every stored x has x < 'p\0...'
    # exactly when x <= 'p'.
    def _never(self, f: Field, truth: str) -> _Sql:
        if f.kind == "param":
            return self.param_test(f, truth, [])
        expr, args = self.scalar(f)
        return f"(CASE WHEN {expr} IS NULL THEN NULL ELSE {truth} END)", args

    def compare(self, n: Compare) -> _Sql:
        if isinstance(n.value, str) and "\x00" in n.value:
            if n.op in ("=", "!="):
                return self._never(n.field, "FALSE" if n.op == "=" else "TRUE")
            op = {"<": "<=", "<=": "<=", ">": ">", ">=": ">"}[n.op]
            return self.compare(dataclasses.replace(n, op=op, value=n.value.split("\x00", 1)[0]))
        if n.field.kind != "param":
            return super().compare(n)
        op = {"!=": "<>"}.get(n.op, n.op)
        mismatch = {"=": "FALSE", "!=": "TRUE"}.get(n.op, "NULL")
        test, expr = self.type_test(n.value), self.typed(n.value)
        body = f"CASE WHEN {test} THEN {expr} {op} {self.ph} ELSE {mismatch} END"
        return self.param_test(n.field, body, [n.value])

    def in_list(self, n: InList) -> _Sql:
        kept = tuple(v for v in n.values if not (isinstance(v, str) and "\x00" in v))
        if not kept:
            return self._never(n.field, "FALSE")
        n = dataclasses.replace(n, values=kept)
        if n.field.kind != "param":
            return super().in_list(n)
        groups: dict[tuple[str, str], list[Any]] = {}
        for v in n.values:
            groups.setdefault((self.type_test(v), self.typed(v)), []).append(v)
        tests, args = [], []
        for (test, expr), vals in groups.items():
            # CASE, not AND: PostgreSQL may evaluate AND's operands in any order, and a cast of
            # a value of another type would fail.
            tests.append(f"(CASE WHEN {test} THEN {expr} IN ({self.marks(len(vals))}) ELSE FALSE END)")
            args.extend(vals)
        return self.param_test(n.field, "(" + " OR ".join(tests) + ")", args)

    def like(self, n: Like) -> _Sql:
        if "\x00" in n.pattern:
            return self._never(n.field, "FALSE")
        if n.field.kind != "param":
            return super().like(n)
        text = self.d.like("({V} #>> '{}')")
        body = f"CASE WHEN {self.type_test(n.pattern)} THEN {text} ELSE FALSE END"
        return self.param_test(n.field, body, [self.d.like_pattern(n.pattern)])


@functools.lru_cache(maxsize=256)
def _compile_where_cached(query: str) -> tuple[str, tuple[Any, ...]]:
    sql, args = _PgCompiler(POSTGRES).node(parse_where(query))
    return sql, tuple(args)


def compile_where(query: str | Node) -> tuple[str, list[Any]]:
    """A boolean SQL expression over ``runs`` for a query (text or AST), and its bound values."""
    if isinstance(query, str):
        sql, args = _compile_where_cached(query)
        return sql, list(args)
    return _PgCompiler(POSTGRES).node(query)


def compile_order(text: str) -> tuple[str, list[Any]]:
    """An ``ORDER BY`` list (without the keywords) for an ``order_by=`` string, NULLs last."""
    comp = _PgCompiler(POSTGRES)
    terms, args = [], []
    for key in parse_order_by(text):
        expr, a = comp.scalar(key.field)
        terms.append(POSTGRES.order_term(expr, key.descending))
        args.extend(a)
    return ", ".join(terms), args
