"""Honest run status inside one process (issue 7): threads, generators, cancelled and concurrent tasks.

Outcomes are read back from a real SQLite file through a separate store, as another reader sees them.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

import chachaml
from chachaml.errors import RunStateError


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "runs.db"
    chachaml.use_store(path)
    return path


def read_run(path: Path, run_id: str) -> chachaml.Run:
    with chachaml.with_store(path):
        return chachaml.get_run(run_id)


def current_id() -> str | None:
    run = chachaml.current_run()
    return None if run is None else run.id


# -- defect 3: end_run() in a worker thread --------------------------------------------------------
def test_end_run_in_a_worker_thread_with_nothing_of_its_own_ends_nothing(db: Path) -> None:
    main_run = chachaml.start_run("main")
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            assert current_id() == main_run.id  # the thread sees the main thread's run...
            chachaml.end_run()  # ...but has nothing of its own to end
            chachaml.end_run("failed")
        except BaseException as exc:  # reported to the test thread below
            errors.append(exc)

    t = threading.Thread(target=worker)
    t.start()
    t.join()
    assert errors == []
    assert read_run(db, main_run.id).status == "running"
    assert current_id() == main_run.id
    chachaml.end_run()
    assert read_run(db, main_run.id).status == "completed"


def test_end_run_in_a_worker_thread_ends_only_the_threads_own_run(db: Path) -> None:
    main_run = chachaml.start_run("main")
    box: dict[str, str] = {}

    def worker() -> None:
        box["own"] = chachaml.start_run("own").id
        chachaml.end_run()
        chachaml.end_run()  # its own stack is empty now: nothing happens

    t = threading.Thread(target=worker)
    t.start()
    t.join()
    assert read_run(db, box["own"]).status == "completed"
    assert read_run(db, main_run.id).status == "running"
    chachaml.end_run()


# -- defect 6: generators ----------------------------------------------------------------------------
def test_tracked_generator_run_spans_the_iteration_and_gets_the_bodys_logs(db: Path) -> None:
    outer = chachaml.start_run("outer")
    seen: list[str | None] = []

    @chachaml.tracked
    def batches(n: int) -> Iterator[int]:
        for i in range(n):
            seen.append(current_id())
            chachaml.log_metric("i", i)
            yield i

    items = []
    for item in batches(3):
        assert current_id() == outer.id  # the consumer's current run is untouched between items
        items.append(item)
    assert items == [0, 1, 2]
    (gen_id,) = set(seen)
    assert gen_id is not None and gen_id != outer.id
    run = read_run(db, gen_id)
    assert (run.name, run.status, run.parent_id, run.metrics) == (
        "batches",
        "completed",
        outer.id,
        {"i": 2.0},
    )
    assert read_run(db, outer.id).metrics == {}
    chachaml.end_run()


def test_with_run_generator_that_raises_fails_its_run_and_the_error_propagates(db: Path) -> None:
    @chachaml.with_run("gen")
    def broken() -> Iterator[int]:
        yield 1
        raise ValueError("bad batch")

    gen = broken()
    assert next(gen) == 1
    with pytest.raises(ValueError, match="bad batch"):
        next(gen)
    (run,) = chachaml.runs()
    assert (run.status, run.error and run.error["type"]) == ("failed", "ValueError")


def test_generator_closed_early_completes_its_run_and_send_reaches_the_body(db: Path) -> None:
    received: list[int] = []

    @chachaml.with_run("echo")
    def echo() -> Iterator[int]:
        value = 0
        while True:
            got = yield value
            received.append(got)
            chachaml.log_metric("got", got)
            value = got * 2

    gen = echo()
    assert next(gen) == 0
    assert gen.send(5) == 10
    assert (chachaml.runs()[0].status, current_id()) == ("running", None)
    gen.close()
    (run,) = chachaml.runs()
    assert (run.status, run.metrics, received) == ("completed", {"got": 5.0}, [5])


def test_tracked_async_generator_run_spans_the_iteration(db: Path) -> None:
    @chachaml.tracked
    async def stream(n: int) -> AsyncIterator[int]:
        for i in range(n):
            await asyncio.sleep(0)
            chachaml.log_metric("i", i)
            yield i

    async def main() -> tuple[list[int], list[str | None]]:
        items, outside = [], []
        async for item in stream(3):
            outside.append(current_id())
            items.append(item)
        return items, outside

    items, outside = asyncio.run(main())
    assert items == [0, 1, 2]
    assert outside == [None, None, None]
    (run,) = chachaml.runs()
    assert (run.name, run.status, run.metrics) == ("stream", "completed", {"i": 2.0})


def test_async_generator_that_raises_fails_its_run(db: Path) -> None:
    @chachaml.with_run("agen")
    async def broken() -> AsyncIterator[int]:
        yield 1
        raise KeyError("shard")

    async def main() -> None:
        async for _ in broken():
            pass

    with pytest.raises(KeyError):
        asyncio.run(main())
    (run,) = chachaml.runs()
    assert (run.status, run.error and run.error["type"]) == ("failed", "KeyError")


def test_decorated_generator_functions_still_look_like_generator_functions(db: Path) -> None:
    import inspect

    @chachaml.tracked
    def gen() -> Iterator[int]:
        yield 1

    @chachaml.with_run()
    async def agen() -> AsyncIterator[int]:
        yield 1

    assert inspect.isgeneratorfunction(gen)
    assert (gen.__name__, agen.__name__) == ("gen", "agen")
    assert inspect.isasyncgen(agen())  # calling it gives an async generator (closed unstarted)
    assert len(chachaml.runs()) == 0  # nothing starts before the first item


# -- defect 10: a cancelled task is killed -----------------------------------------------------------
def test_cancelled_task_inside_with_run_marks_the_run_killed(db: Path) -> None:
    async def main() -> str:
        ready = asyncio.Event()
        box: dict[str, str] = {}

        async def work() -> None:
            with chachaml.with_run("slow") as run:
                box["id"] = run.id
                ready.set()
                await asyncio.Event().wait()  # never set: only cancel() ends it

        task = asyncio.create_task(work())
        await ready.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return box["id"]

    run = read_run(db, asyncio.run(main()))
    assert run.status == "killed"
    assert run.error is not None and run.error["type"] == "CancelledError"


def test_cancelled_coroutine_decorated_with_tracked_is_killed(db: Path) -> None:
    async def main() -> None:
        started = asyncio.Event()

        @chachaml.tracked
        async def fit() -> None:
            started.set()
            await asyncio.Event().wait()  # never set: only cancel() ends it

        task = asyncio.create_task(fit())
        await started.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    (run,) = chachaml.runs()
    assert (run.name, run.status) == ("fit", "killed")


# -- start_run/end_run in concurrent asyncio tasks ---------------------------------------------------
def test_start_run_in_a_task_while_another_live_task_holds_a_process_run_is_refused(db: Path) -> None:
    async def main() -> None:
        first_started = asyncio.Event()
        release = asyncio.Event()

        async def first() -> None:
            chachaml.start_run("first")
            first_started.set()
            await release.wait()
            chachaml.end_run()

        async def second() -> None:
            await first_started.wait()
            with pytest.raises(RunStateError, match="with_run") as info:
                chachaml.start_run("second")
            assert "first" in str(info.value) or "task" in str(info.value)
            release.set()

        await asyncio.gather(first(), second())

    asyncio.run(main())
    (run,) = chachaml.runs()  # the refused start_run created nothing
    assert (run.name, run.status) == ("first", "completed")


def test_end_run_in_a_task_refuses_to_end_another_live_tasks_run(db: Path) -> None:
    async def main() -> None:
        first_started = asyncio.Event()
        release = asyncio.Event()

        async def first() -> None:
            chachaml.start_run("first")
            first_started.set()
            await release.wait()
            chachaml.end_run()

        async def second() -> None:
            await first_started.wait()
            with pytest.raises(RunStateError, match="with_run"):
                chachaml.end_run()
            release.set()

        await asyncio.gather(first(), second())

    asyncio.run(main())
    (run,) = chachaml.runs()
    assert (run.name, run.status) == ("first", "completed")


def test_runs_started_in_successive_tasks_like_notebook_cells_still_nest(db: Path) -> None:
    async def cell_one() -> str:
        return chachaml.start_run("outer").id

    async def cell_two() -> str:
        return chachaml.start_run("inner").id

    outer_id = asyncio.run(cell_one())  # each top-level await cell runs in its own task
    inner_id = asyncio.run(cell_two())
    assert read_run(db, inner_id).parent_id == outer_id

    async def cell_three() -> None:
        chachaml.end_run()
        chachaml.end_run()

    asyncio.run(cell_three())
    assert {read_run(db, i).status for i in (outer_id, inner_id)} == {"completed"}
