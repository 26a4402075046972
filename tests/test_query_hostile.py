"""Hostile queries can never write, never break the store, and fail as QueryError (issue 3).

Two walls are tested: the compiler binds every value and key (so no text reaches SQL), and the
store runs compiled queries under an SQLite authorizer that denies anything but reads.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import chachaml
from chachaml.errors import QueryError
from chachaml.query import MAX_CONDITIONS, MAX_VALUES
from chachaml.store.base import Store


def snapshot(path: Path) -> tuple[object, ...]:
    """The schema and every row of every table, read with plain sqlite3."""
    conn = sqlite3.connect(path)
    try:
        schema = conn.execute("SELECT type, name, sql FROM sqlite_master ORDER BY name").fetchall()
        rows = tuple(
            (name, sorted(map(repr, conn.execute(f'SELECT * FROM "{name}"').fetchall())))
            for _, name, _ in schema
            if _ == "table"
        )
        return (tuple(schema), rows, conn.execute("PRAGMA user_version").fetchone())
    finally:
        conn.close()


@pytest.fixture
def db(chachaml_store: Store, tmp_path: Path) -> Iterator[Path]:
    with chachaml.with_run("victim", tags={"team": "nlp"}):
        chachaml.log_params({"lr": 0.1, "opt": "adam"})
        chachaml.log_metric("acc", 0.9)
    with chachaml.with_run("other"):
        chachaml.log_param("lr", 0.5)
    chachaml.runs()  # fold metric summaries, so the snapshot is stable
    yield tmp_path / "chachaml.db"


INJECTIONS = [
    "name = 'x'; DROP TABLE runs; --'",
    "name = 'x'; DROP TABLE runs; --",
    "name = 'x' ; DELETE FROM params",
    "name = 'x' OR 1=1",
    "name = 'x') OR ('1'='1",
    "params.`a` = 1) OR 1=1 --`",
    "params.lr = 1 UNION SELECT * FROM runs",
    "status = 'completed' /* comment */",
    "status = 'completed' -- comment",
    "params.lr = 0.1 and (SELECT 1)",
    "params.lr = load_extension('x')",
    "params.lr = randomblob(1000000000)",
    "ATTACH DATABASE '/tmp/evil.db' AS evil",
    "PRAGMA writable_schema = 1",
    'name = "x"; VACUUM',
    "name = 'x'\x00; DROP TABLE runs",
    "name = 'it''s' '; DROP TABLE runs; --'",
    "params.lr = 1 ) ) ) ) DROP",
    "name = `x`; DROP TABLE runs",
    "name in ('a'); DROP TABLE runs; --')",
    "params.lr = 0x10",
    "name like 'a' ESCAPE 'b'",
    "name glob '*'",
    "name regexp '.*'",
    "name = 'a' collate nocase",
    "name = 'a' || 'b'",
    "params.lr + 1 > 0",
    "name = ?",
    "name = :name",
    "name = $x",
    "metrics.acc.max.min > 0",
]


@pytest.mark.parametrize("query", INJECTIONS)
def test_injection_attempts_are_query_errors_and_change_nothing(db: Path, query: str) -> None:
    before = snapshot(db)
    try:
        found = chachaml.runs(where=query)
    except QueryError as exc:
        assert exc.position >= 0
    else:  # a few of these are valid queries over odd keys: they must simply match nothing
        assert list(found) == [], query
    assert snapshot(db) == before
    assert len(chachaml.runs()) == 2


VALID_BUT_HOSTILE = [
    "name = 'x''; DROP TABLE runs; --'",
    'name = "x""; DROP TABLE runs; --"',
    "params.`lr'; DROP TABLE runs; --` = 1",
    'params.`lr" OR "1"="1` = 1',
    "params.`a``b` = 1",
    "tags.`x') OR 1=1 --` is not null",
    "metrics.`acc) > 0 OR (1` > 0",
    "name like '%''; DROP TABLE runs; --%'",
    "name in ('x''); DROP TABLE runs; --', 'y')",
    "name = 'a\x00b'",
    "name = '\u202e; DROP TABLE runs'",
]


@pytest.mark.parametrize("query", VALID_BUT_HOSTILE)
def test_hostile_text_inside_values_and_backticks_is_only_data(db: Path, query: str) -> None:
    before = snapshot(db)
    assert list(chachaml.runs(where=query)) == []
    assert snapshot(db) == before


@pytest.mark.parametrize(
    "order_by",
    [
        "start_time; DROP TABLE runs",
        "start_time desc; DROP TABLE runs",
        "(SELECT 1)",
        "1",
        "random()",
        "start_time desc nulls first",
        "metrics.acc desc, DROP",
    ],
)
def test_hostile_order_by_is_a_query_error(db: Path, order_by: str) -> None:
    before = snapshot(db)
    with pytest.raises(QueryError):
        chachaml.runs(order_by=order_by)
    assert snapshot(db) == before


def test_a_backticked_order_key_full_of_sql_is_only_a_key(db: Path) -> None:
    before = snapshot(db)
    found = chachaml.runs(order_by="metrics.`acc) DESC; DROP TABLE runs; --` desc")
    assert sorted(r.name for r in found) == ["other", "victim"]
    assert snapshot(db) == before


def test_a_key_equal_to_a_real_sql_fragment_finds_the_param_with_that_exact_name(db: Path) -> None:
    with chachaml.with_run("odd"):
        chachaml.log_param("x' OR '1'='1", 1)
    assert [r.name for r in chachaml.runs(where="params.`x' OR '1'='1` = 1")] == ["odd"]


# -- huge and deep ---------------------------------------------------------------------------------------
def test_huge_queries_are_refused_quickly_and_change_nothing(db: Path) -> None:
    before = snapshot(db)
    for query in [
        "name = 'x' or " * 100_000 + "name = 'y'",
        "name = '" + "x" * 5_000_000 + "'",
        "(" * 1_000_000,
        "not " * 1_000_000 + "name = 'x'",
    ]:
        with pytest.raises(QueryError, match="characters long") as info:
            chachaml.runs(where=query)
        assert len(str(info.value)) < 1000
    assert snapshot(db) == before


def test_deep_nesting_is_a_query_error_not_a_recursion_error(db: Path) -> None:
    for query in ["(" * 20_000 + "name = 'x'" + ")" * 20_000, "not " * 20_000 + "name = 'x'"]:
        with pytest.raises(QueryError, match="nests"):
            chachaml.runs(where=query)


def test_the_largest_allowed_queries_run_on_sqlite(db: Path) -> None:
    """At the limits, the SQL stays within SQLite's expression depth and variable count."""
    many_or = " or ".join(f"params.p{i} = {i}" for i in range(MAX_CONDITIONS - 1)) + " or params.lr = 0.1"
    assert [r.name for r in chachaml.runs(where=many_or)] == ["victim"]
    many_and = " and ".join(["params.lr >= 0.1"] * MAX_CONDITIONS)
    assert sorted(r.name for r in chachaml.runs(where=many_and)) == ["other", "victim"]
    big_in = "params.lr in (" + ", ".join(str(i / 10) for i in range(MAX_VALUES)) + ")"
    assert sorted(r.name for r in chachaml.runs(where=big_in)) == ["other", "victim"]
    nested = "(" * 60 + "not " * 3 + "params.lr = 0.5" + ")" * 60
    assert [r.name for r in chachaml.runs(where=nested)] == ["victim"]


