"""Worker functions for tests/test_processes_context.py (spawned processes import them by name)."""

from __future__ import annotations

import os

import chachaml
from chachaml.context import Snapshot, attach


def log_points(snap: Snapshot, index: int, n: int) -> tuple[int, str | None]:
    """Log ``n`` points under a key of this worker and one shared point; return (pid, run id seen)."""
    with attach(snap):
        run = chachaml.current_run()
        for step in range(n):
            chachaml.log_metric(f"worker{index}", float(step), step=step)
        chachaml.log_metrics({"shared": float(index)})
        return os.getpid(), None if run is None else run.id


def child_with_run(snap: Snapshot, index: int) -> str:
    """A ``with_run`` in the worker: a child of the attached run."""
    with attach(snap), chachaml.with_run(f"trial-{index}") as run:
        chachaml.log_param("index", index)
        chachaml.log_metric("score", float(index))
    return run.id


def child_left_open(snap: Snapshot, index: int) -> str:
    """``start_run`` in the worker, never ended: ``attach`` ends it when the block exits."""
    with attach(snap):
        run = chachaml.start_run(f"open-{index}")
        chachaml.log_metric("score", float(index))
    return run.id


def current_after_attach(snap: Snapshot) -> tuple[str | None, str | None]:
    """The run current inside ``attach`` and after it (the worker has no run of its own)."""
    with attach(snap):
        inside = chachaml.current_run()
    after = chachaml.current_run()
    return (None if inside is None else inside.id), (None if after is None else after.id)
