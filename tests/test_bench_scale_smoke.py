"""``benchmarks/bench_scale.py --quick`` runs and prints every figure with its floor (no timing
is asserted: the figures are a report)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_scale.py"
FIGURE = re.compile(r"ms\s+floor\s+[\d.]+ ms\s+ratio\s+[\d.]+\s+\(target \d+ ms: (ok|OVER)\)\s+CPU")


@pytest.mark.slow
def test_quick_scale_benchmark_prints_every_figure_with_floor_and_cpu_time(tmp_path: Path) -> None:
    args = ["--quick", "--runs", "300", "--long-points", "2000", "--cache-dir", str(tmp_path)]
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=600, check=False
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    figures = [line for line in lines if line.startswith("  runs(") or "metric_history" in line]
    assert len(figures) == 11, proc.stdout
    for line in figures:
        assert FIGURE.search(line), line
    assert "opened and migrated from version 4" in proc.stdout
    assert "-> 2,000 points" in proc.stdout