def test_out_of_range_numbers_and_odd_characters_do_not_crash(db: Path) -> None:
    assert list(chachaml.runs(where="params.lr = 99999999999999999999999999")) == []
    assert list(chachaml.runs(where="params.lr < 1e400")) != []  # 1e400 is infinity
    assert list(chachaml.runs(where="params.lr > -1e400")) != []
    with pytest.raises(QueryError, match="invalid character"):
        chachaml.runs(where="name = '\udcff'")
    with pytest.raises(QueryError, match="invalid character"):
        chachaml.runs(where="params.`\ud800` = 1")


# -- the second wall: the authorizer ---------------------------------------------------------------------
def test_the_read_only_authorizer_refuses_writes_and_foreign_tables(db: Path, chachaml_store: Store) -> None:
    store = chachaml_store
    with store._reading() as conn:  # type: ignore[attr-defined]
        for sql in [
            "DELETE FROM runs",
            "UPDATE runs SET name = 'x'",
            "INSERT INTO tags VALUES ('a', 'b', 'c')",
            "DROP TABLE runs",
            "CREATE TABLE evil (x)",
            "ATTACH DATABASE ':memory:' AS evil",
            "PRAGMA user_version = 99",
            "SELECT * FROM experiments",
            "SELECT * FROM sqlite_master",
            "SELECT load_extension('x')",
            "SELECT randomblob(10)",
            "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT x FROM c",
        ]:
            with pytest.raises(sqlite3.DatabaseError, match=r"not authorized|prohibited"):
                store._select(conn, sql, [])  # type: ignore[attr-defined]
        assert store._select(conn, "SELECT count(*) FROM runs", []) == [(2,)]  # type: ignore[attr-defined]
    # and the authorizer is gone afterwards: writes work again
    with chachaml.with_run("after"):
        chachaml.log_metric("m", 1.0)
    assert len(chachaml.runs()) == 3


# -- fuzzing: any text is either a QueryError or a harmless read -----------------------------------------
_PIECES = st.sampled_from(
    [
        "params.lr",
        "metrics.acc",
        "metrics.acc.max",
        "tags.team",
        "status",
        "name",
        "`",
        "'",
        '"',
        "(",
        ")",
        ",",
        ".",
        "=",
        "!=",
        "<",
        ">=",
        "and",
        "or",
        "not",
        "in",
        "like",
        "is",
        "null",
        "true",
        "0.1",
        "-1",
        "1e9",
        "'adam'",
        "'%'",
        ";",
        "--",
        "/*",
        "DROP TABLE runs",
        "SELECT",
        "UNION",
        "\\",
        "\x00",
        " ",
        "\n",
        "é",
        "`a.b`",
        "x",
    ]
)


def test_fuzzed_queries_either_fail_cleanly_or_only_read(db: Path) -> None:
    before = snapshot(db)

    @settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(st.lists(_PIECES, max_size=14).map(" ".join) | st.text(max_size=40))
    def check(query: str) -> None:
        try:
            found = chachaml.runs(where=query)
        except QueryError:
            return
        assert {r.name for r in found} <= {"victim", "other"}

    check()
    assert snapshot(db) == before


def test_any_string_value_round_trips_through_a_quoted_literal(chachaml_store: Store) -> None:
    names = ["plain", "it's", 'say "hi"', "%_\\", "ü`\u00b4", "a\nb", "", " lead"]
    for n in names:
        chachaml.start_run("r", tags={"label": n})
        chachaml.end_run()

    @settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(
        st.one_of(st.sampled_from(names), st.text(st.characters(blacklist_categories=["Cs"]), max_size=12))
    )
    def check(value: str) -> None:
        for quote in ("'", '"'):
            literal = quote + value.replace(quote, quote * 2) + quote
            found = chachaml.runs(where=f"tags.label = {literal}")
            assert [r.tags["label"] for r in found] == [value] * names.count(value)

    check()
