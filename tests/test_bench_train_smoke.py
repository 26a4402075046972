"""The training-loop benchmark (issue 12) runs end to end and prints every mode (timings are never
asserted here: benchmarks are reports)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from _frameworks import need

pytestmark = [pytest.mark.frameworks, pytest.mark.slow]

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_train.py"


def test_quick_training_benchmark_prints_every_mode_against_the_baseline(tmp_path: Path) -> None:
    need("torch")
    work, dbs = tmp_path / "work", tmp_path / "dbs"
    work.mkdir()
    dbs.mkdir()
    proc = subprocess.run(
        [
            sys.executable,
            str(SCRIPT),
            "--quick",
            "--rows",
            "640",
            "--reps",
            "1",
            "--threads",
            "1",
            "--dir",
            str(dbs),
        ],
        cwd=work,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "10 steps x 20 metrics per epoch" in out, out
    assert re.search(r"^  no tracker\s+\d+\.\d+ s .*baseline$", out, re.MULTILINE), out
    for mode in ("log_metric x20", "log_metrics\\(20\\)"):
        assert re.search(
            rf"^  {mode}\s+\d+\.\d+ s  adds\s+[-+]\d+\.\d% .*target <2%  (PASS|FAIL)$", out, re.M
        ), out
    assert re.search(r"^  batched\(\)\s+\d+\.\d+ s  adds .*info$", out, re.MULTILINE), out
    assert list(work.iterdir()) == [], "the benchmark wrote outside its --dir"
    assert len(list(dbs.glob("*.db"))) == 1 + 3  # the warm-up's tracked run and one per tracked mode
