"""What survives a process that is killed: committed points, and an honest run status.

Children are real interpreters (``/tmp/venv/bin/python``-style ``sys.executable``) killed with
SIGKILL; rows that claim another host are set up with the store and plain SQL, which is state,
not a mock (SPEC section 8, docs/adr/0006-dead-run-detection.md).
"""

from __future__ import annotations

import os
import random
import signal
import socket
import sqlite3
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

import chachaml
from chachaml.store.base import NewRun, Owner

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc"),
]

WAIT_S = 60.0
MINUTE_MS = 60_000

LOGGER = """
import os, sys
import chachaml

db, marker, run_file = sys.argv[1:4]
chachaml.use_store(db)
run = chachaml.start_run("victim")
with open(run_file + ".tmp", "w") as fh:
    fh.write(run.id)
os.replace(run_file + ".tmp", run_file)
fd = os.open(marker, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
for i in range(10_000_000):
    chachaml.log_metric("loss", i / 2)
    os.write(fd, b"%d\\n" % i)  # written only after log_metric returned
"""

SLEEPER = """
import os, sys, time
import chachaml

db, run_file = sys.argv[1:3]
chachaml.use_store(db)
run = chachaml.start_run("sleeper")
chachaml.log_metric("loss", 0.5)
with open(run_file + ".tmp", "w") as fh:
    fh.write(run.id)
os.replace(run_file + ".tmp", run_file)
time.sleep(600)
"""


def _wait_for(what: str, predicate: Callable[[], bool]) -> None:
    """Poll until ``predicate()`` holds; fail (not hang) if it never does."""
    deadline = time.monotonic() + WAIT_S
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.005)


@contextmanager
def _child(tmp_path: Path, source: str, *args: str) -> Iterator[subprocess.Popen[bytes]]:
    script = tmp_path / "child.py"
    script.write_text(textwrap.dedent(source))
    proc = subprocess.Popen(
        [sys.executable, str(script), *args], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(WAIT_S)
        if proc.stderr is not None:
            proc.stderr.close()


def _marked_steps(marker: Path) -> list[int]:
    """The steps the child confirmed; a line still being written (no newline) is ignored."""
    data = marker.read_bytes() if marker.exists() else b""
    return [int(line) for line in data.split(b"\n")[:-1]]


def _kill_and_wait(proc: subprocess.Popen[bytes], *, reap: bool) -> None:
    os.kill(proc.pid, signal.SIGKILL)
    if reap:
        proc.wait(WAIT_S)
        assert not Path(f"/proc/{proc.pid}").exists() or _state(proc.pid) != "Z"
    else:
        # Wait for it to die but leave it a zombie: the pid still exists in /proc.
        os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOWAIT)
        assert _state(proc.pid) == "Z"


def _state(pid: int) -> str:
    data = Path(f"/proc/{pid}/stat").read_text()
    return data[data.rfind(")") + 2 :].split()[0]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_every_metric_whose_call_returned_survives_sigkill(tmp_path: Path, seed: int) -> None:
    db, marker, run_file = tmp_path / "runs.db", tmp_path / "marker", tmp_path / "run_id"
    kill_after = random.Random(seed).randint(1, 1500)

    with _child(tmp_path, LOGGER, str(db), str(marker), str(run_file)) as proc:
        _wait_for(f"{kill_after} logged points", lambda: len(_marked_steps(marker)) >= kill_after)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(WAIT_S)
        assert proc.returncode == -signal.SIGKILL

    confirmed = _marked_steps(marker)
    assert len(confirmed) >= kill_after
    assert confirmed == list(range(len(confirmed)))
    with chachaml.with_store(db):
        run_id = run_file.read_text()
        history = chachaml.metric_history(run_id, "loss")
        run = chachaml.get_run(run_id)
    stored = {m.step: m.value for m in history}
    missing = [i for i in confirmed if stored.get(i) != i / 2]
    assert missing == [], f"seed {seed}: confirmed points lost: {missing[:10]}"
    # At most the one point in flight when the kill landed is stored without its marker.
    assert len(history) - len(confirmed) in (0, 1)
    assert [m.step for m in history] == list(range(len(history)))
    assert run.status == "killed"
    assert conn_integrity(db) == "ok"


def conn_integrity(db: Path) -> str:
    conn = sqlite3.connect(db)
    try:
        return str(conn.execute("PRAGMA integrity_check").fetchone()[0])
    finally:
        conn.close()


@pytest.mark.parametrize("reap", [True, False], ids=["reaped", "zombie"])
def test_a_run_whose_process_was_killed_is_reported_killed_on_the_next_read(
    tmp_path: Path, reap: bool
) -> None:
    db, run_file = tmp_path / "runs.db", tmp_path / "run_id"
    with _child(tmp_path, SLEEPER, str(db), str(run_file)) as proc:
        _wait_for("the child's run", run_file.exists)
        run_id = run_file.read_text()
        with chachaml.with_store(db):
            assert chachaml.get_run(run_id).status == "running"

        _kill_and_wait(proc, reap=reap)

        with chachaml.with_store(db):
            run = chachaml.get_run(run_id)
            assert run.status == "killed"
            assert run.error is not None and run.error["type"] == "ProcessDied"
            assert str(proc.pid) in run.error["message"]
            assert run.end_time is not None and run.end_time >= run.start_time
            assert run.metrics == {"loss": 0.5}
            assert [r.id for r in chachaml.runs(status="running")] == []
            assert [r.id for r in chachaml.runs(status="killed")] == [run_id]


