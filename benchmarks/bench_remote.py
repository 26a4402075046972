"""Remote-store figures of issue 10 through a real ``chachaml server`` (waitress) process.

    python benchmarks/bench_remote.py            # 20,000 calls; 16 clients x 10,000 points
    python benchmarks/bench_remote.py --quick    # small N, for a smoke test

Figures:

* ``log_metric`` through a remote store (spooled: the call returns once the point is in the
  local spool) against ``log_metric`` on a local SQLite file in its default mode, interleaved
  rounds, median microseconds per call. Target: at most 2x. Also shown: the time until the
  server has every point (``flush``), i.e. end-to-end throughput.
* server ingest: 16 client processes each logging ``--points`` points through one server, from
  their start until each ``end_run`` returned (the server then has everything), against writing
  the same batches (5,000 points each, the sender's batch size) straight into a SQLite store in
  this process. Target: at least a third of the direct rate.

Exit code 0 even when a target is missed: this is a report, not a test.
"""

from __future__ import annotations

import argparse
import os
import platform
import queue
import signal
import statistics
import subprocess
import sys
import tempfile
import textwrap
import threading
import time

import chachaml
from chachaml.client import Client


def start_server(db: str, env: dict[str, str]) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "chachaml", "server", "--store", db, "--port", "0", "--access-log", "-",
         *os.environ.get("BENCH_SERVER_ARGS", "").split()],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env,
    )  # fmt: skip
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: lines.put(proc.stdout.readline()), daemon=True).start()  # type: ignore[union-attr]
    first = lines.get(timeout=60)
    return proc, first.split(" at ", 1)[1].strip().rstrip("/")


def stop_server(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=60)


def per_call(n: int, rounds: int, url: str, local: str) -> None:
    remote_us: list[float] = []
    local_us: list[float] = []
    drain_s: list[float] = []
    for r in range(rounds):
        for side in ("remote", "local") if r % 2 == 0 else ("local", "remote"):
            with chachaml.with_store(url if side == "remote" else local):
                chachaml.start_run(f"bench-{side}-{r}")
                t0 = time.perf_counter()
                for i in range(n):
                    chachaml.log_metric("loss", 1.0 / (i + 1))
                t1 = time.perf_counter()
                chachaml.flush()
                t2 = time.perf_counter()
                chachaml.end_run()
            (remote_us if side == "remote" else local_us).append((t1 - t0) / n * 1e6)
            if side == "remote":
                drain_s.append(t2 - t0)
    rem, loc = statistics.median(remote_us), statistics.median(local_us)
    ratio = rem / loc
    print(f"log_metric, remote (spooled)   : {rem:8.2f} us/call  (median of {rounds} rounds of {n:,})")
    print(f"log_metric, local SQLite file  : {loc:8.2f} us/call")
    print(
        f"  ratio remote/local           : {ratio:8.2f}x   target <= 2x   {'OK' if ratio <= 2 else 'MISSED'}"
    )
    print(f"  until the server has them    : {statistics.median(drain_s) / n * 1e6:8.2f} us/point end to end")


CLIENT = """
import sys, time, chachaml as c
c.use_store(sys.argv[1])
sys.stdin.readline()            # all clients start logging together (imports done)
t0 = time.time()
run = c.start_run("load")
for i in range(int(sys.argv[2])):
    c.log_metric("x", float(i))
c.end_run()                     # returns once the server has every point
print(t0, time.time())
"""


SENDER = """
import sys, time, uuid
from chachaml.client import Client
from chachaml.store._http_client import HttpClient
url, points, batch = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
run = Client(url).start_run("ingest")
now = int(time.time() * 1000)
bodies = [{"run_id": run.id, "batch_id": uuid.uuid4().hex,
           "metrics": [["x", float(i), None, now] for i in range(lo, min(points, lo + batch))]}
          for lo in range(0, points, batch)]
http = HttpClient(url, None)
sys.stdin.readline()
t0 = time.time()
for body in bodies:
    http.call("log_batch", body)
print(t0, time.time())
"""


def _spans(procs: list[subprocess.Popen[str]]) -> float:
    time.sleep(2.0)  # let every client import and prepare; only a start signal, never a measurement
    for p in procs:
        assert p.stdin is not None
        p.stdin.write("\n")
        p.stdin.flush()
    spans = []
    for p in procs:
        out, _ = p.communicate(timeout=600)
        if p.returncode != 0:
            raise SystemExit("a client failed")
        start, end = map(float, out.split())
        spans.append((start, end))
    return max(e for _, e in spans) - min(s for s, _ in spans)


