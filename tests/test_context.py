"""The context model in one process (SPEC section 2): stores, run stacks, threads, asyncio.

Every test uses a real SQLite file in its own ``tmp_path`` and reads outcomes back from the store,
never from the objects the verbs returned alone.
"""

from __future__ import annotations

import asyncio
import contextvars
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

import chachaml
from chachaml import context
from chachaml.context import ContextExecutor, bind
from chachaml.errors import ChachamlError, InvalidValueError, NoActiveRunError, RunStateError


@pytest.fixture
def db(tmp_path: Path) -> Path:
    """A fresh store file made the process default (the REPL / notebook layer)."""
    path = tmp_path / "runs.db"
    chachaml.use_store(path)
    return path


def read_run(path: Path, run_id: str) -> chachaml.Run:
    """The run as another reader of the file sees it (a separate, short-lived store)."""
    with chachaml.with_store(path):
        return chachaml.get_run(run_id)


def read_runs(path: Path) -> list[chachaml.Run]:
    with chachaml.with_store(path):
        return list(chachaml.runs())


def history(path: Path, run_id: str, key: str) -> list[tuple[int, float]]:
    with chachaml.with_store(path):
        return [(m.step, m.value) for m in chachaml.metric_history(run_id, key)]


def in_thread(fn: Callable[[], Any]) -> Any:
    """Run ``fn`` in a plain ``threading.Thread``; return its result or raise its exception."""
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["result"] = fn()
        except BaseException as exc:
            box["error"] = exc

    t = threading.Thread(target=target)
    t.start()
    t.join()
    if "error" in box:
        raise box["error"]
    return box["result"]


def current_id() -> str | None:
    run = chachaml.current_run()
    return None if run is None else run.id


# -- stores -------------------------------------------------------------------------------------
def test_current_store_defaults_to_chachaml_db_in_cwd_without_creating_it(tmp_path: Path) -> None:
    store = chachaml.current_store()
    assert store.uri.endswith(str(tmp_path / "chachaml.db"))
    assert not (tmp_path / "chachaml.db").exists()


def test_chachaml_store_environment_variable_names_the_default_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CHACHAML_STORE", str(tmp_path / "env.db"))
    with chachaml.with_run("r"):
        chachaml.log_metric("m", 1.0)
    assert (tmp_path / "env.db").exists()
    assert not (tmp_path / "chachaml.db").exists()


def test_use_store_twice_with_the_same_path_returns_the_same_store(tmp_path: Path) -> None:
    first = chachaml.use_store(tmp_path / "a.db")
    second = chachaml.use_store(str(tmp_path / "a.db"))
    assert first is second
    assert chachaml.current_store() is first


def test_with_store_yields_the_current_store_and_restores_the_process_default(
    db: Path, tmp_path: Path
) -> None:
    outer = chachaml.current_store()
    with chachaml.with_store(tmp_path / "b.db") as inner:
        assert chachaml.current_store() is inner
        assert inner is not outer
    assert chachaml.current_store() is outer


def test_with_store_closes_a_store_it_opened_from_a_path(tmp_path: Path) -> None:
    with chachaml.with_store(tmp_path / "b.db") as store:
        pass
    assert store.closed


def test_with_store_leaves_a_store_object_passed_in_open(tmp_path: Path) -> None:
    store = chachaml.use_store(tmp_path / "a.db")
    with chachaml.with_store(store) as inner:
        assert inner is store
    assert not store.closed


def test_process_level_run_is_not_current_inside_with_store(db: Path, tmp_path: Path) -> None:
    outer = chachaml.start_run("outer")
    with chachaml.with_store(tmp_path / "b.db"):
        assert chachaml.current_run() is None
        with pytest.raises(NoActiveRunError):
            chachaml.log_metric("m", 1.0)
    assert current_id() == outer.id
    assert read_run(db, outer.id).metrics == {}


def test_scoped_run_is_not_current_inside_with_store(db: Path, tmp_path: Path) -> None:
    with chachaml.with_run("outer") as outer:
        with chachaml.with_store(tmp_path / "b.db"):
            assert chachaml.current_run() is None
            with pytest.raises(NoActiveRunError):
                chachaml.log_param("p", 1)
        assert current_id() == outer.id


def test_start_run_inside_with_store_goes_on_the_blocks_stack_not_the_process_stack(
    db: Path, tmp_path: Path
) -> None:
    outer = chachaml.start_run("outer")
    with chachaml.with_store(tmp_path / "b.db"):
        inner = chachaml.start_run("inner")
        assert current_id() == inner.id
        assert inner.parent_id is None  # the outer run lives in another store
        chachaml.log_metric("m", 1.0)
    assert current_id() == outer.id
    assert [r.id for r in read_runs(tmp_path / "b.db")] == [inner.id]
    assert inner.id not in {r.id for r in read_runs(db)}


