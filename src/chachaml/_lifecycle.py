"""Process lifecycle: who owns a run, whether that process is alive, and ending runs at exit.

Dead-run detection (docs/adr/0006-dead-run-detection.md): a run records the host, pid and an
identity of the process instance (Linux: boot id + start time in clock ticks). On the same host
a reader checks that process; from another host it trusts the heartbeat, refreshed every minute
by a daemon thread while runs are open. Exit (atexit + a chained excepthook + a ``sys.exit``
wrapper) ends this process's open runs; a forked child never ends its parent's.
No signal handlers are installed.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import platform
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Mapping
from typing import Any

from chachaml import context
from chachaml._environment import installed_packages
from chachaml.store.base import Owner

HEARTBEAT_S = 60.0  # refresh at most once a minute (SPEC section 8)
STALE_MS = 5 * 60 * 1000  # a heartbeat older than this, seen from another host, means dead

_host = socket.gethostname()
_owner: Owner | None = None
_env: dict[str, Any] | None = None
_account: str | None = None  # the operating-system account name, looked up once


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def _boot_id() -> str:
    try:
        with open("/proc/sys/kernel/random/boot_id") as fh:
            return fh.read().strip()
    except OSError:
        return ""


_BOOT = _boot_id()


def _proc_stat(pid: int) -> tuple[str, str] | None:
    """(state, start ticks) of a Linux process, or None if it does not exist."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            data = fh.read().decode("ascii", "replace")
    except OSError:
        return None
    fields = data[data.rfind(")") + 2 :].split()
    return fields[0], fields[19]


def _identity(pid: int) -> str:
    stat = _proc_stat(pid)
    return f"{_BOOT}:{stat[1]}" if stat and _BOOT else ""


def owner() -> Owner:
    """This process as a run owner (recomputed after a fork)."""
    global _owner
    pid = os.getpid()
    if _owner is None or _owner.pid != pid:
        _owner = Owner(host=_host, pid=pid, proc_start=_identity(pid))
    return _owner


def pid_alive(pid: int) -> bool | None:
    """Whether a process of this host exists: True, False, or None when it cannot be told.

    POSIX only: on Windows ``os.kill(pid, 0)`` does not probe, it terminates the process.
    """
    if os.name != "posix":
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # PermissionError: it exists, as another user's process
        return True
    return True


def is_dead(
    host: str | None, pid: int | None, proc_start: str | None, heartbeat: int | None, now: int
) -> bool:
    """Whether the process that owns a running run is gone."""
    if host == _host and pid is not None:
        if proc_start and _BOOT and proc_start.split(":")[0] == _BOOT:
            stat = _proc_stat(pid)
            return stat is None or stat[0] in ("Z", "X") or f"{_BOOT}:{stat[1]}" != proc_start
        if proc_start and _BOOT:
            return True  # recorded before the last reboot
        alive = pid_alive(pid)
        if alive is not None:
            return not alive
    return heartbeat is not None and now - heartbeat > STALE_MS


def environment() -> dict[str, Any]:
    """Python version, platform, host, command line, installed packages and git commit (when in
    a repository); captured on first use and cached for the process (docs/concepts.md)."""
    global _env
    if _env is None:
        env: dict[str, Any] = {
            "python": platform.python_version(),
            "implementation": platform.python_implementation(),
            "platform": platform.platform(),
            "host": _host,
            "user": os.environ.get("USER") or os.environ.get("USERNAME"),
            "cwd": os.getcwd(),
            "argv": list(sys.argv),  # the command line
            # name -> version of every installed distribution (chachaml._environment)
            "packages": installed_packages(),
        }
        try:
            out = subprocess.run(
                ["git", "rev-parse", "HEAD"],
                capture_output=True,
                text=True,
                timeout=2,
                check=False,
            )
            if out.returncode == 0:
                env["git_commit"] = out.stdout.strip()
                dirty = subprocess.run(
                    ["git", "status", "--porcelain", "--untracked-files=no"],
                    capture_output=True,
                    text=True,
                    timeout=2,
                    check=False,
                )
                env["git_dirty"] = bool(dirty.stdout.strip())
        except (OSError, subprocess.SubprocessError):
            pass
        _env = env
    return dict(_env)


