"""Process lifecycle: ending runs when a block or the process exits, and the heartbeat.

Dead-run detection (docs/adr/0006-dead-run-detection.md): a run records the host, pid and an
identity of the process instance (``chachaml._process.owner``); a store judges liveness with the
function it was given (``chachaml._process.is_dead_here`` by default). This module keeps the
other half: an ``atexit`` handler ends this process's open runs with the status of what actually
ended the process (``chachaml._exit``), a daemon thread refreshes their heartbeat every minute,
and a forked child never ends its parent's runs. No signal handlers are installed. It never
imports ``chachaml.context``: the context calls it, handing over the frames and the
``batched()`` buffer to settle.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import threading
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from chachaml import _exit
from chachaml._exit import exits_zero, outcome
from chachaml._process import (
    PID_NAMESPACE,
    STALE_MS,
    current_user,
    environment,
    now_ms,
    owner,
    pid_alive,
    state,
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

HEARTBEAT_S = 60.0  # refresh at most once a minute (SPEC section 8)


def finish(frame: Frame, status: str, error: Mapping[str, str] | None = None, batch: Any = None) -> bool:
    """End the frame's run if it is still running; True if this call ended it.

    ``batch`` is the caller's active ``batched()`` buffer (or None): its points for this run are
    written first.
    """
    assert frame.store is not None and frame.run_id is not None
    state.open_runs.pop(frame.run_id, None)
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


def opened(store: Any, run_id: str) -> None:
    """Register a run this process started or resumed, and make sure exit handling is on."""
    state.open_runs[run_id] = (store, os.getpid())
    if not state.hooks_installed:
        _install()
    if state.heartbeat is None:
        _start_heartbeat()


def _install() -> None:
    with state.lock:
        if state.hooks_installed:
            return
        state.hooks_installed = True
        atexit.register(_at_exit)
        _exit.install()


def _at_exit() -> None:
    """End every run this process still has open (never a forked parent's)."""
    state.heartbeat_stop.set()
    pid = os.getpid()
    status, error = _exit.outcome_at_exit()
    for run_id, (store, owner_pid) in list(state.open_runs.items()):
        if owner_pid != pid or store.closed:
            continue
        with contextlib.suppress(Exception):  # exiting: one store failing must not stop the rest
            store.end_run(run_id, status, now_ms(), error)
        state.open_runs.pop(run_id, None)


def _start_heartbeat() -> None:
    with state.lock:
        if state.heartbeat is not None:
            return
        stop = state.heartbeat_stop
        thread = threading.Thread(target=_beat, args=(stop,), name="chachaml-heartbeat", daemon=True)
        state.heartbeat = thread
        thread.start()


def _beat(stop: threading.Event) -> None:
    while not stop.wait(HEARTBEAT_S):
        pid = os.getpid()
        by_store: dict[int, tuple[Any, list[str]]] = {}
        for run_id, (store, owner_pid) in list(state.open_runs.items()):
            if owner_pid == pid and not store.closed:
                by_store.setdefault(id(store), (store, []))[1].append(run_id)
        for store, ids in by_store.values():
            try:
                store.heartbeat(ids, now_ms())
            except Exception:
                continue
