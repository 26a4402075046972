"""A two-minute tour: ``python -m chachaml.demo [FOLDER]``.

Logs a few runs into ``FOLDER/chachaml.db`` (a fresh temporary folder by default) -- params, a
metric curve, a nested run and a failed run -- then prints them as a table, shows one run in
detail and says where the database file is. Needs nothing beyond the standard library.
"""

from __future__ import annotations

import math
import sys
import tempfile
from pathlib import Path

import chachaml


def train(lr: float, epochs: int = 5) -> None:
    """A pretend training loop: the loss decays faster with a larger learning rate."""
    chachaml.log_params({"lr": lr, "epochs": epochs, "sgd": {"momentum": 0.9}})  # -> sgd.momentum
    for epoch in range(epochs):
        loss = 2.0 * math.exp(-lr * 10 * (epoch + 1)) + 0.05
        chachaml.log_metric("loss", round(loss, 4))  # step 0, 1, 2, ... by default
    chachaml.log_metric("accuracy", round(1.0 - loss / 2.5, 4))


def main(argv: list[str]) -> int:
    folder = Path(argv[0]) if argv else Path(tempfile.mkdtemp(prefix="chachaml-demo-"))
    folder.mkdir(parents=True, exist_ok=True)
    db = folder / "chachaml.db"
    chachaml.use_store(db)

    # 1. REPL style: start_run() ... end_run().
    chachaml.start_run("baseline", experiment="demo", tags={"model": "linear"})
    train(lr=0.05)
    chachaml.end_run()

    # 2. Block style, with a nested run: the inner run becomes a child of the outer one.
    with chachaml.with_run("tuned", experiment="demo", tags={"model": "linear"}) as tuned:
        train(lr=0.2)
        with chachaml.with_run("evaluate", experiment="demo"):
            chachaml.log_metric("test_accuracy", 0.91)
        chachaml.set_note("lr=0.2 converges in 3 epochs.")

    # 3. A run that fails: the exception is recorded on the run, then re-raised (caught here).
    try:
        with chachaml.with_run("diverged", experiment="demo"):
            chachaml.log_param("lr", 10.0)
            chachaml.log_metric("loss", float("nan"))
            raise FloatingPointError("loss is NaN at step 0")
    except FloatingPointError:
        pass

    print("All runs, newest first:")
    print(chachaml.runs())
    print()

    run = chachaml.get_run(tuned.id)
    print(f"One run in detail: {run!r}")
    print(f"  params:  {run.params}")
    print(f"  metrics: {run.metrics}  (latest value of each)")
    print(f"  tags:    {run.tags}")
    print(f"  note:    {run.note}")
    history = ", ".join(f"{m.step}:{m.value}" for m in chachaml.metric_history(run.id, "loss"))
    print(f"  loss by step: {history}")
    child = chachaml.runs(parent_id=run.id)[0]
    print(f"  child run: {child.name!r} {child.status}, metrics {child.metrics}")
    failed = chachaml.last_run("demo", status="failed")
    if failed is not None and failed.error is not None:
        print(f"  the failed run recorded: {failed.error['type']}: {failed.error['message']}")
    print()

    print(f"Database file: {db.resolve()}")
    print(f"Read it back:  chachaml.use_store({str(db.resolve())!r}); chachaml.runs()")
    import shlex  # here: only the demo's last lines need it

    print(f"Or in a shell: chachaml runs --store {shlex.quote(str(db.resolve()))}")
    print(f"In a browser:  chachaml ui --store {shlex.quote(str(db.resolve()))}")
    print("It is plain SQLite: any SQL tool can open it (tables runs, params, metrics, tags).")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
