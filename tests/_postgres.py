"""The PostgreSQL server the tests use, and a fresh database per test.

``CHACHAML_TEST_POSTGRES_URL`` names a server and an existing database to connect through
(default: ``postgresql://postgres@127.0.0.1:5432/test``, trust auth, as ``.ci/run`` starts it).
Each test gets its own database (``CREATE DATABASE`` with a unique name, dropped after). When the
server cannot be reached, a test that needs it FAILS if ``CI`` is set, and is skipped otherwise.
"""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

ADMIN_URL = os.environ.get("CHACHAML_TEST_POSTGRES_URL") or "postgresql://postgres@127.0.0.1:5432/test"


@functools.cache
def _unreachable() -> str | None:
    """Why the server cannot be used (None when it can), checked once per test session."""
    try:
        import psycopg
    except ImportError:
        return "psycopg is not installed (pip install -e '.[dev]')"
    try:
        psycopg.connect(ADMIN_URL, connect_timeout=5).close()
    except psycopg.Error as exc:
        return f"PostgreSQL at {ADMIN_URL} is unreachable: {str(exc).strip()}"
    return None


def require_postgres() -> None:
    """Fail (on CI) or skip (elsewhere) the calling test when the server is not there."""
    why = _unreachable()
    if why is None:
        return
    if os.environ.get("CI"):
        pytest.fail(f"{why}; CI must run the PostgreSQL tests (.ci/run starts the server)")
    pytest.skip(why)


@contextmanager
def fresh_database() -> Iterator[str]:
    """The URL of a new empty database on the test server, dropped on exit."""
    require_postgres()
    from chachaml.store.postgres import temporary_database

    with temporary_database(ADMIN_URL) as url:
        yield url


PG_BIN = os.environ.get("CHACHAML_TEST_PG_BIN") or "/usr/lib/postgresql/15/bin"
_START_S = 60.0  # a deadline for a loaded machine, never a timing assertion


class PrivateCluster:
    """A PostgreSQL cluster of the test's own (``initdb`` into a temporary folder, ``pg_ctl`` on a
    free port), for what must never happen to the shared server: restarting it, killing it.

    The binaries refuse to run as root, so as root they run as the ``postgres`` user (``setpriv``)
    in a folder it owns. Without the binaries a test FAILS when ``CI`` is set and is skipped
    otherwise. ``url`` is the cluster's ``postgres`` database (trust auth, TCP on 127.0.0.1).
    """

    def __init__(self) -> None:
        import shutil
        import socket
        import tempfile

        self._need_binaries()
        # its own folder under the system's temporary one: the postgres user must reach it, and
        # pytest's tmp_path sits in a folder only root may enter
        self.root = tempfile.mkdtemp(prefix="chachaml-pg-")
        self.data = os.path.join(self.root, "data")
        self._as: list[str] = []
        if os.geteuid() == 0:
            import pwd

            pw = pwd.getpwnam("postgres")
            shutil.chown(self.root, pw.pw_uid, pw.pw_gid)
            self._as = ["setpriv", f"--reuid={pw.pw_uid}", f"--regid={pw.pw_gid}", "--clear-groups"]
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        self._run("initdb", "-D", self.data, "-U", "postgres", "-A", "trust", "--no-sync", "-E", "UTF8")

    @staticmethod
    def _need_binaries() -> None:
        if os.path.exists(os.path.join(PG_BIN, "pg_ctl")):
            return
        why = f"the PostgreSQL server binaries are not in {PG_BIN} (set CHACHAML_TEST_PG_BIN)"
        if os.environ.get("CI"):
            pytest.fail(f"{why}; CI must run the PostgreSQL fault tests")
        pytest.skip(why)

    def _run(self, tool: str, *args: str) -> None:
        import subprocess

        cmd = [*self._as, os.path.join(PG_BIN, tool), *args]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=_START_S * 2, cwd=self.root)
        if proc.returncode != 0:
            raise AssertionError(f"{tool} failed ({proc.returncode}): {proc.stdout}{proc.stderr}")

    def _ctl(self, action: str, *extra: str) -> None:
        opts = f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={self.root}"
        opts += " -c fsync=off"  # a throwaway cluster: durability across a power cut is not tested
        log = os.path.join(self.root, "log")
        self._run(
            "pg_ctl", action, "-D", self.data, "-l", log, "-w", "-t", str(int(_START_S)), "-o", opts, *extra
        )

    def start(self) -> PrivateCluster:
        self._ctl("start")
        return self

    def restart(self) -> None:
        """``pg_ctl restart -m fast``: every session is ended, the server comes back."""
        self._ctl("restart", "-m", "fast")

    def postmaster_pid(self) -> int:
        with open(os.path.join(self.data, "postmaster.pid"), encoding="utf-8") as f:
            return int(f.readline())

    def kill_hard(self) -> None:
        """``kill -9`` the postmaster and its processes (a crash), then wait until they are gone."""
        import signal
        import time

        pid = self.postmaster_pid()
        children = [int(p) for p in os.listdir("/proc") if p.isdigit() and _ppid(int(p)) == pid]
        for p in (pid, *children):
            with contextlib.suppress(ProcessLookupError):
                os.kill(p, signal.SIGKILL)
        deadline = time.monotonic() + _START_S
        while any(_ppid(p) in (pid, 1) for p in (pid, *children)):  # gone, zombie reaped
            if time.monotonic() > deadline:
                raise AssertionError("the killed PostgreSQL processes did not go away")
            time.sleep(0.05)

    def stop(self) -> None:
        """Stop the cluster (if it runs) and delete its files."""
        import shutil

        with contextlib.suppress(AssertionError):
            self._ctl("stop", "-m", "immediate")
        shutil.rmtree(self.root, ignore_errors=True)


def _ppid(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8") as f:
            return int(f.read().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return -1


@contextmanager
def private_cluster() -> Iterator[PrivateCluster]:
    """A started ``PrivateCluster``, stopped and deleted on exit."""
    cluster = PrivateCluster()
    try:
        cluster.start()
    except BaseException:
        cluster.stop()
        raise
    try:
        yield cluster
    finally:
        cluster.stop()
