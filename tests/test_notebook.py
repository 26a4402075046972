"""chachaml in a real Jupyter kernel (nbclient), one REPL step per cell.

A ContextVar set in one cell does not reliably survive to the next (a cell with top-level ``await``
runs in a copy of the context: ipykernel issue 749), so these are the facts most at risk. The
notebook runs once per module; each test checks one fact, from the cells' own assertions and from
the store file read back outside the kernel (in this process and in a separate one).
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import chachaml

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

pytestmark = pytest.mark.slow

# (label, source, tags). Every cell asserts what it can see from inside the kernel.
CELLS: list[tuple[str, str, list[str]]] = [
    (
        "use_store",
        """
        import asyncio, json, threading
        import chachaml
        store = chachaml.use_store("nb.db")
        """,
        [],
    ),
    ("start_run", 'outer = chachaml.start_run("outer", experiment="nb")', []),
    (
        "log_param",
        """
        assert chachaml.current_run().id == outer.id
        chachaml.log_param("lr", 0.1)
        """,
        [],
    ),
    ("log_metric", 'chachaml.log_metric("loss", 0.9)', []),
    (
        "await_log",
        """
        await asyncio.sleep(0)
        assert chachaml.current_run().id == outer.id
        chachaml.log_metric("loss", 0.5)
        """,
        [],
    ),
    (
        "after_await",
        """
        assert chachaml.current_run().id == outer.id
        chachaml.log_metric("loss", 0.3)
        """,
        [],
    ),
    (
        "rerun_setup",
        """
        store_again = chachaml.use_store("nb.db")
        assert store_again is store
        chachaml.log_param("lr", 0.1)
        assert chachaml.current_run().id == outer.id
        """,
        [],
    ),
    (
        "with_run",
        """
        with chachaml.with_run("nested", experiment="nb") as nested:
            assert chachaml.current_run().id == nested.id
            chachaml.log_metric("acc", 0.8)
        assert nested.parent_id == outer.id
        assert chachaml.get_run(nested.id).status == "completed"
        assert chachaml.current_run().id == outer.id
        """,
        [],
    ),
    (
        "with_run_spanning_await",
        """
        with chachaml.with_run("spanning", experiment="nb") as spanning:
            await asyncio.sleep(0)
            assert chachaml.current_run().id == spanning.id
            chachaml.log_metric("acc", 0.7)
        assert chachaml.current_run().id == outer.id
        """,
        [],
    ),
    (
        "raises",
        """
        with chachaml.with_run("failing", experiment="nb") as failing:
            chachaml.log_metric("acc", 0.1)
            raise ValueError("bad batch")
        """,
        ["raises-exception"],
    ),
    (
        "after_raise",
        """
        assert chachaml.get_run(failing.id).status == "failed"
        assert chachaml.current_run().id == outer.id
        chachaml.log_metric("loss", 0.2)
        """,
        [],
    ),
    (
        "thread",
        """
        t = threading.Thread(target=chachaml.log_metric, args=("from_thread", 1.0))
        t.start(); t.join()
        """,
        [],
    ),
    (
        "start_in_await",
        """
        await asyncio.sleep(0)
        awaited = chachaml.start_run("awaited", experiment="nb")
        """,
        [],
    ),
    (
        "after_start_in_await",
        """
        assert chachaml.current_run().id == awaited.id
        assert awaited.parent_id == outer.id
        chachaml.log_metric("x", 1.0)
        """,
        [],
    ),
    (
        "end_in_await",
        """
        await asyncio.sleep(0)
        chachaml.end_run()
        assert chachaml.get_run(awaited.id).status == "completed"
        assert chachaml.current_run().id == outer.id
        """,
        [],
    ),
    (
        "end_outer",
        """
        chachaml.end_run()
        assert chachaml.get_run(outer.id).status == "completed"
        assert chachaml.current_run() is None
        assert chachaml.end_run() is None
        """,
        [],
    ),
    (
        "read_back",
        """
        listed = chachaml.runs(experiment="nb")
        latest = chachaml.last_run(experiment="nb")
        print(json.dumps({
            "last_run": latest.id,
            "runs": [r.id for r in listed],
            "by_name": {r.name: [r.id, r.status, r.parent_id] for r in listed},
        }))
        """,
        [],
    ),
    # Issue 7: what a cell survives must not decide how runs left open end at kernel shutdown.
    ("left_open", 'left_open = chachaml.start_run("left_open", experiment="nb_exit")', []),
    (
        "argparse_exit",
        """
        import argparse
        parser = argparse.ArgumentParser()
        parser.add_argument("--epochs", type=int)
        parser.parse_args(["--epochs", "many"])  # argparse calls sys.exit(2); the kernel goes on
        """,
        ["raises-exception"],
    ),
    ("error_in_cell", "1 / 0", ["raises-exception"]),
]


@dataclass
class Executed:
    folder: Path
    cells: dict[str, Any]  # label -> executed nbformat cell

    @property
    def db(self) -> Path:
        return self.folder / "nb.db"

    def errors(self, label: str) -> list[dict[str, Any]]:
        return [o for o in self.cells[label].outputs if o.output_type == "error"]

    def assert_ok(self, *labels: str) -> None:
        for label in labels:
            errors = self.errors(label)
            assert not errors, f"cell {label!r} raised:\n" + "\n".join(
                "\n".join(e.get("traceback", [])) for e in errors
            )

    def stdout(self, label: str) -> str:
        return "".join(o.get("text", "") for o in self.cells[label].outputs if o.output_type == "stream")


@pytest.fixture(scope="module")
def notebook(tmp_path_factory: pytest.TempPathFactory) -> Executed:
    folder = tmp_path_factory.mktemp("notebook")
    nb = nbformat.v4.new_notebook()
    for _, source, tags in CELLS:
        nb.cells.append(nbformat.v4.new_code_cell(textwrap.dedent(source).strip(), metadata={"tags": tags}))
    client = nbclient.NotebookClient(
        nb,
        kernel_name="python3",
        timeout=120,
        startup_timeout=120,
        allow_errors=True,  # every cell runs; each test reports the cells it depends on
        resources={"metadata": {"path": str(folder)}},
    )
    client.execute()
    return Executed(folder, {label: cell for (label, _, _), cell in zip(CELLS, nb.cells, strict=True)})


def stored_runs(db: Path) -> dict[str, chachaml.Run]:
    with chachaml.with_store(db):
        return {r.name or "": r for r in chachaml.runs(experiment="nb")}


def points(db: Path, run_id: str, key: str) -> list[tuple[int, float]]:
    with chachaml.with_store(db):
        return [(m.step, m.value) for m in chachaml.metric_history(run_id, key)]


def test_store_file_is_created_in_the_notebook_folder(notebook: Executed) -> None:
    notebook.assert_ok("use_store")
    assert notebook.db.exists()


def test_run_started_in_one_cell_gets_params_and_metrics_logged_in_later_cells(notebook: Executed) -> None:
    notebook.assert_ok("start_run", "log_param", "log_metric", "rerun_setup")
    outer = stored_runs(notebook.db)["outer"]
    assert outer.params == {"lr": 0.1}
    assert outer.parent_id is None


def test_log_in_a_cell_with_top_level_await_lands_on_the_current_run(notebook: Executed) -> None:
    notebook.assert_ok("await_log", "after_await", "after_raise")
    outer = stored_runs(notebook.db)["outer"]
    assert points(notebook.db, outer.id, "loss") == [(0, 0.9), (1, 0.5), (2, 0.3), (3, 0.2)]


def test_plain_thread_in_a_cell_logs_to_the_process_level_run(notebook: Executed) -> None:
    notebook.assert_ok("thread")
    assert stored_runs(notebook.db)["outer"].metrics["from_thread"] == 1.0


def test_with_run_inside_a_cell_is_a_completed_child_of_the_outer_run(notebook: Executed) -> None:
    notebook.assert_ok("with_run", "with_run_spanning_await")
    runs = stored_runs(notebook.db)
    for name, acc in (("nested", 0.8), ("spanning", 0.7)):
        assert runs[name].parent_id == runs["outer"].id
        assert runs[name].status == "completed"
        assert runs[name].metrics == {"acc": acc}
    assert "acc" not in runs["outer"].metrics


def test_exception_in_with_run_in_a_cell_fails_that_run_and_the_kernel_goes_on(notebook: Executed) -> None:
    (error,) = notebook.errors("raises")
    assert (error.ename, error.evalue) == ("ValueError", "bad batch")
    notebook.assert_ok("after_raise")  # the outer run is still current in the next cell
    runs = stored_runs(notebook.db)
    failing = runs["failing"]
    assert failing.status == "failed"
    assert failing.parent_id == runs["outer"].id
    assert failing.error is not None
    assert failing.error["type"] == "ValueError"
    assert failing.error["message"] == "bad batch"
    assert "bad batch" in failing.error["traceback"]
    assert failing.metrics == {"acc": 0.1}


def test_start_run_in_an_await_cell_is_current_in_the_next_cell(notebook: Executed) -> None:
    notebook.assert_ok("start_in_await", "after_start_in_await")
    runs = stored_runs(notebook.db)
    assert runs["awaited"].parent_id == runs["outer"].id
    assert runs["awaited"].metrics == {"x": 1.0}
    assert "x" not in runs["outer"].metrics


def test_end_run_in_a_cell_that_awaits_ends_the_run_it_started(notebook: Executed) -> None:
    notebook.assert_ok("end_in_await", "end_outer")
    runs = stored_runs(notebook.db)
    assert runs["awaited"].status == "completed"
    assert runs["outer"].status == "completed"
    assert runs["outer"].end_time is not None


def test_last_run_and_runs_agree_inside_the_kernel(notebook: Executed) -> None:
    notebook.assert_ok("read_back")
    seen = json.loads(notebook.stdout("read_back"))
    runs = stored_runs(notebook.db)
    assert seen["last_run"] == runs["awaited"].id == seen["runs"][0]
    assert sorted(seen["runs"]) == sorted(r.id for r in runs.values())
    assert {name: status for name, (_, status, _) in seen["by_name"].items()} == {
        "outer": "completed",
        "nested": "completed",
        "spanning": "completed",
        "failing": "failed",
        "awaited": "completed",
    }


SEPARATE_READER = """
import json, sys
import chachaml
with chachaml.with_store(sys.argv[1]):
    runs = chachaml.runs(experiment="nb")
    names = {r.id: r.name for r in runs}
    print(json.dumps({r.name: [r.status, names.get(r.parent_id)] for r in runs}))
"""


def test_separate_process_sees_every_run_with_status_and_parent(notebook: Executed) -> None:
    out = subprocess.run(
        [sys.executable, "-c", SEPARATE_READER, str(notebook.db)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert json.loads(out.stdout) == {
        "outer": ["completed", None],
        "nested": ["completed", "outer"],
        "spanning": ["completed", "outer"],
        "failing": ["failed", "outer"],
        "awaited": ["completed", "outer"],
    }


def test_runs_left_open_end_completed_at_a_normal_shutdown_after_survived_errors(notebook: Executed) -> None:
    notebook.assert_ok("left_open")
    assert notebook.errors("argparse_exit") and notebook.errors("error_in_cell")
    with chachaml.with_store(notebook.db):
        (run,) = chachaml.runs(experiment="nb_exit")
    assert (run.name, run.status, run.error) == ("left_open", "completed", None)