def test_a_run_whose_process_is_alive_stays_running(tmp_path: Path) -> None:
    db, run_file = tmp_path / "runs.db", tmp_path / "run_id"
    with _child(tmp_path, SLEEPER, str(db), str(run_file)) as proc:
        _wait_for("the child's run", run_file.exists)
        run_id = run_file.read_text()
        for _ in range(3):  # every read re-checks liveness; none may reap a live run
            with chachaml.with_store(db):
                assert chachaml.get_run(run_id).status == "running"
                assert [r.id for r in chachaml.runs(status="running")] == [run_id]
        assert proc.poll() is None
        conn = sqlite3.connect(db)
        try:
            assert conn.execute("SELECT status FROM runs WHERE id = ?", (run_id,)).fetchone() == ("running",)
        finally:
            conn.close()


def _insert_run(db: Path, owner: Owner, start_time: int, heartbeat: int | None = None) -> str:
    """Write a running run row as another process would have (state setup through the store)."""
    run_id = uuid.uuid4().hex
    store = chachaml.use_store(db)
    store.create_run(NewRun(id=run_id, experiment="remote", start_time=start_time, owner=owner))
    if heartbeat is not None:
        store.heartbeat([run_id], heartbeat)
    return run_id


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _other_host() -> str:
    host = f"not-{socket.gethostname()}"
    assert host != socket.gethostname()
    return host


def test_a_run_on_another_host_with_a_stale_heartbeat_is_reported_killed(tmp_path: Path) -> None:
    db = tmp_path / "runs.db"
    now = _now_ms()
    owner = Owner(host=_other_host(), pid=os.getpid(), proc_start="some-boot:12345")
    run_id = _insert_run(db, owner, start_time=now - 30 * MINUTE_MS, heartbeat=now - 6 * MINUTE_MS)

    run = chachaml.get_run(run_id)

    assert run.status == "killed"
    assert run.end_time == now - 6 * MINUTE_MS  # the last sign of life
    assert run.error is not None and owner.host in run.error["message"]


def test_a_run_on_another_host_with_a_fresh_heartbeat_stays_running(tmp_path: Path) -> None:
    db = tmp_path / "runs.db"
    now = _now_ms()
    # The pid does not exist here; on another host that must not matter, only the heartbeat does.
    owner = Owner(host=_other_host(), pid=2**22 + 17, proc_start="some-boot:12345")
    run_id = _insert_run(db, owner, start_time=now - 30 * MINUTE_MS, heartbeat=now - MINUTE_MS // 2)

    assert chachaml.get_run(run_id).status == "running"
    assert chachaml.get_run(run_id).status == "running"


def test_a_run_on_another_host_with_a_heartbeat_set_raw_is_judged_by_its_age(tmp_path: Path) -> None:
    db = tmp_path / "runs.db"
    now = _now_ms()
    owner = Owner(host=_other_host(), pid=1234, proc_start="")
    stale = _insert_run(db, owner, start_time=now - 30 * MINUTE_MS)
    fresh = _insert_run(db, owner, start_time=now - 30 * MINUTE_MS)
    conn = sqlite3.connect(db)
    with conn:
        conn.execute("UPDATE runs SET heartbeat = ? WHERE id = ?", (now - 10 * MINUTE_MS, stale))
        conn.execute("UPDATE runs SET heartbeat = ? WHERE id = ?", (now - 2 * MINUTE_MS, fresh))
    conn.close()

    assert chachaml.get_run(stale).status == "killed"
    assert chachaml.get_run(fresh).status == "running"


def _this_process() -> Owner:
    boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    stat = Path("/proc/self/stat").read_text()
    ticks = stat[stat.rfind(")") + 2 :].split()[19]
    return Owner(host=socket.gethostname(), pid=os.getpid(), proc_start=f"{boot}:{ticks}")


def test_a_reused_pid_is_detected_as_dead_by_its_start_identity(tmp_path: Path) -> None:
    db = tmp_path / "runs.db"
    me = _this_process()
    boot, ticks = me.proc_start.rsplit(":", 1)
    # Same host, same (live) pid, but another process instance: the owner died, the pid was reused.
    impostor = Owner(host=me.host, pid=me.pid, proc_start=f"{boot}:{int(ticks) + 1}")
    reused = _insert_run(db, impostor, start_time=_now_ms())
    genuine = _insert_run(db, me, start_time=_now_ms())

    assert chachaml.get_run(reused).status == "killed"
    assert chachaml.get_run(genuine).status == "running"


def test_a_run_recorded_before_the_last_reboot_is_reported_killed(tmp_path: Path) -> None:
    db = tmp_path / "runs.db"
    me = _this_process()
    _, ticks = me.proc_start.rsplit(":", 1)
    before_reboot = Owner(host=me.host, pid=me.pid, proc_start=f"{uuid.uuid4()}:{ticks}")
    run_id = _insert_run(db, before_reboot, start_time=_now_ms())

    assert chachaml.get_run(run_id).status == "killed"
