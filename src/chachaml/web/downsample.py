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

T = TypeVar("T")

__all__ = ["downsample", "downsample_indices"]


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


def downsample(points: Sequence[T], values: Sequence[float], max_points: int) -> list[T]:
    """The points ``downsample_indices(values, max_points)`` keeps, in order."""
    return [points[i] for i in downsample_indices(values, max_points)]
