"""Reduce a long metric history to at most ``max_points`` points that keep its shape.

SPEC 9.2 and 11: the first point, the last point, and each bucket's minimum and maximum survive,
so a spike or a collapse is never averaged away (ADR-0012). Used by the MCP server's
``metric_history``; the HTTP API's ``max_points`` follows the same rule.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TypeVar

from chachaml.entities import Metric

__all__ = ["MIN_POINTS", "downsample"]

#: The smallest ``max_points`` accepted: the first and the last point.
MIN_POINTS = 2

P = TypeVar("P", bound=Metric)


def downsample(points: Sequence[P], max_points: int) -> list[P]:
    """At most ``max_points`` of ``points`` (in step order), keeping the shape of the curve.

    Short histories come back whole. Otherwise the points between the first and the last are
    cut into ``(max_points - 2) // 2`` buckets of near-equal size, and each bucket keeps its
    minimum and its maximum (one point when they coincide), in their original order. NaN is
    neither a minimum nor a maximum; a bucket holding only NaNs keeps its first point.

    Args:
        points: the history, in step order (as ``metric_history`` returns it).
        max_points: the most points to return, at least ``MIN_POINTS``.

    Returns:
        A new list, a subsequence of ``points``.

    Raises:
        ValueError: ``max_points`` is below ``MIN_POINTS`` (callers validate it first).
    """
    if max_points < MIN_POINTS:
        raise ValueError(f"max_points must be at least {MIN_POINTS}, got {max_points}")
    n = len(points)
    if n <= max_points:
        return list(points)
    inner = n - 2  # > max_points - 2 >= 2 * buckets: every bucket holds at least two points
    buckets = (max_points - 2) // 2
    kept: list[P] = [points[0]]
    for b in range(buckets):
        lo = 1 + b * inner // buckets
        hi = 1 + (b + 1) * inner // buckets
        numbers = [i for i in range(lo, hi) if not math.isnan(points[i].value)]
        if not numbers:  # a bucket of NaNs keeps one, so the gap in the curve stays visible
            kept.append(points[lo])
            continue
        # Ties go to the earliest point of the bucket, so the result is deterministic.
        lo_i = min(numbers, key=lambda i: (points[i].value, i))
        hi_i = min(numbers, key=lambda i: (-points[i].value, i))
        kept.extend(points[i] for i in sorted({lo_i, hi_i}))
    kept.append(points[-1])
    return kept
