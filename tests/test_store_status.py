"""Honest run status as the store reports it (issue 7): killed runs' end times, writers in other
PID namespaces, and the metric summaries a finished script leaves for plain SQL.

Children are real interpreters; a killed one is killed with SIGKILL (docs/adr/0006).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

import chachaml
from chachaml.store.base import Owner
from test_durability import _child, _wait_for

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc"),
]

WAIT_S = 60.0

# Logs points for at least 200 ms of wall-clock time (the run's heartbeat stays at its start:
# the first beat comes after 60 s), then says so and waits to be killed.
BUSY_THEN_IDLE = """
import os, sys, time
import chachaml
from chachaml.store.base import Owner

db, run_file = sys.argv[1:3]
chachaml.use_store(db)
run = chachaml.start_run("busy")
i = 0
while chachaml._lifecycle.now_ms() - run.start_time < 200:
    chachaml.log_metric("loss", 1.0 / (i + 1))
    i += 1
chachaml.log_metric("loss", 0.0)
with open(run_file + ".tmp", "w") as fh:
    fh.write(run.id)
os.replace(run_file + ".tmp", run_file)
time.sleep(600)
"""


def test_a_killed_run_ends_at_its_last_logged_point_not_at_its_first_heartbeat(tmp_path: Path) -> None:
    db, run_file = tmp_path / "runs.db", tmp_path / "run_id"
    with _child(tmp_path, BUSY_THEN_IDLE, str(db), str(run_file)) as proc:
        _wait_for("the child's points", run_file.exists)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(WAIT_S)

    run_id = run_file.read_text()
    with chachaml.with_store(db):
        run = chachaml.get_run(run_id)
        last_point = max(p.timestamp for p in chachaml.metric_history(run_id, "loss"))
    assert run.status == "killed"
    assert last_point - run.start_time >= 200
    assert run.end_time == last_point  # the later of the last point and the heartbeat (its start)
    assert run.duration is not None and run.duration >= 200


# A script as users write them: one run in a block, one left open for the exit to end.
SCRIPT = """
import sys
import chachaml
from chachaml.store.base import Owner

chachaml.use_store(sys.argv[1])
with chachaml.with_run("block"):
    for i in range(5):
        chachaml.log_metric("loss", 1.0 / (i + 1))
chachaml.start_run("open-until-exit")
chachaml.log_metric("loss", 3.0)
chachaml.log_metric("loss", float("nan"))
chachaml.log_metric("loss", 2.0)
"""


def test_metric_summary_is_complete_for_plain_sql_after_a_script_ends(tmp_path: Path) -> None:
    db, script = tmp_path / "runs.db", tmp_path / "train.py"
    script.write_text(textwrap.dedent(SCRIPT))
    subprocess.run([sys.executable, str(script), str(db)], check=True, timeout=WAIT_S)

    conn = sqlite3.connect(db)  # no chachaml read in between: plain SQL only
    try:
        # The summary recipe of docs/schema.md, word for word.
        rows = conn.execute(
            "SELECT r.name, s.last_step, s.last_value, s.min, s.max, s.count "
            "FROM metric_summary AS s JOIN runs AS r ON r.id = s.run_id "
            "WHERE s.key = 'loss' ORDER BY r.name"
        ).fetchall()
        statuses = conn.execute("SELECT name, status FROM runs ORDER BY name").fetchall()
    finally:
        conn.close()
    assert statuses == [("block", "completed"), ("open-until-exit", "completed")]
    assert rows == [("block", 4, 0.2, 0.2, 1.0, 5), ("open-until-exit", 2, 2.0, 2.0, 3.0, 3)]


def test_closing_a_store_folds_what_it_logged(tmp_path: Path) -> None:
    db = tmp_path / "runs.db"
    with chachaml.with_store(db), chachaml.with_run("r"):
        chachaml.log_metric("acc", 0.5)
        chachaml.log_metric("acc", 0.75)
    store = chachaml.use_store(db)
    with chachaml.with_run("s"):
        chachaml.log_metric("acc", 0.25)
    store.close()
    conn = sqlite3.connect(db)
    try:
        summary = conn.execute("SELECT last_value, count FROM metric_summary ORDER BY count").fetchall()
    finally:
        conn.close()
    assert summary == [(0.25, 1), (0.75, 2)]


# Runs inside its own PID namespace (as in a container with host networking): starts a run, says
# so, waits for the test's go-ahead, then logs again and ends the run cleanly.
IN_NAMESPACE = """
import os, sys, time
import chachaml
from chachaml.store.base import Owner

