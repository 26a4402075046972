"""Worker processes for the artifact and registry tests (run as a script, one command each).

    python _workers_registry.py promote DB MODEL VERSIONS ROUNDS SEED GO_FILE
    python _workers_registry.py register DB MODEL RUN_ID COUNT GO_FILE
    python _workers_registry.py log_same DB RUN_ID NAME PAYLOAD GO_FILE
    python _workers_registry.py crash_after_rename DB RUN_ID NAME
    python _workers_registry.py log_fifo DB RUN_ID NAME FIFO

Workers that take a GO_FILE wait until it exists, so several of them hit the store at the same
moment. ``crash_after_rename`` dies with exit code 17 right after the artifact's bytes were
renamed into place and before the metadata row is committed (the crash the write protocol must
survive); ``log_fifo`` streams from a named pipe so the test can SIGKILL it mid-copy.
"""

from __future__ import annotations

import os
import random
import sys
import time

import chachaml
from chachaml import context, errors

CRASH_EXIT = 17


def _wait(go_file: str) -> None:
    deadline = time.monotonic() + 60
    while not os.path.exists(go_file):
        if time.monotonic() > deadline:
            raise SystemExit("the go file never appeared")
        time.sleep(0.001)


def promote(db: str, model: str, versions: str, rounds: str, seed: str, go_file: str) -> None:
    rng = random.Random(int(seed))
    choices = [int(v) for v in versions.split(",")]
    chachaml.use_store(db)
    _wait(go_file)
    for _ in range(int(rounds)):
        chachaml.promote(model, rng.choice(choices), rng.choice(["production", "production", "staging"]))
    # The last promotion of every worker is to production, so whichever worker ends last leaves
    # exactly one production version (a final "staging" could demote it and leave none).
    chachaml.promote(model, rng.choice(choices), "production")


def register(db: str, model: str, run_id: str, count: str, go_file: str) -> None:
    chachaml.use_store(db)
    _wait(go_file)
    for _ in range(int(count)):
        mv = chachaml.register_model(model, artifact="model.pkl", run_id=run_id, stage="production")
        print(mv.version, flush=True)


def log_same(db: str, run_id: str, name: str, payload: str, go_file: str) -> None:
    with context.attach(context.Snapshot(f"sqlite:///{db}", run_id)):
        _wait(go_file)
        try:
            chachaml.log_artifact(name, payload.encode() * 100_000)
        except errors.ConflictError:
            print("conflict", flush=True)
        else:
            print("stored", flush=True)


def crash_after_rename(db: str, run_id: str, name: str) -> None:
    real_replace = os.replace

    def replace_then_die(src: str, dst: str) -> None:
        real_replace(src, dst)
        os._exit(CRASH_EXIT)  # the bytes are in place; the row is not committed yet

    os.replace = replace_then_die  # type: ignore[assignment]
    with context.attach(context.Snapshot(f"sqlite:///{db}", run_id)):
        chachaml.log_artifact(name, b"orphan bytes" * 1000)
    raise SystemExit("log_artifact returned although the process should have died")


def log_fifo(db: str, run_id: str, name: str, fifo: str) -> None:
    with context.attach(context.Snapshot(f"sqlite:///{db}", run_id)):
        chachaml.log_file(fifo, name)


if __name__ == "__main__":
    command, *args = sys.argv[1:]
    {
        "promote": promote,
        "register": register,
        "log_same": log_same,
        "crash_after_rename": crash_after_rename,
        "log_fifo": log_fifo,
    }[command](*args)
