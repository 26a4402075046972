"""Read-path figures of SPEC section 6 / issue 3, on a generated database of N runs.

    python benchmarks/bench_query.py                         # N=1000: 1000 x 20 metrics x 1000 steps
    python benchmarks/bench_query.py --runs 100 1000 10000   # how the figures grow with N
    python benchmarks/bench_query.py --runs 10000 --steps 100 --cache-dir /big/disk

The database is generated through the public API (``log_params`` + ``batched()`` +
``log_metrics``): N runs x 10 params x 20 metrics x ``--steps`` steps (1,000 runs = 20M points,
about 2.5 GB). It is cached in ``--cache-dir`` (one file per shape; by default in the system's
temporary folder), so re-runs only measure.
Each figure is the median of ``--reps`` warm repetitions (one untimed call first), next to its
target (50 ms; a metric's history 20 ms). The exit code is 0 even when a target is missed: this
is a report, not a test.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

import chachaml

PARAMS = 10
METRICS = 20
METRIC_KEYS = ["acc", "loss"] + [f"m{i:02d}" for i in range(METRICS - 2)]
TARGET_MS = 50.0
HISTORY_TARGET_MS = 20.0


def db_path(cache_dir: str, runs: int, steps: int) -> str:
    return os.path.join(cache_dir, f"bench-query-{runs}runs-{steps}steps.db")


def generate(path: str, runs: int, steps: int) -> None:
    """Fill ``path`` through the public API, in batched mode; a ``.done`` file marks completion."""
    done = path + ".done"
    if os.path.exists(done):
        return
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(path + suffix):
            os.remove(path + suffix)  # an interrupted generation: start over
    rng = random.Random(20_240_601)
    t0 = time.perf_counter()
    with chachaml.with_store(path):
        for i in range(runs):
            with chachaml.with_run(
                f"run-{i:05d}", experiment=f"exp-{i % 5}", tags={"team": rng.choice("ab")}
            ):
                lr = 10 ** rng.uniform(-4, -1)
                chachaml.log_params(
                    {
                        "lr": lr,
                        "batch_size": rng.choice([16, 32, 64, 128]),
                        "optimizer": rng.choice(["adam", "sgd", "adamw"]),
                        "dropout": round(rng.uniform(0, 0.5), 3),
                        "layers": rng.randint(2, 12),
                        "seed": i,
                        "weight_decay": rng.choice([0.0, 1e-4, 1e-2]),
                        "model": rng.choice(["resnet", "vit", "mlp"]),
                        "momentum": round(rng.uniform(0.8, 0.99), 3),
                        "warmup": rng.choice([True, False]),
                    }
                )
                ceiling = rng.uniform(0.6, 0.99)
                with chachaml.batched():
                    for step in range(steps):
                        progress = 1 - math.exp(-5 * step / steps)
                        values = {
                            "acc": ceiling * progress + rng.gauss(0, 0.01),
                            "loss": 2.5 * (1 - progress) + 0.05 + abs(rng.gauss(0, 0.02)),
                        }
                        values.update({k: rng.random() for k in METRIC_KEYS[2:]})
                        chachaml.log_metrics(values, step=step)
            if i % 10 == 9:
                chachaml.runs(limit=1)  # a read folds the new points into the summaries, as a user's would
            if i % max(1, runs // 20) == 0 or i == runs - 1:
                rate = (i + 1) * steps * METRICS / (time.perf_counter() - t0)
                print(f"  generated {i + 1}/{runs} runs ({rate / 1e6:.2f}M points/s)", file=sys.stderr)
        chachaml.runs(limit=1)
    with open(done, "w") as fh:
        json.dump({"runs": runs, "steps": steps, "seconds": round(time.perf_counter() - t0, 1)}, fh)


def warm_median_ms(fn: Callable[[], Any], reps: int) -> float:
    fn()  # warm: statement caches, pages in the OS cache
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1000


def measure(path: str, reps: int) -> list[tuple[str, float, float, str]]:
    """[(figure, ms, target ms, what came back)] on the database at ``path``."""
    chachaml.use_store(path)
    ids = chachaml.runs().ids
    some = ids[len(ids) // 3]
    ten = ids[:: max(1, len(ids) // 10)][:10]
    where = "params.lr >= 0.001 and params.lr < 0.01 and metrics.acc.max > 0.9"
    figures: list[tuple[str, Callable[[], Any], float]] = [
        ("runs() page of 100, latest metrics", lambda: chachaml.runs(limit=100), TARGET_MS),
        (
            "runs() page of 100 ordered by a metric",
            lambda: chachaml.runs(order_by="metrics.acc desc", limit=100),
            TARGET_MS,
        ),
        ("runs(where=<param range and metric max>)", lambda: chachaml.runs(where=where), TARGET_MS),
        (
            "  ... its first page (limit=100)",
            lambda: chachaml.runs(where=where, limit=100),
            TARGET_MS,
        ),
        ("best_run('acc')", lambda: chachaml.best_run("acc"), TARGET_MS),
        (
            "best_run('loss', mode='min', experiment=...)",
            lambda: chachaml.best_run("loss", mode="min", experiment="exp-1"),
            TARGET_MS,
        ),
        ("compare_runs of 10 runs", lambda: chachaml.compare_runs(ten), TARGET_MS),
        ("metric_history of one key", lambda: chachaml.metric_history(some, "loss"), HISTORY_TARGET_MS),
    ]
    print(f"  (the where= query: {where!r})")
    results = []
    for label, fn, target in figures:
        ms = warm_median_ms(fn, reps)
        got = fn()
        what = (
            f"{len(got)} items"
            if isinstance(got, list | tuple) or hasattr(got, "__len__")
            else type(got).__name__
        )
        if isinstance(got, chachaml.Run):
            what = f"{got.name} best={got.best_value:.4f}@{got.best_step}"
        results.append((label, ms, target, what))
    chachaml.current_store().close()
    return results


def points_in(path: str) -> int:
    conn = sqlite3.connect(path)
    try:
        return int(conn.execute("SELECT max(rowid) FROM metrics").fetchone()[0] or 0)
    finally:
        conn.close()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, nargs="+", default=[1000], help="N, one or more (default 1000)")
    ap.add_argument("--steps", type=int, default=1000, help="steps per metric (default 1000)")
    ap.add_argument("--reps", type=int, default=15, help="timed repetitions per figure (default 15)")
    ap.add_argument(
        "--cache-dir",
        default=os.path.join(tempfile.gettempdir(), "chachaml-bench-query"),
        help="where generated databases are kept between runs (default: <tmp>/chachaml-bench-query)",
    )
    args = ap.parse_args()
    os.makedirs(args.cache_dir, exist_ok=True)
    print(
        f"chachaml {chachaml.__version__}, Python {platform.python_version()}, "
        f"SQLite {sqlite3.sqlite_version}, {platform.machine()} {os.cpu_count()} CPUs"
    )
    table: dict[str, dict[int, float]] = {}
    for n in args.runs:
        path = db_path(args.cache_dir, n, args.steps)
        t = time.perf_counter()
        generate(path, n, args.steps)
        with open(path + ".done") as fh:
            gen = json.load(fh)
        print(
            f"\nN={n} runs x {PARAMS} params x {METRICS} metrics x {args.steps} steps = "
            f"{points_in(path):,} points, {os.path.getsize(path) / 1e9:.2f} GB "
            f"(generated in {gen['seconds']}s; {'cached' if time.perf_counter() - t < 1 else 'just now'})"
        )
        for label, ms, target, what in measure(path, args.reps):
            verdict = "ok" if ms <= target else "OVER"
            print(f"  {label:<62} {ms:8.2f} ms  (target {target:.0f} ms: {verdict})  -> {what}")
            table.setdefault(label, {})[n] = ms
    if len(args.runs) > 1:
        print("\nHow the figures grow with N (ms, warm medians):")
        header = "  " + " " * 62 + "".join(f"{'N=' + str(n):>12}" for n in args.runs)
        print(header)
        for label, by_n in table.items():
            print(f"  {label:<62}" + "".join(f"{by_n[n]:12.2f}" for n in args.runs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
