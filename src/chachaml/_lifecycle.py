"""Process lifecycle: ending runs when a block or the process exits, and the heartbeat.

Dead-run detection (docs/adr/0006-dead-run-detection.md): a run records the host, pid and an
identity of the process instance (``chachaml._process.owner``); a store judges liveness with the
function it was given (``chachaml._process.is_dead_here`` by default). This module keeps the
other half: exit (atexit + a chained excepthook + a ``sys.exit`` wrapper) ends this process's
open runs, a daemon thread refreshes their heartbeat every minute, and a forked child never ends
its parent's runs. No signal handlers are installed. It never imports ``chachaml.context``: the
context calls it, handing over the frames and the ``batched()`` buffer to settle.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import sys
import threading
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from chachaml._process import (
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
    "STALE_MS",
    "current_user",
    "end_left_open",
    "environment",
    "finish",
    "is_dead",
    "now_ms",
    "opened",
    "outcome",
    "owner",
    "pid_alive",
]

HEARTBEAT_S = 60.0  # refresh at most once a minute (SPEC section 8)


# -- outcome of a block or of the process -------------------------------------------------------
def outcome(et: Any, ev: Any, tb: Any) -> tuple[str, dict[str, str] | None]:
    """The run status and error record for an exception leaving a block (None: completed)."""
    if et is None:
        return "completed", None
    if issubclass(et, KeyboardInterrupt):
        return "killed", _error(et, ev, tb)
    if issubclass(et, SystemExit):
        return ("completed", None) if ev is None or ev.code in (None, 0) else ("failed", _error(et, ev, tb))
    if issubclass(et, GeneratorExit):
        return "completed", None
    return "failed", _error(et, ev, tb)


def _error(et: Any, ev: Any, tb: Any) -> dict[str, str]:
    import traceback

    return {
        "type": et.__name__,
        "message": str(ev),
        "traceback": "".join(traceback.format_exception(et, ev, tb)),
    }


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
        previous_hook = sys.excepthook

        def excepthook(et: Any, ev: Any, tb: Any) -> None:
            state.exit_status, state.exit_error = outcome(et, ev, tb)
            previous_hook(et, ev, tb)  # chain: the user's traceback still prints

        sys.excepthook = excepthook
        previous_exit = sys.exit

        def exit(code: Any = None) -> Any:
            if code not in (None, 0):
                state.exit_status = "failed"
                state.exit_error = {
                    "type": "SystemExit",
                    "message": f"sys.exit({code!r})",
                    "traceback": "",
                }
            return previous_exit(code)

        exit.__doc__ = previous_exit.__doc__
        sys.exit = exit


def _at_exit() -> None:
    """End every run this process still has open (never a forked parent's)."""
    state.heartbeat_stop.set()
    pid = os.getpid()
    status, error = state.exit_status, state.exit_error
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
