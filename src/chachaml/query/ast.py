"""The AST of the query language: what a ``where=`` / ``order_by=`` string means, with no SQL.

Nodes are frozen (hashable) dataclasses, so parsed queries can be cached and compared.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, TypeAlias

#: Hard limits: a query beyond them is refused with ``QueryError`` before any SQL is built, so a
#: hostile or runaway query cannot exhaust the stack, SQLite's expression depth or its variables.
MAX_CHARS = 100_000
MAX_DEPTH = 64  # nested parentheses and ``not``
MAX_CONDITIONS = 1_000
MAX_VALUES = 10_000  # literals in the whole query (each one is a bound parameter)

#: Run attributes and their static types ("text" or "int": integer milliseconds).
ATTRIBUTES: dict[str, str] = {
    "id": "text",
    "name": "text",
    "experiment": "text",
    "status": "text",
    "created_by": "text",
    "parent_id": "text",
    "start_time": "int",
    "end_time": "int",
    "duration": "int",
}
AGGREGATES = ("min", "max", "last", "count")
KEYWORDS = frozenset({"and", "or", "not", "in", "like", "is", "null", "true", "false", "asc", "desc"})
COMPARATORS = {"=": "=", "==": "=", "!=": "!=", "<>": "!=", "<": "<", "<=": "<=", ">": ">", ">=": ">="}

Value: TypeAlias = str | int | float | bool
Kind = Literal["param", "metric", "tag", "attr"]
NAMESPACES: dict[str, Kind] = {"params": "param", "metrics": "metric", "tags": "tag", "attributes": "attr"}


# -- AST ------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Field:
    """A thing a run has: ``kind`` param/metric/tag/attr, its ``key``, a metric ``agg``regate."""

    kind: Kind
    key: str
    agg: str = "last"  # metrics only: last (= latest), min, max, count
    pos: int = 0
    text: str = ""  # as the user wrote it, for messages

    @property
    def static_type(self) -> str | None:
        """``text``, ``int`` or ``number`` when known before reading the data (params: ``None``)."""
        if self.kind == "attr":
            return ATTRIBUTES[self.key]
        if self.kind == "tag":
            return "text"
        if self.kind == "metric":
            return "int" if self.agg == "count" else "number"
        return None


@dataclass(frozen=True, slots=True)
class Compare:
    field: Field
    op: str  # = != < <= > >=
    value: Value


@dataclass(frozen=True, slots=True)
class InList:
    field: Field
    values: tuple[Value, ...]


@dataclass(frozen=True, slots=True)
class Like:
    field: Field
    pattern: str


@dataclass(frozen=True, slots=True)
class IsNull:
    field: Field


@dataclass(frozen=True, slots=True)
class Not:
    operand: Node


@dataclass(frozen=True, slots=True)
class And:
    operands: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Or:
    operands: tuple[Node, ...]


Node: TypeAlias = Compare | InList | Like | IsNull | Not | And | Or


@dataclass(frozen=True, slots=True)
class OrderKey:
    field: Field
    descending: bool = False
