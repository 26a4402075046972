"""The core benchmark script runs and reports every figure (timings are never asserted here)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_core.py"

FIGURES = [
    "log_metric (default)",
    "log_metrics, 10 keys (default)",
    "log_metric (batched)",
    "import chachaml",
    "first use (store, run, 1 point)",
    "another process sees it (sqlite3)",
    "another process sees it (runs())",
    "another process sees it (metric_history)",
    "1,000 runs (10 params, 5 metrics)",
    "memory, 50k points (batched)",
    "memory, 5k points (default)",
    "metric_history, 10k points",
    "runs(where=...), 100 runs",
]


@pytest.mark.slow
def test_quick_benchmark_prints_every_figure_with_a_verdict_and_writes_only_to_its_folder(
    tmp_path: Path,
) -> None:
    work, dbs = tmp_path / "work", tmp_path / "dbs"
    work.mkdir()
    dbs.mkdir()
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--dir", str(dbs)],
        cwd=work,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    for label in FIGURES:
        matching = [line for line in lines if line.startswith(label)]
        assert len(matching) == 1, f"figure {label!r} missing or repeated in:\n{proc.stdout}"
        assert re.search(r"\s(PASS|FAIL|info)(\s|$)", matching[0]), matching[0]
    for line in lines:  # issue 12's targets, SPEC section 6's limit shown next to them
        if line.startswith("log_metric ("):
            assert re.search(r"floor\s+\d+\.\d+ µs\s+ratio\s+\d+\.\d+\s+target <=(0\.25|1\.0)", line), line
            assert re.search(r"until in SQLite \d+\.\d+ µs/\w+; SPEC limit <=2\.0: (met|missed)", line), line
        if line.startswith("log_metrics, 10 keys"):
            assert re.search(r"ratio\s+\d+\.\d+\s+target <=0\.4", line), line
        if line.startswith(("metric_history", "runs(where")):
            assert re.search(
                r"ms/\w+\s+floor\s+\d+\.\d+ ms\s+ratio\s+\d+\.\d+\s+target <=(1\.5|2\.0)", line
            ), line
        if line.startswith(("import chachaml", "first use")):
            assert "target <=15 ms" in line, line
    assert re.search(r"^summary: \d+ PASS, \d+ FAIL", proc.stdout, re.MULTILINE), proc.stdout
    assert list(work.iterdir()) == [], "the benchmark wrote outside its --dir"
    assert any(p.suffix == ".db" for p in dbs.iterdir())
