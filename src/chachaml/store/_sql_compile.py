"""The SQL compiler of the query language, shared by the SQL stores (a dialect per engine).

The backend-neutral AST (``chachaml.query``) becomes a parameterised SQL expression over the
``runs`` table. Nothing is ever evaluated: every value **and every key** a user writes becomes a
bound parameter, and the only identifiers in the SQL are fixed ones chosen here from a whitelist.
Everything that differs between engines is a method of the dialect (``Dialect``); SQLite's is
``chachaml.store._sqlite_dialect.SQLITE``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, ClassVar, Protocol

from chachaml.query import (
    And,
    Compare,
    Field,
    InList,
    IsNull,
    Like,
    Node,
    Not,
    Or,
    Value,
    is_wide_int,
    parse_order_by,
    parse_where,
)

__all__ = ["Dialect", "compile_order", "compile_where"]


class Dialect(Protocol):
    """What the compiler asks an SQL engine (see ``SqliteDialect`` for the meaning of each)."""

    name: str
    placeholder: str
    number_types: tuple[str, ...]
    text_types: tuple[str, ...]
    bool_types: tuple[str, ...]
    null_type: str
    functions: ClassVar[dict[str, Callable[[Any], Any]]]
    allowed_functions: ClassVar[frozenset[str]]

    def __hash__(self) -> int: ...  # compiled queries are cached per (text, dialect)

    def json_type(self, col: str) -> str: ...

    def json_value(self, col: str) -> str: ...

    def json_text(self, col: str) -> str: ...

    def bool_value(self, b: bool) -> Any: ...

    def like(self, expr: str) -> str: ...

    def like_pattern(self, pattern: str) -> str: ...

    def order_term(self, expr: str, descending: bool) -> str: ...


#: SQL of each run attribute; the only identifiers a compiled query contains come from here.
_ATTR_SQL = {
    "id": "runs.id",
    "name": "runs.name",
    "experiment": "runs.experiment",
    "status": "runs.status",
    "created_by": "runs.created_by",
    "parent_id": "runs.parent_id",
    "start_time": "runs.start_time",
    "end_time": "runs.end_time",
    "duration": "(runs.end_time - runs.start_time)",
}
_METRIC_COL = {"last": "ms.last_value", "min": "ms.min", "max": "ms.max", "count": "ms.count"}
_SQL_OP = {"=": "=", "!=": "<>", "<": "<", "<=": "<=", ">": ">", ">=": ">="}

_Sql = tuple[str, list[Any]]


class _Compiler:
    """AST -> (SQL, args) with args in the order their placeholders appear in the text."""

    def __init__(self, dialect: Dialect) -> None:
        self.d = dialect
        self.ph = dialect.placeholder

    def marks(self, n: int) -> str:
        return ", ".join([self.ph] * n)

    # values of each kind of field; keys are always bound
    def scalar(self, f: Field) -> _Sql:
        """An expression giving the field's value, NULL when the run lacks it (params: JSON)."""
        if f.kind == "attr":
            return _ATTR_SQL[f.key], []
        if f.kind == "tag":
            return f"(SELECT t.value FROM tags t WHERE t.run_id = runs.id AND t.key = {self.ph})", [f.key]
        if f.kind == "metric":
            col = _METRIC_COL[f.agg]
            return (
                f"(SELECT {col} FROM metric_summary ms WHERE ms.run_id = runs.id AND ms.key = {self.ph})",
                [f.key],
            )
        return (
            f"(SELECT {self.d.json_value('p.value')} FROM params p "
            f"WHERE p.run_id = runs.id AND p.key = {self.ph})",
            [f.key],
        )

    def param_test(self, f: Field, body: str, args: list[Any]) -> _Sql:
        """Evaluate ``body`` (over ``T`` = JSON type, ``V`` = value) on the run's param row.

        The scalar subquery is NULL when the run has no such param, which is what makes a
        missing key match neither ``x = v`` nor ``not x = v``.
        """
        t, v = self.d.json_type("p.value"), self.d.json_value("p.value")
        body = body.replace("{T}", t).replace("{V}", v).replace("{J}", self.d.json_text("p.value"))
        return (
            f"(SELECT CASE WHEN {t} = '{self.d.null_type}' THEN NULL ELSE {body} END FROM params p "
            f"WHERE p.run_id = runs.id AND p.key = {self.ph})",
            [*args, f.key],
        )

    def type_test(self, value: Value) -> str:
        if is_wide_int(value):
            return "{T} = 'integer'"
        if isinstance(value, bool):
            types = self.d.bool_types
        elif isinstance(value, str):
            types = self.d.text_types
        else:
            types = self.d.number_types
        return "{T} IN (" + ", ".join(f"'{t}'" for t in types) + ")"

    @staticmethod
    def operand(value: Value) -> str:
        """What a param is compared with: its value ({V}), or for an integer beyond 64 bits its
        stored digits ({J}), since json_extract would give an inexact float; so only a param
        logged as exactly this integer matches."""
        return "{J}" if is_wide_int(value) else "{V}"

    def bind(self, value: Value) -> Any:
        if is_wide_int(value):
            return str(value)  # the JSON text encode_param writes for it
        return self.d.bool_value(value) if isinstance(value, bool) else value

    # nodes
    def node(self, n: Node) -> _Sql:
        if isinstance(n, And | Or):
            return self.join(" AND " if isinstance(n, And) else " OR ", [self.node(o) for o in n.operands])
        if isinstance(n, Not):
            if isinstance(n.operand, IsNull):
                return self.is_null(n.operand, negated=True)
            sql, args = self.node(n.operand)
            return f"(NOT {sql})", args
        if isinstance(n, Compare):
            return self.compare(n)
        if isinstance(n, InList):
            return self.in_list(n)
        if isinstance(n, Like):
            return self.like(n)
        return self.is_null(n)

    def join(self, sep: str, parts: list[_Sql]) -> _Sql:
        """Balanced parentheses, so SQLite's expression depth grows with log(conditions)."""
        if len(parts) == 1:
            return parts[0]
        mid = len(parts) // 2
        (ls, la), (rs, ra) = self.join(sep, parts[:mid]), self.join(sep, parts[mid:])
        return f"({ls}{sep}{rs})", la + ra

    def compare(self, n: Compare) -> _Sql:
        op = _SQL_OP[n.op]
        if n.field.kind != "param":
            expr, args = self.scalar(n.field)
            return f"{expr} {op} {self.ph}", [*args, n.value]
        # another type: never equal (so != holds), and not ordered (unknown, like a missing key)
        mismatch = {"=": "0", "!=": "1"}.get(n.op, "NULL")
        test, operand = self.type_test(n.value), self.operand(n.value)
        body = f"CASE WHEN {test} THEN {operand} {op} {self.ph} ELSE {mismatch} END"
        return self.param_test(n.field, body, [self.bind(n.value)])

    def in_list(self, n: InList) -> _Sql:
        if n.field.kind != "param":
            expr, args = self.scalar(n.field)
            return f"{expr} IN ({self.marks(len(n.values))})", [*args, *n.values]
        groups: dict[tuple[str, str], list[Any]] = {}
        for v in n.values:
            groups.setdefault((self.type_test(v), self.operand(v)), []).append(self.bind(v))
        tests, args = [], []
        for (test, operand), vals in groups.items():
            tests.append(f"({test} AND {operand} IN ({self.marks(len(vals))}))")
            args.extend(vals)
        return self.param_test(n.field, "(" + " OR ".join(tests) + ")", args)

    def like(self, n: Like) -> _Sql:
        pattern = self.d.like_pattern(n.pattern)
        if n.field.kind != "param":
            expr, args = self.scalar(n.field)
            return self.d.like(expr), [*args, pattern]
        body = f"CASE WHEN {self.type_test(n.pattern)} THEN {self.d.like('{V}')} ELSE 0 END"
        return self.param_test(n.field, body, [pattern])

    def is_null(self, n: IsNull, negated: bool = False) -> _Sql:
        f, no = n.field, "" if negated else "NOT "
        if f.kind == "attr":
            return f"{_ATTR_SQL[f.key]} IS {'NOT ' if negated else ''}NULL", []
        if f.kind == "param":
            return (
                f"{no}EXISTS (SELECT 1 FROM params p WHERE p.run_id = runs.id AND p.key = {self.ph} "
                f"AND {self.d.json_type('p.value')} <> '{self.d.null_type}')",
                [f.key],
            )
        # a metric is null when it was never logged: a NaN is a value (SPEC section 8)
        table, alias = ("tags", "t") if f.kind == "tag" else ("metric_summary", "ms")
        return (
            f"{no}EXISTS (SELECT 1 FROM {table} {alias} WHERE {alias}.run_id = runs.id "
            f"AND {alias}.key = {self.ph})",
            [f.key],
        )


@functools.lru_cache(maxsize=256)
def _compile_where_cached(query: str, dialect: Dialect) -> tuple[str, tuple[Any, ...]]:
    sql, args = _Compiler(dialect).node(parse_where(query))
    return sql, tuple(args)


def compile_where(query: str | Node, dialect: Dialect) -> tuple[str, list[Any]]:
    """A boolean SQL expression over ``runs`` for a query (text or AST), and its bound values."""
    if isinstance(query, str):
        sql, args = _compile_where_cached(query, dialect)
        return sql, list(args)
    return _Compiler(dialect).node(query)


def compile_order(text: str, dialect: Dialect) -> tuple[str, list[Any]]:
    """An ``ORDER BY`` list (without the keywords) for an ``order_by=`` string, NULLs last."""
    comp = _Compiler(dialect)
    terms, args = [], []
    for key in parse_order_by(text):
        expr, a = comp.scalar(key.field)
        terms.append(dialect.order_term(expr, key.descending))
        args.extend(a)
    return ", ".join(terms), args
