"""A run started with a bare ``Client(...)`` has the lifecycle of ``chachaml.start_run`` (SPEC
sections 3 and 8: at interpreter exit every still-open run of the process is ended; a live
run's heartbeat is refreshed). Real interpreters, real SQLite files."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from chachaml import _process
from chachaml.client import Client

pytestmark = pytest.mark.slow

TIMEOUT_S = 120.0


def run_script(tmp_path: Path, body: str) -> tuple[subprocess.CompletedProcess[str], str]:
    """Run a script that opens ``Client("runs.db")`` as ``c`` and prints its run's id last."""
    source = "import sys\nfrom chachaml.client import Client\nc = Client('runs.db')\n" + textwrap.dedent(body)
    (tmp_path / "script.py").write_text(source)
    proc = subprocess.run(
        [sys.executable, "script.py"],
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        cwd=tmp_path,
        check=False,
    )
    lines = proc.stdout.split()
    assert lines, proc.stderr[-2000:]
    return proc, lines[-1]


@pytest.mark.parametrize(
    ("ending", "status", "error_type"),
    [
        ("pass", "completed", None),
        ("sys.exit(0)", "completed", None),
        ("raise RuntimeError('disk full')", "failed", "RuntimeError"),
        ("sys.exit(3)", "failed", "SystemExit"),
        ("raise KeyboardInterrupt", "killed", "KeyboardInterrupt"),
    ],
)
def test_a_client_run_left_open_is_ended_at_exit_with_the_process_outcome(
    tmp_path: Path, ending: str, status: str, error_type: str | None
) -> None:
    proc, run_id = run_script(
        tmp_path,
        f"""
        run = c.start_run("left open")
        c.log_metric("loss", 0.5, run=run)
        print(run.id, flush=True)
        {ending}
        """,
    )
    with Client(tmp_path / "runs.db") as reader:
        run = reader.get_run(run_id)
    assert run.status == status, (run.status, proc.stderr[-2000:])
    assert (run.error or {}).get("type") == error_type
    assert run.metrics == {"loss": 0.5}


def test_a_client_run_ended_by_the_client_keeps_its_status_and_a_resumed_one_is_owned_again(
    tmp_path: Path,
) -> None:
    _, run_id = run_script(
        tmp_path,
        """
        first = c.start_run("ended")
        c.end_run(first, "killed")
        again = c.start_run(run_id=first.id)  # resumed: running again, owned by this process
        print(again.id, flush=True)
        raise ValueError("after resuming")
        """,
    )
    with Client(tmp_path / "runs.db") as reader:
        run = reader.get_run(run_id)
    assert run.status == "failed" and run.error is not None and run.error["message"] == "after resuming"


def test_a_live_client_run_gets_its_heartbeat_refreshed(tmp_path: Path) -> None:
    proc, run_id = run_script(
        tmp_path,
        """
        import sqlite3, time
        from chachaml import _owned, _process
        _owned.HEARTBEAT_S = 0.05  # before the first run starts the heartbeat thread
        run = c.start_run("alive")
        first = sqlite3.connect("runs.db").execute("SELECT heartbeat FROM runs").fetchone()[0]
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            beat = sqlite3.connect("runs.db").execute("SELECT heartbeat FROM runs").fetchone()[0]
            if beat is not None and (first is None or beat > first):
                break
            time.sleep(0.02)
        else:
            raise SystemExit("the heartbeat was never refreshed")
        c.end_run(run)
        assert run.id not in _process.state.open_runs, "an ended run is no longer beaten or ended at exit"
        print(run.id, flush=True)
        """,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    with sqlite3.connect(tmp_path / "runs.db") as conn:
        (beat, start) = conn.execute(
            "SELECT heartbeat, start_time FROM runs WHERE id = ?", (run_id,)
        ).fetchone()
    assert beat > start


def test_in_this_process_a_client_run_is_registered_until_the_client_ends_it(tmp_path: Path) -> None:
    with Client(tmp_path / "runs.db") as c:
        run = c.start_run("x")
        assert run.id in _process.state.open_runs
        c.end_run(run.id)
        assert run.id not in _process.state.open_runs
