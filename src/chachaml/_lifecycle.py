"""Process lifecycle: ending runs when a block or the process exits, and the heartbeat.

Dead-run detection (docs/adr/0006-dead-run-detection.md): a run records the host, pid and an
identity of the process instance (``chachaml._process.owner``); a store judges liveness with the
function it was given (``chachaml._process.is_dead_here`` by default). This module keeps the
other half: the runs a block leaves open end with the block (``end_left_open``), and
``chachaml._owned`` (re-exported here) ends this process's open runs at exit with the status of
what actually ended the process (``chachaml._exit``), refreshes their heartbeat every minute,
and never lets a forked child end its parent's runs. No signal handlers are installed. It never
imports ``chachaml.context``: the context calls it, handing over the frames and the
``batched()`` buffer to settle.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from chachaml._exit import exits_zero, outcome
from chachaml._owned import HEARTBEAT_S, closed, opened
from chachaml._process import (
    PID_NAMESPACE,
    STALE_MS,
    current_user,
    environment,
    now_ms,
    owner,
    pid_alive,
)
from chachaml._process import is_dead_here as is_dead

if TYPE_CHECKING:
    from chachaml.context import Frame

__all__ = [
    "HEARTBEAT_S",
    "PID_NAMESPACE",
    "STALE_MS",
    "current_user",
    "end_left_open",
    "environment",
    "exits_zero",
    "finish",
    "is_dead",
    "now_ms",
    "opened",
    "outcome",
    "owner",
    "pid_alive",
]


def finish(frame: Frame, status: str, error: Mapping[str, str] | None = None, batch: Any = None) -> bool:
    """End the frame's run if it is still running; True if this call ended it.

    ``batch`` is the caller's active ``batched()`` buffer (or None): its points for this run are
    written first.
    """
    assert frame.store is not None and frame.run_id is not None
    closed(frame.run_id)
    if frame.store.closed:
        return False
    if batch is not None:  # points buffered by batched() land before the run ends
        batch.flush(frame.store, frame.run_id)
    return frame.store.end_run(frame.run_id, status, now_ms(), error)


def end_left_open(
    frames: Iterable[Frame], status: str, error: Mapping[str, str] | None = None, batch: Any = None
) -> None:
    """End the ``start_run()`` runs among ``frames``: left open when their block exits
    (``with_run``, ``with_store``, ``attach``), they share the block's outcome."""
    for frame in list(frames):
        if frame.imperative:
            finish(frame, status, error, batch)
