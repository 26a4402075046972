"""Keras, transformers and Optuna call no callback when training raises: the run a hook started
still ends ``failed`` (``killed`` for Ctrl-C) with the error, its logged metrics kept (issue 11,
docs/adr/0027-hooks-end-runs-of-unreported-failures.md).

Each way a user's code can meet the exception is tested with the real framework on tiny data:
the ``with callback:`` form (in this process), and the exception reaching the top level of a real
script, a real ``python -i`` prompt and a real Jupyter kernel (subprocesses).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import chachaml
from _frameworks import need

pytestmark = [
    pytest.mark.frameworks,
    pytest.mark.filterwarnings(
        "ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning"
    ),
]

TESTS = Path(__file__).parent
TIMEOUT_S = 300.0

os.environ.setdefault("KERAS_BACKEND", "torch")
need("keras")
need("transformers")
need("accelerate")
optuna = need("optuna")
import _unreported_scripts as scripts  # noqa: E402
from chachaml.integrations import keras as chachaml_keras  # noqa: E402
from chachaml.integrations import optuna as chachaml_optuna  # noqa: E402
from chachaml.integrations import transformers as chachaml_transformers  # noqa: E402

optuna.logging.set_verbosity(optuna.logging.WARNING)


@pytest.fixture(autouse=True)
def _fresh_keras_names() -> Iterator[None]:
    """Keras numbers the names of the objects a process makes (``sgd``, ``sgd_1``, ...): leave
    the counters as found, so a later test module sees the names a fresh process would."""
    yield
    need("keras").backend.clear_session()


def runs_in(db: Path) -> dict[str, chachaml.Run]:
    with chachaml.with_store(db):
        return {r.name or "": r for r in chachaml.runs()}


def history(db: Path, run_id: str, key: str) -> list[int]:
    with chachaml.with_store(db):
        return [p.step for p in chachaml.metric_history(run_id, key)]


def assert_failed_with(run: chachaml.Run, message: str, status: str = "failed") -> None:
    assert run.status == status, (run.name, run.status, run.error)
    assert run.error is not None and message in run.error["message"], run.error
    assert message in run.error["traceback"], "the traceback of the exception that stopped training"


# -- the ``with`` form, in this process -----------------------------------------------------------
def test_keras_with_form_ends_the_run_failed_with_the_traceback_and_keeps_its_metrics() -> None:
    chachaml.use_store("t.db")
    callback = chachaml_keras.ChachamlCallback(name="dense")
    with pytest.raises(RuntimeError, match="step 6 exploded"), callback:
        scripts.keras_fit(callback)
    run = chachaml.get_run(callback.run_id)
    assert_failed_with(run, "step 6 exploded")
    assert run.error is not None and run.error["type"] == "RuntimeError"
    assert [p.step for p in chachaml.metric_history(run.id, "loss")] == [0], "epoch 0 was logged"
    assert run.params["epochs"] == 3
    assert chachaml.current_run() is None


def test_keras_with_form_ctrl_c_is_killed_and_a_clean_block_holds_fit_and_evaluate_in_one_run() -> None:
    chachaml.use_store("t.db")
    callback = chachaml_keras.ChachamlCallback(name="interrupted")
    with pytest.raises(KeyboardInterrupt), callback:
        scripts.keras_fit(callback, raise_type=KeyboardInterrupt)
    assert chachaml.get_run(callback.run_id).status == "killed"

    keras = need("keras")
    np = need("numpy")
    x = np.ones((8, 3), dtype="float32")
    model = keras.Sequential([keras.Input(shape=(3,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    with chachaml_keras.ChachamlCallback(name="held") as held:
        model.fit(x, x[:, :1], epochs=2, verbose=0, callbacks=[held])
        assert chachaml.get_run(held.run_id).status == "running", "the block holds the run"
        model.evaluate(x, x[:, :1], verbose=0, callbacks=[held])
    run = chachaml.get_run(held.run_id)
    assert run.status == "completed" and "test_loss" in run.metrics and "loss" in run.metrics
    assert {r.name for r in chachaml.runs()} == {"interrupted", "held"}


def test_transformers_with_form_ends_the_run_failed_with_the_traceback_and_keeps_its_metrics(
    tmp_path: Path,
) -> None:
    chachaml.use_store("t.db")
    callback = chachaml_transformers.ChachamlCallback(name="bert")
    with pytest.raises(RuntimeError, match="step 3 exploded"), callback:
        scripts.transformers_train(callback, str(tmp_path / "out"))
    run = chachaml.get_run(callback.run_id)
    assert_failed_with(run, "step 3 exploded")
    assert [p.step for p in chachaml.metric_history(run.id, "loss")] == [1, 2]
    assert run.params["model.hidden_size"] == 8
    assert chachaml.current_run() is None


def test_a_with_block_inside_a_users_run_leaves_that_run_to_the_user() -> None:
    chachaml.use_store("t.db")
    with chachaml.with_run("mine") as mine:
        callback = chachaml_keras.ChachamlCallback()
        with pytest.raises(RuntimeError, match="step 6"), callback:
            scripts.keras_fit(callback)
        assert callback.run_id == mine.id
        assert chachaml.get_run(mine.id).status == "running", "the hook's block left the user's run alone"
        chachaml.log_metric("after", 1.0)
    run = chachaml.get_run(mine.id)
    assert (run.status, run.metrics["after"]) == ("completed", 1.0)
    assert [p.step for p in chachaml.metric_history(mine.id, "loss")] == [0]
    assert len(chachaml.runs()) == 1


def test_optuna_with_form_records_the_trial_that_raised_as_a_failed_child() -> None:
    chachaml.use_store("t.db")
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    callback = chachaml_optuna.ChachamlCallback(name="search")
    with pytest.raises(ValueError, match="trial 3 exploded"), callback:
        study.optimize(scripts.optuna_objective(3), n_trials=6, callbacks=[callback])
    runs = {r.name: r for r in chachaml.runs()}
    assert_failed_with(runs["search"], "trial 3 exploded")
    assert_failed_with(runs["trial 3"], "trial 3 exploded")
    assert runs["trial 3"].parent_id == runs["search"].id and "x" in runs["trial 3"].params
    assert [runs[f"trial {n}"].status for n in range(3)] == ["completed"] * 3
    assert "trial 4" not in runs


# -- the exception reaches the top level: real scripts, a real prompt -----------------------------
def run_python(tmp_path: Path, source: str, *, prompt: bool = False) -> subprocess.CompletedProcess[str]:
    """Run ``source`` as a script (or typed line by line at a ``python -i`` prompt) in tmp_path."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")])}
    env.pop("PYTHONINSPECT", None)
    source = textwrap.dedent(source)
    if prompt:
        args, stdin = [sys.executable, "-i", "-q"], source
    else:
        (tmp_path / "script.py").write_text(source)
        args, stdin = [sys.executable, "script.py"], None
    return subprocess.run(
        args,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        cwd=tmp_path,
        env=env,
        check=False,
    )