def test_with_store_ends_runs_it_started_and_left_open(tmp_path: Path) -> None:
    path = tmp_path / "b.db"
    with chachaml.with_store(path):
        first = chachaml.start_run("first")
        second = chachaml.start_run("second")
    assert chachaml.current_run() is None
    assert read_run(path, first.id).status == "completed"
    assert read_run(path, second.id).status == "completed"
    assert read_run(path, second.id).parent_id == first.id


def test_with_store_left_by_an_exception_fails_the_runs_it_left_open(tmp_path: Path) -> None:
    path = tmp_path / "b.db"
    with pytest.raises(ZeroDivisionError), chachaml.with_store(path):
        run = chachaml.start_run("doomed")
        1 / 0  # noqa: B018
    stored = read_run(path, run.id)
    assert stored.status == "failed"
    assert stored.error is not None and stored.error["type"] == "ZeroDivisionError"


def test_with_store_does_not_end_a_run_that_was_ended_inside_it(tmp_path: Path) -> None:
    path = tmp_path / "b.db"
    with chachaml.with_store(path):
        run = chachaml.start_run("r")
        chachaml.end_run("failed")
    assert read_run(path, run.id).status == "failed"


def test_use_store_inside_with_store_rebinds_the_block_not_the_process_default(
    db: Path, tmp_path: Path
) -> None:
    default = chachaml.current_store()
    with chachaml.with_store(tmp_path / "b.db"):
        rebound = chachaml.use_store(tmp_path / "c.db")
        assert chachaml.current_store() is rebound
        with chachaml.with_run("in-c") as run:
            chachaml.log_metric("m", 1.0)
    assert chachaml.current_store() is default
    assert context._process_store is default
    assert [r.id for r in read_runs(tmp_path / "c.db")] == [run.id]
    assert read_runs(db) == []


def test_use_store_inside_with_store_does_not_leak_when_no_process_default_was_set(
    tmp_path: Path,
) -> None:
    with chachaml.with_store(tmp_path / "b.db"):
        chachaml.use_store(tmp_path / "c.db")
    assert context._process_store is None
    assert chachaml.current_store().uri.endswith(str(tmp_path / "chachaml.db"))


def test_end_run_inside_with_store_does_not_end_the_outside_run(db: Path, tmp_path: Path) -> None:
    outer = chachaml.start_run("outer")
    with chachaml.with_store(tmp_path / "b.db"):
        assert chachaml.end_run() is None
    assert current_id() == outer.id
    assert read_run(db, outer.id).status == "running"


# -- the process stack ----------------------------------------------------------------------------
def test_start_run_is_current_until_end_run(db: Path) -> None:
    run = chachaml.start_run("r")
    assert run.status == "running"
    assert current_id() == run.id
    chachaml.log_param("lr", 0.1)
    chachaml.log_metric("loss", 0.5)
    assert chachaml.end_run() is None  # like MLflow's end_run: nothing to return
    assert chachaml.current_run() is None
    assert chachaml.get_run(run.id).status == "completed"
    stored = read_run(db, run.id)
    assert stored.params == {"lr": 0.1}
    assert stored.metrics == {"loss": 0.5}
    assert stored.end_time is not None


def test_end_run_with_nothing_open_returns_none(db: Path) -> None:
    assert chachaml.end_run() is None


def test_end_run_with_a_status_records_it(db: Path) -> None:
    run = chachaml.start_run("r")
    chachaml.end_run("killed")
    assert read_run(db, run.id).status == "killed"


def test_end_run_with_a_status_that_is_not_final_raises_and_ends_nothing(db: Path) -> None:
    run = chachaml.start_run("r")
    with pytest.raises(InvalidValueError, match="completed"):
        chachaml.end_run("running")
    assert current_id() == run.id
    assert read_run(db, run.id).status == "running"


def test_nested_start_run_is_a_child_and_end_run_pops_it(db: Path) -> None:
    parent = chachaml.start_run("parent")
    child = chachaml.start_run("child")
    assert child.parent_id == parent.id
    assert current_id() == child.id
    chachaml.end_run()
    assert current_id() == parent.id
    assert read_run(db, child.id).status == "completed"
    assert read_run(db, parent.id).status == "running"
    chachaml.end_run()
    assert chachaml.current_run() is None


def test_start_run_with_parent_id_none_is_a_top_level_run(db: Path) -> None:
    chachaml.start_run("parent")
    loose = chachaml.start_run("loose", parent_id=None)
    assert loose.parent_id is None


def test_start_run_with_an_explicit_parent_id_prefix_nests_under_that_run(db: Path) -> None:
    first = chachaml.start_run("first")
    chachaml.end_run()
    child = chachaml.start_run("child", parent_id=first.id[:10])
    assert child.parent_id == first.id


def test_start_run_with_an_unknown_parent_id_raises_and_pushes_nothing(db: Path) -> None:
    with pytest.raises(chachaml.RunNotFoundError):
        chachaml.start_run("orphan", parent_id="f" * 32)
    assert chachaml.current_run() is None


