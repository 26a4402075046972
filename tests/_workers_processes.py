"""Worker functions for tests that start real processes (multiprocessing, spawn start method).

They live in an importable module because a spawned child re-imports its target by name. Each
worker waits at a barrier so all of them hit the database at the same moment, and reports a
failure by writing the traceback to ``<errors>/<name>.txt`` (the parent reads those files and
shows them in the assertion message) and exiting non-zero.
"""

from __future__ import annotations

import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

BARRIER_TIMEOUT_S = 120.0


def _guarded(errors: str, name: str, fn: Callable[[], None]) -> None:
    try:
        fn()
    except BaseException:
        Path(errors, f"{name}.txt").write_text(traceback.format_exc())
        sys.exit(1)


def create_and_log_one_run(db: str, index: int, barrier: Any, errors: str) -> None:
    """Open ``db`` (not yet existing) right after the barrier falls and log one run to it."""

    def work() -> None:
        import chachaml

        barrier.wait(BARRIER_TIMEOUT_S)
        with chachaml.with_store(db), chachaml.with_run(f"worker-{index}", experiment="race"):
            chachaml.log_param("worker", index)
            chachaml.log_metric("value", float(index))

    _guarded(errors, f"create-{index}", work)


def log_to_own_run(db: str, index: int, n: int, barrier: Any, errors: str) -> None:
    """Log ``n`` points (step=None) to a run of this worker, racing the other workers.

    Alternates the single-point path (``log_metric``) with the batch path (``log_metrics``) so
    both kinds of write race.
    """

    def work() -> None:
        import chachaml

        with chachaml.with_store(db):
            barrier.wait(BARRIER_TIMEOUT_S)
            with chachaml.with_run(f"own-{index}", experiment="writers"):
                chachaml.log_param("worker", index)
                for i in range(n):
                    if i % 2:
                        chachaml.log_metrics({"loss": float(i), "index": float(index)})
                    else:
                        chachaml.log_metric("loss", float(i))
                        chachaml.log_metric("index", float(index))

    _guarded(errors, f"own-{index}", work)


def log_to_shared_run(snap: Any, index: int, n: int, barrier: Any, errors: str) -> None:
    """Log ``n`` points with step=None on the key ``shared`` of a run another process owns.

    The value encodes who wrote it (``index * 1_000_000 + i``) so the parent can count each
    worker's points. Odd points go through the batch path (``log_metrics`` with a second key,
    ``echo``), even ones through the single-point path.
    """

    def work() -> None:
        import chachaml
        from chachaml.context import attach

        with attach(snap):
            barrier.wait(BARRIER_TIMEOUT_S)
            for i in range(n):
                value = float(index * 1_000_000 + i)
                if i % 2:
                    chachaml.log_metrics({"shared": value, "echo": value})
                else:
                    chachaml.log_metric("shared", value)

    _guarded(errors, f"shared-{index}", work)


def log_to_shared_run_batched(snap: Any, index: int, n: int, barrier: Any, errors: str) -> None:
    """Like ``log_to_shared_run`` but inside ``batched()``, flushing every 10 points."""

    def work() -> None:
        import chachaml
        from chachaml.context import attach

        with attach(snap), chachaml.batched():
            barrier.wait(BARRIER_TIMEOUT_S)
            for i in range(n):
                chachaml.log_metric("shared", float(index * 1_000_000 + i))
                if i % 10 == 9:
                    chachaml.flush()

    _guarded(errors, f"batched-{index}", work)
