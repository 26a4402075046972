"""The ``where=`` and ``order_by=`` language: a tokenizer, a recursive-descent parser, a compiler.

A query is parsed into a small AST, then compiled to a parameterised SQL expression over the
``runs`` table. Nothing is ever evaluated: every value **and every key** a user writes becomes a
bound parameter, and the only identifiers in the SQL are fixed ones chosen here from a whitelist.
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
``NULLS LAST``) is a method of a dialect object; ``SQLITE`` is the one shipped. A PostgreSQL
dialect implements the same methods and reuses the parser and the compiler unchanged.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, TypeAlias

from chachaml.errors import QueryError

__all__ = [
    "ATTRIBUTES",
    "SQLITE",
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
    "SqliteDialect",
    "compile_order",
    "compile_where",
    "parse_order_by",
    "parse_where",
]

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
_KEYWORDS = frozenset({"and", "or", "not", "in", "like", "is", "null", "true", "false", "asc", "desc"})
_COMPARATORS = {"=": "=", "==": "=", "!=": "!=", "<>": "!=", "<": "<", "<=": "<=", ">": ">", ">=": ">="}

Value: TypeAlias = str | int | float | bool
Kind = Literal["param", "metric", "tag", "attr"]
_NAMESPACES: dict[str, Kind] = {"params": "param", "metrics": "metric", "tags": "tag", "attributes": "attr"}


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


# -- errors ---------------------------------------------------------------------------------------
_WINDOW = 60  # characters shown either side of the caret for long queries


def _error(message: str, query: str, pos: int) -> QueryError:
    """A ``QueryError`` whose message shows (an excerpt of) the query with a caret at ``pos``.

    ``.query`` and ``.position`` always refer to the whole query; the message shows at most
    ``2 * _WINDOW`` characters around the position so a huge query does not flood the terminal.
    Newlines and tabs are shown as spaces so the caret stays under the right character.
    """
    pos = max(0, min(pos, len(query)))
    lo, hi = max(0, pos - _WINDOW), min(len(query), pos + _WINDOW)
    shown = query[lo:hi].translate({9: " ", 10: " ", 13: " "})
    prefix = "..." if lo else ""
    suffix = "..." if hi < len(query) else ""
    message = f"{message} (at position {pos})"
    exc = QueryError(message, query=prefix + shown + suffix, position=len(prefix) + pos - lo)
    exc.query, exc.position = query, pos
    return exc


# -- tokenizer ------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class _Token:
    kind: str  # word, field, string, number, op, punct, end
    pos: int
    end: int
    value: Any = None  # word: lowered text; field: tuple of (part, quoted, pos); string/number: value
    text: str = ""


_WORD_START = re.compile(r"[^\W\d]", re.UNICODE)
_WORD = re.compile(r"[^\W\d][\w/-]*", re.UNICODE)  # / and - so `metrics.val/loss` needs no quotes
_PART = re.compile(r"[\w/-]+", re.UNICODE)  # after a dot a part may start with a digit: params.layers.0
_NUMBER = re.compile(r"(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
_OPS = ("<=", ">=", "!=", "<>", "==", "=", "<", ">")


def _tokenize(query: str) -> list[_Token]:
    """Split a query into tokens; any character that cannot start a token is a ``QueryError``."""
    tokens: list[_Token] = []
    i, n = 0, len(query)
    while i < n:
        c = query[i]
        if c.isspace():
            i += 1
        elif _WORD_START.match(c) or c == "`":
            tokens.append(_field_token(query, i))
            i = tokens[-1].end
        elif c in "'\"":
            value, end = _quoted(query, i, c, "string")
            tokens.append(_Token("string", i, end, value, query[i:end]))
            i = end
        elif c.isdigit() or (c == "." and i + 1 < n and query[i + 1].isdigit()):
            m = _NUMBER.match(query, i)
            assert m is not None
            end = m.end()
            if end < n and (query[end].isalnum() or query[end] in "_."):
                raise _error(f"malformed number {query[i : end + 1]!r}", query, i)
            text = m.group()
            # An integer keeps every digit, even beyond 64 bits (seeds from SeedSequence are
            # 128-bit): the parser decides where such a wide integer can be compared exactly.
            number: int | float = int(text) if text.isdigit() else float(text)
            tokens.append(_Token("number", i, end, number, text))
            i = end
        elif c in "()," or c == "-":
            tokens.append(_Token("punct", i, i + 1, c, c))
            i += 1
        elif c in "=!<>":
            op = next((o for o in _OPS if query.startswith(o, i)), None)
            if op is None:
                raise _error(f"unknown operator {c!r}; comparisons are = != < <= > >=", query, i)
            tokens.append(_Token("op", i, i + len(op), _COMPARATORS[op], op))
            i += len(op)
        else:
            hint = "; combine conditions with and / or" if c in ";&|" else ""
            raise _error(f"unexpected character {c!r}{hint}", query, i)
    tokens.append(_Token("end", n, n, None, ""))
    return tokens


def _quoted(query: str, start: int, quote: str, what: str) -> tuple[str, int]:
    """The text of a quoted string or name starting at ``start``; a doubled quote is a quote."""
    parts, i = [], start + 1
    while True:
        j = query.find(quote, i)
        if j < 0:
            raise _error(
                f"unterminated {what}: the {quote} opened here is never closed "
                f"(write {quote}{quote} for a {quote} inside it)",
                query,
                start,
            )
        parts.append(query[i:j])
        if query.startswith(quote, j + 1):
            parts.append(quote)
            i = j + 2
        else:
            return "".join(parts), j + 1


def _field_token(query: str, start: int) -> _Token:
    """A dotted name such as ``params.`opt.lr``` (no spaces inside), or a keyword."""
    parts: list[tuple[str, bool, int]] = []
    i = start
    while True:
        if query.startswith("`", i):
            name, end = _quoted(query, i, "`", "backticked name")
            if not name:
                raise _error("empty backticked name", query, i)
            parts.append((name, True, i))
        else:
            m = (_WORD if not parts else _PART).match(query, i)
            if m is None:
                raise _error("expected a name after the dot", query, i)
            parts.append((m.group(), False, i))
            end = m.end()
        i = end
        if not (query.startswith(".", i) and i + 1 < len(query) and not query[i + 1].isspace()):
            break
        i += 1
    text = query[start:i]
    if len(parts) == 1 and not parts[0][1] and parts[0][0].lower() in _KEYWORDS:
        return _Token("word", start, i, parts[0][0].lower(), text)
    return _Token("field", start, i, tuple(parts), text)


# -- parser ---------------------------------------------------------------------------------------
class _Parser:
    def __init__(self, query: str) -> None:
        if not isinstance(query, str):
            raise QueryError(f'a query must be a str such as "params.lr < 0.1", got {query!r}')
        if len(query) > MAX_CHARS:
            raise _error(
                f"the query is {len(query)} characters long; the limit is {MAX_CHARS}"
                " (use `in (...)` instead of long chains of `or`)",
                query,
                MAX_CHARS,
            )
        try:
            query.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise _error(
                "the query contains an invalid character (a lone surrogate)", query, exc.start
            ) from None
        self.query = query
        self.tokens = _tokenize(query)
        self.i = 0
        self.depth = 0
        self.conditions = 0
        self.values = 0

    # token helpers
    @property
    def tok(self) -> _Token:
        return self.tokens[self.i]

    def take(self) -> _Token:
        tok = self.tokens[self.i]
        self.i += 1
        return tok

    def is_word(self, *words: str) -> bool:
        return self.tok.kind == "word" and self.tok.value in words

    def is_punct(self, c: str) -> bool:
        return self.tok.kind == "punct" and self.tok.value == c

    def fail(self, message: str, tok: _Token | None = None) -> QueryError:
        tok = tok or self.tok
        return _error(message, self.query, tok.pos)

    def describe(self, tok: _Token) -> str:
        return "the end of the query" if tok.kind == "end" else repr(tok.text)

    # grammar
    def parse_where(self) -> Node:
        if self.tok.kind == "end":
            raise self.fail('empty query; write a condition such as "metrics.acc > 0.9"')
        node = self.or_expr()
        if self.tok.kind != "end":
            raise self.fail(
                f"unexpected {self.describe(self.tok)} after a complete condition; "
                "join conditions with and / or"
            )
        return node

    def or_expr(self) -> Node:
        items = [self.and_expr()]
        while self.is_word("or"):
            self.take()
            items.append(self.and_expr())
        return items[0] if len(items) == 1 else Or(tuple(items))

    def and_expr(self) -> Node:
        items = [self.not_expr()]
        while self.is_word("and"):
            self.take()
            items.append(self.not_expr())
        return items[0] if len(items) == 1 else And(tuple(items))

    def not_expr(self) -> Node:
        if self.depth >= MAX_DEPTH:
            raise self.fail(f"the query nests parentheses or `not` more than {MAX_DEPTH} deep")
        self.depth += 1
        try:
            if self.is_word("not"):
                self.take()
                return Not(self.not_expr())
            if self.is_punct("("):
                opening = self.take()
                node = self.or_expr()
                if not self.is_punct(")"):
                    raise self.fail(
                        f"expected ')' to close the '(' at position {opening.pos}, "
                        f"found {self.describe(self.tok)}"
                    )
                self.take()
                return node
            return self.condition()
        finally:
            self.depth -= 1

    def condition(self) -> Node:
        self.conditions += 1
        if self.conditions > MAX_CONDITIONS:
            raise self.fail(f"the query has more than {MAX_CONDITIONS} conditions")
        field = self.field()
        tok = self.tok
        if tok.kind == "op":
            self.take()
            value, vtok = self.literal()
            self.check_type(field, value, vtok, tok.value)
            return Compare(field, tok.value, value)
        negate = False
        if self.is_word("not"):
            self.take()
            negate = True
            if not self.is_word("in", "like"):
                raise self.fail(f"expected `in` or `like` after `{field.text} not`")
        if self.is_word("in"):
            node: Node = self.in_list(field)
        elif self.is_word("like"):
            self.take()
            pattern, ptok = self.literal()
            if not isinstance(pattern, str):
                raise self.fail("`like` needs a quoted pattern such as 'resnet%'", ptok)
            if field.static_type not in (None, "text"):
                raise self.fail(f"`like` compares text, and {field.text} is a number", ptok)
            node = Like(field, pattern)
        elif self.is_word("is"):
            self.take()
            if self.is_word("not"):
                self.take()
                negate = True
            if not self.is_word("null"):
                raise self.fail(f"expected `null` after `is`, found {self.describe(self.tok)}")
            self.take()
            node = IsNull(field)
        else:
            raise self.fail(
                f"expected a comparison (= != < <= > >= in like is) after {field.text}, "
                f"found {self.describe(tok)}"
            )
        return Not(node) if negate else node

    def in_list(self, field: Field) -> InList:
        self.take()
        if not self.is_punct("("):
            raise self.fail("expected '(' after `in`, as in: status in ('failed', 'killed')")
        opening = self.take()
        values: list[Value] = []
        while True:
            if self.is_punct(")") and values:
                break
            value, vtok = self.literal()
            self.check_type(field, value, vtok, "in")
            values.append(value)
            if self.is_punct(","):
                self.take()
            elif not self.is_punct(")"):
                raise self.fail(
                    f"expected ',' or ')' in the list opened at position {opening.pos}, "
                    f"found {self.describe(self.tok)}"
                )
        self.take()
        return InList(field, tuple(values))

    def literal(self) -> tuple[Value, _Token]:
        tok = self.tok
        self.values += 1
        if self.values > MAX_VALUES:
            raise self.fail(f"the query has more than {MAX_VALUES} values")
        if tok.kind in ("string", "number"):
            self.take()
            return tok.value, tok
        if self.is_punct("-"):
            self.take()
            if self.tok.kind != "number":
                raise self.fail("expected a number after '-'")
            num = self.take()
            return -num.value, _Token("number", tok.pos, num.end, -num.value, "-" + num.text)
        if self.is_word("true", "false"):
            self.take()
            return tok.value == "true", tok
        if self.is_word("null"):
            raise self.fail("compare with null using `is null` or `is not null`")
        if tok.kind == "field":
            raise self.fail(
                f"expected a value, found {tok.text}; quote text ('{tok.text}'): "
                "a condition compares a field with a value, not with another field"
            )
        raise self.fail(
            f"expected a value (a number, a 'quoted string', true or false), found {self.describe(tok)}"
        )

    def check_type(self, field: Field, value: Value, vtok: _Token, op: str) -> None:
        """Refuse comparisons that can never match because the field's type is fixed, and
        those that SQL could only do inexactly (an integer beyond 64 bits, except ``=``,
        ``!=`` and ``in`` on a param, which compare its exact digits)."""
        static = field.static_type
        if is_wide_int(value) and (field.kind != "param" or op not in ("=", "!=", "in")):
            exact = (
                f"match it exactly with {field.text} = {vtok.text} (or != / in)"
                if field.kind == "param"
                else "only a param can match it exactly (params.<key> = ..., != or in)"
            )
            raise self.fail(
                f"the integer {vtok.text} does not fit in 64 bits, so SQL would compare it as an "
                f"inexact float; {exact}, or write it as a float ({float(value):.17g}) to accept "
                "float precision",
                vtok,
            )
        if isinstance(value, bool):
            if static is not None:
                raise self.fail(f"{field.text} is {_TYPE_WORDS[static]}, not true or false", vtok)
            if op not in ("=", "!=", "in"):
                raise self.fail("true and false compare only with =, != and in", vtok)
        elif isinstance(value, str):
            if static in ("int", "number"):
                unit = " (integer milliseconds since the epoch)" if field.key.endswith("_time") else ""
                raise self.fail(f"{field.text} is a number{unit}; compare it with a number, unquoted", vtok)
        elif static == "text":
            raise self.fail(f"{field.text} is text; quote the value: '{vtok.text}'", vtok)

    def field(self) -> Field:
        tok = self.tok
        if tok.kind != "field":
            if tok.kind == "word":
                raise self.fail(f"expected a field such as params.lr, found the keyword {tok.text!r}")
            raise self.fail(f"expected a field such as params.lr or status, found {self.describe(tok)}")
        self.take()
        parts: tuple[tuple[str, bool, int], ...] = tok.value
        head, quoted, _ = parts[0]
        if quoted:
            raise self.fail(
                "a backticked name must follow params., metrics. or tags., as in params.`opt.lr`", tok
            )
        kind: Kind | None = _NAMESPACES.get(head)
        if kind is None or len(parts) == 1:
            if len(parts) == 1 and head in ATTRIBUTES:
                return Field("attr", head, pos=tok.pos, text=tok.text)
            raise self.fail(_unknown_field(tok.text, parts), tok)
        rest = parts[1:]
        if kind == "attr":
            if len(rest) != 1 or rest[0][0] not in ATTRIBUTES:
                raise self.fail(
                    f"unknown attribute {tok.text}; run attributes are {', '.join(ATTRIBUTES)}", tok
                )
            return Field("attr", rest[0][0], pos=tok.pos, text=tok.text)
        agg = "last"
        if kind == "metric" and len(rest) > 1 and not rest[-1][1] and rest[-1][0] in AGGREGATES:
            agg = rest[-1][0]
            rest = rest[:-1]
        key = ".".join(p for p, _, _ in rest)
        return Field(kind, key, agg, tok.pos, tok.text)

    def parse_order_by(self) -> list[OrderKey]:
        if self.tok.kind == "end":
            raise self.fail('empty order_by; write a field such as "metrics.acc desc"')
        keys = []
        while True:
            field = self.field()
            descending = False
            if self.is_word("asc", "desc"):
                descending = self.take().value == "desc"
            keys.append(OrderKey(field, descending))
            if self.tok.kind == "end":
                return keys
            if not self.is_punct(","):
                raise self.fail(
                    f"expected asc, desc or ',' after {field.text}, found {self.describe(self.tok)}"
                )
            self.take()


_TYPE_WORDS = {"text": "text", "int": "an integer", "number": "a number"}


def _unknown_field(text: str, parts: Sequence[tuple[str, bool, int]]) -> str:
    head = parts[0][0]
    fields = (
        "fields are params.<key>, metrics.<key> (with .min .max .last .count), tags.<key>, "
        f"or a run attribute: {', '.join(ATTRIBUTES)}"
    )
    if head in _NAMESPACES:
        return f"{text} needs a key after the dot, as in {head}.lr; {fields}"
    if len(parts) == 1:
        return f"unknown field {text!r}; did you mean params.{text} or metrics.{text}? {fields}"
    return f"unknown field {text!r}; {fields}"


def is_wide_int(value: Any) -> bool:
    """Whether ``value`` is an integer outside SQLite's 64-bit range (compared as digits)."""
    return value.__class__ is int and not -(2**63) <= value < 2**63