def test_start_run_records_experiment_and_tags(db: Path) -> None:
    run = chachaml.start_run("r", experiment="exp-a", tags={"team": "nlp", "seed": 3})
    stored = read_run(db, run.id)
    assert stored.experiment == "exp-a"
    assert stored.tags == {"team": "nlp", "seed": "3"}


def test_start_run_inside_with_run_is_a_child_ended_with_the_block(db: Path) -> None:
    before = chachaml.start_run("process-level")
    with chachaml.with_run("block") as block:
        child = chachaml.start_run("child")
        assert child.parent_id == block.id
        assert current_id() == child.id
    assert current_id() == before.id
    assert read_run(db, child.id).status == "completed"
    assert read_run(db, block.id).status == "completed"
    assert read_run(db, before.id).status == "running"


def test_end_run_inside_with_run_ends_the_child_it_started_then_nothing(db: Path) -> None:
    with chachaml.with_run("block") as block:
        child = chachaml.start_run("child")
        chachaml.end_run()
        assert read_run(db, child.id).status == "completed"
        assert current_id() == block.id
        chachaml.end_run()  # nothing pushed in this layer any more: does nothing
        assert current_id() == block.id
        assert read_run(db, block.id).status == "running"
    assert read_run(db, child.id).status == "completed"


def test_end_run_inside_with_run_does_not_end_the_blocks_run_or_the_process_run(db: Path) -> None:
    outer = chachaml.start_run("outer")
    with chachaml.with_run("block") as block:
        assert chachaml.end_run() is None
        assert current_id() == block.id
        chachaml.log_metric("m", 1.0)
    assert read_run(db, block.id).status == "completed"
    assert read_run(db, block.id).metrics == {"m": 1.0}
    assert read_run(db, outer.id).status == "running"
    assert current_id() == outer.id


def test_resume_with_run_id_sets_status_back_to_running_and_keeps_logging(db: Path) -> None:
    run = chachaml.start_run("r")
    chachaml.log_metric("loss", 0.5)
    chachaml.end_run()
    assert read_run(db, run.id).status == "completed"
    resumed = chachaml.start_run(run_id=run.id)
    assert resumed.id == run.id
    assert resumed.status == "running"
    assert read_run(db, run.id).end_time is None
    chachaml.log_metric("loss", 0.4)
    chachaml.end_run()
    assert read_run(db, run.id).status == "completed"
    assert history(db, run.id, "loss") == [(0, 0.5), (1, 0.4)]


def test_resume_accepts_a_unique_id_prefix(db: Path) -> None:
    run = chachaml.start_run("r")
    chachaml.end_run("failed")
    with chachaml.with_run(run_id=run.id[:8]) as resumed:
        assert resumed.id == run.id
        chachaml.log_param("again", True)
    stored = read_run(db, run.id)
    assert stored.status == "completed"
    assert stored.error is None
    assert stored.params == {"again": True}


# -- with_run -----------------------------------------------------------------------------------
def test_with_run_is_current_only_inside_the_block_and_completes(db: Path) -> None:
    with chachaml.with_run("r", experiment="e") as run:
        assert current_id() == run.id
        chachaml.log_metric("m", 2.0)
    assert chachaml.current_run() is None
    stored = read_run(db, run.id)
    assert (stored.status, stored.experiment, stored.name) == ("completed", "e", "r")
    assert stored.metrics == {"m": 2.0}


def test_nested_with_run_is_a_child_and_the_outer_run_is_current_again_after_it(db: Path) -> None:
    outer_process = chachaml.start_run("process")
    with chachaml.with_run("outer") as outer:
        assert outer.parent_id == outer_process.id
        with chachaml.with_run("inner") as inner:
            assert inner.parent_id == outer.id
        assert current_id() == outer.id
    assert current_id() == outer_process.id


def test_exception_in_with_run_marks_it_failed_with_type_message_traceback_and_reraises(db: Path) -> None:
    def explode() -> None:
        raise ValueError("bad shape (3, 4)")

    with pytest.raises(ValueError, match=r"bad shape \(3, 4\)"), chachaml.with_run("r") as run:
        explode()
    stored = read_run(db, run.id)
    assert stored.status == "failed"
    assert stored.end_time is not None
    assert stored.error is not None
    assert stored.error["type"] == "ValueError"
    assert stored.error["message"] == "bad shape (3, 4)"
    assert "explode" in stored.error["traceback"]
    assert "Traceback" in stored.error["traceback"]
    assert chachaml.current_run() is None


def test_exception_in_inner_with_run_fails_it_and_leaves_the_outer_block_running(db: Path) -> None:
    with chachaml.with_run("outer") as outer:
        with pytest.raises(RuntimeError), chachaml.with_run("inner") as inner:
            raise RuntimeError("boom")
        assert current_id() == outer.id
        chachaml.log_metric("after", 1.0)
    assert read_run(db, inner.id).status == "failed"
    assert read_run(db, outer.id).status == "completed"
    assert read_run(db, outer.id).metrics == {"after": 1.0}


