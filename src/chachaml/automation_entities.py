"""The values of alerts and pipelines (SPEC section 11): frozen dataclasses with readable reprs.

Like ``chachaml.entities`` each has ``to_dict()`` / ``from_dict()`` (the wire format: a server
sends them, a remote store reads them back). Times are integer milliseconds since the epoch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from chachaml import _display
from chachaml._entity_base import _Entity

__all__ = ["Alert", "AlertEvent", "Pipeline", "PipelineStep"]


def _number(value: float) -> str:
    return f"{value:g}"


@dataclass(frozen=True, slots=True)
class Alert(_Entity):
    """A rule watched by ``check_alerts()``: fire when a run's latest ``metric`` ``op`` ``threshold``.

    ``experiment`` limits it to the runs of one experiment (None: every run). ``webhook`` is a URL
    that receives each event as a JSON POST. ``updated`` is when it was created or last changed:
    only runs that logged ``metric`` since then are checked. ``version`` counts the changes; a
    run fires each version of an alert at most once.
    """

    name: str
    metric: str
    op: str
    threshold: float
    experiment: str | None = None
    webhook: str | None = None
    created: int = 0
    updated: int = 0
    version: int = 1

    @property
    def condition(self) -> str:
        """The rule as text, e.g. ``"loss > 2"``."""
        return f"{self.metric} {self.op} {_number(self.threshold)}"

    def __repr__(self) -> str:
        scope = f" experiment={self.experiment!r}" if self.experiment else ""
        hook = f" webhook={self.webhook!r}" if self.webhook else ""
        return f"<Alert {self.name!r}: {self.condition}{scope}{hook}>"


@dataclass(frozen=True, slots=True)
class AlertEvent(_Entity):
    """One firing of an alert for one run, as ``check_alerts()`` returns it and
    ``alert_history(name)`` lists it.

    ``value`` and ``step`` are the run's latest point of the metric when it fired; ``op`` and
    ``threshold`` are the alert's at that time. ``delivery`` is the webhook's outcome: None (no
    webhook), ``"pending"``, ``"delivered"`` or ``"failed"`` (then ``error`` says why), after
    ``attempts`` POSTs.
    """

    id: int
    alert: str
    run_id: str
    metric: str
    value: float
    step: int
    op: str
    threshold: float
    fired: int
    webhook: str | None = None
    delivery: str | None = None
    attempts: int = 0
    error: str | None = None

    def __repr__(self) -> str:
        sent = f" webhook {self.delivery}" if self.delivery else ""
        return (
            f"<AlertEvent {self.alert!r} run={self.run_id[:8]} {self.metric}={_number(self.value)}"
            f" {self.op} {_number(self.threshold)} at step {self.step}{sent}>"
        )


@dataclass(frozen=True, slots=True)
class PipelineStep(_Entity):
    """One step of a pipeline: its name, status and run.

    ``status`` is ``pending``, ``running``, ``completed``, ``failed``, ``killed`` or ``skipped``
    (a step after a failed one; skipped is a step status, never a run status). ``run_id`` is the
    child run of the step's latest attempt (None until it starts).
    """

    name: str
    status: str = "pending"
    run_id: str | None = None

    def __repr__(self) -> str:
        run = f" run={self.run_id[:8]}" if self.run_id else ""
        return f"<PipelineStep {self.name!r} {self.status}{run}>"


@dataclass(frozen=True, slots=True)
class Pipeline(_Entity):
    """A pipeline run by ``run_pipeline``: named steps in order, each a child run of one run.

    ``id`` is the id of the pipeline's run (its steps' runs are its children). ``status`` is
    ``running``, ``completed``, ``failed`` or ``killed``.
    """

    id: str
    name: str
    status: str
    steps: tuple[PipelineStep, ...] = ()
    created: int = 0
    updated: int = 0

    _NESTED: ClassVar[dict[str, Any]] = {
        "steps": lambda steps: tuple(PipelineStep.from_dict(s) for s in steps),
    }

    @property
    def run_id(self) -> str:
        """The pipeline's own run (the parent of the steps' runs): the same as ``id``."""
        return self.id

    def step(self, name: str) -> PipelineStep:
        """The step called ``name`` (``KeyError`` naming the steps if there is none)."""
        for s in self.steps:
            if s.name == name:
                return s
        raise KeyError(
            f"pipeline {self.name!r} has no step {name!r}; its steps: {[s.name for s in self.steps]}"
        )

    def __repr__(self) -> str:
        steps = ", ".join(f"{s.name}={s.status}" for s in self.steps)
        return f"<Pipeline {self.name!r} {self.id[:8]} {self.status}: {steps}>"

    def _repr_html_(self) -> str:
        return _display.html_table(
            ["step", "status", "run"],
            [[s.name, s.status, (s.run_id or "")[:8]] for s in self.steps],
            caption=f"pipeline {self.name} ({self.id[:8]}): {self.status}, {_display.fmt_time(self.created)}",
        )
