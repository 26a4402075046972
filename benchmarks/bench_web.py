"""Web figures of SPEC section 6 through a real ``chachaml ui`` process, next to floors.

    python benchmarks/bench_web.py                      # N=60,000 runs, a 1,000,000-point history
    python benchmarks/bench_web.py --runs 100000        # the SPEC's N (generation takes long)
    python benchmarks/bench_web.py --quick              # small N, for a smoke test

Figures (warm medians of ``--reps`` requests, each a new HTTP connection as a browser's fetch):

* ``GET /api/v1/runs`` first page (100 runs, newest first), the first page ordered by a metric,
  and a page of 100 at offset 50,000 (when N > 50,100). Floor: the same ``Client.runs()`` call
  in this process, so the ratio is what HTTP, routing and JSON add. Target: 50 ms.
* ``GET /api/v1/runs/{id}/metrics/{key}?max_points=1000`` on a 1,000,000-point history, whole
  and zoomed to a tenth (``after_step``/``before_step``). Floor: plain ``sqlite3`` reading
  1,000 (step, value, timestamp) rows by the same index, as many rows as the answer holds
  (the store reads the min/max pyramid, docs/adr/0025); the time to read every row is printed
  next to it. Target: 100 ms.

The databases are generated through the public API (``batched()``) and cached in ``--cache-dir``.
N runs x 10 params x 20 metric keys x ``--steps`` steps. Exit code 0 even when a target is
missed: this is a report, not a test.
"""

from __future__ import annotations

import argparse
import http.client
import json
import math
import os
import platform
import queue
import random
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from typing import Any

import chachaml
from chachaml.client import Client

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _floor import Report

METRIC_KEYS = ["acc", "loss"] + [f"m{i:02d}" for i in range(18)]
HISTORY_POINTS = 1_000_000
PAGE_TARGET_MS = 50.0
HISTORY_TARGET_MS = 100.0


def generate_runs(path: str, runs: int, steps: int) -> None:
    """N runs through the public API; a ``.done`` file marks a complete database."""
    if os.path.exists(path + ".done"):
        return
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(path + suffix):
            os.remove(path + suffix)
    rng = random.Random(9)
    t0 = time.perf_counter()
    with chachaml.with_store(path):
        for i in range(runs):
            with chachaml.with_run(f"run-{i:06d}", experiment=f"exp-{i % 5}"):
                chachaml.log_params(
                    {
                        "lr": 10 ** rng.uniform(-4, -1),
                        "batch_size": rng.choice([16, 32, 64, 128]),
                        "optimizer": rng.choice(["adam", "sgd"]),
                        "dropout": round(rng.uniform(0, 0.5), 3),
                        "layers": rng.randint(2, 12),
                        "seed": i,
                        "wd": rng.choice([0.0, 1e-4]),
                        "model": rng.choice(["resnet", "vit", "mlp"]),
                        "momentum": 0.9,
                        "warmup": rng.choice([True, False]),
                    }
                )
                with chachaml.batched():
                    for step in range(steps):
                        chachaml.log_metrics({k: rng.random() for k in METRIC_KEYS}, step=step)
            if i % max(1, runs // 10) == 0:
                print(f"  generated {i + 1}/{runs} runs ({time.perf_counter() - t0:.0f} s)", file=sys.stderr)
        chachaml.runs(limit=1)
    with open(path + ".done", "w") as fh:
        json.dump({"runs": runs, "steps": steps, "seconds": round(time.perf_counter() - t0, 1)}, fh)


def generate_history(path: str, points: int) -> str:
    """One run with one metric of ``points`` points (a noisy curve with spikes); returns its id."""
    done = path + ".done"
    if os.path.exists(done):
        with open(done) as fh:
            return str(json.load(fh)["run"])
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(path + suffix):
            os.remove(path + suffix)
    rng = random.Random(3)
    with (
        chachaml.with_store(path),
        chachaml.with_run("long", experiment="history") as run,
        chachaml.batched(),
    ):
        for step in range(points):
            v = math.exp(-step / points * 5) + rng.gauss(0, 0.01)
            chachaml.log_metric("loss", v * (20 if step % 99_991 == 0 else 1), step=step)
    with open(done, "w") as fh:
        json.dump({"run": run.id}, fh)
    return run.id


class UiServer:
    """``chachaml ui --port 0 --no-browser`` over a database, stopped with Ctrl-C."""

    def __init__(self, store: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "chachaml", "ui", "--store", store, "--port", "0", "--no-browser"],
            stdout=subprocess.PIPE,
            text=True,
        )
        lines: queue.Queue[str] = queue.Queue()
        assert self.proc.stdout is not None
        out = self.proc.stdout
        threading.Thread(target=lambda: lines.put(out.readline()), daemon=True).start()
        first = lines.get(timeout=120)
        self.port = int(first.strip().rstrip("/").rsplit(":", 1)[1])

    def get(self, path: str) -> bytes:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
        try:
            conn.request("GET", path)
            resp = conn.getresponse()
            body = resp.read()
            if resp.status != 200:
                raise RuntimeError(f"{path}: {resp.status} {body[:200]!r}")
            return body
        finally:
            conn.close()

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGINT)
        self.proc.wait(timeout=60)


