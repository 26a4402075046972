"""Take the README's screenshots of the web UI and of a notebook view with headless Chromium.

``python docs/screenshots.py [OUT_DIR]`` logs a small, realistic set of runs (a learning-rate
sweep with noisy curves, a failed run, a running run, artifacts, a registered model) into a
temporary store, serves it with ``chachaml.web.app.create_app`` on 127.0.0.1, and writes
``runs.png``, ``run.png``, ``compare.png`` and ``notebook.png`` to OUT_DIR (default
``docs/img``). Needs the ``dev`` extra (Playwright) and Debian's ``chromium``; it downloads
nothing.
"""

from __future__ import annotations

import math
import random
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]


def populate(db: Path) -> list[str]:
    """Log the demo runs into ``db``; return the ids of the sweep runs (best first)."""
    import chachaml

    rng = random.Random(7)
    ids = []
    with chachaml.with_store(db):
        for i, (lr, width) in enumerate([(0.3, 256), (0.1, 256), (0.03, 512), (0.01, 512), (0.003, 256)]):
            with chachaml.with_run(f"resnet-lr{lr}", experiment="cifar10", tags={"sweep": "lr"}) as run:
                chachaml.log_params(
                    {
                        "lr": lr,
                        "width": width,
                        "optimizer": {"name": "adamw", "wd": 0.05},
                        "epochs": 30,
                        "seed": i,
                    }
                )
                chachaml.log_dataset(
                    "cifar10-train", role="train", source="hf://cifar10", n_rows=50000, n_cols=3072
                )
                for step in range(300):
                    t = step / 300
                    speed = 1 - math.exp(-lr * 40)
                    loss = 2.3 * math.exp(-4 * speed * t * 3) + 0.15 + 0.08 * rng.gauss(0, 1) * (1 - t / 2)
                    acc = 0.93 * (1 - math.exp(-5 * speed * t * 2)) + 0.01 * rng.gauss(0, 1)
                    chachaml.log_metrics({"train/loss": max(loss, 0.01), "train/acc": acc}, step=step)
                    if step % 30 == 29:
                        chachaml.log_metrics(
                            {"val/loss": max(loss, 0.02) * 1.1, "val/acc": acc - 0.02}, step=step
                        )
                chachaml.set_note(
                    f"# ResNet-18, lr={lr}\n\nBaseline **sweep** over the learning rate.\n\n"
                    "- augmentation: random crop + flip\n- schedule: cosine, 5 warm-up epochs\n"
                )
                chachaml.log_artifact(
                    "report.md", f"## Summary\n\nFinal accuracy: **{acc:.3f}**\n", format="text"
                )
                chachaml.log_artifact(
                    "config.json", {"lr": lr, "width": width, "augment": ["crop", "flip"]}, format="json"
                )
                chachaml.log_artifact("model", {"weights": [lr, width]})  # pickled
                ids.append(run.id)
        try:
            with chachaml.with_run("resnet-lr1.0", experiment="cifar10", tags={"sweep": "lr"}):
                chachaml.log_params({"lr": 1.0, "width": 256, "epochs": 30, "seed": 9})
                for step in range(40):
                    chachaml.log_metric("train/loss", 2.3 + step * 0.4 + rng.random(), step=step)
                raise FloatingPointError("loss is NaN at step 41: lower the learning rate")
        except FloatingPointError:
            pass
        with chachaml.with_run("bert-finetune", experiment="glue-sst2") as run:
            chachaml.log_params({"lr": 2e-5, "batch_size": 32, "model": "bert-base-uncased"})
            for step in range(120):
                chachaml.log_metric(
                    "train/loss", 0.7 * math.exp(-step / 40) + 0.05 + 0.03 * rng.random(), step=step
                )
    # left running on purpose (outside with_store, which would end it): the runs page shows it live
    from chachaml.client import Client

    client = Client(str(db))
    running = client.start_run("llama-sft", experiment="llm")
    client.log_params({"lr": 1e-4, "lora_r": 16, "model": "llama-3-8b"}, run=running)
    for step in range(80):
        value = 1.9 * math.exp(-step / 60) + 0.3 + 0.05 * rng.random()
        client.log_metric("train/loss", value, step=step, run=running)
    with chachaml.with_store(db):
        for k, run_id in enumerate(ids[1:3]):
            chachaml.register_model(
                "cifar-resnet", artifact="model", run_id=run_id, stage="production" if k else "staging"
            )
    return ids


