"""Facts about this process: its identity as a run owner, the clock, the user, and whether a
process of this host is alive. A leaf (it imports only ``chachaml._environment``, itself a
leaf), so stores may use it.

Dead-run detection (docs/adr/0006-dead-run-detection.md) is a *liveness* function a store is
given (``SqliteStore(path, is_dead=...)``): ``is_dead_here`` probes this host's processes and
falls back to the heartbeat for runs of other hosts; ``is_dead_by_heartbeat`` trusts the
heartbeat only, which is what a tracking server must use for runs of its clients.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import FrameType
from typing import Any

from chachaml._environment import git_state, installed_packages, platform_text, python_version

__all__ = [
    "HOST",
    "PID_NAMESPACE",
    "STALE_MS",
    "Liveness",
    "Owner",
    "current_user",
    "environment",
    "is_dead_by_heartbeat",
    "is_dead_here",
    "now_ms",
    "owner",
    "pid_alive",
    "state",
]

STALE_MS = 5 * 60 * 1000  # a heartbeat older than this, seen from another host, means dead


def _hostname() -> str:
    """``socket.gethostname()``; on POSIX the same name from ``os.uname()``, without importing
    ``socket`` (~1.5 ms) on every first use."""
    if hasattr(os, "uname"):
        return os.uname().nodename
    import socket

    return socket.gethostname()


HOST = _hostname()


@dataclass(frozen=True, slots=True)
class Owner:
    """The process that runs a run: used to tell a dead run from a live one (ADR-0006)."""

    host: str
    pid: int
    proc_start: str  # opaque identity of the process instance (boot id + start ticks on Linux)


#: ``(host, pid, proc_start, heartbeat, now) -> dead?`` for a run whose status is ``running``.
Liveness = Callable[[str | None, int | None, str | None, int | None, int], bool]


class _State:
    """Mutable facts about this process, kept current across ``fork`` (see ``_after_fork``)."""

    def __init__(self) -> None:
        # os.getpid() is a system call; hot paths (a store checking it was not inherited through
        # fork) read this copy.
        self.pid = os.getpid()
        self.lock = threading.RLock()
        self.open_runs: dict[str, tuple[Any, int]] = {}  # run id -> (store, owning pid)
        self.hooks_installed = False
        # The last recorded way the process may end, and where its entry frame stood then
        # (see chachaml._exit).
        self.exit_status = "completed"
        self.exit_error: dict[str, str] | None = None
        self.exit_anchor: int | None = None
        self.entry_frame: FrameType | None = None
        self.heartbeat: threading.Thread | None = None
        self.heartbeat_stop = threading.Event()


state = _State()


def _after_fork() -> None:
    # The child has no heartbeat thread; runs stay registered with the parent's pid, so the
    # child's exit never ends them (SPEC section 8).
    state.pid = os.getpid()
    state.heartbeat = None
    state.heartbeat_stop = threading.Event()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork)


def now_ms() -> int:
    """Wall-clock time in integer milliseconds since the epoch (UTC)."""
    return time.time_ns() // 1_000_000


def _boot_id() -> str:
    try:
        with open("/proc/sys/kernel/random/boot_id") as fh:
            return fh.read().strip()
    except OSError:
        return ""


_BOOT = _boot_id()


def _pid_namespace() -> str:
    """The inode of this process's PID namespace (``/proc/self/ns/pid`` -> ``pid:[4026531836]``).

    Pids are per namespace: a process in a container (or under ``unshare -p``) on this host has
    another pid here, or none. Empty where there are no namespaces (not Linux).
    """
    try:
        link = os.readlink("/proc/self/ns/pid")
    except OSError:
        return ""
    return link[5:-1] if link.startswith("pid:[") and link.endswith("]") else ""


PID_NAMESPACE = _pid_namespace()


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
    """``boot id:start ticks:pid namespace`` of a process of this namespace ('' if unknown)."""
    stat = _proc_stat(pid)
    if not stat or not _BOOT:
        return ""
    return f"{_BOOT}:{stat[1]}:{PID_NAMESPACE}" if PID_NAMESPACE else f"{_BOOT}:{stat[1]}"


_owner: Owner | None = None


def owner() -> Owner:
    """This process as a run owner (recomputed after a fork)."""
    global _owner
    pid = os.getpid()
    if _owner is None or _owner.pid != pid:
        _owner = Owner(host=HOST, pid=pid, proc_start=_identity(pid))
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


def is_dead_by_heartbeat(
    host: str | None, pid: int | None, proc_start: str | None, heartbeat: int | None, now: int
) -> bool:
    """Dead when the heartbeat is older than ``STALE_MS`` (what a server can know of a client)."""
    return heartbeat is not None and now - heartbeat > STALE_MS


def is_dead_here(
    host: str | None, pid: int | None, proc_start: str | None, heartbeat: int | None, now: int
) -> bool:
    """Whether the process that owns a running run is gone: probed when it ran on this host and
    PID namespace, else judged by its heartbeat (the default liveness of a local store).

    ``proc_start`` is ``boot:ticks:pidns`` (``boot:ticks`` when written before issue 7, read as
    this namespace). A process of this host in another PID namespace cannot be looked up by its
    pid, which names another process here or none: it is judged by its heartbeat, as one of
    another host is (issue 7, defect 4).
    """
    if host == HOST and pid is not None:
        boot, ticks, ns = [*(proc_start or "").split(":"), "", ""][:3]
        if boot and _BOOT and boot != _BOOT:
            return True  # recorded before the last reboot
        if ns and ns != PID_NAMESPACE:
            pass  # another PID namespace: the heartbeat decides, below
        elif boot and _BOOT:
            stat = _proc_stat(pid)
            return stat is None or stat[0] in ("Z", "X") or stat[1] != ticks
        else:
            alive = pid_alive(pid)
            if alive is not None:
                return not alive
    return is_dead_by_heartbeat(host, pid, proc_start, heartbeat, now)


_env: dict[str, Any] | None = None


def environment() -> dict[str, Any]:
    """Python version, platform, host, command line, installed packages and git commit (when in
    a repository); captured on first use and cached for the process (docs/concepts.md)."""
    global _env
    if _env is None:
        python, implementation = python_version()  # platform's answers, without importing it
        env: dict[str, Any] = {
            "python": python,
            "implementation": implementation,
            "platform": platform_text(),  # platform.platform() without its `uname -p` process
            "host": HOST,
            "user": os.environ.get("USER") or os.environ.get("USERNAME"),
            "cwd": os.getcwd(),
            "argv": list(sys.argv),  # the command line
            # name -> version of every installed distribution (chachaml._environment)
            "packages": installed_packages(),
        }
        env.update(git_state(env["cwd"]))  # no process started outside a repository
        _env = env
    return dict(_env)


_account: str | None = None  # the operating-system account name, looked up once


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
