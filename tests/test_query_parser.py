"""The query language's tokenizer, parser and compiler, without a database (chachaml.query)."""

from __future__ import annotations

import pytest

from chachaml.errors import InvalidValueError, QueryError
from chachaml.query import (
    MAX_CHARS,
    MAX_CONDITIONS,
    MAX_DEPTH,
    And,
    Compare,
    Field,
    InList,
    IsNull,
    Like,
    Not,
    Or,
    OrderKey,
    parse_order_by,
    parse_where,
)
from chachaml.store import _sql_compile
from chachaml.store._sqlite_dialect import SQLITE


def compile_where(query: object) -> tuple[str, list[object]]:
    """The SQLite compilation of a query (the compiler lives with the SQL stores, issue 8)."""
    return _sql_compile.compile_where(query, SQLITE)  # type: ignore[arg-type]


def compile_order(text: str) -> tuple[str, list[object]]:
    return _sql_compile.compile_order(text, SQLITE)


def cmp(kind: str, key: str, op: str, value: object, agg: str = "last") -> tuple[object, ...]:
    return (kind, key, agg, op, value)


def flat(node: object) -> tuple[object, ...]:
    """A Compare as (kind, key, agg, op, value): positions and spelling left out."""
    assert isinstance(node, Compare)
    return (node.field.kind, node.field.key, node.field.agg, node.op, node.value)


# -- fields -----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("params.lr < 0.1", cmp("param", "lr", "<", 0.1)),
        ("params.optimizer.lr = 1", cmp("param", "optimizer.lr", "=", 1)),
        ("params.`opt.lr` = 1", cmp("param", "opt.lr", "=", 1)),
        ("params.`learning rate` >= 2", cmp("param", "learning rate", ">=", 2)),
        ("params.a.`b c`.d = 1", cmp("param", "a.b c.d", "=", 1)),
        ("params.layers.0 = 64", cmp("param", "layers.0", "=", 64)),
        ("metrics.acc > 0.9", cmp("metric", "acc", ">", 0.9)),
        ("metrics.acc.max > 0.9", cmp("metric", "acc", ">", 0.9, "max")),
        ("metrics.acc.min < 0.9", cmp("metric", "acc", "<", 0.9, "min")),
        ("metrics.acc.last = 1", cmp("metric", "acc", "=", 1, "last")),
        ("metrics.acc.count >= 10", cmp("metric", "acc", ">=", 10, "count")),
        ("metrics.val.acc.max > 0", cmp("metric", "val.acc", ">", 0, "max")),
        ("metrics.`acc.max` > 0", cmp("metric", "acc.max", ">", 0)),
        ("metrics.train.`max` > 0", cmp("metric", "train.max", ">", 0)),
        ("metrics.count > 0", cmp("metric", "count", ">", 0)),
        ("metrics.train/loss < 1", cmp("metric", "train/loss", "<", 1)),
        ("metrics.val-loss < 1", cmp("metric", "val-loss", "<", 1)),
        ("tags.team = 'nlp'", cmp("tag", "team", "=", "nlp")),
        ("tags.`mlflow.runName` = 'x'", cmp("tag", "mlflow.runName", "=", "x")),
        ("status = 'failed'", cmp("attr", "status", "=", "failed")),
        ("attributes.status = 'failed'", cmp("attr", "status", "=", "failed")),
        ("duration > 1000", cmp("attr", "duration", ">", 1000)),
        ("attributes.start_time < 5", cmp("attr", "start_time", "<", 5)),
        ("params.métrique = 'é'", cmp("param", "métrique", "=", "é")),
    ],
)
def test_fields_keys_and_aggregates_parse(query: str, expected: tuple[object, ...]) -> None:
    assert flat(parse_where(query)) == expected


@pytest.mark.parametrize("attribute", ["status", "name", "experiment", "created_by", "id", "parent_id"])
def test_every_text_attribute_parses_bare_and_prefixed(attribute: str) -> None:
    assert flat(parse_where(f"{attribute} = 'x'")) == cmp("attr", attribute, "=", "x")
    assert flat(parse_where(f"attributes.{attribute} = 'x'")) == cmp("attr", attribute, "=", "x")