def _serve(db: Path) -> tuple[Any, str]:
    """Serve the store at ``db`` on a free port of 127.0.0.1 in a daemon thread: (server, base URL)."""
    from chachaml.client import Client
    from chachaml.web.app import create_app
    from chachaml.web.serve import make_server

    server = make_server(create_app(Client(str(db))), "127.0.0.1", 0)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


NOTEBOOK_CELLS = [
    "import chachaml\nchachaml.use_store({db!r})\nruns = chachaml.runs(experiment='cifar10')\nruns[1]",
    "runs",
    "chachaml.plot(runs[1:5], 'val/acc')",
]


def notebook_html(db: Path) -> str:
    """Run the notebook cells in a real Jupyter kernel; their outputs as one page, like Jupyter."""
    import html
    import textwrap

    import nbclient
    import nbformat

    nb = nbformat.v4.new_notebook()
    # The kernel runs in the store's folder, so the first cell shows "demo.db", not a temp path.
    nb.cells = [nbformat.v4.new_code_cell(src.format(db=db.name)) for src in NOTEBOOK_CELLS]
    resources = {"metadata": {"path": str(db.parent)}}
    nbclient.NotebookClient(nb, kernel_name="python3", timeout=120, resources=resources).execute()
    parts = []
    for n, cell in enumerate(nb.cells, 1):
        (result,) = [o for o in cell.outputs if o.output_type == "execute_result"]
        source, output = html.escape(cell.source), result["data"]["text/html"]
        parts.append(
            f'<div class="cell"><div class="prompt">In [{n}]:</div><pre class="src">{source}</pre></div>'
        )
        parts.append(
            f'<div class=cell><div class="prompt out">Out[{n}]:</div><div class="output">{output}</div></div>'
        )
    style = textwrap.dedent(
        """
        body { font: 13px system-ui, sans-serif; margin: 24px; background: #fff; color: #1b2330; }
        .cell { display: flex; gap: 12px; margin: 6px 0; }
        .prompt { width: 70px; flex: none; color: #303f9f; font: 12px monospace; padding-top: 6px; }
        .prompt { text-align: right; }
        .prompt.out { color: #d84315; }
        pre.src { flex: 1; background: #f5f5f5; border: 1px solid #e0e0e0; padding: 6px 8px; margin: 0; }
        .output { flex: 1; overflow-x: auto; }
        table { border-collapse: collapse; font-size: 12px; }
        """
    )
    return f"<!doctype html><meta charset=utf-8><style>{style}</style>{''.join(parts)}"


def main(argv: list[str]) -> int:
    from playwright.sync_api import sync_playwright

    out = Path(argv[0]) if argv else Path(__file__).parent / "img"
    out.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="chachaml-shots-"))
    ids = populate(tmp / "demo.db")
    httpd, base = _serve(tmp / "demo.db")
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1440, "height": 900}, device_scale_factor=1)
            page.goto(f"{base}/")
            page.wait_for_selector("#runs tr[data-run-id]")
            for run_id in ids[2:4]:
                page.check(f'#runs tr[data-run-id="{run_id}"] input[type=checkbox]')
            page.screenshot(path=str(out / "runs.png"))
            page.goto(f"{base}/runs/{ids[2]}?smooth=0.6")
            page.wait_for_selector('[data-metric="train/loss"] canvas')
            page.wait_for_timeout(300)
            page.screenshot(path=str(out / "run.png"), full_page=False)
            page.goto(f"{base}/compare?ids={','.join(ids[:4])}&smooth=0.6")
            page.wait_for_selector('[data-metric="train/acc"] canvas')
            page.wait_for_timeout(300)
            page.screenshot(path=str(out / "compare.png"), full_page=True)
            page.set_viewport_size({"width": 1500, "height": 800})
            page.set_content(notebook_html(tmp / "demo.db"))
            page.screenshot(path=str(out / "notebook.png"), full_page=True)
            browser.close()
    finally:
        httpd.shutdown()
    print(f"screenshots in {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
