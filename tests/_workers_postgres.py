"""Worker processes for the PostgreSQL tests (run as a script, one command each).

    python _workers_postgres.py open URL GO_FILE
    python _workers_postgres.py log URL RUN_ID COUNT GO_FILE
    python _workers_postgres.py param URL RUN_ID VALUE GO_FILE
    python _workers_postgres.py batch URL RUN_ID ROUNDS GO_FILE

Each waits until GO_FILE exists, so all of them hit the server at the same moment. ``open``
opens (and so migrates) the database and prints ``ok``; ``log`` logs COUNT points of ``loss``
with the default step into the run RUN_ID; ``batch`` writes ROUNDS batches of 40 ``loss`` and
40 ``acc`` points (interleaved, default steps) each followed by one ``log_metric`` of ``loss``;
``param`` logs the param ``lr`` = VALUE into RUN_ID and
prints ``stored`` or ``conflict``.
"""

from __future__ import annotations

import os
import sys
import time

import chachaml
from chachaml.store import open_store


def _wait(go_file: str) -> None:
    deadline = time.monotonic() + 60
    while not os.path.exists(go_file):
        if time.monotonic() > deadline:
            raise SystemExit("the go file never appeared")
        time.sleep(0.001)


def open_(url: str, go_file: str) -> None:
    store = open_store(url)
    _wait(go_file)
    store.experiments()
    store.close()
    print("ok", flush=True)


def log(url: str, run_id: str, count: str, go_file: str) -> None:
    chachaml.use_store(url)
    _wait(go_file)
    for i in range(int(count)):
        chachaml.log_metric("loss", 1.0 / (i + 1), run=run_id)


def batch(url: str, run_id: str, rounds: str, go_file: str) -> None:
    store = open_store(url)
    _wait(go_file)
    for r in range(int(rounds)):
        points = [(k, float(i + r), None, 1) for i in range(40) for k in ("loss", "acc")]
        store.log_batch(run_id, metrics=points)
        store.log_metric(run_id, "loss", -1.0, None, 2)
    store.close()


def param(url: str, run_id: str, value: str, go_file: str) -> None:
    chachaml.use_store(url)
    _wait(go_file)
    try:
        chachaml.log_param("lr", float(value), run=run_id)
    except chachaml.errors.ConflictError:
        print("conflict", flush=True)
    else:
        print("stored", flush=True)


if __name__ == "__main__":
    command, *args = sys.argv[1:]
    {"open": open_, "log": log, "param": param, "batch": batch}[command](*args)
