"""``python -m chachaml.demo``: the README's first command must work from a clean install."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import chachaml

pytestmark = pytest.mark.slow


def run_demo(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHACHAML_")}
    return subprocess.run(
        [sys.executable, "-m", "chachaml.demo", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_demo_logs_runs_prints_them_and_keeps_the_database(tmp_path: Path) -> None:
    folder = tmp_path / "demo"
    done = run_demo(tmp_path, str(folder))

    assert done.returncode == 0, done.stderr
    out = done.stdout
    for name in ("baseline", "tuned", "evaluate", "diverged"):
        assert name in out
    assert "RunList(4 runs)" in out
    assert "completed" in out
    assert "failed" in out
    assert "FloatingPointError: loss is NaN at step 0" in out
    db = folder / "chachaml.db"
    assert db.is_file()
    assert f"Database file: {db.resolve()}" in out
    assert not (tmp_path / "chachaml.db").exists()  # nothing written to the working directory


def test_demo_database_holds_what_the_output_claims(tmp_path: Path) -> None:
    folder = tmp_path / "demo"
    assert run_demo(tmp_path, str(folder)).returncode == 0

    with chachaml.with_store(folder / "chachaml.db"):
        by_name = {r.name: r for r in chachaml.runs()}
        assert {n: r.status for n, r in by_name.items()} == {
            "baseline": "completed",
            "tuned": "completed",
            "evaluate": "completed",
            "diverged": "failed",
        }
        assert by_name["evaluate"].parent_id == by_name["tuned"].id
        assert by_name["baseline"].parent_id is None
        assert [m.step for m in chachaml.metric_history(by_name["tuned"].id, "loss")] == [0, 1, 2, 3, 4]
        assert by_name["diverged"].error is not None
        assert by_name["diverged"].error["type"] == "FloatingPointError"


def test_demo_without_a_folder_uses_a_fresh_temporary_one(tmp_path: Path) -> None:
    done = run_demo(tmp_path)

    assert done.returncode == 0, done.stderr
    match = re.search(r"^Database file: (.+)$", done.stdout, re.MULTILINE)
    assert match is not None, done.stdout
    db = Path(match.group(1))
    try:
        assert db.is_file()
        assert db.parent.name.startswith("chachaml-demo-")
        assert not (tmp_path / "chachaml.db").exists()
    finally:
        shutil.rmtree(db.parent, ignore_errors=True)
