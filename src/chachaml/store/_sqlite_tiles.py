"""A min/max pyramid over each long metric history, so a downsampled read skips most points.

``metric_tiles`` summarises a history over aligned step ranges ("tiles") at 19 levels: a tile
of level ``shift`` holds the steps ``t << shift`` to ``((t + 1) << shift) - 1``, for shift 6, 9,
..., 60. Each tile keeps its point count, its minimum and maximum points (step, value,
timestamp; NaN is never one) and one NaN point (the lowest step; used only when the tile holds
nothing else). Tiles are keyed by step, not by arrival, so a point logged late with an old step
updates the tiles of its step; the same step logged twice counts twice.

Only histories with more than ``TILE_MIN`` points have tiles (a short one is read whole anyway).
The fold maintains them with the summaries, from the same rowid watermark (``_fold_in_tx``): a
history that crosses ``TILE_MIN`` is built from its rows, a tiled one merges the new rows.
Migration 7 builds them for the histories already folded (``backfill``). Tiles therefore always
describe exactly the rows at or below the watermark; a read that finds newer rows (a read-only
file is never folded) uses the reference path instead.

A read (``window``) picks the finest level at which the window spans at most ``4 * max_points``
tiles, reads those tiles and, for a tile that a window bound cuts, the raw points of the window
in it; it groups the tiles into ``(max_points - 2) // 2`` buckets of about equal point count and
keeps the window's first and last points and each bucket's minimum and maximum (or one NaN point
for a bucket holding only NaN). docs/adr/0025 says how this relates to ``_downsample``.
"""

from __future__ import annotations

import itertools
import sqlite3
from collections.abc import Iterable, Sequence
from typing import Any

from chachaml.entities import Metric

SHIFTS = tuple(range(6, 61, 3))
#: Histories with more points than this get tiles.
TILE_MIN = 2048
#: A tiled history whose new rows in one fold exceed this is rebuilt rather than merged.
REBUILD = 50_000
#: A read touches at most this many tiles per ``max_points``.
TILES_PER_POINT = 4

