"""Reduce a long metric history to a few points without losing its extremes (SPEC 9.2).

The first and the last point always survive; the points between are split into equal-count
buckets and each bucket keeps its minimum and its maximum (in step order). A spike therefore
never disappears from a chart, unlike averaging or taking every n-th point
(``shared/research/ui-expectations.md``: "downsampling that keeps the extremes").
NaN is never a bucket's minimum or maximum; a bucket holding only NaN keeps one NaN point, so
a chart can still show that the run diverged there.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TypeVar

from chachaml.entities import Metric
from chachaml.errors import InvalidValueError

P = TypeVar("P", bound=Metric)

__all__ = ["MIN_POINTS", "check_max_points", "downsample", "downsample_indices", "window"]

#: The smallest ``max_points`` accepted: the first and the last point.
MIN_POINTS = 2


def downsample_indices(values: Sequence[float], max_points: int) -> list[int]:
    """Indices (ascending) of the points to keep so that at most ``max_points`` remain.

    Args:
        values: the metric values, in step order.
        max_points: the most points to return; at least 2 (the first and the last).

    Returns:
        every index when ``len(values) <= max_points``, else the first, the last and each
        bucket's minimum and maximum.

    Raises:
        ValueError: ``max_points`` is below 2.
    """
    if max_points < 2:
        raise ValueError(f"max_points must be at least 2, got {max_points}")
    n = len(values)
    if n <= max_points:
        return list(range(n))
    inner = n - 2
    buckets = (max_points - 2) // 2
    if buckets == 0:  # room for at most one point between the ends: the largest one
        if max_points == 2:
            return [0, n - 1]
        middle = [i for i in range(1, n - 1) if values[i] == values[i]]
        return [0, max(middle, key=values.__getitem__), n - 1] if middle else [0, 1, n - 1]
    # A sum is NaN when any value is (or when +inf meets -inf): then take the careful path.
    # (Not math.fsum: it raises on +inf + -inf.)
    careful = math.isnan(sum(values))
    keep = [0]
    for b in range(buckets):
        lo = 1 + b * inner // buckets
        hi = 1 + (b + 1) * inner // buckets
        if lo >= hi:
            continue
        chunk = values[lo:hi]
        if careful:
            idx = [i for i, v in enumerate(chunk) if v == v]
            if not idx:
                keep.append(lo)
                continue
            i_min = min(idx, key=chunk.__getitem__)
            i_max = max(idx, key=chunk.__getitem__)
        else:
            # min()/max() then index() run in C: about 10x faster than a key= function.
            i_min = chunk.index(min(chunk))
            i_max = chunk.index(max(chunk))
        a, b2 = (i_min, i_max) if i_min <= i_max else (i_max, i_min)
        keep.append(lo + a)
        if b2 != a:
            keep.append(lo + b2)
    keep.append(n - 1)
    return keep


def downsample(points: Sequence[P], max_points: int) -> list[P]:
    """The metric points ``downsample_indices`` keeps, in step order (a new list)."""
    return [points[i] for i in downsample_indices([p.value for p in points], max_points)]


def window(
    points: Sequence[P], after_step: int | None, before_step: int | None, max_points: int | None
) -> tuple[list[P], int]:
    """The reference answer of a windowed, downsampled history read (``metric_window``).

    Args:
        points: the whole history (or the part above ``after_step``), in step order.
        after_step: keep only points with a step above this (exclusive); None: no bound.
        before_step: keep only points with a step below this (exclusive); None: no bound.
        max_points: downsample to at most this many (``downsample``); None: every point.

    Returns:
        the kept points and the number of points in the window before downsampling.
    """
    check_max_points(max_points)
    inside = [
        p
        for p in points
        if (after_step is None or p.step > after_step) and (before_step is None or p.step < before_step)
    ]
    if max_points is None or len(inside) <= max_points:
        return inside, len(inside)
    return downsample(inside, max_points), len(inside)


def check_max_points(max_points: int | None) -> None:
    """Refuse a ``max_points`` below ``MIN_POINTS`` (None means every point)."""
    if max_points is not None and (max_points.__class__ is not int or max_points < MIN_POINTS):
        raise InvalidValueError(
            f"max_points must be an integer of at least {MIN_POINTS} (the first and the last point), "
            f"got {max_points!r}; pass a larger number, or None for every point"
        )