def test_keyboard_interrupt_in_with_run_marks_it_killed(db: Path) -> None:
    with pytest.raises(KeyboardInterrupt), chachaml.with_run("r") as run:
        raise KeyboardInterrupt
    stored = read_run(db, run.id)
    assert stored.status == "killed"
    assert stored.error is not None and stored.error["type"] == "KeyboardInterrupt"


def test_with_run_ends_open_start_runs_with_the_blocks_failure(db: Path) -> None:
    with pytest.raises(OSError), chachaml.with_run("block") as block:
        child = chachaml.start_run("child")
        raise OSError("disk full")
    assert read_run(db, block.id).status == "failed"
    assert read_run(db, child.id).status == "failed"


def test_with_run_as_decorator_makes_each_call_a_run_named_after_the_function(db: Path) -> None:
    @chachaml.with_run(experiment="deco")
    def train(lr: float) -> float:
        chachaml.log_param("lr", lr)
        return lr * 2

    assert train(0.1) == 0.2
    assert train(0.3) == 0.6
    found = read_runs(db)
    assert len(found) == 2
    assert {r.name for r in found} == {"train"}
    assert {r.experiment for r in found} == {"deco"}
    assert sorted(r.params["lr"] for r in found) == [0.1, 0.3]
    assert {r.status for r in found} == {"completed"}
    assert train.__name__ == "train"


def test_with_run_as_decorator_keeps_an_explicit_name(db: Path) -> None:
    @chachaml.with_run("named")
    def f() -> None:
        pass

    f()
    assert [r.name for r in read_runs(db)] == ["named"]


def test_with_run_decorator_on_a_failing_function_marks_that_call_failed(db: Path) -> None:
    @chachaml.with_run()
    def step() -> None:
        raise TypeError("nope")

    with pytest.raises(TypeError):
        step()
    (run,) = read_runs(db)
    assert run.status == "failed"
    assert run.error is not None and run.error["type"] == "TypeError"


def test_with_run_decorates_an_async_function_with_a_run_per_call(db: Path) -> None:
    @chachaml.with_run(experiment="async")
    async def fit(n: int) -> str:
        run = chachaml.current_run()
        assert run is not None
        await asyncio.sleep(0)
        chachaml.log_metric("n", n)
        await asyncio.sleep(0)
        assert current_id() == run.id
        return run.id

    async def main() -> list[str]:
        return list(await asyncio.gather(fit(1), fit(2)))

    ids = asyncio.run(main())
    assert len(set(ids)) == 2
    assert [read_run(db, i).metrics for i in ids] == [{"n": 1.0}, {"n": 2.0}]
    assert {read_run(db, i).name for i in ids} == {"fit"}
    assert {read_run(db, i).status for i in ids} == {"completed"}


def test_async_with_run_decorator_marks_a_failing_call_failed(db: Path) -> None:
    @chachaml.with_run()
    async def fit() -> None:
        await asyncio.sleep(0)
        raise ValueError("diverged")

    with pytest.raises(ValueError, match="diverged"):
        asyncio.run(fit())
    (run,) = read_runs(db)
    assert run.status == "failed"
    assert run.error is not None and run.error["message"] == "diverged"


def test_tracked_makes_each_call_a_run_named_after_the_function(db: Path) -> None:
    @chachaml.tracked
    def evaluate(k: int) -> int:
        chachaml.log_metric("k", k)
        return k + 1

    assert evaluate(1) == 2
    assert evaluate(5) == 6
    found = read_runs(db)
    assert [r.name for r in found] == ["evaluate", "evaluate"]
    assert sorted(r.metrics["k"] for r in found) == [1.0, 5.0]
    assert chachaml.current_run() is None


def test_tracked_with_arguments_sets_experiment_and_tags_and_nests_under_the_current_run(db: Path) -> None:
    @chachaml.tracked(experiment="sweep", tags={"kind": "trial"})
    def trial() -> str | None:
        return current_id()

    outer = chachaml.start_run("outer")
    trial_id = trial()
    assert trial_id is not None and trial_id != outer.id
    stored = read_run(db, trial_id)
    assert (stored.experiment, stored.tags, stored.parent_id) == ("sweep", {"kind": "trial"}, outer.id)


def test_tracked_call_that_raises_is_failed_and_the_exception_propagates(db: Path) -> None:
    @chachaml.tracked
    def broken() -> None:
        raise LookupError("missing column")

    with pytest.raises(LookupError, match="missing column"):
        broken()
    (run,) = read_runs(db)
    assert (run.name, run.status) == ("broken", "failed")