def warm_median(fn: Callable[[], Any], reps: int) -> float:
    """Median seconds of ``reps`` calls after one untimed call."""
    fn()
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def line(report: Report, label: str, ours: float, floor: float, target_ms: float, what: str) -> None:
    ratio = ours / floor
    body = (
        f"{ours * 1e3:8.2f} ms  floor {floor * 1e3:7.2f} ms  ratio {ratio:5.2f}  target <{target_ms:.0f} ms"
    )
    report.line(label, body, ours * 1e3 < target_ms, f"({what})")


def runs_figures(args: argparse.Namespace, report: Report) -> None:
    """The pages of ``GET /api/v1/runs`` at N runs, next to ``Client.runs()`` in-process."""
    runs_db = os.path.join(args.cache_dir, f"web-{args.runs}runs-{args.steps}steps.db")
    generate_runs(runs_db, args.runs, args.steps)
    print(f"N={args.runs:,} runs x 10 params x {len(METRIC_KEYS)} metrics x {args.steps} steps")
    server = UiServer(runs_db)
    try:
        with Client(runs_db) as client:
            pages: list[tuple[str, str, Callable[[], Any]]] = [
                ("GET /runs first page (100)", "/api/v1/runs?limit=100", lambda: client.runs(limit=101)),
                (
                    "GET /runs ordered by a metric",
                    "/api/v1/runs?limit=100&order_by=metrics.acc%20desc",
                    lambda: client.runs(limit=101, order_by="metrics.acc desc"),
                ),
            ]
            if args.runs > 50_100:
                pages.append(
                    (
                        "GET /runs page at offset 50,000",
                        "/api/v1/runs?limit=100&offset=50000",
                        lambda: client.runs(limit=101, offset=50_000),
                    )
                )
                pages.append(
                    (
                        "GET /runs by a metric at offset 50,000",
                        "/api/v1/runs?limit=100&offset=50000&order_by=metrics.acc%20desc",
                        lambda: client.runs(limit=101, offset=50_000, order_by="metrics.acc desc"),
                    )
                )
            for label, url, floor_fn in pages:
                ours = warm_median(lambda url=url: server.get(url), args.reps)
                floor = warm_median(floor_fn, args.reps)
                n = len(json.loads(server.get(url))["runs"])
                line(report, label, ours, floor, PAGE_TARGET_MS, f"{n} runs; floor: Client.runs() in-process")
    finally:
        server.stop()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=60_000, help="N runs (default 60,000)")
    ap.add_argument("--steps", type=int, default=5, help="steps per metric key (default 5)")
    ap.add_argument("--points", type=int, default=HISTORY_POINTS, help="points in the long history")
    ap.add_argument("--reps", type=int, default=15, help="timed requests per figure (default 15)")
    ap.add_argument("--quick", action="store_true", help="N=2,000 and 100,000 points (a smoke run)")
    ap.add_argument("--no-runs", action="store_true", help="only the history figures")
    ap.add_argument(
        "--cache-dir",
        default=os.path.join(tempfile.gettempdir(), "chachaml-bench-web"),
        help="where generated databases are kept between runs",
    )
    args = ap.parse_args()
    if args.quick:  # a smoke run; explicit --runs/--points/--reps below 2,000/100,000/5 still win
        args.runs, args.points, args.reps = (
            min(args.runs, 2_000),
            min(args.points, 100_000),
            min(args.reps, 5),
        )
    os.makedirs(args.cache_dir, exist_ok=True)
    print(
        f"chachaml {chachaml.__version__}, Python {platform.python_version()}, "
        f"SQLite {sqlite3.sqlite_version}, {platform.machine()} {os.cpu_count()} CPUs"
    )
    report = Report()

    if not args.no_runs:
        runs_figures(args, report)
    hist_db = os.path.join(args.cache_dir, f"web-history-{args.points}.db")
    run_id = generate_history(hist_db, args.points)
    server = UiServer(hist_db)
    try:
        conn = sqlite3.connect(hist_db)

        def floor_read() -> None:  # as many rows as the answer holds, by the same index
            conn.execute(
                "SELECT step, value, timestamp FROM metrics WHERE run_id = ? AND key = ? "
                "ORDER BY step LIMIT 1000",
                (run_id, "loss"),
            ).fetchall()

        def every_row() -> None:  # what a server without a store-level downsample reads
            conn.execute(
                "SELECT step, value, timestamp FROM metrics WHERE run_id = ? AND key = ? ORDER BY step",
                (run_id, "loss"),
            ).fetchall()

        every = warm_median(every_row, max(3, args.reps // 5))
        zoom = f"&after_step={args.points // 3}&before_step={args.points // 3 + args.points // 10}"
        for label, url in [
            (f"GET history {args.points:,} pts, max_points=1000", ""),
            (f"GET history window (10%) of {args.points:,} pts, max_points=1000", zoom),
        ]:
            url = f"/api/v1/runs/{run_id}/metrics/loss?max_points=1000{url}"
            ours = warm_median(lambda url=url: server.get(url), args.reps)
            floor = warm_median(floor_read, args.reps)
            doc = json.loads(server.get(url))
            line(
                report,
                label,
                ours,
                floor,
                HISTORY_TARGET_MS,
                f"{len(doc['points'])} points of {doc['count']:,}; floor: sqlite3 reading 1,000 rows; "
                f"reading all {args.points:,} rows takes {every * 1e3:.0f} ms",
            )
        conn.close()
    finally:
        server.stop()
    report.summary()
    return 0


if __name__ == "__main__":
    sys.exit(main())