def current_user() -> str:
    """``$CHACHAML_USER``, else the operating-system user."""
    global _account
    user = os.environ.get("CHACHAML_USER")
    if user:
        return user
    for name in ("LOGNAME", "USER", "LNAME", "USERNAME"):  # what getpass.getuser() reads first
        user = os.environ.get(name)
        if user:
            return user
    if _account is None:  # the password-database lookup costs ~40 µs per start_run: do it once
        try:
            import getpass

            _account = getpass.getuser()
        except Exception:  # getuser raises several types when no user can be found
            _account = "unknown"
    return _account


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


def finish(frame: context.Frame, status: str, error: Mapping[str, str] | None = None) -> bool:
    """End the frame's run if it is still running; True if this call ended it."""
    assert frame.store is not None and frame.run_id is not None
    context.process.open_runs.pop(frame.run_id, None)
    if frame.store.closed:
        return False
    batch = context._batch_cv.get()
    if batch is not None:  # points buffered by batched() land before the run ends
        batch.flush(frame.store, frame.run_id)
    return frame.store.end_run(frame.run_id, status, now_ms(), error)


def end_left_open(
    frames: Iterable[context.Frame], status: str, error: Mapping[str, str] | None = None
) -> None:
    """End the ``start_run()`` runs among ``frames``: left open when their block exits
    (``with_run``, ``with_store``, ``attach``), they share the block's outcome."""
    for frame in list(frames):
        if frame.imperative:
            finish(frame, status, error)


def opened(store: Any, run_id: str) -> None:
    """Register a run this process started or resumed, and make sure exit handling is on."""
    context.process.open_runs[run_id] = (store, os.getpid())
    if not context.process.hooks_installed:
        _install()
    if context.process.heartbeat is None:
        _start_heartbeat()


def _install() -> None:
    with context._lock:
        if context.process.hooks_installed:
            return
        context.process.hooks_installed = True
        atexit.register(_at_exit)
        previous_hook = sys.excepthook

        def excepthook(et: Any, ev: Any, tb: Any) -> None:
            context.process.exit_status, context.process.exit_error = outcome(et, ev, tb)
            previous_hook(et, ev, tb)  # chain: the user's traceback still prints

        sys.excepthook = excepthook
        previous_exit = sys.exit

        def exit(code: Any = None) -> Any:
            if code not in (None, 0):
                context.process.exit_status = "failed"
                context.process.exit_error = {
                    "type": "SystemExit",
                    "message": f"sys.exit({code!r})",
                    "traceback": "",
                }
            return previous_exit(code)

        exit.__doc__ = previous_exit.__doc__
        sys.exit = exit


def _at_exit() -> None:
    """End every run this process still has open (never a forked parent's)."""
    context.process.heartbeat_stop.set()
    pid = os.getpid()
    status, error = context.process.exit_status, context.process.exit_error
    for run_id, (store, owner_pid) in list(context.process.open_runs.items()):
        if owner_pid != pid or store.closed:
            continue
        with contextlib.suppress(Exception):  # exiting: one store failing must not stop the rest
            store.end_run(run_id, status, now_ms(), error)
        context.process.open_runs.pop(run_id, None)


def _start_heartbeat() -> None:
    with context._lock:
        if context.process.heartbeat is not None:
            return
        stop = context.process.heartbeat_stop
        thread = threading.Thread(target=_beat, args=(stop,), name="chachaml-heartbeat", daemon=True)
        context.process.heartbeat = thread
        thread.start()


def _beat(stop: threading.Event) -> None:
    while not stop.wait(HEARTBEAT_S):
        pid = os.getpid()
        by_store: dict[int, tuple[Any, list[str]]] = {}
        for run_id, (store, owner_pid) in list(context.process.open_runs.items()):
            if owner_pid == pid and not store.closed:
                by_store.setdefault(id(store), (store, []))[1].append(run_id)
        for store, ids in by_store.values():
            try:
                store.heartbeat(ids, now_ms())
            except Exception:
                continue