def test_tracked_async_function_is_a_run_per_call(db: Path) -> None:
    @chachaml.tracked
    async def score(x: float) -> None:
        await asyncio.sleep(0)
        chachaml.log_metric("x", x)

    async def main() -> None:
        await asyncio.gather(score(1.0), score(2.0))

    asyncio.run(main())
    found = read_runs(db)
    assert sorted((r.name, r.metrics["x"], r.status) for r in found) == [
        ("score", 1.0, "completed"),
        ("score", 2.0, "completed"),
    ]


def test_tracked_method_run_name_keeps_the_class_name(db: Path) -> None:
    class Model:
        @chachaml.tracked
        def fit(self) -> None:
            pass

    Model().fit()
    assert [r.name for r in read_runs(db)] == ["Model.fit"]


# -- errors that say what to do ---------------------------------------------------------------
def test_logging_without_a_run_raises_no_active_run_error_naming_what_to_call(db: Path) -> None:
    with pytest.raises(NoActiveRunError) as info:
        chachaml.log_metric("loss", 0.1)
    message = str(info.value)
    assert "start_run()" in message
    assert "with_run" in message
    assert isinstance(info.value, ChachamlError)


@pytest.mark.parametrize(
    "call",
    [
        lambda: chachaml.log_param("p", 1),
        lambda: chachaml.log_params({"p": 1}),
        lambda: chachaml.log_metrics({"m": 1.0}),
        lambda: chachaml.set_tag("t", "v"),
        lambda: chachaml.set_note("n"),
        lambda: chachaml.log_dataset("d"),
    ],
    ids=["log_param", "log_params", "log_metrics", "set_tag", "set_note", "log_dataset"],
)
def test_every_log_verb_without_a_run_raises_no_active_run_error(db: Path, call: Callable[[], Any]) -> None:
    with pytest.raises(NoActiveRunError):
        call()
    assert read_runs(db) == []


def test_no_log_call_starts_a_run_implicitly(db: Path) -> None:
    with pytest.raises(NoActiveRunError):
        chachaml.log_metric("m", 1.0)
    assert chachaml.current_run() is None
    assert not db.exists() or read_runs(db) == []


# -- current_run ----------------------------------------------------------------------------------
def test_current_run_is_none_without_a_run(db: Path) -> None:
    assert chachaml.current_run() is None


def test_current_run_is_a_fresh_snapshot_of_the_stored_run(db: Path) -> None:
    chachaml.start_run("r")
    chachaml.log_param("a", 1)
    chachaml.log_metric("m", 3.0)
    run = chachaml.current_run()
    assert run is not None
    assert (run.params, run.metrics, run.status) == ({"a": 1}, {"m": 3.0}, "running")


# -- captured contexts must not reach finished runs --------------------------------------------
def test_bound_function_called_after_its_with_run_exited_raises_run_state_error(db: Path) -> None:
    with chachaml.with_run("r") as run:
        late = bind(chachaml.log_metric)
    with pytest.raises(RunStateError, match="completed"):
        late("m", 1.0)
    with pytest.raises(RunStateError):
        in_thread(lambda: late("m", 2.0))
    assert read_run(db, run.id).metrics == {}


def test_stale_bound_function_does_not_fall_back_to_the_process_run(db: Path) -> None:
    process_run = chachaml.start_run("process")
    with chachaml.with_run("block"):
        late = bind(chachaml.log_metric)
    with pytest.raises(RunStateError):
        late("m", 1.0)
    assert read_run(db, process_run.id).metrics == {}


def test_context_copied_inside_with_run_cannot_log_to_it_after_the_block(db: Path) -> None:
    with chachaml.with_run("r") as run:
        captured = contextvars.copy_context()
    with pytest.raises(RunStateError):
        captured.run(chachaml.log_param, "p", 1)
    assert read_run(db, run.id).params == {}


def test_context_captured_inside_a_failed_with_run_cannot_log_to_it(db: Path) -> None:
    with pytest.raises(ValueError), chachaml.with_run("r") as run:
        late = bind(chachaml.log_metric)
        raise ValueError("x")
    with pytest.raises(RunStateError, match="failed"):
        late("m", 1.0)
    assert read_run(db, run.id).metrics == {}


def test_context_captured_inside_with_store_cannot_log_after_the_block_closed_it(tmp_path: Path) -> None:
    path = tmp_path / "b.db"
    with chachaml.with_store(path):
        run = chachaml.start_run("r")
        late = bind(chachaml.log_metric)
    with pytest.raises(RunStateError):
        late("m", 1.0)
    stored = read_run(path, run.id)
    assert (stored.status, stored.metrics) == ("completed", {})


# -- threads ------------------------------------------------------------------------------------
def test_plain_thread_sees_the_process_level_run(db: Path) -> None:
    run = chachaml.start_run("r")
    assert in_thread(current_id) == run.id
    in_thread(lambda: chachaml.log_metric("from-thread", 1.0))
    assert read_run(db, run.id).metrics == {"from-thread": 1.0}


