"""The ``where=`` and ``order_by=`` language: a tokenizer and a recursive-descent parser to a
small backend-neutral AST (``chachaml.query.ast``).

Each SQL store compiles the AST to parameterised SQL over its ``runs`` table
(``chachaml.store._sql_compile`` with a dialect such as ``chachaml.store._sqlite_dialect``);
a remote store sends the text. The ``Client`` parses every query before a backend is touched.
Nothing is ever evaluated: every value **and every key** a user writes becomes a bound
parameter, and the only identifiers in the SQL come from the compiler's whitelist.
A malformed query raises ``QueryError`` (a ``ValueError``) with the position of the problem.

Grammar (keywords are case-insensitive)::

    query     := or_expr
    or_expr   := and_expr ("or" and_expr)*
    and_expr  := not_expr ("and" not_expr)*
    not_expr  := "not" not_expr | "(" or_expr ")" | condition
    condition := field ("=" | "!=" | "<" | "<=" | ">" | ">=") literal
               | field ["not"] "in" "(" literal ("," literal)* [","] ")"
               | field ["not"] "like" string
               | field "is" ["not"] "null"
    field     := params.<key> | metrics.<key>[.min|.max|.last|.count] | tags.<key>
               | [attributes.]<status|name|experiment|created_by|start_time|end_time|duration|id|parent_id>
    <key>     := part ("." part)*       a part is a bare word or a `backticked` name
    literal   := number | "-" number | 'string' | "string" | true | false
    order_by  := field ["asc" | "desc"] ("," field ["asc" | "desc"])*

Semantics are SQL's (SPEC section 8, docs/query.md): a run that lacks a key matches neither
``x = v`` nor ``x != v`` nor ``not x = v`` (only ``x is null``); numbers compare with numbers and
strings with strings; ``like`` is case-insensitive; NULLs sort last in both directions.

Dialects: everything that differs between SQL engines (placeholders, JSON access, ``like``,
``NULLS LAST``) is a method of a dialect object next to the SQL stores; a PostgreSQL dialect
implements the same methods and reuses this parser and the compiler unchanged.
"""

from __future__ import annotations

from chachaml.query.ast import (
    AGGREGATES,
    ATTRIBUTES,
    MAX_CHARS,
    MAX_CONDITIONS,
    MAX_DEPTH,
    MAX_VALUES,
    And,
    Compare,
    Field,
    InList,
    IsNull,
    Like,
    Node,
    Not,
    Or,
    OrderKey,
    Value,
)
from chachaml.query.parser import is_wide_int, parse_order_by, parse_where

__all__ = [
    "AGGREGATES",
    "ATTRIBUTES",
    "MAX_CHARS",
    "MAX_CONDITIONS",
    "MAX_DEPTH",
    "MAX_VALUES",
    "And",
    "Compare",
    "Field",
    "InList",
    "IsNull",
    "Like",
    "Node",
    "Not",
    "Or",
    "OrderKey",
    "Value",
    "is_wide_int",
    "parse_order_by",
    "parse_where",
]
