"""The runs this process owns: ended at process exit, kept alive by a heartbeat.

A run started by this process (``chachaml.start_run``, ``with_run``, or a bare
``Client(...).start_run``) is registered here with ``opened``. An ``atexit`` handler ends every
one still open with the status of what actually ended the process (``chachaml._exit``); a daemon
thread refreshes their heartbeat at most once a minute, so a reader on another host (a team
server, a shared PostgreSQL database) never takes a live run for a dead one
(docs/adr/0006-dead-run-detection.md). A forked child never ends its parent's runs.

It knows nothing of the current run or the context, so the ``Client`` may use it: the context
keeps what is about blocks (``chachaml._lifecycle``), this module what is about the process.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import threading
from typing import Any

from chachaml import _exit
from chachaml._process import now_ms, state

__all__ = ["HEARTBEAT_S", "closed", "opened"]

HEARTBEAT_S = 60.0  # refresh at most once a minute (SPEC section 8)


def opened(store: Any, run_id: str) -> None:
    """Register a run this process started or resumed, and make sure exit handling is on."""
    state.open_runs[run_id] = (store, os.getpid())
    if not state.hooks_installed:
        _install()
    if state.heartbeat is None:
        _start_heartbeat()


def closed(run_id: str) -> None:
    """Forget a run that was ended (nothing if it was not registered)."""
    state.open_runs.pop(run_id, None)


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
