"""``metric_window``: a window of a metric history, downsampled, on every backend (docs/adr/0025).

SQLite answers long histories from its min/max pyramid, the others from their metrics index;
every backend must keep the window's first and last points, its global extremes, its count and
``max_points``. The history here is long enough (3,000 points) for SQLite to tile it.
"""

from __future__ import annotations

import math

import pytest

from chachaml import _downsample
from chachaml.errors import InvalidValueError
from chachaml.store.base import Store

from .test_store_contract import T0, new_run

N = 3000


def _value(step: int) -> float:
    if step % 301 == 7:
        return math.nan
    if step == 1234:
        return math.inf
    if step == 2345:
        return -1e9
    return math.sin(step / 50.0)


def _key(points: list) -> list:  # NaN-safe comparison
    return [(p.step, "nan" if math.isnan(p.value) else p.value) for p in points]


def _numbers(points: list) -> list[float]:
    return [p.value for p in points if not math.isnan(p.value)]


@pytest.fixture
def long_run(store: Store) -> str:
    run = new_run(store)
    # out of order: the second half first, then the first half, and step 100 twice
    steps = list(range(N // 2, N)) + list(range(N // 2)) + [100]
    store.log_batch(run.id, metrics=[("loss", _value(s), s, T0 + i) for i, s in enumerate(steps[:2000])])
    store.metric_summaries(run.id)  # a read between the writes (SQLite folds here)
    store.log_batch(
        run.id, metrics=[("loss", _value(s), s, T0 + 2000 + i) for i, s in enumerate(steps[2000:])]
    )
    return run.id


@pytest.mark.parametrize(
    ("after", "before"), [(None, None), (99, None), (None, 2500), (1000, 1400), (-5, 10**12)]
)
@pytest.mark.parametrize("max_points", [10, 101, 1000])
def test_metric_window_keeps_the_first_last_count_and_extremes(
    store: Store, long_run: str, after: int | None, before: int | None, max_points: int
) -> None:
    full = store.metric_history(long_run, "loss")
    inside = [p for p in full if (after is None or p.step > after) and (before is None or p.step < before)]
    got, count = store.metric_window(
        long_run, "loss", after_step=after, before_step=before, max_points=max_points
    )
    assert count == len(inside)
    assert 2 <= len(got) <= max_points
    assert _key(got[:1] + got[-1:]) == _key(inside[:1] + inside[-1:])
    assert [p.step for p in got] == sorted(p.step for p in got)
    assert set(_key(got)) <= set(_key(inside))
    ref, _ = _downsample.window(full, after, before, max_points)
    assert (min(_numbers(got)), max(_numbers(got))) == (min(_numbers(ref)), max(_numbers(ref)))


def test_metric_window_without_max_points_is_the_whole_window(store: Store, long_run: str) -> None:
    full = store.metric_history(long_run, "loss")
    got, count = store.metric_window(long_run, "loss", after_step=2990)
    assert _key(got) == _key([p for p in full if p.step > 2990]) and count == 9
    assert store.metric_window(long_run, "loss", after_step=10, before_step=11) == ([], 0)
    assert store.metric_window(long_run, "nope", max_points=10) == ([], 0)
    assert store.metric_window("no-such-run", "loss") == ([], 0)


def test_metric_window_refuses_max_points_below_two(store: Store, long_run: str) -> None:
    with pytest.raises(InvalidValueError, match="max_points"):
        store.metric_window(long_run, "loss", max_points=1)
