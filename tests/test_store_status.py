"""Honest run status as the store reports it (issue 7): killed runs' end times, writers in other
PID namespaces, and the metric summaries a finished script leaves for plain SQL.

Children are real interpreters; a killed one is killed with SIGKILL (docs/adr/0006).
"""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import chachaml
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
