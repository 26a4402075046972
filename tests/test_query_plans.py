"""The SQLite store's query plans (docs/adr/0018) return exactly what the one-statement query does.

``find_runs`` picks a plan per call: drive from an index range the ``where=`` implies, walk a
metric's ``metric_summary`` index for ``order_by``, or the query as written. Each is checked
against the specification of a page, the plain statement ``SELECT id FROM runs WHERE <where>
ORDER BY <order>, start_time DESC, rowid DESC LIMIT ? OFFSET ?`` with the compiled query, on data
made of the edge cases: NULLs (missing keys), NaN, ties of values and of start times, mixed
param types (numbers, numeric-looking strings, booleans, JSON null, wide integers), archived runs.
"""

from __future__ import annotations

import itertools
import math
import random
import re
import sqlite3
from pathlib import Path

import pytest

from chachaml._process import owner
from chachaml.store import _sql_compile
from chachaml.store._sqlite_dialect import SQLITE
from chachaml.store._sqlite_query import DEFAULT_ORDER
from chachaml.store.base import NewRun, RunFilter
from chachaml.store.sqlite import SqliteStore

T0 = 1_700_000_000_000
WHERES = [
    None,
    "params.lr < 0.05",
    "params.lr >= 0.001 and params.lr < 0.01",
    "params.lr > 0.001 and params.lr > 0.002 and params.lr <= 0.1",
    "params.lr = 1",
    "params.lr = 0.01",
    "params.opt = 'adam'",
    "params.opt = 'adam' and params.opt = 'sgd'",
    "params.lr < 0.05 and metrics.acc.max > 0.5",
    "metrics.acc > 0.25",
    "metrics.acc = 0.5",
    "metrics.acc.min <= 0 and params.lr < 1",
    "metrics.acc.max >= 0.5 and metrics.acc.max < 0.75",
    "metrics.loss.last < 1e308",
    "params.lr < 0.05 or metrics.acc > 0.9",
    "not params.lr < 0.05 and metrics.acc < 0.9",
    "params.big = 123456789012345678901234567890",
    "params.flag = true and params.lr >= 0",
    "params.lr > -1 and tags.team = 'a'",
]
ORDERS = [
    None,
    "metrics.acc desc",
    "metrics.acc",
    "metrics.acc.max desc, params.lr",
    "metrics.acc.min asc, metrics.loss desc",
    "metrics.loss.last desc",
    "metrics.acc.count desc",
    "params.lr desc",
    "start_time",
]
PAGES = [(None, 0), (3, 0), (3, 2), (5, 7), (100, 0), (4, 38), (2, 60), (None, 5), (None, 70), (0, 0)]