db, run_file, go = sys.argv[1:4]
chachaml.use_store(db)
run = chachaml.start_run("contained")
chachaml.log_metric("loss", 1.0)
with open(run_file + ".tmp", "w") as fh:
    fh.write(run.id)
os.replace(run_file + ".tmp", run_file)
deadline = time.monotonic() + 60
while not os.path.exists(go) and time.monotonic() < deadline:
    time.sleep(0.005)
chachaml.log_metric("loss", 0.5)
chachaml.end_run()
"""


def _unshare_pid() -> list[str]:
    """The command prefix that runs a program in a new PID namespace, or skip if this host cannot."""
    unshare = shutil.which("unshare")
    if unshare is None:
        pytest.skip("needs util-linux unshare")
    cmd = [unshare, "--pid", "--fork", "--mount-proc"]
    probe = subprocess.run([*cmd, "true"], capture_output=True, timeout=WAIT_S, check=False)
    if probe.returncode != 0:
        pytest.skip(f"cannot create a PID namespace here (needs root): {probe.stderr.decode()[:200]}")
    return cmd


def test_a_live_run_in_another_pid_namespace_is_not_declared_killed(tmp_path: Path) -> None:
    prefix = _unshare_pid()
    db, run_file, go = tmp_path / "runs.db", tmp_path / "run_id", tmp_path / "go"
    script = tmp_path / "contained.py"
    script.write_text(textwrap.dedent(IN_NAMESPACE))
    proc = subprocess.Popen(
        [*prefix, sys.executable, str(script), str(db), str(run_file), str(go)], stderr=subprocess.PIPE
    )
    try:
        _wait_for("the contained run", run_file.exists)
        run_id = run_file.read_text()
        # The writer's pid means another process (or none) in this namespace: only the
        # heartbeat may judge it, and it is fresh.
        with chachaml.with_store(db):
            assert chachaml.get_run(run_id).status == "running"
            assert chachaml.runs(status="running").ids == [run_id]
        go.touch()
        _, err = proc.communicate(timeout=WAIT_S)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=WAIT_S)
    assert proc.returncode == 0, err.decode()  # its later log and end_run succeeded
    with chachaml.with_store(db):
        run = chachaml.get_run(run_id)
        assert run.status == "completed"
        assert [m.value for m in chachaml.metric_history(run_id, "loss")] == [1.0, 0.5]


def test_a_run_of_another_pid_namespace_is_judged_by_its_heartbeat(tmp_path: Path) -> None:
    from test_durability import MINUTE_MS, _insert_run, _now_ms, _this_process

    db = tmp_path / "runs.db"
    me = _this_process()
    boot, ticks = me.proc_start.rsplit(":", 1)
    # A pid that this namespace does not have: looked up here, it would read as dead at once.
    elsewhere = Owner(host=me.host, pid=2**22 + 7, proc_start=f"{boot}:{ticks}:1")
    fresh = _insert_run(db, elsewhere, start_time=_now_ms())
    stale = _insert_run(
        db, elsewhere, start_time=_now_ms() - 10 * MINUTE_MS, heartbeat=_now_ms() - 6 * MINUTE_MS
    )
    assert chachaml.get_run(fresh).status == "running"
    assert chachaml.get_run(stale).status == "killed"


# -- a database that cannot be written (issue 7, defect 7) -----------------------------------------
MAKE_DB = """
import os, sys
import chachaml

chachaml.use_store(sys.argv[1])
with chachaml.with_run("done"):
    chachaml.log_metric("loss", 1.0)
    chachaml.log_metric("loss", 0.5)
