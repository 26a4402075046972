"""Downsampling a metric history: first, last and each bucket's min and max survive (ADR-0012)."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chachaml._downsample import MIN_POINTS, downsample
from chachaml.entities import Metric


def _points(values: list[float]) -> list[Metric]:
    return [Metric("loss", v, step, 1000 + step) for step, v in enumerate(values)]


values_st = st.lists(st.floats(allow_nan=True, allow_infinity=True, width=32), min_size=0, max_size=400)


@settings(deadline=None)  # pure CPU, but a loaded CI machine must not make it flaky
@given(values_st, st.integers(min_value=MIN_POINTS, max_value=120))
def test_the_result_is_a_short_subsequence_with_first_last_and_extremes(
    values: list[float], max_points: int
) -> None:
    points = _points(values)
    kept = downsample(points, max_points)
    assert len(kept) <= max_points
    steps = [p.step for p in kept]
    assert steps == sorted(set(steps))  # a subsequence, in order, no duplicates
    assert all(points[p.step] is p for p in kept)
    if len(points) <= max_points:
        assert kept == points
        return
    assert kept[0] is points[0] and kept[-1] is points[-1]
    if max_points >= 4:  # at least one bucket: the global extremes lie in some bucket or at an end
        numbers = [v for v in values if not math.isnan(v)]
        kept_values = [p.value for p in kept]
        if numbers:
            assert min(numbers) in kept_values and max(numbers) in kept_values
        if not numbers:
            assert all(math.isnan(v) for v in kept_values)


def test_each_bucket_keeps_its_min_and_max_in_step_order() -> None:
    values = [0.0, 5.0, 1.0, 9.0, 2.0, 3.0, -4.0, 8.0, 0.0, 1.0]
    kept = downsample(_points(values), 6)  # 2 buckets over the 8 inner points
    assert [(p.step, p.value) for p in kept] == [
        (0, 0.0),
        (2, 1.0),  # bucket 1 (steps 1-4): min 1.0, max 9.0
        (3, 9.0),
        (6, -4.0),  # bucket 2 (steps 5-8): min -4.0, max 8.0
        (7, 8.0),
        (9, 1.0),
    ]


def test_nan_is_neither_min_nor_max_and_a_bucket_of_nans_keeps_one() -> None:
    nan = math.nan
    values = [0.0, nan, 1.0, 7.0, nan, nan, nan, nan, nan, 2.0]
    kept = downsample(_points(values), 6)  # buckets: steps 1-4 and steps 5-8
    assert [p.step for p in kept] == [0, 2, 3, 5, 9]


def test_max_points_below_two_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 2"):
        downsample(_points([1.0, 2.0, 3.0]), 1)