def _fill(store: SqliteStore, rng: random.Random) -> None:
    """60 runs of edge cases; a few share a start time, some are archived."""
    lrs: list[object] = [0.0001, 0.001, 0.002, 0.01, 0.05, 0.1, 1, 1.0, "0.01", True, None, 10**25, -0.5]
    for i in range(60):
        run_id = f"{i:032x}"
        store.create_run(
            NewRun(
                id=run_id,
                experiment="e",
                start_time=T0 + (i // 3) * 1000,  # ties of three
                owner=owner(),
                tags={"team": rng.choice("ab")},
            )
        )
        params: dict[str, str] = {}
        if i % 7 != 3:  # some runs lack lr
            lr = rng.choice(lrs)
            params["lr"] = "null" if lr is None else _json(lr)
        params["opt"] = _json(rng.choice(["adam", "sgd", "ADAM", 1]))
        params["flag"] = _json(rng.choice([True, False, 1]))
        params["big"] = _json(rng.choice([123456789012345678901234567890, 123456789012345678901234567891, 5]))
        points = []
        if i % 5 != 2:  # some runs never logged acc
            values = [rng.choice([0.0, 0.25, 0.5, 0.5, 0.75, 1.0, -1.0]) for _ in range(rng.randint(1, 3))]
            if i % 11 == 0:
                values.append(math.nan)  # the latest acc is NaN: it sorts with the missing
            points += [("acc", v, s, T0) for s, v in enumerate(values)]
        if i % 4 != 1:
            points.append(("loss", rng.choice([0.5, 2.0, math.inf, math.nan]), 0, T0))
        store.log_batch(run_id, params=params, metrics=points)
        store.end_run(run_id, "completed", T0 + 10**6)
    store.archive_runs(True, started_before=T0 + 2_000)  # the first six runs


def _json(value: object) -> str:
    import json

    return json.dumps(value)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> SqliteStore:
    path = tmp_path_factory.mktemp("plans") / "runs.db"
    s = SqliteStore(str(path))
    _fill(s, random.Random(9))
    s.find_runs(RunFilter(limit=1))  # fold the summaries
    return s


def _reference(path: str, flt: RunFilter) -> list[str]:
    """The page as the single plain statement gives it (the definition of the result)."""
    where, args = ["1 = 1"], []
    if not flt.include_archived:
        where.append("runs.archived = 0")
    if flt.where is not None:
        sql, a = _sql_compile.compile_where(flt.where, SQLITE)
        where.append(sql)
        args += a
    order = DEFAULT_ORDER
    if flt.order_by is not None:
        sql, a = _sql_compile.compile_order(flt.order_by, SQLITE)
        order = f"{sql}, {DEFAULT_ORDER}"
        args += a
    sql = f"SELECT runs.id FROM runs WHERE {' AND '.join(where)} ORDER BY {order}"
    if flt.limit is not None:
        sql += f" LIMIT {flt.limit} OFFSET {flt.offset}"
    elif flt.offset:
        sql += f" LIMIT -1 OFFSET {flt.offset}"
    conn = sqlite3.connect(path)
    try:
        for name, fn in SQLITE.functions.items():
            conn.create_function(name, 1, fn, deterministic=True)
        return [r[0] for r in conn.execute(sql, args)]
    finally:
        conn.close()


@pytest.mark.parametrize("where", WHERES)
def test_every_plan_returns_the_page_of_the_one_statement_query(
    store: SqliteStore, where: str | None
) -> None:
    assert store.path is not None
    for order, (limit, offset), archived in itertools.product(ORDERS, PAGES, (False, True)):
        flt = RunFilter(where=where, order_by=order, limit=limit, offset=offset, include_archived=archived)
        expected = _reference(store.path, flt)
        got = [r.id for r in store.find_runs(flt)]
        assert got == expected, (where, order, limit, offset, archived)


def test_the_data_holds_the_edge_cases_the_plans_must_order(store: SqliteStore) -> None:
    runs = store.find_runs(RunFilter(include_archived=True))
    acc = [r.metrics.get("acc") for r in runs]
    assert any(v is None for v in acc) and any(v is not None and math.isnan(v) for v in acc)
    finite = [v for v in acc if v is not None and not math.isnan(v)]
    assert len(finite) > len(set(finite))  # ties of values
    assert len({r.start_time for r in runs}) < len(runs)  # ties of start times
    assert {type(r.params.get("lr")) for r in runs} >= {float, int, str, bool, type(None)}
    assert any(r.archived for r in runs)


def test_all_three_plans_are_exercised(store: SqliteStore) -> None:
    """The grid above goes through each plan (seen in the SQL the store runs)."""
    statements: list[str] = []
    conn = store._conn
    assert conn is not None
    conn.set_trace_callback(statements.append)
    try:
        store.find_runs(RunFilter(where="params.lr < 0.05 and metrics.acc.max > 0.5"))  # drive, both
        store.find_runs(RunFilter(where="params.lr < 0.05"))  # drive by one range
        store.find_runs(RunFilter(order_by="metrics.acc desc", limit=3))  # metric walk
        store.find_runs(RunFilter(where="params.lr > -1", limit=2))  # broad range, small page: walk
    finally:
        conn.set_trace_callback(None)
    pages = [s for s in statements if s.startswith("SELECT runs.id")]
    assert any("FROM params d CROSS JOIN runs ON runs.id = d.run_id" in s for s in pages)
    assert any(" INTERSECT " in s and "CROSS JOIN runs ON runs.id = d.run_id" in s for s in pages)
    assert any("FROM metric_summary o CROSS JOIN runs" in s for s in pages)
    # (the page's statement reads the runs' columns too: SELECT runs.id, runs.experiment, ...)
    walk = re.compile(r"SELECT runs\.id(, runs\.\w+)* FROM runs WHERE")
    assert any(walk.match(s) and "NOT EXISTS" not in s for s in pages)


def test_index_ranges_come_only_from_the_top_level_and() -> None:
    ranges = _sql_compile.index_ranges(
        "params.lr >= 0.001 and params.lr < 0.01 and metrics.acc.max > 0.9 "
        "and (params.a = 1 or params.b = 2) and not params.c < 3 and params.d != 4 "
        "and metrics.n.count > 5 and params.e = true and params.o = 'adam'"
    )
    assert ranges == [
        _sql_compile.IndexRange("param", "lr", 0.001, False, 0.01, True),
        _sql_compile.IndexRange("max", "acc", 0.9, True, None, False),
        _sql_compile.IndexRange("param", "o", "adam", False, "adam", False),
    ]
    assert _sql_compile.index_ranges("params.x < 5 or params.x > 9") == []
    # equal bounds: the strict one wins
    assert _sql_compile.index_ranges("params.x >= 1 and params.x > 1") == [
        _sql_compile.IndexRange("param", "x", 1, True, None, False)
    ]


def test_a_v4_database_gains_the_indexes_the_plans_use(tmp_path: Path) -> None:
    from chachaml.store._sqlite_schema import MIGRATIONS

    path = tmp_path / "v4.db"
    conn = sqlite3.connect(path)
    for number, statements in MIGRATIONS:
        if number <= 4:
            for stmt in statements:
                conn.execute(stmt)
    conn.execute("PRAGMA user_version = 4")
    conn.execute(
        "INSERT INTO runs (id, experiment, status, start_time, env) VALUES (?, 'e', 'completed', ?, '{}')",
        ("a" * 32, T0),
    )
    conn.execute("INSERT INTO params (run_id, key, value) VALUES (?, 'lr', '0.01')", ("a" * 32,))
    conn.commit()
    conn.close()
    s = SqliteStore(str(path))
    try:
        assert [r.id for r in s.find_runs(RunFilter(where="params.lr < 0.05"))] == ["a" * 32]
    finally:
        s.close()
    conn = sqlite3.connect(path)
    indexes = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    plan = " ".join(
        str(r)
        for r in conn.execute(
            "EXPLAIN QUERY PLAN SELECT run_id FROM params d "
            "WHERE d.key = 'lr' AND json_extract(d.value, '$') < 1"
        )
    )
    conn.close()
    assert {"params_by_key_value", "runs_by_archived_start"} <= indexes
    assert "params_by_key_value" in plan


def test_a_run_deleted_after_the_page_is_read_keeps_its_place_with_empty_fields(tmp_path: Path) -> None:
    """The page's rows come from one statement (no window between ids and rows any more); its
    params, tags, ... are read on first access (docs/adr/0024). Another process may delete a
    run in between: the page keeps it as listed, with nothing under its lazy fields."""
    path = tmp_path / "runs.db"
    store = SqliteStore(str(path))
    for i in range(3):
        store.create_run(NewRun(id=f"{i:032x}", experiment="e", start_time=T0 + i, owner=owner()))
        store.log_batch(f"{i:032x}", params={"i": str(i)})  # (the JSON text of i)
    other = sqlite3.connect(path, isolation_level=None)
    try:
        page = store.find_runs(RunFilter())
        other.execute("DELETE FROM params WHERE run_id = ?", (f"{1:032x}",))
        other.execute("DELETE FROM runs WHERE id = ?", (f"{1:032x}",))
        assert [r.id for r in page] == [f"{2:032x}", f"{1:032x}", f"{0:032x}"]
        assert [r.params for r in page] == [{"i": 2}, {}, {"i": 0}]
        assert [r.id for r in store.find_runs(RunFilter())] == [f"{2:032x}", f"{0:032x}"]
    finally:
        other.close()
        store.close()