def test_plain_threads_starting_runs_concurrently_each_log_to_their_own_run(db: Path) -> None:
    notebook_run = chachaml.start_run("notebook")
    barrier = threading.Barrier(4, timeout=30)

    def trial(i: int) -> tuple[str, list[str | None]]:
        run = chachaml.start_run(f"trial-{i}")
        seen = []
        for step in range(5):
            barrier.wait()  # every thread has its own run open at this moment
            chachaml.log_metric("i", float(i), step=step)
            seen.append(current_id())
        barrier.wait()
        chachaml.end_run()
        assert chachaml.get_run(run.id).status == "completed"  # this thread's run, no other
        seen.append(current_id())
        return run.id, seen

    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(trial, range(4)))
    assert current_id() == notebook_run.id
    for i, (run_id, seen) in enumerate(results):
        assert seen == [run_id] * 5 + [notebook_run.id]
        stored = read_run(db, run_id)
        assert (stored.name, stored.status, stored.parent_id) == (f"trial-{i}", "completed", notebook_run.id)
        assert history(db, run_id, "i") == [(s, float(i)) for s in range(5)]
    assert read_run(db, notebook_run.id).metrics == {}


def test_run_started_in_a_plain_thread_is_not_current_in_the_main_thread(db: Path) -> None:
    started = threading.Event()
    release = threading.Event()

    def worker() -> None:
        chachaml.start_run("in-thread")
        started.set()
        release.wait(30)
        chachaml.end_run()

    t = threading.Thread(target=worker)
    t.start()
    try:
        assert started.wait(30)
        assert chachaml.current_run() is None
        with pytest.raises(NoActiveRunError):
            chachaml.log_metric("m", 1.0)
        assert chachaml.end_run() is None
    finally:
        release.set()
        t.join()
    (run,) = read_runs(db)
    assert (run.name, run.status, run.metrics) == ("in-thread", "completed", {})


def test_plain_thread_does_not_see_a_scoped_run(db: Path) -> None:
    with chachaml.with_run("scoped") as run:
        assert in_thread(current_id) is None
        with pytest.raises(NoActiveRunError):
            in_thread(lambda: chachaml.log_metric("m", 1.0))
    assert read_run(db, run.id).metrics == {}


def test_plain_thread_sees_the_process_run_not_a_with_run_child(db: Path) -> None:
    outer = chachaml.start_run("outer")
    with chachaml.with_run("scoped"):
        assert in_thread(current_id) == outer.id


def test_plain_thread_does_not_see_a_with_store_block(db: Path, tmp_path: Path) -> None:
    default = chachaml.current_store()
    with chachaml.with_store(tmp_path / "b.db"):
        assert in_thread(chachaml.current_store) is default


def test_plain_thread_pool_does_not_see_a_scoped_run(db: Path) -> None:
    with chachaml.with_run("scoped"), ThreadPoolExecutor(max_workers=1) as pool:
        assert pool.submit(current_id).result() is None


def test_bind_carries_the_scoped_run_and_store_into_a_thread(tmp_path: Path) -> None:
    path = tmp_path / "b.db"
    with chachaml.with_store(path) as store, chachaml.with_run("scoped") as run:
        worker = bind(lambda: (current_id(), chachaml.current_store(), chachaml.log_metric("t", 1.0)))
        seen_id, seen_store, _ = in_thread(worker)
        assert (seen_id, seen_store) == (run.id, store)
    assert read_run(path, run.id).metrics == {"t": 1.0}


def test_bind_captures_the_context_at_bind_time_not_at_call_time(db: Path) -> None:
    with chachaml.with_run("first") as first:
        bound = bind(current_id)
    with chachaml.with_run("second"):
        assert in_thread(bound) == first.id
        assert bound() == first.id


def test_bind_keeps_the_function_name_and_wrapped(db: Path) -> None:
    def train_step() -> None:
        """Doc."""

    bound = bind(train_step)
    assert bound.__name__ == "train_step"
    assert bound.__doc__ == "Doc."
    assert bound.__wrapped__ is train_step  # type: ignore[attr-defined]


def test_same_bound_function_runs_in_two_threads_at_once_with_separate_stacks(db: Path) -> None:
    barrier = threading.Barrier(2, timeout=30)

    def worker(name: str) -> tuple[str, str, str | None]:
        child = chachaml.start_run(name)
        barrier.wait()  # both threads are inside the bound context at the same moment
        chachaml.log_metric("x", 1.0)
        mine = current_id()
        barrier.wait()
        chachaml.end_run()
        return child.id, mine or "", current_id()

    with chachaml.with_run("outer") as outer:
        bound = bind(worker)
        with ThreadPoolExecutor(max_workers=2) as pool:
            results = list(pool.map(bound, ["a", "b"]))
        assert current_id() == outer.id
    for child_id, seen, after_end in results:
        assert seen == child_id  # each thread saw its own child, never the other's
        assert after_end == outer.id
        stored = read_run(db, child_id)
        assert (stored.parent_id, stored.status, stored.metrics) == (outer.id, "completed", {"x": 1.0})
    assert results[0][0] != results[1][0]
    assert read_run(db, outer.id).metrics == {}


