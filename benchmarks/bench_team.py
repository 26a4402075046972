"""Team-scale performance figures (SPEC section 6, issue 10), each next to a floor from the same run.

    python benchmarks/bench_team.py                 # full run
    python benchmarks/bench_team.py --quick         # smoke run (figures are rough)
    python benchmarks/bench_team.py --url postgresql://user@host:5432/db

Figures:

* ``log_metric (PostgreSQL)``: every call committed before it returns, against the floor of a
  bare single-row ``INSERT`` + commit (autocommit) of the same row into chachaml's own
  ``metrics`` table, on the same server, in the same run, timed alternately. Target: at most 2x.

* ``two servers, 16 clients``: 16 client processes x 10,000 ``log_metric`` calls each through
  TWO ``chachaml server`` processes on one PostgreSQL database (clients alternate between them),
  from the first start until the last ``end_run`` returned. A check, not a ratio: every run must
  hold exactly its 10,000 points in order (0 lost, 0 duplicated) and no request may have had a
  5xx answer (PASS/FAIL); the rate is shown for information.

The server is ``--url`` (else ``$CHACHAML_TEST_POSTGRES_URL``, else the local test server); two
throwaway databases are created on it and dropped afterwards. The exit code is 0 even when a
target is missed: this is a report, not a test.
"""

from __future__ import annotations

import argparse
import os
import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _floor import Report, interleave_cpu, median

import chachaml
from chachaml.store.postgres import temporary_database

TS = 1_700_000_000_000
DEFAULT_URL = os.environ.get("CHACHAML_TEST_POSTGRES_URL") or "postgresql://postgres@127.0.0.1:5432/test"
FLOOR_INSERT = (
    "INSERT INTO metrics (run_id, key, step, value, timestamp, is_nan) VALUES (%s, %s, %s, %s, %s, %s)"
)


def bench_postgres_log_metric(report: Report, url: str, quick: bool) -> None:
    """chachaml.log_metric on a PostgreSQL store vs a bare INSERT + commit on the same server."""
    import psycopg

    from chachaml.store._pg_base import migrate

    rounds, n = (5, 200) if quick else (15, 1_000)
    with temporary_database(url) as floor_url, temporary_database(url) as ours_url:
        floor_conn = psycopg.connect(floor_url, autocommit=True)
        migrate(floor_conn, floor_url)  # the floor writes into chachaml's schema, indexes and all
        run_id = uuid.uuid4().hex
        state = {"step": 0}

        def floor() -> None:
            ex, s = floor_conn.execute, state["step"]
            for i in range(n):
                ex(FLOOR_INSERT, (run_id, "loss", s + i, 0.5, TS, 0))
            state["step"] = s + n

        store = chachaml.use_store(ours_url, artifacts=os.devnull)
        chachaml.start_run("bench-postgres")

        def ours() -> None:
            log_metric = chachaml.log_metric
            for _ in range(n):
                log_metric("loss", 0.5)

        floor()
        ours()  # warm both (prepared statements, the pool, first pages)
        f, o, fc, oc = interleave_cpu(rounds, floor, ours)
        chachaml.end_run()
        store.close()
        floor_conn.close()
    report.ratio(
        "log_metric (PostgreSQL)", median(o) / n, median(f) / n, "call", 2.0, None, median(oc) / median(fc)
    )


LOAD = """
import sys, time, chachaml as c
c.use_store(sys.argv[1])
sys.stdin.readline()            # every client starts together, imports done
t0 = time.time()
run = c.start_run("load")
for i in range(int(sys.argv[2])):
    c.log_metric("x", float(i))
c.end_run()                     # returns once the server has every point
print(run.id, t0, time.time())
"""


def _first_line(proc: Any) -> str:
    import queue
    import threading

    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: lines.put(proc.stdout.readline()), daemon=True).start()
    return lines.get(timeout=60)


def _lines(path: str) -> list[str]:
    with open(path, encoding="utf-8") as f:
        return f.read().splitlines()


def bench_two_servers(report: Report, url: str, quick: bool) -> None:
    """16 clients x 10,000 points through two server processes on one database."""
    import json
    import signal
    import subprocess
    import tempfile
    import time

    clients, points = (4, 500) if quick else (16, int(os.environ.get("BENCH_POINTS", "10000")))
    with tempfile.TemporaryDirectory() as tmp, temporary_database(url) as db:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CHACHAML_")}
        env["XDG_STATE_HOME"] = os.path.join(tmp, "state")
        servers, urls, logs = [], [], []
        try:
            for i in range(2):
                log = os.path.join(tmp, f"access-{i}.log")
                cmd = [
                    sys.executable,
                    "-m",
                    "chachaml",
                    "server",
                    "--store",
                    db,
                    "--port",
                    "0",
                    "--access-log",
                    log,
                ]
                proc = subprocess.Popen(
                    cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env
                )
                servers.append(proc)
                urls.append(_first_line(proc).split(" at ", 1)[1].strip().rstrip("/"))
                logs.append(log)
            procs = [
                subprocess.Popen(
                    [sys.executable, "-c", LOAD, urls[i % 2], str(points)],
                    env=env,
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    text=True,
                )
                for i in range(clients)
            ]
            time.sleep(2.0)  # only a start signal: let every client import first
            for p in procs:
                assert p.stdin is not None
                p.stdin.write("\n")
                p.stdin.flush()
            outs = []
            for p in procs:
                out, _ = p.communicate(timeout=900)
                if p.returncode != 0:
                    raise SystemExit("a client failed")
                outs.append(out.split())
        finally:
            for proc in servers:
                proc.send_signal(signal.SIGTERM)
                proc.wait(timeout=60)
        span = max(float(o[2]) for o in outs) - min(float(o[1]) for o in outs)
        bad_runs = 0
        with chachaml.Client(db) as c:
            for run_id, *_ in outs:
                got = [(m.step, m.value) for m in c.metric_history(run_id, "x")]
                bad_runs += got != [(i, float(i)) for i in range(points)]
        records = [[json.loads(line) for line in _lines(log)] for log in logs]
        per_server = [len(r) for r in records]
        records = [r for rs in records for r in rs]
        fives = sum(1 for r in records if r["status"] >= 500)
        for r in records:
            if r["status"] >= 500:
                print(f"  5xx: {r}", file=sys.stderr)
    report.line(
        "two servers, 16 clients" if not quick else "two servers, 4 clients (quick)",
        f"{clients * points / span:10,.0f} points/s  {clients}x{points:,} points  runs wrong: {bad_runs}  "
        f"5xx: {fives}  requests per server: {per_server}",
        bad_runs == 0 and fives == 0 and all(per_server),
    )


BENCHES: dict[str, Callable[[Report, str, bool], None]] = {
    "postgres": bench_postgres_log_metric,
    "two_servers": bench_two_servers,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a fast smoke run with small sizes")
    parser.add_argument("--url", default=DEFAULT_URL, help="a PostgreSQL server and existing database")
    parser.add_argument("--only", help=f"comma-separated subset of {','.join(BENCHES)} (default: all)")
    args = parser.parse_args()
    report = Report()
    for name in args.only.split(",") if args.only else list(BENCHES):
        BENCHES[name](report, args.url, args.quick)
    report.summary()


if __name__ == "__main__":
    main()