# -- literals and operators ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("literal", "value"),
    [
        ("1", 1),
        ("-1", -1),
        ("- 2.5", -2.5),
        ("1e-3", 1e-3),
        ("1E3", 1000.0),
        (".5", 0.5),
        ("5.", 5.0),
        ("'text'", "text"),
        ('"text"', "text"),
        ("'it''s'", "it's"),
        ('"say ""hi"""', 'say "hi"'),
        ("'a \"b\" c'", 'a "b" c'),
        ("''", ""),
        ("'back\\slash'", "back\\slash"),
        ("true", True),
        ("FALSE", False),
        # beyond 64-bit integers: kept exactly (issue 7); the compiler compares their digits
        ("99999999999999999999999", 99999999999999999999999),
    ],
)
def test_literals(literal: str, value: object) -> None:
    node = parse_where(f"params.x = {literal}")
    assert isinstance(node, Compare)
    assert node.value == value and type(node.value) is type(value)


@pytest.mark.parametrize(
    ("op", "norm"), [("=", "="), ("==", "="), ("!=", "!="), ("<>", "!="), ("<", "<"), ("<=", "<=")]
)
def test_comparison_operators_and_their_spellings(op: str, norm: str) -> None:
    assert flat(parse_where(f"params.x {op} 1")) == cmp("param", "x", norm, 1)


def test_keywords_are_case_insensitive_and_whitespace_is_free() -> None:
    node = parse_where("NOT params.a=1 AND\n\t(params.b IS NOT NULL Or params.c In (1,2))")
    assert isinstance(node, And)
    first, second = node.operands
    assert isinstance(first, Not) and isinstance(second, Or)


def test_and_binds_tighter_than_or_and_not_tighter_than_and() -> None:
    node = parse_where("params.a = 1 or not params.b = 2 and params.c = 3")
    assert isinstance(node, Or)
    left, right = node.operands
    assert flat(left) == cmp("param", "a", "=", 1)
    assert isinstance(right, And)
    assert isinstance(right.operands[0], Not)


def test_parentheses_override_precedence() -> None:
    node = parse_where("(params.a = 1 or params.b = 2) and params.c = 3")
    assert isinstance(node, And) and isinstance(node.operands[0], Or)


def test_in_not_in_like_not_like_is_null_is_not_null() -> None:
    assert parse_where("status in ('a', 'b',)") == InList(
        Field("attr", "status", pos=0, text="status"), ("a", "b")
    )
    n = parse_where("params.x not in (1, 'a', true)")
    assert isinstance(n, Not) and isinstance(n.operand, InList)
    assert n.operand.values == (1, "a", True)
    n = parse_where("name not like 'base%'")
    assert isinstance(n, Not) and isinstance(n.operand, Like) and n.operand.pattern == "base%"
    assert isinstance(parse_where("tags.x is null"), IsNull)
    n = parse_where("tags.x is not null")
    assert isinstance(n, Not) and isinstance(n.operand, IsNull)


def test_a_field_named_like_a_keyword_after_a_dot_is_a_key() -> None:
    assert flat(parse_where("params.and = 1")) == cmp("param", "and", "=", 1)
    assert flat(parse_where("tags.null = 'x'")) == cmp("tag", "null", "=", "x")