SETUP = """
import chachaml, _unreported_scripts as scripts
chachaml.use_store("runs.db")
"""


@pytest.mark.slow
def test_keras_fit_raising_out_of_a_script_fails_its_run_with_that_error(tmp_path: Path) -> None:
    proc = run_python(
        tmp_path,
        SETUP
        + """
from chachaml.integrations.keras import ChachamlCallback
scripts.keras_fit(ChachamlCallback(name="dense"))
""",
    )
    assert proc.returncode == 1 and "step 6 exploded" in proc.stderr, proc.stderr[-2000:]
    run = runs_in(tmp_path / "runs.db")["dense"]
    assert_failed_with(run, "step 6 exploded")
    assert run.error is not None and run.error["type"] == "RuntimeError"
    assert history(tmp_path / "runs.db", run.id, "loss") == [0]


@pytest.mark.slow
def test_a_training_error_caught_by_the_script_still_fails_the_run_at_a_normal_exit(tmp_path: Path) -> None:
    proc = run_python(
        tmp_path,
        SETUP
        + """
from chachaml.integrations.keras import ChachamlCallback
from chachaml.integrations.transformers import ChachamlCallback as HFCallback
try:
    scripts.keras_fit(ChachamlCallback(name="dense"))
except RuntimeError:
    pass
try:
    scripts.transformers_train(HFCallback(name="bert"), "out")
except RuntimeError:
    pass
done = chachaml.start_run("unrelated")  # an ordinary run left open: completed, as always
""",
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    runs = runs_in(tmp_path / "runs.db")
    for name in ("dense", "bert"):
        assert_failed_with(runs[name], "the process exited while a training was still running")
    assert (runs["unrelated"].status, runs["unrelated"].error) == ("completed", None)


@pytest.mark.slow
def test_transformers_training_raising_out_of_a_script_fails_its_run(tmp_path: Path) -> None:
    proc = run_python(
        tmp_path,
        SETUP
        + """
from chachaml.integrations.transformers import ChachamlCallback
scripts.transformers_train(ChachamlCallback(name="bert"), "out", raise_type=KeyboardInterrupt)
""",
    )
    assert proc.returncode != 0 and "step 3 exploded" in proc.stderr, proc.stderr[-2000:]
    run = runs_in(tmp_path / "runs.db")["bert"]
    assert_failed_with(run, "step 3 exploded", status="killed")
    assert history(tmp_path / "runs.db", run.id, "loss") == [1, 2]


@pytest.mark.slow
@pytest.mark.parametrize(("n_jobs", "fail_at"), [(1, 3), (2, 3), (1, 0)])
def test_optuna_optimize_raising_out_of_a_script_fails_the_study_run_and_logs_the_trial(
    tmp_path: Path, n_jobs: int, fail_at: int
) -> None:
    # 20 trials, not 6: with n_jobs > 1 optuna never calls result() on the futures still running
    # when it submits the last trial, so a failing trial among those was swallowed (exit 0) when
    # it ended after a later one (1 run in 3 here); with 20 the failure is seen long before.
    proc = run_python(
        tmp_path,
        SETUP
        + f"""
import optuna
from chachaml.integrations.optuna import ChachamlCallback
optuna.logging.set_verbosity(optuna.logging.WARNING)
study = optuna.create_study()
callback = ChachamlCallback(name="search")
study.optimize(scripts.optuna_objective({fail_at}), n_trials=12, n_jobs={n_jobs}, callbacks=[callback])
""",
    )
    assert proc.returncode == 1 and f"trial {fail_at} exploded" in proc.stderr, proc.stderr[-2000:]
    runs = runs_in(tmp_path / "runs.db")
    assert_failed_with(runs["search"], f"trial {fail_at} exploded")
    assert_failed_with(runs[f"trial {fail_at}"], f"trial {fail_at} exploded")
    assert runs[f"trial {fail_at}"].parent_id == runs["search"].id
    others = [r for name, r in runs.items() if name.startswith("trial ") and name != f"trial {fail_at}"]
    assert len(others) >= fail_at // n_jobs and all(r.status == "completed" for r in others)


@pytest.mark.slow
def test_a_training_raising_out_of_a_thread_fails_its_run_when_the_thread_ends(tmp_path: Path) -> None:
    proc = run_python(
        tmp_path,
        SETUP
        + """
import threading
from chachaml.integrations.keras import ChachamlCallback
cb = ChachamlCallback(name="dense")
worker = threading.Thread(target=scripts.keras_fit, args=(cb,))
worker.start()
worker.join()
run = chachaml.get_run(cb.run_id)
print("THREAD", run.status, run.error["message"])  # before the process exits
""",
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "THREAD failed step 6 exploded" in proc.stdout, (proc.stdout, proc.stderr[-2000:])
    assert "step 6 exploded" in proc.stderr, "the thread's traceback still prints"


@pytest.mark.slow
def test_at_a_python_prompt_the_run_is_failed_as_soon_as_the_error_is_shown(tmp_path: Path) -> None:
    """The prompt goes on after the traceback; the next line already sees the run failed (and
    an unrelated error at the prompt later changes nothing)."""
    proc = run_python(
        tmp_path,
        SETUP
        + """
from chachaml.integrations.keras import ChachamlCallback
import optuna; optuna.logging.set_verbosity(optuna.logging.WARNING)
from chachaml.integrations.optuna import ChachamlCallback as OptunaCallback
cb = ChachamlCallback(name="dense")
scripts.keras_fit(cb)
print("KERAS", chachaml.get_run(cb.run_id).status)
oc = OptunaCallback(name="search")
optuna.create_study().optimize(scripts.optuna_objective(2), n_trials=4, callbacks=[oc])
print("OPTUNA", chachaml.get_run(oc.run_id).status)
1 / 0
print("AFTER", chachaml.get_run(cb.run_id).error["message"])
""",
        prompt=True,
    )
    assert "step 6 exploded" in proc.stderr and "ZeroDivisionError" in proc.stderr, proc.stderr[-3000:]
    assert "KERAS failed" in proc.stdout and "OPTUNA failed" in proc.stdout, (
        proc.stdout,
        proc.stderr[-3000:],
    )
    assert "AFTER step 6 exploded" in proc.stdout
    runs = runs_in(tmp_path / "runs.db")
    assert_failed_with(runs["dense"], "step 6 exploded")
    assert_failed_with(runs["trial 2"], "trial 2 exploded")


# -- the exception reaches the top level: a real Jupyter kernel ---------------------------------
@pytest.mark.slow
def test_in_a_jupyter_kernel_a_cell_whose_training_raised_leaves_its_run_failed(tmp_path: Path) -> None:
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    cells: list[tuple[str, list[str]]] = [
        (f"import sys; sys.path.insert(0, {str(TESTS)!r})\n" + SETUP, []),
        (
            "from chachaml.integrations.keras import ChachamlCallback\n"
            "cb = ChachamlCallback(name='dense')\nscripts.keras_fit(cb)",
            ["raises-exception"],
        ),
        (
            "import json\nrun = chachaml.get_run(cb.run_id)\n"
            "print(json.dumps([run.status, run.error['message'], chachaml.current_run() is None]))",
            [],
        ),
        ("1 / 0", ["raises-exception"]),
        (
            "import optuna\nfrom chachaml.integrations.optuna import ChachamlCallback as OC\n"
            "oc = OC(name='search')\n"
            "optuna.create_study().optimize(scripts.optuna_objective(1), n_trials=3, callbacks=[oc])",
            ["raises-exception"],
        ),
        ("print(json.dumps([chachaml.get_run(oc.run_id).status, chachaml.get_run(cb.run_id).status]))", []),
    ]
    nb = nbformat.v4.new_notebook()
    for source, tags in cells:
        nb.cells.append(nbformat.v4.new_code_cell(source, metadata={"tags": tags}))
    client = nbclient.NotebookClient(
        nb,
        kernel_name="python3",
        timeout=TIMEOUT_S,
        startup_timeout=120,
        allow_errors=True,
        resources={"metadata": {"path": str(tmp_path)}},
    )
    client.execute()

    def out(i: int) -> Any:
        errors = [o for o in nb.cells[i].outputs if o.output_type == "error"]
        assert not errors, "\n".join("\n".join(e.get("traceback", [])) for e in errors)
        return json.loads(
            "".join(o.get("text", "") for o in nb.cells[i].outputs if o.output_type == "stream")
        )

    assert [o.evalue for o in nb.cells[1].outputs if o.output_type == "error"] == ["step 6 exploded"]
    assert out(2) == ["failed", "step 6 exploded", True], "failed in the next cell, not at kernel exit"
    assert out(5) == ["failed", "failed"], "the unrelated error in between changed nothing"
    runs = runs_in(tmp_path / "runs.db")
    assert_failed_with(runs["dense"], "step 6 exploded")
    assert history(tmp_path / "runs.db", runs["dense"].id, "loss") == [0]
    assert_failed_with(runs["search"], "trial 1 exploded")
