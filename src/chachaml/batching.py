"""``batched()``: buffer metric points in tight loops and write them in one transaction.

The buffer is a ContextVar of ``chachaml.context`` (``_batch_cv``); ``tracking.log_metric``
adds to it, and ending a run (``_lifecycle.finish``) writes that run's points first.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from chachaml import context
from chachaml.errors import RunStateError
from chachaml.store.base import Store

__all__ = ["batched", "flush"]


_Points = list[tuple[str, float, int | None, int]]  # (key, value, step or None, timestamp)


class _Batch:
    """Metric points buffered by ``batched()``, per run, in logging order.

    A ``step=None`` stays ``None`` until the flush: the store resolves it inside the write
    transaction, so batches flushed by several processes into one run never share a step.
    A run's buffer is written as soon as it holds ``FLUSH_EVERY`` points, so memory stays flat
    however long the block runs (SPEC section 6); writing early only makes points durable sooner.
    """

    FLUSH_EVERY = 10_000

    def __init__(self) -> None:
        # Held while writing too, so concurrent flushes land in logging order.
        self.lock = threading.Lock()
        self.points: dict[tuple[int, str], _Points] = {}
        self.stores: dict[int, Store] = {}
        # The run the last point went to (and its buffer): a loop logs to one run.
        self.last: tuple[Store | None, str | None, _Points] = (None, None, [])

    def add(self, store: Store, run_id: str, key: str, value: float, step: int | None, ts: int) -> None:
        with self.lock:
            last_store, last_run, points = self.last
            if store is not last_store or run_id != last_run:
                found = self.points.get((id(store), run_id))
                if found is None:
                    found = self.points[id(store), run_id] = []
                    self.stores[id(store)] = store
                points = found
                self.last = (store, run_id, points)
            points.append((key, value, step, ts))
            if len(points) >= self.FLUSH_EVERY:
                del self.points[id(store), run_id]
                self.last = (None, None, [])
                store.log_batch(run_id, metrics=points)

    def flush(self, store: Store | None = None, run_id: str | None = None) -> None:
        """Write buffered points (all, or one run's), run by run, each in one transaction.

        One run's failure (it was ended elsewhere) does not lose the other runs' points.
        """
        failure: Exception | None = None
        with self.lock:
            for (sid, rid), points in list(self.points.items()):
                st = self.stores[sid]
                if (store is not None and st is not store) or (run_id is not None and rid != run_id):
                    continue
                del self.points[sid, rid]
                self.last = (None, None, [])
                try:
                    st.log_batch(rid, metrics=points)
                except RunStateError as exc:
                    failure = failure or exc
        if failure is not None:
            raise failure


def flush() -> None:
    """Write what ``batched()`` has buffered so far; over a remote store, also wait until the
    server has every point logged so far (SPEC 10)."""
    batch = context._batch_cv.get()
    if batch is not None:
        batch.flush()
    store = context._store_cv.get() or context._process_store
    wait = getattr(store, "flush", None)
    if wait is not None:
        wait()


@contextmanager
def batched() -> Iterator[None]:
    """Buffer metric writes inside the block and write them in one transaction on exit.

    For tight loops: points are not durable until the block exits (or ``flush()``), and a run
    ended inside the block gets its points written first. Params and tags are never buffered.
    """
    batch = _Batch()
    token = context._batch_cv.set(batch)
    try:
        yield
    finally:
        context._batch_cv.reset(token)
        batch.flush()