def test_bound_function_changes_do_not_leak_into_the_caller_or_the_next_call(db: Path) -> None:
    def start() -> str:
        return chachaml.start_run("leaky").id

    with chachaml.with_run("outer") as outer:
        bound = bind(start)
        first = bound()
        assert current_id() == outer.id
        second = bound()
        parent = read_run(db, second).parent_id
    assert first != second
    assert parent == outer.id  # the second call did not see the first call's run


def test_context_executor_submit_and_map_carry_the_submitters_scoped_run(db: Path) -> None:
    with chachaml.with_run("scoped") as run, ContextExecutor(max_workers=2) as pool:
        assert pool.submit(current_id).result() == run.id
        assert list(pool.map(lambda _: current_id(), range(4))) == [run.id] * 4
        futures = [pool.submit(chachaml.log_metric, "x", float(i), step=i) for i in range(5)]
        for f in futures:
            f.result()
    assert history(db, run.id, "x") == [(i, float(i)) for i in range(5)]


def test_context_executor_captures_the_context_at_each_submit(db: Path) -> None:
    with ContextExecutor(max_workers=1) as pool:
        assert pool.submit(current_id).result() is None
        with chachaml.with_run("a") as a:
            in_a = pool.submit(current_id).result()
        with chachaml.with_run("b") as b:
            in_b = list(pool.map(lambda _: current_id(), range(2)))
        after = pool.submit(current_id).result()
    assert (in_a, in_b, after) == (a.id, [b.id, b.id], None)


def test_context_executor_tasks_starting_runs_nest_under_the_submitters_run(db: Path) -> None:
    def trial(i: int) -> str:
        with chachaml.with_run(f"trial-{i}") as r:
            chachaml.log_metric("i", i)
        return r.id

    with chachaml.with_run("sweep") as sweep, ContextExecutor(max_workers=3) as pool:
        ids = list(pool.map(trial, range(6)))
    assert len(set(ids)) == 6
    for i, rid in enumerate(ids):
        stored = read_run(db, rid)
        assert (stored.parent_id, stored.metrics, stored.status) == (sweep.id, {"i": float(i)}, "completed")


# -- asyncio ------------------------------------------------------------------------------------
def test_concurrent_with_run_blocks_under_gather_never_see_each_other(db: Path) -> None:
    n = 4

    async def task(i: int, barrier: asyncio.Barrier) -> str:
        with chachaml.with_run(f"task-{i}") as run:
            await barrier.wait()  # every task is inside its own block now
            for step in range(5):
                chachaml.log_metric("who", float(i), step=step)
                await asyncio.sleep(0)
                assert current_id() == run.id
            await barrier.wait()
        return run.id

    async def main() -> tuple[str, list[str]]:
        barrier = asyncio.Barrier(n)
        with chachaml.with_run("parent") as parent:
            ids = await asyncio.gather(*(task(i, barrier) for i in range(n)))
            assert current_id() == parent.id
        return parent.id, list(ids)

    parent_id, ids = asyncio.run(main())
    assert len(set(ids)) == n
    for i, rid in enumerate(ids):
        stored = read_run(db, rid)
        assert (stored.name, stored.parent_id, stored.status) == (f"task-{i}", parent_id, "completed")
        assert history(db, rid, "who") == [(s, float(i)) for s in range(5)]
    assert read_run(db, parent_id).metrics == {}


def test_a_failing_task_under_gather_fails_only_its_own_run(db: Path) -> None:
    async def task(i: int) -> str:
        with chachaml.with_run(f"t{i}") as run:
            await asyncio.sleep(0)
            if i == 1:
                raise ValueError("task 1 broke")
            await asyncio.sleep(0)
        return run.id

    async def main() -> list[Any]:
        return list(await asyncio.gather(task(0), task(1), task(2), return_exceptions=True))

    results = asyncio.run(main())
    assert isinstance(results[1], ValueError)
    statuses = {r.name: r.status for r in read_runs(db)}
    assert statuses == {"t0": "completed", "t1": "failed", "t2": "completed"}


def test_asyncio_task_sees_the_process_level_run(db: Path) -> None:
    run = chachaml.start_run("r")

    async def main() -> str | None:
        return await asyncio.create_task(asyncio.sleep(0, current_id()))

    assert asyncio.run(main()) == run.id