def server_ingest(
    clients: int, points: int, batch: int, url: str, env: dict[str, str], direct_db: str, rounds: int = 3
) -> None:
    """Alternating rounds (server, then direct; then direct, then server; ...): the machine's
    load drifts, so each side is measured under the same load and the medians are compared."""
    server_rates: list[float] = []
    direct_rates: list[float] = []
    total = clients * points

    def through_server() -> None:
        procs = [
            subprocess.Popen(
                [sys.executable, "-c", textwrap.dedent(SENDER), url, str(points), str(batch)],
                env=env,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
            for _ in range(clients)
        ]
        server_rates.append(total / _spans(procs))

    def direct(c: Client, r: int) -> None:
        runs = [c.start_run(f"direct-{r}-{i}") for i in range(clients)]
        now = int(time.time() * 1000)
        bodies = [
            (run.id, [("x", float(i), None, now) for i in range(lo, min(points, lo + batch))])
            for run in runs
            for lo in range(0, points, batch)
        ]
        t0 = time.perf_counter()
        for run_id, pts in bodies:
            c.store.log_batch(run_id, metrics=pts)
        direct_rates.append(total / (time.perf_counter() - t0))

    with Client(direct_db) as c:
        for r in range(rounds):
            if r % 2 == 0:
                through_server()
                direct(c, r)
            else:
                direct(c, r)
                through_server()
    rate_server, rate_direct = statistics.median(server_rates), statistics.median(direct_rates)
    share = rate_server / rate_direct
    head = f"server ingest, {clients} senders"
    print(f"{head:31}: {rate_server:10,.0f} points/s ({total:,}, batches of {batch:,}; median of {rounds})")
    print(f"same batches straight to store : {rate_direct:10,.0f} points/s")
    each = ", ".join(f"{a / b:.2f}" for a, b in zip(server_rates, direct_rates, strict=True))
    print(f"  rounds, server / direct      : {each}")
    verdict = "OK" if share >= 1 / 3 else "MISSED"
    print(f"  server / direct              : {share:8.2f}    target >= 0.33  {verdict}")


def ingest(clients: int, points: int, url: str, env: dict[str, str], direct_db: str) -> None:
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", textwrap.dedent(CLIENT), url, str(points)],
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(clients)
    ]
    server_s = _spans(procs)
    total = clients * points
    with Client(direct_db) as c:
        runs = [c.start_run(f"direct-{i}") for i in range(clients)]
        batch = 5000
        now = int(time.time() * 1000)
        t0 = time.perf_counter()
        for run in runs:
            for lo in range(0, points, batch):
                pts = [("x", float(i), None, now) for i in range(lo, min(points, lo + batch))]
                c.store.log_batch(run.id, metrics=pts)
        direct_s = time.perf_counter() - t0
        for run in runs:
            c.end_run(run)
    rate_server, rate_direct = total / server_s, total / direct_s
    share = rate_server / rate_direct
    print(f"end to end, {clients} clients      : {rate_server:10,.0f} points/s ({total:,} log_metric calls, "
          f"{server_s:.2f} s from the first start_run to the last end_run)")  # fmt: skip
    print(
        f"  (the clients' own CPU counts here: {clients} processes share {os.cpu_count()} CPUs; "
        f"direct in one process: {rate_direct:,.0f} points/s, {share:.2f} of it)"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--calls", type=int, default=20_000)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--points", type=int, default=10_000)
    ap.add_argument("--batch", type=int, default=1000, help="points per batch for the ingest figure")
    ap.add_argument("--quick", action="store_true", help="small N (smoke test)")
    ap.add_argument("--only", choices=["per_call", "server_ingest", "ingest"], help="one figure only")
    args = ap.parse_args()
    if args.quick:
        args.calls, args.rounds, args.clients, args.points = 500, 2, 2, 500
    print(f"python {platform.python_version()} on {platform.platform()}, {os.cpu_count()} CPUs")
    with tempfile.TemporaryDirectory() as tmp:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CHACHAML_")}
        env["XDG_STATE_HOME"] = os.environ["XDG_STATE_HOME"] = os.path.join(tmp, "state")
        proc, url = start_server(os.path.join(tmp, "server.db"), env)
        try:
            if args.only in (None, "per_call"):
                per_call(args.calls, args.rounds, url, os.path.join(tmp, "local.db"))
            if args.only in (None, "server_ingest"):
                server_ingest(
                    args.clients, args.points, args.batch, url, env, os.path.join(tmp, "direct1.db")
                )
            if args.only in (None, "ingest"):
                ingest(args.clients, args.points, url, env, os.path.join(tmp, "direct.db"))
        finally:
            stop_server(proc)


if __name__ == "__main__":
    main()
