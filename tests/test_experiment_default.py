"""set_experiment / CHACHAML_EXPERIMENT and the environment a run records (issue 7, SPEC 3)."""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys
import threading
from pathlib import Path

import pytest

import chachaml
from chachaml.errors import InvalidValueError


@pytest.fixture(autouse=True)
def _store() -> None:
    chachaml.use_store("runs.db")


def test_without_anything_runs_go_to_default() -> None:
    with chachaml.with_run() as run:
        pass
    assert run.experiment == "default"


def test_set_experiment_is_the_default_for_new_runs() -> None:
    chachaml.set_experiment("churn")
    a = chachaml.start_run("a")
    chachaml.end_run()
    with chachaml.with_run("b") as b:
        pass

    @chachaml.tracked
    def train() -> str:
        return chachaml.current_run().experiment  # type: ignore[union-attr]

    assert (a.experiment, b.experiment, train()) == ("churn", "churn", "churn")
    assert [e.name for e in chachaml.experiments()] == ["churn"]


def test_the_environment_variable_is_the_default_when_nothing_is_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHACHAML_EXPERIMENT", "from-env")
    with chachaml.with_run() as run:
        pass
    assert run.experiment == "from-env"
    chachaml.set_experiment("chosen")  # set_experiment beats the environment
    with chachaml.with_run() as run:
        pass
    assert run.experiment == "chosen"
    chachaml.set_experiment(None)  # back to the environment
    with chachaml.with_run() as run:
        pass
    assert run.experiment == "from-env"


def test_precedence_explicit_then_parent_then_set_experiment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHACHAML_EXPERIMENT", "env")
    chachaml.set_experiment("set")
    with chachaml.with_run("parent", experiment="explicit") as parent:
        child = chachaml.start_run("child")  # inherits its parent's experiment, not "set"
        grandchild = chachaml.start_run("grandchild")
        chachaml.end_run()
        chachaml.end_run()
        other = chachaml.start_run("other", experiment="mine")  # explicit beats the parent
        chachaml.end_run()
        top = chachaml.start_run("top", parent_id=None)  # no parent: set_experiment
        chachaml.end_run()
    by_prefix = chachaml.start_run("by-prefix", parent_id=parent.id[:8])
    chachaml.end_run()
    assert (parent.experiment, child.experiment, grandchild.experiment) == ("explicit",) * 3
    assert (other.experiment, top.experiment, by_prefix.experiment) == ("mine", "set", "explicit")


def test_set_experiment_is_process_wide_like_use_store() -> None:
    chachaml.set_experiment("shared")
    seen: list[str] = []

    def worker() -> None:
        with chachaml.with_run() as run:
            seen.append(run.experiment)

    t = threading.Thread(target=worker)
    t.start()
    t.join()
    assert seen == ["shared"]


def test_inside_with_store_set_experiment_holds_for_the_block_only(tmp_path: Path) -> None:
    chachaml.set_experiment("outside")
    with chachaml.with_store(tmp_path / "block.db"):
        with chachaml.with_run() as clean:  # a clean room: the outside choice does not apply
            pass
        chachaml.set_experiment("inside")
        with chachaml.with_run() as inside:
            pass
    with chachaml.with_run() as after:
        pass
    assert (clean.experiment, inside.experiment, after.experiment) == ("default", "inside", "outside")


@pytest.mark.parametrize("bad", ["", 5, "a\x00b"])
def test_a_bad_experiment_name_is_refused_and_changes_nothing(bad: object) -> None:
    chachaml.set_experiment("kept")
    with pytest.raises(InvalidValueError, match="experiment name"):
        chachaml.set_experiment(bad)  # type: ignore[arg-type]
    with chachaml.with_run() as run:
        pass
    assert run.experiment == "kept"


def test_a_bad_environment_variable_is_named_in_the_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHACHAML_EXPERIMENT", "x" * 300)
    with pytest.raises(InvalidValueError, match=r"\$CHACHAML_EXPERIMENT"):
        chachaml.start_run()
    assert chachaml.current_run() is None


# -- environment capture ------------------------------------------------------------------------
def test_a_run_records_the_installed_packages_and_the_command_line() -> None:
    with chachaml.with_run() as run:
        pass
    packages = chachaml.get_run(run.id).env["packages"]
    assert packages["pytest"] == importlib.metadata.version("pytest")
    assert packages["chachaml"] == importlib.metadata.version("chachaml")
    assert list(packages) == sorted(packages, key=str.lower)
    lowered = [name.lower().replace("_", "-") for name in packages]
    assert len(lowered) == len(set(lowered))  # de-duplicated
    assert chachaml.get_run(run.id).env["argv"] == sys.argv


_SCRIPT = """
import chachaml
chachaml.use_store("script.db")
with chachaml.with_run() as run:
    pass
print(run.id)
"""


def test_a_script_run_records_its_own_command_line(tmp_path: Path) -> None:
    script = tmp_path / "train.py"
    script.write_text(_SCRIPT)
    out = subprocess.run(
        [sys.executable, str(script), "--lr", "0.1"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    run_id = out.stdout.strip()
    with chachaml.with_store(tmp_path / "script.db"):
        env = chachaml.get_run(run_id).env
    assert env["argv"] == [str(script), "--lr", "0.1"]
    assert env["packages"]["chachaml"] == importlib.metadata.version("chachaml")
