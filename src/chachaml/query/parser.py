"""Tokenizer and recursive-descent parser of the query language (grammar: ``chachaml.query``).

A malformed query raises ``QueryError`` (a ``ValueError``) with the position of the problem;
the limits of ``chachaml.query.ast`` are enforced here, before any backend sees the query.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from chachaml.errors import QueryError
from chachaml.query.ast import (
    AGGREGATES,
    ATTRIBUTES,
    COMPARATORS,
    KEYWORDS,
    MAX_CHARS,
    MAX_CONDITIONS,
    MAX_DEPTH,
    MAX_VALUES,
    NAMESPACES,
    And,
    Compare,
    Field,
    InList,
    IsNull,
    Kind,
    Like,
    Node,
    Not,
    Or,
    OrderKey,
    Value,
)

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
            tokens.append(_Token("op", i, i + len(op), COMPARATORS[op], op))
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
    if len(parts) == 1 and not parts[0][1] and parts[0][0].lower() in KEYWORDS:
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
        kind: Kind | None = NAMESPACES.get(head)
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
    if head in NAMESPACES:
        return f"{text} needs a key after the dot, as in {head}.lr; {fields}"
    if len(parts) == 1:
        return f"unknown field {text!r}; did you mean params.{text} or metrics.{text}? {fields}"
    return f"unknown field {text!r}; {fields}"


def is_wide_int(value: Any) -> bool:
    """Whether ``value`` is an integer outside SQLite's 64-bit range (compared as digits)."""
    return value.__class__ is int and not -(2**63) <= value < 2**63


@functools.lru_cache(maxsize=256)
def parse_where(query: str) -> Node:
    """The AST of a ``where=`` query; ``QueryError`` if it is malformed.

    Cached (the AST is immutable): the ``Client`` validates a query and the store compiles it,
    and a notebook repeats the same query often.
    """
    return _Parser(query).parse_where()


def parse_order_by(text: str) -> list[OrderKey]:
    """The keys of an ``order_by=`` string such as ``"metrics.acc desc, start_time"``."""
    return _Parser(text).parse_order_by()
