"""The ``Client``'s pipeline verbs (SPEC section 11; docs/automation.md; docs/adr/0013).

A pipeline is one run (its id is the pipeline's id) with one child run per step attempt. The
store keeps the statuses; the step callables and their results live in this process only
(``_MEMORY``): ``resume_pipeline`` continues a pipeline in the process that ran it, and in any
other process it says so instead of guessing at results it cannot have.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from chachaml import _owned, _process
from chachaml._api_alerts import AlertsApi
from chachaml._exit import outcome
from chachaml._values import check_key
from chachaml.entities import Run
from chachaml.errors import InvalidValueError, RunNotFoundError, RunStateError
from chachaml.rules import check_paging

if TYPE_CHECKING:  # the records and rules load with the first pipeline verb, not with the Client
    from chachaml.automation_entities import Pipeline, PipelineStep

#: Opens the run of a pipeline or of a step for a block and ends it with the block's outcome:
#: ``scope(name, parent_id, run_id, experiment)``; ``run_id`` resumes that run. The Client's own
#: scope uses the store directly; the module-level verbs pass one built on ``with_run``, so that
#: inside a step ``chachaml.log_metric`` logs to the step's run.
RunScope = Callable[[str, "str | None", "str | None", "str | None"], AbstractContextManager[Run]]
Steps = list[tuple[str, Callable[[Any], Any]]]


class _Progress:
    """What this process knows of a pipeline beyond the store: its callables and results.

    A plain class, not a dataclass: creating a dataclass runs generated code at import, and
    this module is imported by every first ``log_metric`` (benchmarks/bench_core.py)."""

    __slots__ = ("active", "results", "steps")

    def __init__(self, steps: Steps, results: dict[int, Any] | None = None, active: bool = False) -> None:
        self.steps = steps
        self.results: dict[int, Any] = {} if results is None else results
        self.active = active


# Per process, by pipeline id: a failed or killed pipeline's steps and completed results, so
# that resume_pipeline can continue it. A completed pipeline is forgotten (nothing to resume).
# This is process state, like the run stacks of chachaml.context, but it holds callables and
# results, which no store can keep.
_MEMORY: dict[str, _Progress] = {}
_MEMORY_LOCK = threading.Lock()


def _after_fork_in_child() -> None:
    """A forked child must not inherit a lock another thread of its parent held; the
    pipelines it inherits keep their memory (the child may resume them)."""
    global _MEMORY_LOCK
    _MEMORY_LOCK = threading.Lock()


os.register_at_fork(after_in_child=_after_fork_in_child)


class PipelinesApi(AlertsApi):
    """Pipelines of named steps (mixed into ``chachaml.client.Client``)."""

    __slots__ = ()

    def run_pipeline(
        self,
        name: str,
        steps: Sequence[tuple[str, Callable[[Any], Any]]],
        *,
        experiment: str | None = None,
        parent_id: Any = None,
        run_scope: RunScope | None = None,
    ) -> Any:
        """Run ``steps`` in order as a pipeline and return the last step's result.

        The pipeline is a run named ``name``; each step is a child run named after the step.
        Each callable receives the previous step's result (the first receives None). A step that
        raises is marked ``failed`` (``killed`` for KeyboardInterrupt), so is the pipeline, the
        later steps are ``skipped``, and the exception is re-raised with a note naming the
        pipeline id to resume.

        Args:
            name: the pipeline's name.
            steps: ``(name, callable)`` pairs, like scikit-learn's ``Pipeline``.
            experiment: the experiment of the pipeline run (its steps share it).
            parent_id: make the pipeline run a child of this run (a Run, id or prefix).
            run_scope: how runs are opened and ended (see ``RunScope``); default: this client.

        Raises:
            InvalidValueError: bad steps (not pairs, a repeated name, not callable) or name.
        """
        from chachaml._automation_rules import check_steps
        from chachaml.automation_entities import Pipeline, PipelineStep

        name = check_key(name, "pipeline name")
        checked = check_steps(steps)
        parent = None if parent_id is None else self.resolve_run_id(parent_id, "parent_id=")
        scope = run_scope or self._run_scope
        with scope(name, parent, None, experiment) as run:
            now = _process.now_ms()
            pipeline = Pipeline(run.id, name, "running", tuple(PipelineStep(n) for n, _ in checked), now, now)
            self.store.put_pipeline(pipeline)
            progress = _Progress(checked, active=True)
            with _MEMORY_LOCK:
                _MEMORY[run.id] = progress
            try:
                return self._drive(pipeline, progress, 0, scope)
            finally:
                progress.active = False

    def resume_pipeline(
        self,
        pipeline: Any,
        *,
        steps: Sequence[tuple[str, Callable[[Any], Any]]] | None = None,
        run_scope: RunScope | None = None,
    ) -> Any:
        """Continue a failed (or killed) pipeline in this process and return its last result.

        Completed steps keep their results; the failed step and those after it run again, each
        as a new child run of the same pipeline run, which becomes running again.

        Args:
            pipeline: the pipeline (a ``Pipeline``, its id or a unique id prefix).
            steps: new callables for the same step names in the same order (to resume with a
                fixed function); default: those it ran with.
            run_scope: as for ``run_pipeline``.

        Raises:
            RunStateError: the pipeline completed, is running, or was run by another process
                (its callables and results are not here: run it again with ``run_pipeline``).
            NotFoundError: no pipeline has this id.
        """
        found = self.get_pipeline(pipeline)
        where = f"pipeline {found.name!r} ({found.id[:8]})"
        if found.status == "completed":
            raise RunStateError(f"{where} completed; nothing to resume (run_pipeline runs it again)")
        with _MEMORY_LOCK:
            progress = _MEMORY.get(found.id)
            if progress is None:
                raise RunStateError(
                    f"{where} was run by another process (or before this one started): its steps "
                    "and their results live only in the process that ran it, so it cannot be "
                    f"resumed here; run it again with run_pipeline({found.name!r}, steps)"
                )
            if progress.active:
                raise RunStateError(f"{where} is running in this process; wait for it to end")
            if steps is not None:
                from chachaml._automation_rules import check_steps

                new = check_steps(steps)
                names = [s.name for s in found.steps]
                if [n for n, _ in new] != names:
                    raise InvalidValueError(
                        f"resume_pipeline(steps=...) must name the same steps in the same order as "
                        f"{where}: {names}, got {[n for n, _ in new]}"
                    )
                progress.steps = new
            progress.active = True
        try:
            start = next(i for i, s in enumerate(found.steps) if s.status != "completed")
            scope = run_scope or self._run_scope
            with scope(found.name, None, found.id, None):
                return self._drive(replace(found, status="running"), progress, start, scope)
        finally:
            progress.active = False

    def get_pipeline(self, pipeline: Any) -> Pipeline:
        """The pipeline with its steps (each ``name``, ``status``, ``run_id``).

        A pipeline whose process died while it ran is shown ``killed`` (its run was found dead),
        as is the step that was running.

        Raises:
            NotFoundError: no pipeline has this id or id prefix.
            InvalidValueError: the prefix matches several pipelines.
        """
        from chachaml.automation_entities import Pipeline

        ref = pipeline.id if isinstance(pipeline, Pipeline | Run) else pipeline
        if not isinstance(ref, str) or not ref:
            raise InvalidValueError(f"pass a Pipeline or a pipeline id (str), got {pipeline!r}")
        return self._settled(self.store.get_pipeline(ref))

    def pipelines(self, *, name: str | None = None, limit: int | None = None) -> list[Pipeline]:
        """Pipelines, newest first (only those called ``name``, when given; at most ``limit``)."""
        check_paging(limit, 0)
        name = None if name is None else check_key(name, "pipeline name")
        return [self._settled(p) for p in self.store.pipelines(name=name, limit=limit)]

    # -- helpers -----------------------------------------------------------------------------
    def _settled(self, p: Pipeline) -> Pipeline:
        """``p``, or ``killed`` if it says running but its run ended without it (a dead process)."""
        if p.status != "running":
            return p
        progress = _MEMORY.get(p.id)
        if progress is not None and progress.active:
            return p
        try:
            run = self.store.get_run(p.id)
        except RunNotFoundError:  # the run was deleted: nothing better to say than the record
            return p
        if run.status == "running":
            return p
        status = "failed" if run.status == "failed" else "killed"
        steps = tuple(replace(s, status=status) if s.status == "running" else s for s in p.steps)
        return replace(p, status=status, steps=steps)

    def _drive(self, pipeline: Pipeline, progress: _Progress, start: int, scope: RunScope) -> Any:
        """Run the steps from ``start`` on, recording each status, and return the last result."""
        from chachaml.automation_entities import PipelineStep

        states = list(pipeline.steps)
        prev = progress.results.get(start - 1)
        for i in range(start, len(states)):
            step_name, fn = progress.steps[i]
            states[i] = PipelineStep(step_name, "running")
            try:
                with scope(step_name, pipeline.id, None, None) as step_run:
                    states[i] = PipelineStep(step_name, "running", step_run.id)
                    self._save(pipeline, "running", states)
                    prev = fn(prev)
            except BaseException as exc:
                status, _ = outcome(type(exc), exc, exc.__traceback__)
                # A step that did not return did not complete, even on SystemExit(0).
                status = "killed" if status == "completed" else status
                states[i] = replace(states[i], status=status)
                states[i + 1 :] = [PipelineStep(s.name, "skipped") for s in states[i + 1 :]]
                with contextlib.suppress(Exception):  # the step's own error is the one to see
                    self._save(pipeline, status, states)
                exc.add_note(
                    f"chachaml: step {step_name!r} of pipeline {pipeline.name!r} {status}; fix it and "
                    f"call chachaml.resume_pipeline({pipeline.id[:8]!r}) in this process to continue"
                )
                raise
            progress.results[i] = prev
            states[i] = replace(states[i], status="completed")
            self._save(pipeline, "completed" if i == len(states) - 1 else "running", states)
        with _MEMORY_LOCK:
            _MEMORY.pop(pipeline.id, None)
        return prev

    def _save(self, pipeline: Pipeline, status: str, states: list[PipelineStep]) -> None:
        self.store.put_pipeline(
            replace(pipeline, status=status, steps=tuple(states), updated=_process.now_ms())
        )

    @contextlib.contextmanager
    def _run_scope(
        self, name: str, parent_id: str | None, run_id: str | None, experiment: str | None
    ) -> Iterator[Run]:
        """The default ``RunScope``: a run of this client's store, ended with the block's outcome
        (status and error recorded as ``with_run`` records them)."""
        run = self.start_run(name, experiment=experiment, parent_id=parent_id, run_id=run_id)
        try:
            yield run
        except BaseException as exc:
            status, error = outcome(type(exc), exc, exc.__traceback__)
            self.store.end_run(run.id, status, _process.now_ms(), error)
            _owned.closed(run.id)
            raise
        self.store.end_run(run.id, "completed", _process.now_ms(), None)
        _owned.closed(run.id)
