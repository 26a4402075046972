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
from typing import Any, BinaryIO, Protocol, runtime_checkable

from chachaml.entities import (
    Artifact,
    Dataset,
    Experiment,
    GcReport,
    Metric,
    Model,
    ModelEvent,
    ModelVersion,
    Run,
)

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


class ArtifactStore(Protocol):
    """The artifact role of a store: bytes kept with a run, plus their metadata.

    ``log_artifact`` writes the bytes before the row, atomically (see
    ``chachaml.store._sqlite_artifacts``); names are relative paths that cannot leave the run's
    folder (``InvalidValueError``); identical bytes again are a no-op, other bytes raise
    ``ConflictError`` unless ``overwrite``; the run must be running (``RunStateError``).
    """

    def log_artifact(
        self,
        run_id: str,
        name: str,
        data: bytes | BinaryIO,
        *,
        format: str,
        content_type: str,
        created: int,
        overwrite: bool = False,
    ) -> Artifact: ...

    def get_artifact(self, run_id: str, name: str) -> Artifact: ...

    def list_artifacts(self, run_id: str) -> list[Artifact]: ...

    def open_artifact(self, run_id: str, name: str) -> BinaryIO: ...

    def artifact_path(self, run_id: str, name: str) -> str: ...

    def gc_artifacts(self, *, dry_run: bool = False) -> GcReport: ...


class RegistryStore(Protocol):
    """The model-registry role of a store. Each write is one transaction; at most one version
    per model is ``production`` (promoting one archives the previous one in the same
    transaction); a missing model or version raises ``ModelNotFoundError`` and changes nothing."""

    def register_model(
        self,
        name: str,
        *,
        run_id: str,
        artifact: str,
        stage: str = "none",
        description: str | None = None,
        who: str | None = None,
        now: int,
    ) -> ModelVersion: ...

    def promote(
        self, name: str, version: int, stage: str, *, who: str | None = None, now: int
    ) -> ModelVersion: ...

    def set_alias(
        self, name: str, alias: str, version: int, *, who: str | None = None, now: int
    ) -> ModelVersion: ...

    def delete_alias(self, name: str, alias: str, *, who: str | None = None, now: int) -> bool: ...

    def set_model_description(
        self, name: str, description: str | None, *, version: int | None = None, now: int
    ) -> None: ...

    def get_model_version(
        self, name: str, *, version: int | None = None, stage: str | None = None, alias: str | None = None
    ) -> ModelVersion: ...

    def get_model(self, name: str) -> Model: ...

    def models(self) -> list[Model]: ...

    def model_versions(self, name: str) -> list[ModelVersion]: ...

    def model_history(self, name: str) -> list[ModelEvent]: ...


@runtime_checkable
class Store(ArtifactStore, RegistryStore, Protocol):
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

    # -- search and the lifecycle of data (issue 3) -------------------------------------------
    def best_run(self, flt: RunFilter, key: str, mode: str) -> Run | None:
        """The matching run with the highest (``mode="max"``) or lowest (``"min"``) value of
        ``key`` at any step, with ``best_value`` / ``best_step`` set; None if none logged it."""
        ...

    def delete_run(self, run_id: str) -> None:
        """Delete a run and all it logged, its artifact files too; children keep living
        (``parent_id`` None). ``RunNotFoundError`` if unknown; the registry may refuse
        (``ConflictError``)."""
        ...

    def delete_experiment(self, name: str) -> int:
        """Delete an experiment and all its runs (as ``delete_run``); returns the run count."""
        ...

    def archive_runs(
        self, archived: bool, *, experiment: str | None = None, started_before: int | None = None
    ) -> int:
        """Archive (finished runs only) or unarchive matching runs; returns how many changed."""
        ...