def parse_where(query: str) -> Node:
    """The AST of a ``where=`` query; ``QueryError`` if it is malformed."""
    return _Parser(query).parse_where()


def parse_order_by(text: str) -> list[OrderKey]:
    """The keys of an ``order_by=`` string such as ``"metrics.acc desc, start_time"``."""
    return _Parser(text).parse_order_by()


# -- dialects -------------------------------------------------------------------------------------
class SqliteDialect:
    """Everything engine-specific the compiler needs, for SQLite (3.38+: built-in JSON).

    Params are JSON text; ``json_type`` tells a number from a string, so ``params.lr < 0.1``
    compares numbers and ``params.lr = '0.1'`` does not match the number 0.1. ``like`` lowers
    both sides in Python (``chachaml_lower``) because SQLite's own ``like`` folds ASCII only.
    """

    name = "sqlite"
    placeholder = "?"
    #: json_type names of each literal class (a JSON null counts as a missing value).
    number_types: tuple[str, ...] = ("integer", "real")
    text_types: tuple[str, ...] = ("text",)
    bool_types: tuple[str, ...] = ("true", "false")
    null_type = "null"
    #: Python functions the compiled SQL calls; the store registers them on its connection.
    functions: ClassVar[dict[str, Callable[[Any], Any]]] = {
        "chachaml_lower": lambda v: v.lower() if isinstance(v, str) else v,
    }
    #: The SQL functions compiled queries use: what the read-only authorizer allows.
    allowed_functions: ClassVar[frozenset[str]] = frozenset(
        {"json_type", "json_extract", "chachaml_lower", "like"}
    )

    def json_type(self, col: str) -> str:
        return f"json_type({col})"

    def json_value(self, col: str) -> str:
        return f"json_extract({col}, '$')"

    def json_text(self, col: str) -> str:
        """The param's JSON text as stored: an integer's exact decimal digits."""
        return col

    def bool_value(self, b: bool) -> Any:
        return int(b)  # json_extract gives 1 / 0 for JSON true / false

    def like(self, expr: str) -> str:
        return f"chachaml_lower({expr}) LIKE {self.placeholder} ESCAPE '\\'"

    def like_pattern(self, pattern: str) -> str:
        return pattern.lower()

    def order_term(self, expr: str, descending: bool) -> str:
        return f"{expr} {'DESC' if descending else 'ASC'} NULLS LAST"


SQLITE = SqliteDialect()


# -- compiler -------------------------------------------------------------------------------------
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

    def __init__(self, dialect: SqliteDialect) -> None:
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
def _compile_where_cached(query: str, dialect: SqliteDialect) -> tuple[str, tuple[Any, ...]]:
    sql, args = _Compiler(dialect).node(parse_where(query))
    return sql, tuple(args)


def compile_where(query: str | Node, dialect: SqliteDialect = SQLITE) -> tuple[str, list[Any]]:
    """A boolean SQL expression over ``runs`` for a query (text or AST), and its bound values."""
    if isinstance(query, str):
        sql, args = _compile_where_cached(query, dialect)
        return sql, list(args)
    return _Compiler(dialect).node(query)


def compile_order(text: str, dialect: SqliteDialect = SQLITE) -> tuple[str, list[Any]]:
    """An ``ORDER BY`` list (without the keywords) for an ``order_by=`` string, NULLs last."""
    comp = _Compiler(dialect)
    terms, args = [], []
    for key in parse_order_by(text):
        expr, a = comp.scalar(key.field)
        terms.append(dialect.order_term(expr, key.descending))
        args.extend(a)
    return ", ".join(terms), args