_COLUMNS = "n, min_step, min_value, min_ts, max_step, max_value, max_ts, nan_step, nan_ts"
_UPSERT = (
    f"INSERT OR REPLACE INTO metric_tiles (run_id, key, shift, tile, {_COLUMNS}) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)

# An aggregate is a list: [n, min_step, min_value, min_ts, max_step, max_value, max_ts,
# nan_step, nan_ts]; value None is NaN (SQLite stores NaN as NULL).
Agg = list[Any]


def _new(step: int, value: float | None, ts: int) -> Agg:
    if value is None:
        return [1, None, None, None, None, None, None, step, ts]
    return [1, step, value, ts, step, value, ts, None, None]


def _merge(a: Agg, b: Agg) -> None:
    """Fold ``b`` into ``a``. On a tie (same value) the lower step wins, then ``a``: callers pass
    ``b`` as the later-logged or higher-step part, so the earliest point in step order wins, as
    in ``_downsample``."""
    a[0] += b[0]
    if b[2] is not None and (a[2] is None or b[2] < a[2] or (b[2] == a[2] and b[1] < a[1])):
        a[1], a[2], a[3] = b[1], b[2], b[3]
    if b[5] is not None and (a[5] is None or b[5] > a[5] or (b[5] == a[5] and b[4] < a[4])):
        a[4], a[5], a[6] = b[4], b[5], b[6]
    if b[7] is not None and (a[7] is None or b[7] < a[7]):
        a[7], a[8] = b[7], b[8]


def _aggregate(rows: Iterable[tuple[int, float | None, int]]) -> Agg | None:
    """One aggregate of (step, value, timestamp) rows in step order (ties in logging order)."""
    out: Agg | None = None
    for step, value, ts in rows:
        if out is None:
            out = _new(step, value, ts)
        else:
            _merge(out, _new(step, value, ts))
    return out


def _levels(rows: Iterable[tuple[int, float | None, int]]) -> dict[int, dict[int, Agg]]:
    """Every level's tiles of (step, value, timestamp) rows (in step order, or logging order)."""
    s0 = SHIFTS[0]
    base: dict[int, Agg] = {}
    for step, value, ts in rows:
        t = step >> s0
        agg = base.get(t)
        if agg is None:
            base[t] = _new(step, value, ts)
        else:
            _merge(agg, _new(step, value, ts))
    out = {s0: base}
    prev = base
    for fine, shift in itertools.pairwise(SHIFTS):
        d = shift - fine
        cur: dict[int, Agg] = {}
        for t in sorted(prev):  # step order: ties keep the lower step
            parent = cur.get(t >> d)
            if parent is None:
                cur[t >> d] = list(prev[t])
            else:
                _merge(parent, prev[t])
        out[shift] = cur
        prev = cur
    return out


def _write(conn: sqlite3.Connection, run_id: str, key: str, levels: dict[int, dict[int, Agg]]) -> None:
    conn.executemany(
        _UPSERT,
        ((run_id, key, shift, t, *agg) for shift, tiles in levels.items() for t, agg in tiles.items()),
    )


def build(conn: sqlite3.Connection, run_id: str, key: str, upto: int) -> None:
    """(Re)build one history's tiles from its rows with a rowid up to ``upto``."""
    conn.execute("DELETE FROM metric_tiles WHERE run_id = ? AND key = ?", (run_id, key))
    rows = conn.execute(
        "SELECT step, value, timestamp FROM metrics WHERE run_id = ? AND key = ? AND rowid <= ? "
        "ORDER BY step, rowid",
        (run_id, key, upto),
    )
    _write(conn, run_id, key, _levels(rows))


def _tiled(conn: sqlite3.Connection, run_id: str, key: str) -> bool:
    row = conn.execute(
        "SELECT 1 FROM metric_tiles WHERE run_id = ? AND key = ? AND shift = ? LIMIT 1",
        (run_id, key, SHIFTS[-1]),
    ).fetchone()
    return row is not None


def _merge_rows(
    conn: sqlite3.Connection, run_id: str, key: str, rows: list[tuple[int, float | None, int]]
) -> None:
    """Merge new rows (in logging order) into a tiled history's tiles."""
    levels = _levels(rows)
    for shift, tiles in levels.items():
        ids = list(tiles)
        for i in range(0, len(ids), 500):
            chunk = ids[i : i + 500]
            found = conn.execute(
                f"SELECT tile, {_COLUMNS} FROM metric_tiles WHERE run_id = ? AND key = ? AND shift = ? "
                f"AND tile IN ({','.join('?' * len(chunk))})",
                (run_id, key, shift, *chunk),
            )
            for tile, *old in found:
                _merge(old, tiles[tile])  # the stored part was logged first
                tiles[tile] = old
    _write(conn, run_id, key, levels)


def maintain(conn: sqlite3.Connection, wm: int, hi: int) -> None:
    """Bring the tiles up to the rows with a rowid in ``(wm, hi]``, inside the fold's
    transaction, after ``metric_summary`` took them (its counts pick the long histories)."""
    long = conn.execute(
        "SELECT g.run_id, g.key, g.n FROM (SELECT run_id, key, count(*) AS n FROM metrics "
        "WHERE rowid > ? AND rowid <= ? GROUP BY run_id, key) g "
        "JOIN metric_summary s ON s.run_id = g.run_id AND s.key = g.key WHERE s.count > ?",
        (wm, hi, TILE_MIN),
    ).fetchall()
    merging: set[tuple[str, str]] = set()
    for run_id, key, n in long:
        if n <= REBUILD and _tiled(conn, run_id, key):
            merging.add((run_id, key))
        else:
            build(conn, run_id, key, hi)
    if not merging:
        return
    tails: dict[tuple[str, str], list[tuple[int, float | None, int]]] = {h: [] for h in merging}
    for run_id, key, step, value, ts in conn.execute(
        "SELECT run_id, key, step, value, timestamp FROM metrics "
        "WHERE rowid > ? AND rowid <= ? ORDER BY rowid",
        (wm, hi),
    ):
        tail = tails.get((run_id, key))
        if tail is not None:
            tail.append((step, value, ts))
    for (run_id, key), rows in tails.items():
        _merge_rows(conn, run_id, key, rows)


def backfill(conn: sqlite3.Connection) -> int:
    """Build the tiles of every long history folded so far (migration 7); returns how many."""
    wm = conn.execute("SELECT value FROM chachaml_meta WHERE key = 'summary_rowid'").fetchone()
    upto = int(wm[0]) if wm else 0
    long = conn.execute("SELECT run_id, key FROM metric_summary WHERE count > ?", (TILE_MIN,)).fetchall()
    for run_id, key in long:
        build(conn, run_id, key, upto)
    return len(long)


# -- reads ----------------------------------------------------------------------------------------
def _point(key: str, step: int, value: float | None, ts: int) -> Metric:
    return Metric(key, float("nan") if value is None else value, step, ts)


def window(
    conn: sqlite3.Connection,
    run_id: str,
    key: str,
    after_step: int | None,
    before_step: int | None,
    max_points: int | None,
) -> tuple[list[Metric], int]:
    """The points of one history in the window, at most ``max_points`` (``RunStore.metric_window``)."""
    points, count, _ = window_with_buckets(conn, run_id, key, after_step, before_step, max_points)
    return points, count


def window_with_buckets(
    conn: sqlite3.Connection,
    run_id: str,
    key: str,
    after_step: int | None,
    before_step: int | None,
    max_points: int | None,
) -> tuple[list[Metric], int, list[tuple[int, int]] | None]:
    """``window`` plus the buckets the pyramid used, as inclusive step ranges (None when the
    answer came from the reference path): the property tests check each bucket's extremes."""
    from chachaml import _downsample  # the first read of a window, not the first log

    _downsample.check_max_points(max_points)
    cond = "run_id = ? AND key = ?"
    args: list[Any] = [run_id, key]
    if after_step is not None:
        cond += " AND step > ?"
        args.append(after_step)
    if before_step is not None:
        cond += " AND step < ?"
        args.append(before_step)
    select = f"SELECT step, value, timestamp FROM metrics WHERE {cond}"
    limit = -1 if max_points is None else max_points + 1
    head = conn.execute(select + " ORDER BY step, rowid LIMIT ?", (*args, limit)).fetchall()
    if max_points is None or len(head) <= max_points:
        return [_point(key, *r) for r in head], len(head), None

    def reference() -> tuple[list[Metric], int, None]:
        rows = conn.execute(select + " ORDER BY step, rowid", args).fetchall()
        kept, count = _downsample.window([_point(key, *r) for r in rows], None, None, max_points)
        return kept, count, None

    buckets = (max_points - 2) // 2
    if buckets < 2 or not _tiled(conn, run_id, key) or unfolded(conn, run_id, key):
        return reference()
    last = conn.execute(select + " ORDER BY step DESC, rowid DESC LIMIT 1", args).fetchone()
    lo, hi = head[0][0], last[0]
    cap = TILES_PER_POINT * max_points
    shift = next(s for s in SHIFTS if (hi >> s) - (lo >> s) + 1 <= cap)  # the top level: at most 16
    t_lo, t_hi = lo >> shift, hi >> shift
    if t_hi - t_lo + 1 < buckets and shift == SHIFTS[0]:
        return reference()  # a narrow window: its points are few enough to read (unless stacked)
    cut_lo = after_step is not None and after_step >> shift == t_lo
    cut_hi = before_step is not None and before_step >> shift == t_hi
    if t_lo == t_hi and (cut_lo or cut_hi):
        return reference()
    units: list[tuple[int, Agg]] = []

    def edge(t: int) -> None:
        a, b = max(t << shift, lo), min(((t + 1) << shift) - 1, hi)  # lo, hi: in the window
        rows = conn.execute(
            "SELECT step, value, timestamp FROM metrics WHERE run_id = ? AND key = ? "
            "AND step >= ? AND step <= ? ORDER BY step, rowid",
            (run_id, key, a, b),
        )
        agg = _aggregate(rows)
        if agg is not None:
            units.append((t, agg))

    if cut_lo:
        edge(t_lo)
    mid_lo, mid_hi = t_lo + cut_lo, t_hi - cut_hi
    if mid_lo <= mid_hi:
        for tile, *agg in conn.execute(
            f"SELECT tile, {_COLUMNS} FROM metric_tiles WHERE run_id = ? AND key = ? AND shift = ? "
            "AND tile >= ? AND tile <= ? ORDER BY tile",
            (run_id, key, shift, mid_lo, mid_hi),
        ):
            units.append((tile, agg))
    if cut_hi:
        edge(t_hi)
    return _assemble(key, head[0], last, units, shift, buckets, lo, hi)


def unfolded(conn: sqlite3.Connection, run_id: str, key: str) -> bool:
    """Whether this history has rows above the fold watermark (its tiles do not hold them):
    read from the rows above the watermark only (``+`` keeps SQLite off the history's index)."""
    wm = conn.execute("SELECT value FROM chachaml_meta WHERE key = 'summary_rowid'").fetchone()
    row = conn.execute(
        "SELECT 1 FROM metrics WHERE rowid > ? AND +run_id = ? AND +key = ? LIMIT 1",
        (int(wm[0]) if wm else 0, run_id, key),
    ).fetchone()
    return row is not None


def _assemble(
    key: str,
    first: Sequence[Any],
    last: Sequence[Any],
    units: list[tuple[int, Agg]],
    shift: int,
    buckets: int,
    lo: int,
    hi: int,
) -> tuple[list[Metric], int, list[tuple[int, int]]]:
    total = sum(agg[0] for _, agg in units)
    groups: list[tuple[int, int, Agg]] = []  # first tile, last tile, aggregate
    seen = 0
    current = -1
    for tile, agg in units:
        b = seen * buckets // total if len(units) > buckets else len(groups)
        seen += agg[0]
        if b != current:
            groups.append((tile, tile, list(agg)))
            current = b
        else:
            start, _, acc = groups[-1]
            _merge(acc, agg)
            groups[-1] = (start, tile, acc)
    picked: dict[tuple[int, Any, int], int] = {}  # (step, value or "nan", ts) -> rank
    for step, value, ts in (first, last):
        picked.setdefault(
            (step, "nan" if value is None else value, ts), 0 if (step, value, ts) == tuple(first) else 2
        )
    spans: list[tuple[int, int]] = []
    for start, end, acc in groups:
        spans.append((max(start << shift, lo), min(((end + 1) << shift) - 1, hi)))
        if acc[2] is not None:
            picked.setdefault((acc[1], acc[2], acc[3]), 1)
            picked.setdefault((acc[4], acc[5], acc[6]), 1)
        else:
            picked.setdefault((acc[7], "nan", acc[8]), 1)
    ordered = sorted(picked.items(), key=lambda kv: (kv[0][0], kv[1]))
    points = [Metric(key, float("nan") if v == "nan" else v, s, ts) for (s, v, ts), _ in ordered]
    return points, total, spans
