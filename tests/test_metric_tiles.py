"""The min/max pyramid of long metric histories against the reference downsample (docs/adr/0025).

"The same extremes" is checked as the ADR defines it. For a window holding at most
``max_points`` points the pyramid's answer equals the reference (every point). Otherwise the
answer (a) holds at most ``max_points`` points, all points of the window, in step order;
(b) starts with the window's first point and ends with its last, like the reference;
(c) reports the same point count; (d) comes with buckets, step ranges that cover every point of
the window once, and for each bucket holds a point with the bucket's minimum value and one with
its maximum (NaN excluded), or a NaN point when the bucket holds only NaN; (e) so the window's
global minimum and maximum are the reference's; (f) on a dense history it has at least half
the reference's number of buckets, so the answer is not coarser than asked for by much.

The histories are written through the real store in several batches with reads (folds) in
between, steps out of order, repeated, sparse and huge, values with NaN and +-inf; the tiles
kept by those folds must equal tiles built from scratch. ``TILE_MIN`` and ``SHIFTS`` are made
small so that histories of a few hundred points exercise every branch.
"""

from __future__ import annotations

import math
import os
import sqlite3
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import chachaml
from chachaml import _downsample
from chachaml.entities import Metric
from chachaml.errors import InvalidValueError, RunNotFoundError
from chachaml.store import _sqlite_tiles as tiles
from chachaml.store.sqlite import SqliteStore


@pytest.fixture(autouse=True)
def _small_tiles(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tiles, "TILE_MIN", 8)
    monkeypatch.setattr(tiles, "SHIFTS", tuple(range(1, 64, 2)))


def _vkey(v: float) -> Any:
    return "nan" if math.isnan(v) else v


def _pkey(p: Metric) -> tuple[int, Any, int]:
    return (p.step, _vkey(p.value), p.timestamp)


def _new_store(path: str | None = None) -> tuple[SqliteStore, str]:
    store = SqliteStore(path)
    return store, chachaml.Client(store).start_run("tiles").id


