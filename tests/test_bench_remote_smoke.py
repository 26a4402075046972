"""benchmarks/bench_remote.py runs end to end and prints every figure with a verdict (no timing asserted)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_remote.py"


@pytest.mark.slow
def test_bench_remote_quick_prints_every_figure(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHACHAML_")}
    env["XDG_STATE_HOME"] = str(tmp_path)
    proc = subprocess.run([sys.executable, str(SCRIPT), "--quick"], capture_output=True, text=True,
                          timeout=300, env=env)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    for label in ("log_metric, remote (spooled)", "log_metric, local SQLite file", "server ingest",
                  "same batches straight to store", "end to end"):  # fmt: skip
        assert label in out, out
    verdicts = [line.split()[-1] for line in out.splitlines() if "target" in line]
    assert len(verdicts) == 2 and set(verdicts) <= {"OK", "MISSED"}, out