# -- errors: every malformed query is a QueryError naming the position ---------------------------------
@pytest.mark.parametrize(
    ("query", "position", "fragment"),
    [
        ("", 0, "empty query"),
        ("params.lr <", 11, "expected a value"),
        ("params.lr", 9, "expected a comparison"),
        ("params.lr 0.1", 10, "expected a comparison"),
        ("(params.lr < 1", 14, "expected ')'"),
        ("params.lr < 1)", 13, "after a complete condition"),
        ("params.lr < 1 params.x = 2", 14, "after a complete condition"),
        ("params.lr < 1 and", 17, "expected a field"),
        ("and params.lr < 1", 0, "keyword 'and'"),
        ("params.lr = 'open", 12, "unterminated string"),
        ('params.lr = "open', 12, "unterminated string"),
        ("params.`open = 1", 7, "unterminated backticked name"),
        ("params.`` = 1", 7, "empty backticked name"),
        ("`lr` = 1", 0, "backticked name must follow"),
        ("lr = 1", 0, "did you mean params.lr"),
        ("parms.lr = 1", 0, "unknown field"),
        ("params = 1", 0, "needs a key"),
        ("attributes.color = 'x'", 0, "unknown attribute"),
        ("attributes.status.x = 'x'", 0, "unknown attribute"),
        ("params.lr = 0.1x", 12, "malformed number"),
        ("params.lr = 1.2.3", 12, "malformed number"),
        ("params.lr ! 1", 10, "unknown operator"),
        ("params.lr = 1; drop table runs", 13, "unexpected character ';'"),
        ("params.lr = 1 && params.x = 2", 14, "unexpected character '&'"),
        ("params.lr = 1 || params.x = 2", 14, "unexpected character '|'"),
        ("params.lr = @x", 12, "unexpected character '@'"),
        ("params.lr = null", 12, "is null"),
        ("params.lr = adam", 12, "quote text"),
        ("params.lr = params.x", 12, "not with another field"),
        ("params.lr in 1", 13, "expected '('"),
        ("params.lr in ()", 14, "expected a value"),
        ("params.lr in (1 2)", 16, "expected ',' or ')'"),
        ("params.lr in (1,", 16, "expected a value"),
        ("params.lr not = 1", 14, "expected `in` or `like`"),
        ("params.lr is 1", 13, "expected `null`"),
        ("params.lr like 1", 15, "quoted pattern"),
        ("params.lr = -'a'", 13, "expected a number after '-'"),
        ("status = 1", 9, "quote the value"),
        ("status = true", 9, "not true or false"),
        ("start_time > '2024-01-01'", 13, "integer milliseconds"),
        ("metrics.acc = 'x'", 14, "is a number"),
        ("metrics.acc in (1, 'x')", 19, "is a number"),
        ("metrics.acc like 'x%'", 17, "`like` compares text"),
        ("tags.team = 1", 12, "quote the value"),
        ("params.flag < true", 14, "true and false compare only"),
        ("params.", 6, "unexpected character '.'"),
        ("params. lr = 1", 6, "unexpected character '.'"),
    ],
)
def test_malformed_queries_raise_query_error_at_the_position(
    query: str, position: int, fragment: str
) -> None:
    with pytest.raises(QueryError) as info:
        compile_where(query)
    err = info.value
    assert fragment in str(err)
    assert err.position == position, str(err)
    assert err.query == query
    assert isinstance(err, ValueError) and isinstance(err, InvalidValueError)


def test_the_message_shows_the_query_with_a_caret_under_the_position() -> None:
    with pytest.raises(QueryError) as info:
        parse_where("params.lr < 0.1 and metrics.acc = 'high'")
    lines = str(info.value).splitlines()
    assert lines[-2].strip() == "params.lr < 0.1 and metrics.acc = 'high'"
    caret = lines[-1].index("^")
    assert lines[-2][caret:].startswith("'high'")


def test_a_multiline_query_keeps_the_caret_aligned() -> None:
    query = "params.a = 1\nand\tparams.b = ?"
    with pytest.raises(QueryError) as info:
        parse_where(query)
    shown, caret_line = str(info.value).splitlines()[-2:]
    assert shown[caret_line.index("^")] == "?"
    assert info.value.position == query.index("?")


def test_a_huge_query_shows_only_an_excerpt_around_the_position() -> None:
    query = "params.a = 1 or " * 2000 + "params.b = $"
    with pytest.raises(QueryError) as info:
        parse_where(query)
    err = info.value
    assert err.position == len(query) - 1 and err.query == query
    assert len(str(err)) < 600
    shown, caret_line = str(err).splitlines()[-2:]
    assert shown[caret_line.index("^")] == "$"


def test_a_query_must_be_a_string() -> None:
    with pytest.raises(QueryError, match="must be a str"):
        parse_where(42)  # type: ignore[arg-type]


def test_a_lone_surrogate_is_a_query_error_not_a_unicode_error() -> None:
    with pytest.raises(QueryError, match="invalid character") as info:
        compile_where("params.x = 'a\ud800b'")
    assert info.value.position == 13


# -- limits ---------------------------------------------------------------------------------------------
def test_deep_nesting_is_a_query_error_not_a_recursion_error() -> None:
    for query in ["(" * 40_000 + "status = 'x'" + ")" * 40_000, "not " * 20_000 + "status = 'x'"]:
        assert len(query) < MAX_CHARS
        with pytest.raises(QueryError, match="nests") as info:
            parse_where(query)
        assert info.value.position <= 5 * MAX_DEPTH


