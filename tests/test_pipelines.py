"""Pipelines (issue 11 part 3; SPEC section 11): run_pipeline, resume_pipeline, pipelines,
get_pipeline, with real runs in a SQLite file and real subprocesses for other processes."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import chachaml
from chachaml.client import Client
from chachaml.errors import InvalidValueError, NotFoundError, RunStateError
from conftest import Clock


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "pipes.db"
    chachaml.use_store(path)
    yield path


class Calls:
    """Step callables that record what they received."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, Any]] = []
        self.fail_train = True

    def load(self, prev: Any) -> Any:
        self.seen.append(("load", prev))
        chachaml.log_metric("rows", 100)
        return [1, 2, 3]

    def train(self, prev: Any) -> Any:
        self.seen.append(("train", prev))
        if self.fail_train:
            raise ValueError("diverged")
        chachaml.log_param("n", len(prev))
        return sum(prev)

    def evaluate(self, prev: Any) -> Any:
        self.seen.append(("evaluate", prev))
        return {"score": prev / 10}

    def steps(self) -> list[tuple[str, Any]]:
        return [("load", self.load), ("train", self.train), ("evaluate", self.evaluate)]


def test_run_pipeline_chains_results_through_child_runs(db: Path) -> None:
    calls = Calls()
    calls.fail_train = False
    result = chachaml.run_pipeline("etl", calls.steps())
    assert result == {"score": 0.6}
    assert calls.seen == [("load", None), ("train", [1, 2, 3]), ("evaluate", 6)]

    (p,) = chachaml.pipelines()
    assert (p.name, p.status) == ("etl", "completed")
    assert [(s.name, s.status) for s in p.steps] == [
        ("load", "completed"),
        ("train", "completed"),
        ("evaluate", "completed"),
    ]
    pipeline_run = chachaml.get_run(p.id)
    assert (pipeline_run.name, pipeline_run.status, pipeline_run.parent_id) == ("etl", "completed", None)
    children = {r.name: r for r in chachaml.runs(parent_id=p.id)}
    assert set(children) == {"load", "train", "evaluate"}
    assert [children[s.name].id for s in p.steps] == [s.run_id for s in p.steps]
    assert children["load"].metrics == {"rows": 100.0}  # logged inside the step: to the step's run
    assert children["train"].params == {"n": 3}
    assert all(r.status == "completed" and r.experiment == pipeline_run.experiment for r in children.values())
    assert chachaml.current_run() is None


def test_a_failing_step_fails_itself_and_the_pipeline_skips_the_rest_and_reraises(db: Path) -> None:
    calls = Calls()
    with pytest.raises(ValueError, match="diverged") as info:
        chachaml.run_pipeline("etl", calls.steps())
    p = chachaml.pipelines()[0]
    assert any(p.id[:8] in note and "resume_pipeline" in note for note in info.value.__notes__)
    assert p.status == "failed"
    assert [(s.name, s.status) for s in p.steps] == [
        ("load", "completed"),
        ("train", "failed"),
        ("evaluate", "skipped"),
    ]
    assert p.steps[2].run_id is None
    failed = chachaml.get_run(p.steps[1].run_id or "")
    assert failed.status == "failed" and failed.error is not None and failed.error["type"] == "ValueError"
    assert chachaml.get_run(p.id).status == "failed"
    assert [name for name, _ in calls.seen] == ["load", "train"]
    assert {r.name for r in chachaml.runs(parent_id=p.id)} == {"load", "train"}  # no run for skipped


def test_resume_pipeline_reruns_from_the_failed_step_with_the_kept_result(db: Path) -> None:
    calls = Calls()
    with pytest.raises(ValueError):
        chachaml.run_pipeline("etl", calls.steps())
    p = chachaml.pipelines()[0]
    first_train = p.steps[1].run_id
    calls.fail_train = False
    calls.seen.clear()

    assert chachaml.resume_pipeline(p.id[:8]) == {"score": 0.6}
    assert calls.seen == [("train", [1, 2, 3]), ("evaluate", 6)]  # load kept its result, not rerun
    again = chachaml.get_pipeline(p.id)
    assert again.status == "completed" and all(s.status == "completed" for s in again.steps)
    assert again.steps[0].run_id == p.steps[0].run_id and again.steps[1].run_id != first_train
    assert chachaml.get_run(p.id).status == "completed"  # the same pipeline run, resumed
    assert chachaml.get_run(first_train or "").status == "failed"  # the failed attempt stays
    assert len(chachaml.runs(parent_id=p.id)) == 4
    with pytest.raises(RunStateError, match="completed; nothing to resume"):
        chachaml.resume_pipeline(p.id)


