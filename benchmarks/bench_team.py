"""Team-scale performance figures (SPEC section 6, issue 10), each next to a floor from the same run.

    python benchmarks/bench_team.py                 # full run
    python benchmarks/bench_team.py --quick         # smoke run (figures are rough)
    python benchmarks/bench_team.py --url postgresql://user@host:5432/db

Figures:

* ``log_metric (PostgreSQL)``: every call committed before it returns, against the floor of a
  bare single-row ``INSERT`` + commit (autocommit) of the same row into chachaml's own
  ``metrics`` table, on the same server, in the same run, timed alternately. Target: at most 2x.

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


BENCHES: dict[str, Callable[[Report, str, bool], None]] = {"postgres": bench_postgres_log_metric}


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
