"""The store contract: what a backend must do, and the plain records that cross it.

A store never reads the context (STYLE.md): every call receives the run id explicitly, so a
backend is testable without globals and the fluent API can be served by SQLite today and by
PostgreSQL or a tracking server later without changing. The contract is deliberately small:
one write primitive (``log_batch``) plus run lifecycle, and a handful of reads.
``tests/conformance/`` runs the same suite against every backend.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from chachaml.entities import Dataset, Experiment, Metric, Run

#: Run statuses, in lifecycle order. A run is created ``running`` and ends in one of the others.
STATUSES = ("running", "completed", "failed", "killed")

#: One metric point on its way in: (key, value, step or None for "next", timestamp ms).
MetricIn = tuple[str, float, "int | None", int]


@dataclass(frozen=True, slots=True)
class Owner:
    """The process that runs a run: used to tell a dead run from a live one (ADR-0006)."""

    host: str
    pid: int
    proc_start: str  # opaque identity of the process instance (boot id + start ticks on Linux)


@dataclass(frozen=True, slots=True)
class NewRun:
    """Everything needed to create a run row."""

    id: str
    experiment: str
    start_time: int
    owner: Owner
    name: str | None = None
    parent_id: str | None = None
    created_by: str | None = None
    tags: Mapping[str, str] = field(default_factory=dict)
    env: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class RunFilter:
    """The filters ``runs()`` accepts, as one value a backend can translate."""

    experiment: str | None = None
    status: str | None = None
    name: str | None = None
    parent_id: str | None = None
    created_by: str | None = None
    tags: Mapping[str, str] | None = None
    where: str | None = None
    order_by: str | None = None
    limit: int | None = None
    offset: int = 0
    include_archived: bool = False


@runtime_checkable
class Store(Protocol):
    """What every backend implements. See the module docstring."""

    #: A string that reopens this store from another process (``open_store(uri)``).
    uri: str

    @property
    def closed(self) -> bool: ...

    def close(self) -> None: ...

    # -- run lifecycle -------------------------------------------------------------------
    def create_run(self, new: NewRun) -> Run: ...

    def resume_run(self, run_id: str, owner: Owner, now: int) -> Run: ...

    def end_run(
        self, run_id: str, status: str, end_time: int, error: Mapping[str, str] | None = None
    ) -> bool:
        """End a running run; False if it was not running (already ended)."""
        ...

    def heartbeat(self, run_ids: Sequence[str], now: int) -> None: ...

    # -- the one write primitive -----------------------------------------------------------
    def log_batch(
        self,
        run_id: str,
        *,
        params: Mapping[str, str] | None = None,
        metrics: Sequence[MetricIn] = (),
        tags: Mapping[str, str] | None = None,
        overwrite: bool = False,
    ) -> None:
        """Write params (JSON text), metric points and tags in one transaction.

        Params and metrics need a running run (``RunStateError`` otherwise); tags only need the
        run to exist. A param whose stored value differs raises ``ConflictError`` unless
        ``overwrite``; nothing of the batch is written then.
        """
        ...

    def log_metric(self, run_id: str, key: str, value: float, step: int | None, ts: int) -> None:
        """The hot path: ``log_batch`` of one metric point, committed on return."""
        ...

    def delete_tag(self, run_id: str, key: str) -> None: ...

    def set_note(self, run_id: str, note: str) -> None: ...

    def log_dataset(self, run_id: str, dataset: Dataset) -> None: ...

    def next_step(self, run_id: str, key: str) -> int: ...

    def create_experiment(
        self, name: str, description: str | None, owner: str | None, now: int
    ) -> Experiment: ...

    # -- reads -----------------------------------------------------------------------------
    def get_run(self, run_id: str) -> Run:
        """The run with this id or unique id prefix (``RunNotFoundError``, ``InvalidValueError``)."""
        ...

    def find_runs(self, flt: RunFilter) -> list[Run]: ...

    def metric_history(self, run_id: str, key: str) -> list[Metric]: ...

    def experiments(self) -> list[Experiment]: ...