def _write(store: SqliteStore, run_id: str, points: list[tuple[int, float]], batches: int) -> None:
    size = max(1, len(points) // batches)
    for i in range(0, len(points), size):
        chunk = points[i : i + size]
        store.log_batch(run_id, metrics=[("m", v, s, 1000 + i + j) for j, (s, v) in enumerate(chunk)])
        store.metric_summaries(run_id)  # a read: the fold merges this batch into the tiles


def _check(
    store: SqliteStore, run_id: str, after: int | None, before: int | None, max_points: int, dense: bool
) -> None:
    with store._reading() as conn:
        assert conn is not None
        got, count, spans = tiles.window_with_buckets(conn, run_id, "m", after, before, max_points)
    history = store.metric_history(run_id, "m")
    ref, ref_count = _downsample.window(history, after, before, max_points)
    inside = [p for p in history if (after is None or p.step > after) and (before is None or p.step < before)]
    assert count == ref_count == len(inside)
    if spans is None:  # the reference path
        assert [_pkey(p) for p in got] == [_pkey(p) for p in ref]
        return
    assert len(inside) > max_points
    assert len(got) <= max_points  # (a)
    assert not Counter(_pkey(p) for p in got) - Counter(_pkey(p) for p in inside)
    assert [p.step for p in got] == sorted(p.step for p in got)
    assert _pkey(got[0]) == _pkey(inside[0]) and _pkey(got[-1]) == _pkey(inside[-1])  # (b)
    # (d) buckets: ordered, disjoint, covering every point once, each keeping its extremes
    assert all(a <= b for a, b in spans)
    assert all(spans[i][1] < spans[i + 1][0] for i in range(len(spans) - 1))
    for p in inside:
        assert sum(a <= p.step <= b for a, b in spans) == 1, p
    for a, b in spans:
        members = [p for p in inside if a <= p.step <= b]
        kept = [p for p in got if a <= p.step <= b]
        numbers = [p.value for p in members if not math.isnan(p.value)]
        if numbers:
            kept_numbers = [p.value for p in kept if not math.isnan(p.value)]
            assert min(numbers) in kept_numbers and max(numbers) in kept_numbers
        elif members:
            assert any(math.isnan(p.value) for p in kept)
    # (e) the global extremes are the reference's
    ours = [p.value for p in got if not math.isnan(p.value)]
    theirs = [p.value for p in ref if not math.isnan(p.value)]
    assert (min(ours), max(ours)) == (min(theirs), max(theirs)) if theirs else not ours
    if dense:  # (f)
        assert len(spans) >= ((max_points - 2) // 2) // 2


def _assert_tiles_match_a_fresh_build(store: SqliteStore, run_id: str) -> None:
    with store._reading() as conn:
        assert conn is not None
        kept = conn.execute(
            "SELECT * FROM metric_tiles WHERE run_id = ? ORDER BY shift, tile", (run_id,)
        ).fetchall()
        conn.execute("SAVEPOINT fresh")
        hi = conn.execute("SELECT max(rowid) FROM metrics").fetchone()[0]
        tiles.build(conn, run_id, "m", hi)
        fresh = conn.execute(
            "SELECT * FROM metric_tiles WHERE run_id = ? ORDER BY shift, tile", (run_id,)
        ).fetchall()
        conn.execute("ROLLBACK TO fresh")
        conn.execute("RELEASE fresh")
    assert kept and kept == fresh


values = st.one_of(
    st.floats(min_value=-10, max_value=10, allow_nan=False),
    st.sampled_from([math.nan, math.inf, -math.inf, 0.0, 1.0]),
)


@st.composite
def histories(draw: st.DrawFn) -> tuple[list[tuple[int, float]], bool]:
    n = draw(st.integers(min_value=20, max_value=400))
    kind = draw(st.sampled_from(["dense", "shuffled", "duplicates", "sparse", "huge"]))
    rnd = draw(st.randoms(use_true_random=False))
    if kind in ("dense", "shuffled"):
        steps = list(range(n))
        if kind == "shuffled":
            rnd.shuffle(steps)  # points arrive out of order
    elif kind == "duplicates":
        steps = sorted(rnd.randrange(n // 4 + 1) for _ in range(n))
    elif kind == "sparse":
        steps = sorted(rnd.randrange(10**12) for _ in range(n))
    else:
        steps = [rnd.randrange(-(2**63), 2**63) for _ in range(n)]
    vals = [draw(values) if rnd.random() < 0.2 else rnd.gauss(0, 1) for _ in range(n)]
    if draw(st.booleans()):  # a stretch of only NaN
        a = rnd.randrange(n)
        for i in range(a, min(n, a + n // 5)):
            vals[i] = math.nan
    return list(zip(steps, vals, strict=True)), kind == "dense"


@settings(deadline=None, max_examples=int(os.environ.get("CHACHAML_TILE_EXAMPLES", "120")))
@given(histories(), st.integers(min_value=1, max_value=4), st.data())
def test_the_pyramid_keeps_the_reference_extremes(
    history: tuple[list[tuple[int, float]], bool], batches: int, data: st.DataObject
) -> None:
    points, dense = history
    store, run_id = _new_store()
    try:
        _write(store, run_id, points, batches)
        _assert_tiles_match_a_fresh_build(store, run_id)
        steps = sorted(s for s, _ in points)
        for _ in range(6):
            max_points = data.draw(st.sampled_from([2, 3, 5, 6, 7, 10, 16, 33, 64]))
            after = data.draw(
                st.one_of(st.none(), st.sampled_from(steps), st.sampled_from([s - 1 for s in steps]))
            )
            before = data.draw(
                st.one_of(st.none(), st.sampled_from(steps), st.sampled_from([s + 1 for s in steps]))
            )
            _check(store, run_id, after, before, max_points, dense and after is None and before is None)
    finally:
        store.close()


def test_a_late_point_with_an_old_step_updates_the_tiles_of_its_step() -> None:
    store, run_id = _new_store()
    try:
        _write(store, run_id, [(s, math.sin(s)) for s in range(1000)], 2)
        store.log_batch(run_id, metrics=[("m", 50.0, 3, 1), ("m", -50.0, 990, 2), ("m", 7.0, 500, 3)])
        got, count = store.metric_window(run_id, "m", max_points=20)
        assert count == 1003
        values_ = [p.value for p in got]
        assert 50.0 in values_ and -50.0 in values_
        _assert_tiles_match_a_fresh_build(store, run_id)
    finally:
        store.close()


def test_max_points_below_two_is_refused_naming_the_value() -> None:
    store, run_id = _new_store()
    try:
        with pytest.raises(InvalidValueError, match=r"max_points .* got 1"):
            store.metric_window(run_id, "m", max_points=1)
        assert store.metric_window(run_id, "nope", max_points=10) == ([], 0)
    finally:
        store.close()


def test_deleting_a_run_deletes_its_tiles(tmp_path: Path) -> None:
    store, run_id = _new_store(str(tmp_path / "t.db"))
    _write(store, run_id, [(s, float(s)) for s in range(100)], 1)
    store.end_run(run_id, "completed", 2, None)
    store.delete_run(run_id)
    store.close()
    with sqlite3.connect(tmp_path / "t.db") as conn:
        assert conn.execute("SELECT count(*) FROM metric_tiles").fetchone() == (0,)


def test_migration_7_builds_the_tiles_of_the_long_histories_already_folded(tmp_path: Path) -> None:
    db = tmp_path / "old.db"
    store, run_id = _new_store(str(db))
    _write(store, run_id, [(s, math.cos(s)) for s in range(300)], 1)
    store.close()
    with sqlite3.connect(db) as conn:  # back to schema 6: no pyramid
        conn.execute("DROP TABLE metric_tiles")
        conn.execute("PRAGMA user_version = 6")
    store = SqliteStore(str(db))
    try:
        with store._reading() as conn:
            assert conn is not None
            assert (
                conn.execute("SELECT count(*) FROM metric_tiles WHERE run_id = ?", (run_id,)).fetchone()[0]
                > 0
            )
        _assert_tiles_match_a_fresh_build(store, run_id)
        with store._reading() as conn:
            assert conn is not None
            _, count, spans = tiles.window_with_buckets(conn, run_id, "m", None, None, 40)
        assert count == 300 and spans is not None
    finally:
        store.close()


def test_the_client_resolves_prefixes_checks_its_arguments_and_names_an_unknown_run() -> None:
    client = chachaml.Client(":memory:")
    run = client.start_run("c")
    client.log_metrics({"m": 1.0}, step=1, run=run, timestamp=5)
    client.log_metrics({"m": 2.0}, step=2, run=run, timestamp=6)
    assert client.metric_window(run.id[:8], "m", before_step=2) == ([Metric("m", 1.0, 1, 5)], 1)
    with pytest.raises(InvalidValueError, match="max_points"):
        client.metric_window(run.id, "m", max_points=0)
    with pytest.raises(RunNotFoundError):
        client.metric_window("0" * 32, "m")
    client.close()


def test_points_another_process_logged_since_the_fold_are_in_the_answer(tmp_path: Path) -> None:
    db = tmp_path / "live.db"
    store, run_id = _new_store(str(db))
    try:
        _write(store, run_id, [(s, math.sin(s / 10)) for s in range(600)], 1)
        # a second connection writes as another process would, after this store's last fold
        insert = "INSERT INTO metrics (run_id, key, step, value, timestamp) VALUES (?, 'm', ?, ?, ?)"
        with sqlite3.connect(db) as other:
            other.executemany(insert, [(run_id, 250, 99.0, 1), (run_id, 260, -99.0, 2)])
            (wm,) = other.execute("SELECT value FROM chachaml_meta WHERE key = 'summary_rowid'").fetchone()
            assert wm < other.execute("SELECT max(rowid) FROM metrics").fetchone()[0]
        got, count = store.metric_window(run_id, "m", max_points=40)
        assert count == 602
        assert {99.0, -99.0} <= {p.value for p in got}
        with store._reading() as conn:
            assert conn is not None
            assert tiles.unfolded(conn, run_id, "m") is False
        _assert_tiles_match_a_fresh_build(store, run_id)
    finally:
        store.close()