# -- describe -----------------------------------------------------------------------------------
def test_describe_names_the_store_and_where_the_run_comes_from(db: Path, tmp_path: Path) -> None:
    text = context.describe()
    assert str(db) in text and "use_store()" in text and "no current run" in text
    run = chachaml.start_run("r")
    text = context.describe()
    assert run.id in text and "start_run()" in text and "process" in text
    with chachaml.with_run("w") as w:
        text = context.describe()
        assert w.id in text and "with_run()" in text
    with chachaml.with_store(tmp_path / "b.db"):
        text = context.describe()
        assert "b.db" in text and "with_store" in text and "no current run" in text
    chachaml.end_run()


def test_describe_in_a_plain_thread_names_the_threads_own_stack(db: Path) -> None:
    def worker() -> str:
        chachaml.start_run("in-thread")
        try:
            return context.describe()
        finally:
            chachaml.end_run()

    assert "stack of thread" in in_thread(worker)


def test_describe_without_any_store_names_the_default(tmp_path: Path) -> None:
    text = context.describe()
    assert "chachaml.db" in text and "default" in text
    assert not (tmp_path / "chachaml.db").exists()


# -- batched ------------------------------------------------------------------------------------
def test_with_run_inside_batched_puts_the_childs_points_on_the_child(db: Path) -> None:
    outer = chachaml.start_run("outer")
    with chachaml.batched():
        chachaml.log_metric("loss", 1.0)
        with chachaml.with_run("child") as child:
            chachaml.log_metric("loss", 10.0)
            chachaml.log_metric("acc", 0.5)
        # the child's points were written before it ended
        assert history(db, child.id, "loss") == [(0, 10.0)]
        chachaml.log_metric("loss", 2.0)
    assert history(db, outer.id, "loss") == [(0, 1.0), (1, 2.0)]
    assert history(db, child.id, "loss") == [(0, 10.0)]
    assert history(db, child.id, "acc") == [(0, 0.5)]
    stored = read_run(db, child.id)
    assert (stored.status, stored.parent_id) == ("completed", outer.id)


def test_end_run_inside_batched_writes_the_runs_points_before_ending_it(db: Path) -> None:
    run = chachaml.start_run("r")
    with chachaml.batched():
        for i in range(3):
            chachaml.log_metric("x", float(i))
        chachaml.end_run()
        assert history(db, run.id, "x") == [(0, 0.0), (1, 1.0), (2, 2.0)]
    stored = read_run(db, run.id)
    assert (stored.status, stored.metrics) == ("completed", {"x": 2.0})


def test_batched_inside_with_run_writes_its_points_on_exit(db: Path) -> None:
    with chachaml.with_run("r") as run:
        with chachaml.batched():
            for i in range(10):
                chachaml.log_metric("x", float(i))
        chachaml.log_metric("x", 10.0)
    assert history(db, run.id, "x") == [(i, float(i)) for i in range(11)]


# -- snapshot / attach in one process ---------------------------------------------------------
def test_snapshot_names_the_store_and_the_current_run(db: Path) -> None:
    run = chachaml.start_run("r")
    snap = context.snapshot()
    assert snap.run_id == run.id
    assert snap.store_uri == chachaml.current_store().uri


def test_snapshot_of_an_in_memory_store_raises_invalid_value_error(tmp_path: Path) -> None:
    with (
        chachaml.with_store(":memory:"),
        chachaml.with_run("r"),
        pytest.raises(InvalidValueError, match="use_store"),
    ):
        context.snapshot()


def test_attach_makes_the_snapshot_current_and_does_not_end_the_run(db: Path) -> None:
    run = chachaml.start_run("r")
    snap = context.snapshot()

    def worker() -> str | None:
        with context.attach(snap):
            chachaml.log_metric("m", 1.0)
            return current_id()

    assert in_thread(worker) == run.id
    stored = read_run(db, run.id)
    assert (stored.status, stored.metrics) == ("running", {"m": 1.0})


def test_start_run_inside_attach_is_a_child_ended_when_attach_exits(db: Path) -> None:
    run = chachaml.start_run("r")
    snap = context.snapshot()

    def worker() -> str:
        with context.attach(snap):
            child = chachaml.start_run("child")
            chachaml.log_metric("m", 1.0)
        return child.id

    child_id = in_thread(worker)
    stored = read_run(db, child_id)
    assert (stored.parent_id, stored.status, stored.metrics) == (run.id, "completed", {"m": 1.0})
    assert read_run(db, run.id).status == "running"


def test_exception_inside_attach_fails_its_open_child_but_not_the_attached_run(db: Path) -> None:
    run = chachaml.start_run("r")
    snap = context.snapshot()
    started: list[str] = []

    def worker() -> None:
        with context.attach(snap):
            started.append(chachaml.start_run("child").id)
            raise RuntimeError("worker crashed")

    with pytest.raises(RuntimeError, match="worker crashed"):
        in_thread(worker)
    stored = read_run(db, started[0])
    assert stored.status == "failed"
    assert stored.error is not None and stored.error["message"] == "worker crashed"
    assert read_run(db, run.id).status == "running"
    assert current_id() == run.id
