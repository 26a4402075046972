"""benchmarks/bench_web.py runs end to end and prints every figure with a verdict (no timing asserted)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_web.py"


@pytest.mark.slow
def test_quick_web_benchmark_reports_each_figure(tmp_path: Path) -> None:
    proc = subprocess.run(
        [
            sys.executable,
            str(SCRIPT),
            "--quick",
            "--reps",
            "2",
            "--runs",
            "300",
            "--points",
            "5000",
            "--cache-dir",
            str(tmp_path),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    for label in (
        "GET /runs first page (100)",
        "GET /runs ordered by a metric",
        "GET history 5,000 pts",
        "GET history window (10%) of 5,000 pts",
    ):
        lines = [line for line in proc.stdout.splitlines() if line.startswith(label)]
        assert len(lines) == 1, proc.stdout
        assert re.search(r"floor\s+\d+\.\d+ ms\s+ratio\s+\d+\.\d+\s+target <\d+ ms\s+(PASS|FAIL)", lines[0])
    assert re.search(r"^summary: \d+ PASS, \d+ FAIL", proc.stdout, re.MULTILINE)
