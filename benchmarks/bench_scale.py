"""Query plans at scale (SPEC section 6, issue 9): pages of runs() at 10,000 and 100,000 runs.

    python benchmarks/bench_scale.py                      # N = 10,000 and 100,000
    python benchmarks/bench_scale.py --runs 10000         # one N
    python benchmarks/bench_scale.py --quick              # N = 2,000, 100k-point history, 3 reps

Data shape (the same for every N, generated with plain SQL in one transaction, then cached):
N runs x 10 params (bench_query's) x 20 metric keys with a ``metric_summary`` row each (the
summaries are what ordering and ``where=`` read), 1 tag, and ``Run.env`` with 150 installed
packages (3 distinct package sets, as 3 virtual environments would give). Points are real for
a subset only (N x 20 keys x 100 steps would be 200M points at 100,000 runs): ``--point-runs``
runs (default 1% of N) hold 20 keys x 100 steps and summaries folded from them, the others hold
summaries only; one more run holds a 1,000,000-point history of the key ``long``. 5% of the runs
never logged ``acc`` and 1% ended with a NaN ``loss`` (NULLs and NaN sort last).

The file is written in the layout of schema version 4 (plain SQL from the released migrations
1-4), as a chachaml before issue 9 left it; the copy that is measured is opened by chachaml,
which migrates it to its own version first (the time is reported).

Each figure is a warm median next to its *floor*: the same page read with plain SQL by id
(the page's runs, params, summaries and tags rows; no search), timed alternately in the same
run. The exit code is 0 even when a target is missed: this is a report, not a test.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import random
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

import chachaml

KEYS = ["acc", "loss"] + [f"m{i:02d}" for i in range(18)]
STEPS = 100
LONG_POINTS = 1_000_000
T0 = 1_700_000_000_000
TARGET_MS = 50.0
HISTORY_TARGET_MS = 100.0
WHERE_RANGE = "params.lr < 0.05 and metrics.acc.max > 0.9"
WHERE_BAND = "params.lr >= 0.001 and params.lr < 0.01 and metrics.acc.max > 0.9"
WHERE_RARE = "params.lr < 0.0002 and metrics.acc.max > 0.97"


def _packages(rng: random.Random, n: int) -> dict[str, str]:
    names = sorted({f"pkg-{rng.randrange(10_000):04d}" for _ in range(n * 2)})[:n]
    return {name: f"{rng.randint(0, 9)}.{rng.randint(0, 30)}.{rng.randint(0, 9)}" for name in names}


def generate(path: str, runs: int, point_runs: int, long_points: int = LONG_POINTS) -> dict[str, Any]:
    """Write the database described in the module doc at ``path`` (schema version 4)."""
    from chachaml.store._sqlite_schema import MIGRATIONS

    rng = random.Random(20_251_125)
    t = time.perf_counter()
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=OFF")
    conn.execute("PRAGMA synchronous=OFF")
    conn.execute("BEGIN")
    for number, statements in MIGRATIONS:
        if number <= 4:
            for stmt in statements:
                conn.execute(stmt)
    conn.execute("PRAGMA user_version = 4")
    conn.executemany(
        "INSERT INTO experiments (name, created) VALUES (?, ?)", [(f"exp-{i}", T0) for i in range(5)]
    )
    envs = [
        {
            "python": "3.11.7",
            "implementation": "CPython",
            "platform": "Linux-6.1-x86_64",
            "host": "bench",
            "user": "bench",
            "cwd": "/home/bench",
            "argv": ["train.py"],
            "packages": _packages(rng, 150),
            "git_commit": "0" * 40,
            "git_dirty": False,
        }
        for _ in range(3)
    ]
    step_points = max(1, runs // max(1, point_runs)) if point_runs else 0
    run_rows, param_rows, tag_rows, summary_rows, point_rows = [], [], [], [], []
    ids = []
    for i in range(runs + 1):
        rid = f"{rng.getrandbits(128):032x}"
        ids.append(rid)
        start = T0 + i * 1000
        env = dict(envs[i % 3], argv=["train.py", f"--seed={i}"])
        run_rows.append(
            (rid, f"exp-{i % 5}", f"run-{i:06d}", "completed", start, start + 5000, "bench",
             json.dumps(env), "bench", 1, "", start + 5000)
        )  # fmt: skip
        if i == runs:  # the long history's run
            continue
        lr = 10 ** rng.uniform(-4, -1)
        params = {
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
        param_rows.extend((rid, k, json.dumps(v)) for k, v in params.items())
        tag_rows.append((rid, "team", rng.choice("ab")))
        ceiling = rng.uniform(0.6, 0.99)
        keys = KEYS if rng.random() >= 0.05 else KEYS[1:]  # 5% never logged acc
        nan_loss = rng.random() < 0.01
        if step_points and i % step_points == 0:
            series: dict[str, list[float | None]] = {k: [] for k in keys}
            for step in range(STEPS):
                progress = 1 - math.exp(-5 * step / STEPS)
                for k in keys:
                    if k == "acc":
                        v: float | None = ceiling * progress + rng.gauss(0, 0.01)
                    elif k == "loss":
                        v = None if nan_loss and step == STEPS - 1 else 2.5 * (1 - progress) + 0.05
                    else:
                        v = rng.random()
                    series[k].append(v)
                    point_rows.append((rid, k, step, v, start + step, 1 if v is None else 0))
            for k, vals in series.items():
                finite = [v for v in vals if v is not None]
                last = vals[-1]
                summary_rows.append(
                    (rid, k, STEPS - 1, last, 1 if last is None else 0, start + STEPS - 1,
                     min(finite), max(finite), STEPS)
                )  # fmt: skip
            continue
        for k in keys:  # summaries only, shaped like the curves above
            if k == "acc":
                last: float | None = ceiling * 0.993 + rng.gauss(0, 0.01)
                lo, hi = rng.gauss(0, 0.01), last + abs(rng.gauss(0, 0.01))  # type: ignore[operator]
            elif k == "loss":
                last = None if nan_loss else 0.05 + abs(rng.gauss(0, 0.02))
                lo, hi = 0.05 + abs(rng.gauss(0, 0.01)), 2.55
            else:
                last, lo, hi = rng.random(), rng.random() * 0.02, 1 - rng.random() * 0.02
            summary_rows.append(
                (rid, k, STEPS - 1, last, 1 if last is None else 0, start + STEPS - 1, lo, hi, STEPS)
            )
    long_id = ids[-1]
    conn.executemany(
        "INSERT INTO runs (id, experiment, name, status, start_time, end_time, created_by, env, "
        "host, pid, proc_start, heartbeat) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        run_rows,
    )
    conn.executemany("INSERT INTO params (run_id, key, value) VALUES (?, ?, ?)", param_rows)
    conn.executemany("INSERT INTO tags (run_id, key, value) VALUES (?, ?, ?)", tag_rows)
    insert_point = (
        "INSERT INTO metrics (run_id, key, step, value, timestamp, is_nan) VALUES (?, ?, ?, ?, ?, ?)"
    )
    conn.executemany(insert_point, point_rows)
    lrng = random.Random(7)
    conn.executemany(
        insert_point,
        (
            (long_id, "long", s, math.exp(-s / 2e5) + lrng.gauss(0, 0.01), T0 + s, 0)
            for s in range(long_points)
        ),
    )
    summary_rows.append((long_id, "long", long_points - 1, None, 0, T0, None, None, long_points))
    conn.executemany(
        "INSERT INTO metric_summary (run_id, key, last_step, last_value, last_is_nan, last_timestamp, "
        "min, max, count) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        summary_rows,
    )
    # The long run's summary, folded by SQL; then every point counts as folded.
    conn.execute(
        "UPDATE metric_summary SET (last_value, min, max) = (SELECT "
        "(SELECT value FROM metrics WHERE run_id = ?1 AND key = 'long' ORDER BY step DESC LIMIT 1), "
        "min(value), max(value) FROM metrics WHERE run_id = ?1 AND key = 'long') "
        "WHERE run_id = ?1 AND key = 'long'".replace("?1", "?"),
        (long_id, long_id, long_id),
    )
    conn.execute(
        "UPDATE chachaml_meta SET value = (SELECT max(rowid) FROM metrics) WHERE key = 'summary_rowid'"
    )
    conn.execute("COMMIT")
    conn.execute("PRAGMA journal_mode=WAL")
    conn.close()
    return {
        "runs": runs,
        "point_runs": len({r[0] for r in point_rows}),
        "points": len(point_rows) + long_points,
        "long_points": long_points,
        "long_run": long_id,
        "seconds": round(time.perf_counter() - t, 1),
    }


def warm_pair(
    ours: Callable[[], Any], floor: Callable[[], Any], reps: int
) -> tuple[float, float, float, float]:
    """Warm medians (ms) of ``ours`` and ``floor``, wall-clock then CPU time: (ours, floor, ours
    CPU, floor CPU). Timed alternately after one untimed call each; CPU time leaves out the time
    other processes held the core, so it is the steadier figure on a busy machine."""
    ours()
    floor()
    wall: dict[int, list[float]] = {0: [], 1: []}
    cpu: dict[int, list[float]] = {0: [], 1: []}
    for r in range(reps):
        for i in (0, 1) if r % 2 == 0 else (1, 0):
            fn = ours if i == 0 else floor
            c, t = time.process_time(), time.perf_counter()
            fn()
            wall[i].append(time.perf_counter() - t)
            cpu[i].append(time.process_time() - c)
    return tuple(statistics.median(x) * 1000 for x in (wall[0], wall[1], cpu[0], cpu[1]))  # type: ignore[return-value]


def page_floor(conn: sqlite3.Connection, ids: list[str]) -> Callable[[], Any]:
    """Plain SQL reading what a page of these runs holds, by id: no search, no Python objects."""
    marks = ",".join("?" * len(ids))

    def read() -> Any:
        return [
            conn.execute(f"SELECT * FROM runs WHERE id IN ({marks})", ids).fetchall(),
            conn.execute(f"SELECT * FROM params WHERE run_id IN ({marks})", ids).fetchall(),
            conn.execute(f"SELECT * FROM metric_summary WHERE run_id IN ({marks})", ids).fetchall(),
            conn.execute(f"SELECT * FROM tags WHERE run_id IN ({marks})", ids).fetchall(),
        ]

    return read


def measure(
    path: str, info: dict[str, Any], reps: int, history: bool = True
) -> list[tuple[str, float, float, float, float, float, str]]:
    """[(figure, ms, floor ms, CPU ms, floor CPU ms, target ms, what came back)] at ``path``."""
    n = info["runs"]
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA query_only = 1")
    client = chachaml.Client(path)
    figures: list[tuple[str, Callable[[], Any], float]] = [
        ("runs(limit=100), newest first", lambda: client.runs(limit=100), TARGET_MS),
        (
            "runs(order_by='metrics.acc desc', limit=100)",
            lambda: client.runs(order_by="metrics.acc desc", limit=100),
            TARGET_MS,
        ),
        (
            "runs(order_by='metrics.loss.min', limit=100)",
            lambda: client.runs(order_by="metrics.loss.min", limit=100),
            TARGET_MS,
        ),
        (
            f"runs(where={WHERE_RANGE!r}, limit=100)",
            lambda: client.runs(where=WHERE_RANGE, limit=100),
            TARGET_MS,
        ),
        (
            f"runs(where={WHERE_BAND!r}, limit=100)",
            lambda: client.runs(where=WHERE_BAND, limit=100),
            TARGET_MS,
        ),
        (f"runs(where={WHERE_RARE!r})", lambda: client.runs(where=WHERE_RARE), TARGET_MS),
        (
            "runs(where=\"params.optimizer = 'adam'\", order_by='metrics.acc desc', limit=100)",
            lambda: client.runs(where="params.optimizer = 'adam'", order_by="metrics.acc desc", limit=100),
            TARGET_MS,
        ),
        (f"runs(limit=100, offset={n // 2:,})", lambda: client.runs(limit=100, offset=n // 2), TARGET_MS),
        (
            f"runs(order_by='metrics.acc desc', limit=100, offset={n // 2:,})",
            lambda: client.runs(order_by="metrics.acc desc", limit=100, offset=n // 2),
            TARGET_MS,
        ),
        ("runs(limit=1000): 1,000 full runs with env", lambda: client.runs(limit=1000), TARGET_MS),
    ]
    results = []
    for label, fn, target in figures:
        got = fn()
        floor = page_floor(conn, list(got.ids))
        results.append((label, *warm_pair(fn, floor, reps), target, f"{len(got)} runs"))
    long_id = info["long_run"]

    def history_floor() -> Any:
        return conn.execute(
            "SELECT step, value, is_nan, timestamp FROM metrics "
            "WHERE run_id = ? AND key = 'long' ORDER BY step",
            (long_id,),
        ).fetchall()

    if not history:
        client.close()
        conn.close()
        return results
    got_h = client.metric_history(long_id, "long")
    timing = warm_pair(lambda: client.metric_history(long_id, "long"), history_floor, max(3, reps // 3))
    label = f"metric_history of {info.get('long_points', LONG_POINTS):,} points (store read)"
    results.append((label, *timing, HISTORY_TARGET_MS, f"{len(got_h):,} points"))

    # The downsampled read the UI, the MCP tools and plot() make: the pyramid (docs/adr/0025).
    # Floor: plain SQL reading as many rows (1,000) as the answer holds, by the same index.
    def window_floor() -> Any:
        return conn.execute(
            "SELECT step, value, is_nan, timestamp FROM metrics "
            "WHERE run_id = ? AND key = 'long' ORDER BY step LIMIT 1000",
            (long_id,),
        ).fetchall()

    n_long = info.get("long_points", LONG_POINTS)
    for label, kwargs in [
        (f"metric_window of {n_long:,} points, max_points=1000", {}),
        (
            f"metric_window of {n_long:,} points, zoomed to 10%, max_points=1000",
            {"after_step": n_long // 3, "before_step": n_long // 3 + n_long // 10},
        ),
    ]:
        kept, count = client.metric_window(long_id, "long", max_points=1000, **kwargs)
        timing = warm_pair(
            lambda kw=kwargs: client.metric_window(long_id, "long", max_points=1000, **kw), window_floor, reps
        )
        results.append((label, *timing, HISTORY_TARGET_MS, f"{len(kept):,} of {count:,} points"))
    client.close()
    conn.close()
    return results


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, nargs="+", default=[10_000, 100_000], help="N, one or more")
    ap.add_argument("--point-runs", type=int, default=None, help="runs with real points (default 1%% of N)")
    ap.add_argument("--reps", type=int, default=15, help="timed repetitions per figure (default 15)")
    ap.add_argument("--long-points", type=int, default=LONG_POINTS, help="points of the long history")
    ap.add_argument("--no-history", action="store_true", help="skip the 1M-point history figure")
    ap.add_argument("--quick", action="store_true", help="N=2,000 and 3 reps: a smoke run")
    ap.add_argument(
        "--cache-dir",
        default=os.path.join(tempfile.gettempdir(), "chachaml-bench-scale"),
        help="where generated databases are kept between runs (default: <tmp>/chachaml-bench-scale)",
    )
    args = ap.parse_args()
    if args.quick:
        args.runs, args.reps = [2_000], 3
        if args.long_points == LONG_POINTS:
            args.long_points = 100_000
    os.makedirs(args.cache_dir, exist_ok=True)
    print(
        f"chachaml {chachaml.__version__}, Python {platform.python_version()}, "
        f"SQLite {sqlite3.sqlite_version}, {platform.machine()} {os.cpu_count()} CPUs, "
        f"load {os.getloadavg()[0]:.2f}"
    )
    table: dict[str, dict[int, float]] = {}
    for n in args.runs:
        point_runs = args.point_runs if args.point_runs is not None else max(1, n // 100)
        shape = f"{n}runs-{point_runs}pointruns" + (
            "" if args.long_points == LONG_POINTS else f"-{args.long_points}long"
        )
        base = os.path.join(args.cache_dir, f"scale-{shape}-v4.db")
        if not os.path.exists(base + ".json"):
            for suffix in ("", "-wal", "-shm"):
                if os.path.exists(base + suffix):
                    os.remove(base + suffix)
            info = generate(base, n, point_runs, args.long_points)
            with open(base + ".json", "w") as fh:
                json.dump(info, fh)
        with open(base + ".json") as fh:
            info = json.load(fh)
        work = base.replace("-v4.db", "-measured.db")
        for suffix in ("", "-wal", "-shm"):
            if os.path.exists(work + suffix):
                os.remove(work + suffix)
        shutil.copyfile(base, work)
        t = time.perf_counter()
        with chachaml.Client(work) as client:  # the first read migrates the copy to this chachaml's schema
            client.runs(limit=1)
        migrate_s = time.perf_counter() - t
        print(
            f"\nN={n:,} runs x 10 params x {len(KEYS)} summarised keys; {info['point_runs']:,} runs with "
            f"{len(KEYS)} keys x {STEPS} steps of points, 1 run with "
            f"{info.get('long_points', LONG_POINTS):,} points: "
            f"{info['points']:,} points, {os.path.getsize(work) / 1e6:.0f} MB "
            f"(generated in {info['seconds']} s; opened and migrated from version 4 in {migrate_s:.2f} s)"
        )
        for label, ms, floor_ms, cpu, floor_cpu, target, what in measure(
            work, info, args.reps, history=not args.no_history
        ):
            verdict = "ok" if ms <= target else "OVER"
            print(
                f"  {label:<86} {ms:8.2f} ms  floor {floor_ms:7.2f} ms  ratio {ms / floor_ms:5.1f}  "
                f"(target {target:.0f} ms: {verdict})  CPU {cpu:8.2f} ms  floor {floor_cpu:7.2f} ms  "
                f"ratio {cpu / max(floor_cpu, 1e-3):5.1f}  -> {what}"
            )
            table.setdefault(label.replace(f"{n // 2:,}", "N/2"), {})[n] = cpu
        for suffix in ("", "-wal", "-shm"):
            if os.path.exists(work + suffix):
                os.remove(work + suffix)
    if len(args.runs) > 1:
        print("\nHow the figures grow with N (CPU ms, warm medians):")
        print("  " + " " * 86 + "".join(f"{'N=' + format(n, ','):>12}" for n in args.runs))
        for label, by_n in table.items():
            print(f"  {label:<86}" + "".join(f"{by_n.get(n, float('nan')):12.2f}" for n in args.runs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