def test_nesting_up_to_the_limit_is_fine() -> None:
    depth = MAX_DEPTH - 1
    node = parse_where("(" * depth + "status = 'x'" + ")" * depth)
    assert isinstance(node, Compare)


def test_too_long_and_too_many_conditions_are_query_errors() -> None:
    with pytest.raises(QueryError, match="characters long"):
        parse_where("name = '" + "x" * MAX_CHARS + "'")
    many = " or ".join(f"params.p{i} = {i}" for i in range(MAX_CONDITIONS + 1))
    assert len(many) < MAX_CHARS
    with pytest.raises(QueryError, match="conditions"):
        parse_where(many)


def test_a_long_string_value_within_the_limit_is_fine() -> None:
    value = "x" * (MAX_CHARS - 20)
    sql, args = compile_where(f"name = '{value}'")
    assert args == [value]
    assert value not in sql


# -- the compiler ------------------------------------------------------------------------------------------
def test_values_and_keys_are_bound_never_pasted() -> None:
    sql, args = compile_where(
        "params.`x'; DROP TABLE runs; --` = 'y''; DELETE FROM params; --' and tags.`t\"` like '%a%'"
    )
    assert "DROP" not in sql and "DELETE" not in sql and 't"' not in sql and "%a%" not in sql
    assert args == ["y'; DELETE FROM params; --", "x'; DROP TABLE runs; --", 't"', "%a%"]
    assert sql.count("?") == len(args)


def test_placeholders_match_args_in_textual_order() -> None:
    sql, args = compile_where(
        "params.a in (1, 'b', true) and not (metrics.m.max > 2 or tags.t is null) and name like 'N%'"
    )
    assert sql.count("?") == len(args)
    assert args == [1, "b", 1, "a", "m", 2, "t", "n%"]  # like patterns are lowered


def test_or_chains_compile_to_balanced_parentheses() -> None:
    sql, _ = compile_where(" or ".join(f"status = 's{i}'" for i in range(64)))
    depth = peak = 0
    for ch in sql:
        depth += ch == "("
        depth -= ch == ")"
        peak = max(peak, depth)
    assert peak <= 8  # log2(64) + 1, not 64


def test_is_not_null_compiles_to_exists() -> None:
    sql, _ = compile_where("metrics.acc is not null")
    assert sql.startswith("EXISTS") and "NOT" not in sql
    sql, _ = compile_where("metrics.acc is null")
    assert sql.startswith("NOT EXISTS")


def test_compiling_a_parsed_ast_gives_the_same_sql_as_the_text() -> None:
    query = "params.lr < 0.1 and status in ('completed', 'failed')"
    assert compile_where(parse_where(query)) == compile_where(query)


# -- order_by ------------------------------------------------------------------------------------------------
def test_order_by_parses_fields_directions_and_lists() -> None:
    keys = parse_order_by("metrics.acc.max desc, params.`opt.lr` ASC, start_time")
    assert [(k.field.kind, k.field.key, k.field.agg, k.descending) for k in keys] == [
        ("metric", "acc", "max", True),
        ("param", "opt.lr", "last", False),
        ("attr", "start_time", "last", False),
    ]
    assert isinstance(keys[0], OrderKey)


def test_order_by_puts_nulls_last_in_both_directions_and_binds_keys() -> None:
    sql, args = compile_order("metrics.acc desc, tags.t")
    assert sql.count("NULLS LAST") == 2
    assert "acc" not in sql and args == ["acc", "t"]


@pytest.mark.parametrize(
    ("text", "position", "fragment"),
    [
        ("", 0, "empty order_by"),
        ("metrics.acc descending", 12, "expected asc, desc or ','"),
        ("metrics.acc desc,", 17, "expected a field"),
        ("acc desc", 0, "did you mean"),
        ("metrics.acc; drop table runs", 11, "unexpected character ';'"),
        ("desc", 0, "keyword 'desc'"),
    ],
)
def test_malformed_order_by_raises_query_error(text: str, position: int, fragment: str) -> None:
    with pytest.raises(QueryError) as info:
        compile_order(text)
    assert fragment in str(info.value) and info.value.position == position