def test_resume_with_fixed_callables_and_a_failure_again(db: Path) -> None:
    calls = Calls()
    with pytest.raises(ValueError):
        chachaml.run_pipeline("etl", calls.steps())
    pid = chachaml.pipelines()[0].id
    with pytest.raises(ValueError):  # still broken: fails again, still resumable
        chachaml.resume_pipeline(pid)
    assert chachaml.get_pipeline(pid).status == "failed"
    with pytest.raises(InvalidValueError, match="same steps in the same order"):
        chachaml.resume_pipeline(
            pid, steps=[("load", calls.load), ("fit", calls.train), ("evaluate", calls.evaluate)]
        )

    def fixed(prev: Any) -> Any:
        return len(prev)

    steps = [("load", calls.load), ("train", fixed), ("evaluate", calls.evaluate)]
    assert chachaml.resume_pipeline(pid, steps=steps) == {"score": 0.3}


def test_keyboard_interrupt_kills_the_step_and_the_pipeline(db: Path) -> None:
    def interrupted(prev: Any) -> Any:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        chachaml.run_pipeline("p", [("a", lambda prev: 1), ("b", interrupted), ("c", lambda prev: prev)])
    p = chachaml.pipelines()[0]
    assert p.status == "killed" and [s.status for s in p.steps] == ["completed", "killed", "skipped"]
    assert chachaml.get_run(p.steps[1].run_id or "").status == "killed"
    assert chachaml.resume_pipeline(p.id, steps=[("a", str), ("b", lambda prev: prev + 1), ("c", str)]) == "2"


@pytest.mark.parametrize(
    ("steps", "message"),
    [
        ([], "non-empty list"),
        ("load", "non-empty list"),
        ([("load",)], r"step 0 must be a \(name, callable\) pair"),
        ([("load", len), ("load", len)], "two steps are named 'load'"),
        ([("load", 3)], "step 'load' must be a callable"),
        ([("", len)], "the name of step 0 must not be empty"),
    ],
)
def test_bad_steps_are_refused_before_any_run(db: Path, steps: Any, message: str) -> None:
    with pytest.raises(InvalidValueError, match=message):
        chachaml.run_pipeline("p", steps)
    assert len(chachaml.runs()) == 0 and chachaml.pipelines() == []


def test_pipelines_are_newest_first_and_get_pipeline_reads_one(db: Path, clock: Clock) -> None:
    clock.step = 1  # every pipeline starts in its own millisecond
    for name in ("a", "b", "a"):
        chachaml.run_pipeline(name, [("only", lambda prev: prev)])
    listed = chachaml.pipelines()
    assert [p.name for p in listed] == ["a", "b", "a"] and listed[0].created > listed[-1].created
    assert [p.id for p in chachaml.pipelines(name="a")] == [listed[0].id, listed[2].id]
    assert chachaml.pipelines(limit=1) == listed[:1]
    got = chachaml.get_pipeline(listed[1].id[:10])
    assert (got.id, got.name, got.status) == (listed[1].id, "b", "completed")
    assert got.step("only").run_id is not None
    assert chachaml.get_pipeline(chachaml.get_run(got.id)) == got  # the pipeline's run names it too
    with pytest.raises(NotFoundError, match="no pipeline has the id"):
        chachaml.get_pipeline("ffffffff")
    with pytest.raises(NotFoundError, match="unknown"):
        chachaml.resume_pipeline("unknown")


def test_inside_a_run_the_pipeline_is_its_child(db: Path) -> None:
    with chachaml.with_run("outer", experiment="exp") as outer:
        chachaml.run_pipeline("p", [("s", lambda prev: 1)])
        assert chachaml.current_run().id == outer.id  # type: ignore[union-attr]
    p = chachaml.pipelines()[0]
    run = chachaml.get_run(p.id)
    assert run.parent_id == outer.id and run.experiment == "exp"