chachaml.runs()  # a read: folds "done" into the summary
chachaml.start_run("left-open")
chachaml.log_metric("loss", 2.0)
# Into SQLite before the folder turns read-only: a read-only reader cannot replay a dead
# process's metric journal (docs/adr/0023), the next writable open does.
chachaml.flush()
os._exit(0)  # no exit handling: the run stays running, its point unfolded
"""

READ_DB = """
import json, os, sys
import chachaml
from chachaml.errors import StoreError

chachaml.use_store(sys.argv[1])
out = {}
runs = chachaml.runs()
out["runs"] = [[r.name, r.status, r.metrics] for r in runs]
for r in runs:
    out[r.name] = [chachaml.get_run(r.id).name, [p.value for p in chachaml.metric_history(r.id, "loss")]]
try:
    chachaml.start_run("new")
except StoreError as exc:
    out["write"] = str(exc)
out["can_write"] = os.access(sys.argv[1], os.W_OK)  # the test is void if it could
print(json.dumps(out))
"""

EXPECTED_READ = {
    "runs": [["left-open", "running", {}], ["done", "completed", {"loss": 0.5}]],
    "left-open": ["left-open", [2.0]],
    "done": ["done", [1.0, 0.5]],
}


def _make_db(folder: Path) -> Path:
    folder.mkdir()
    db, script = folder / "runs.db", folder.parent / "make_db.py"
    script.write_text(textwrap.dedent(MAKE_DB))
    subprocess.run([sys.executable, str(script), str(db)], check=True, timeout=WAIT_S)
    return db


def _check_read(result: subprocess.CompletedProcess[str]) -> None:
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    write = out.pop("write")
    assert out.pop("can_write") is False
    assert out == EXPECTED_READ  # reads work; the fold and the reaping of dead runs are skipped
    assert "read-only" in write and "runs.db" in write


@pytest.fixture
def world_tmp() -> Iterator[Path]:
    """A folder other users can enter (pytest's own tmp_path is private to its user)."""
    folder = Path(tempfile.mkdtemp(prefix="chachaml-ro-"))
    folder.chmod(0o755)
    yield folder
    for path in (folder, *folder.rglob("*")):
        if path.is_dir():
            path.chmod(0o755)
    shutil.rmtree(folder)


def test_a_database_without_write_permission_can_be_read(world_tmp: Path) -> None:
    db = _make_db(world_tmp / "data")
    reader = world_tmp / "read_db.py"
    reader.write_text(textwrap.dedent(READ_DB))
    db.chmod(0o444)
    db.parent.chmod(0o555)  # nor can SQLite create its -shm and -wal files next to it
    # root ignores permissions: then the reader runs as the unprivileged user "nobody".
    setpriv = shutil.which("setpriv")
    if os.geteuid() == 0 and setpriv is None:
        pytest.skip("running as root, and util-linux setpriv is missing to drop privileges")
    drop = [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups"] if os.geteuid() == 0 else []
    try:
        result = subprocess.run(
            [*drop, sys.executable, str(reader), str(db)],  # type: ignore[list-item]
            capture_output=True,
            text=True,
            timeout=WAIT_S,
        )
    finally:
        db.parent.chmod(0o755)
    _check_read(result)


def test_a_database_on_a_read_only_mount_can_be_read(tmp_path: Path) -> None:
    unshare = shutil.which("unshare")
    if unshare is None or os.geteuid() != 0:
        pytest.skip("a read-only bind mount needs util-linux unshare and root")
    db = _make_db(tmp_path / "data")
    mounted = tmp_path / "ro"
    mounted.mkdir()
    reader = tmp_path / "read_db.py"
    reader.write_text(textwrap.dedent(READ_DB))
    # A private mount namespace: the mount disappears with the process, whatever happens.
    shell = 'mount --bind -o ro "$1" "$2" && exec "$3" "$4" "$2/runs.db"'
    result = subprocess.run(
        [
            unshare,
            "--mount",
            "sh",
            "-c",
            shell,
            "sh",
            str(db.parent),
            str(mounted),
            sys.executable,
            str(reader),
        ],
        capture_output=True,
        text=True,
        timeout=WAIT_S,
    )
    _check_read(result)
