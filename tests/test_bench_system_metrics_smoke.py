"""The system-metrics benchmark runs and reports every figure (timings are never asserted here)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_system_metrics.py"
FIGURES = [
    "read (Probe.sample)",
    "read + write (Sampler tick)",
    "process CPU per sample",
    "% of one core at 10 s",
]


@pytest.mark.slow
def test_quick_benchmark_prints_every_figure_and_writes_only_to_its_folder(tmp_path: Path) -> None:
    work, dbs = tmp_path / "work", tmp_path / "dbs"
    work.mkdir()
    dbs.mkdir()
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--dir", str(dbs)],
        cwd=work,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    for label in FIGURES:
        matching = [line for line in lines if line.startswith(label)]
        assert len(matching) == 1, f"figure {label!r} missing or repeated in:\n{proc.stdout}"
        assert re.search(r"\d+\.\d+ (ms CPU/sample|%)", matching[0]), matching[0]
        assert re.search(r"\s(PASS|FAIL|info)(\s|$)", matching[0]), matching[0]
    assert re.search(r"^summary: \d+ PASS, \d+ FAIL", proc.stdout, re.MULTILINE), proc.stdout
    assert list(work.iterdir()) == [], "the benchmark wrote outside its --dir"
    assert list(dbs.iterdir()) == [], "the benchmark leaves nothing behind"