def test_the_experiment_of_a_pipeline(db: Path) -> None:
    chachaml.run_pipeline("p", [("s", lambda prev: 1)], experiment="etl")
    chachaml.set_experiment("chosen")
    chachaml.run_pipeline("q", [("s", lambda prev: 1)])
    p, q = chachaml.pipelines()[1], chachaml.pipelines()[0]
    assert chachaml.get_run(p.id).experiment == "etl"
    assert {r.experiment for r in chachaml.runs(parent_id=p.id)} == {"etl"}
    assert chachaml.get_run(q.id).experiment == "chosen"


def test_the_client_runs_pipelines_without_any_context(tmp_path: Path) -> None:
    with Client(tmp_path / "c.db") as c:
        seen: list[Any] = []

        def step(prev: Any) -> Any:
            seen.append(prev)
            return (prev or 0) + 1

        assert c.run_pipeline("p", [("a", step), ("b", step)], experiment="x") == 2
        (p,) = c.pipelines()
        assert seen == [None, 1] and p.status == "completed"
        assert {r.status for r in c.runs(parent_id=p.id)} == {"completed"}

        def boom(prev: Any) -> Any:
            raise RuntimeError("no")

        with pytest.raises(RuntimeError):
            c.run_pipeline("q", [("a", step), ("b", boom)])
        q = c.pipelines(name="q")[0]
        assert c.get_run(q.steps[1].run_id).error["type"] == "RuntimeError"  # type: ignore[index]
        assert c.resume_pipeline(q.id, steps=[("a", step), ("b", step)]) == 2


_OTHER_PROCESS = """
import os, signal, sys
import chachaml
chachaml.use_store(sys.argv[1])
def boom(prev):
    raise ValueError("in the child")
def die(prev):
    os.kill(os.getpid(), signal.SIGKILL)
how = sys.argv[2]
try:
    chachaml.run_pipeline(how, [("first", lambda prev: 1), ("second", boom if how == "fails" else die)])
except ValueError:
    pass
"""


def _other_process(db: Path, how: str) -> int:
    script = db.parent / "other.py"
    script.write_text(textwrap.dedent(_OTHER_PROCESS))
    return subprocess.run([sys.executable, str(script), str(db), how], timeout=120).returncode


@pytest.mark.slow
def test_a_pipeline_of_another_process_cannot_be_resumed_here(db: Path) -> None:
    assert _other_process(db, "fails") == 0
    (p,) = chachaml.pipelines()
    assert p.status == "failed" and [s.status for s in p.steps] == ["completed", "failed"]
    with pytest.raises(RunStateError, match="another process") as info:
        chachaml.resume_pipeline(p.id)
    assert "run_pipeline('fails', steps)" in str(info.value)


@pytest.mark.slow
def test_a_pipeline_whose_process_died_reads_as_killed(db: Path) -> None:
    assert _other_process(db, "dies") == -9
    (p,) = chachaml.pipelines()
    assert p.status == "killed" and [s.status for s in p.steps] == ["completed", "killed"]
    assert chachaml.get_run(p.id).status == "killed"


def test_entities_round_trip_and_print(db: Path) -> None:
    chachaml.run_pipeline("etl", [("load", lambda prev: 1), ("train", lambda prev: 2)])
    p = chachaml.pipelines()[0]
    assert chachaml.Pipeline.from_dict(p.to_dict()) == p
    assert chachaml.PipelineStep.from_dict(p.steps[0].to_dict()) == p.steps[0]
    assert repr(p) == f"<Pipeline 'etl' {p.id[:8]} completed: load=completed, train=completed>"
    assert repr(p.steps[0]) == f"<PipelineStep 'load' completed run={(p.steps[0].run_id or '')[:8]}>"
    assert "<table>" in p._repr_html_() and "train" in p._repr_html_()
    assert p.run_id == p.id
    with pytest.raises(KeyError, match="no step 'x'"):
        p.step("x")
