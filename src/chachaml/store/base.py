"""The store contract, split by role, and the plain records that cross it.

A store never reads the context (STYLE.md): every call receives the run id, the owner and the
time explicitly, so a backend is testable without globals and the ``Client`` can be served by
SQLite today and by PostgreSQL or a tracking server later without changing. Three roles:

* ``RunStore`` -- runs with their params, metrics, tags, notes and datasets; search
  (``find_runs``, ``best_run``); the lifecycle of data (delete, archive).
* ``ArtifactStore`` -- artifact metadata plus streamed bytes in (``log_artifact``) and out
  (``open_artifact``). Nothing in it assumes a local disk.
* ``RegistryStore`` -- models, versions, stages, aliases and their history.
* ``AutomationStore`` -- alerts with their events, and pipelines with their steps
  (SPEC section 11; ``chachaml._automation_rules`` holds their rules).

``Store`` is all four. Capabilities only a local store has are a separate, optional protocol,
``LocalArtifacts`` (a file path for an artifact, garbage collection of a folder): callers check
``isinstance(store, LocalArtifacts)`` and say so when it is missing. The rules (validation,
immutability, prefix resolution, stages) are ``chachaml.rules``; a store applies the decision
rules inside its transactions. ``tests/conformance/`` runs the same suite against every
backend, method by method.

Errors every role may raise: ``RunStateError`` for a closed store, ``StoreError`` for a failing
backend (chained ``from`` the driver error).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, BinaryIO, Protocol, runtime_checkable

from chachaml._process import Owner
from chachaml.entities import Dataset, Experiment, Metric, Run
from chachaml.rules import STATUSES

# Annotations only: these load with the first verb that needs them (docs/adr/0028)
if TYPE_CHECKING:
    from chachaml.automation_entities import Alert, AlertEvent, Pipeline
    from chachaml.entities import (
        Artifact,
        GcReport,
        Model,
        ModelEvent,
        ModelVersion,
    )

__all__ = [
    "STATUSES",
    "AlertPoint",
    "ArtifactStore",
    "AutomationStore",
    "LocalArtifacts",
    "MetricIn",
    "NewRun",
    "Owner",
    "RegistryStore",
    "RunFilter",
    "RunStore",
    "Store",
]

#: One metric point on its way in: (key, value, step or None for "next", timestamp ms).
MetricIn = tuple[str, float, "int | None", int]


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
    """The filters ``runs()`` accepts, as one value a backend can translate.

    ``where`` and ``order_by`` are query texts (``chachaml.query``), already validated by the
    ``Client``; an SQL store compiles them, a remote store sends them as they are.
    """

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


@dataclass(frozen=True, slots=True)
class AlertPoint:
    """A run's latest point of an alert's metric, as ``AutomationStore.alert_candidates`` finds it."""

    run_id: str
    experiment: str
    step: int
    value: float
    timestamp: int


class RunStore(Protocol):
    """Runs, their data, search and the lifecycle of data. Every write is one transaction."""

    #: A string that reopens this store from another process (``open_store(uri)``).
    uri: str

    @property
    def closed(self) -> bool:
        """True once ``close()`` was called; every other call then raises ``RunStateError``."""
        ...

    def close(self) -> None:
        """Release the connection (idempotent). An in-memory store's data is gone afterwards."""
        ...

    # -- run lifecycle -------------------------------------------------------------------
    def create_run(self, new: NewRun) -> Run:
        """Create a ``running`` run (and its experiment on first use) and return it.

        Raises ``ConflictError`` if the id exists, ``RunNotFoundError`` if ``parent_id`` does not.
        """
        ...

    def resume_run(self, run_id: str, owner: Owner, now: int) -> Run:
        """Make a run ``running`` again under a new owner (end time and error cleared); its data
        is kept. ``RunNotFoundError`` if there is no such run."""
        ...

    def end_run(
        self, run_id: str, status: str, end_time: int, error: Mapping[str, str] | None = None
    ) -> bool:
        """End a running run; False if it was not running (already ended: nothing changes)."""
        ...

    def heartbeat(self, run_ids: Sequence[str], now: int) -> None:
        """Record that the owners of these running runs are alive (finished runs are skipped)."""
        ...

    # -- the one write primitive -----------------------------------------------------------
    def log_batch(
        self,
        run_id: str,
        *,
        params: Mapping[str, str] | None = None,
        metrics: Sequence[MetricIn] = (),
        tags: Mapping[str, str] | None = None,
        overwrite: bool = False,
        batch_id: str | None = None,
    ) -> bool:
        """Write params (JSON text), metric points and tags in one transaction.

        ``batch_id`` (optional) makes the write idempotent: a batch id already applied to this
        run writes nothing and returns False (a sender resending after a lost reply or a
        server restart); it is recorded durably in the same transaction. Returns True otherwise.

        Params and metrics need a running run (``RunStateError`` otherwise; ``RunNotFoundError``
        for an unknown run); tags only need the run to exist. A param whose stored value differs
        raises ``ConflictError`` unless ``overwrite`` (``rules.param_conflict``); nothing of the
        batch is written then. A ``None`` step becomes ``rules.next_step`` inside the write.
        """
        ...

    def log_metric(self, run_id: str, key: str, value: float, step: int | None, ts: int) -> None:
        """The hot path: ``log_batch`` of one metric point, committed on return."""
        ...

    def delete_tag(self, run_id: str, key: str) -> None:
        """Remove a tag (no error if unset); ``RunNotFoundError`` for an unknown run."""
        ...

    def set_note(self, run_id: str, note: str) -> None:
        """Replace the run's markdown note; ``RunNotFoundError`` for an unknown run."""
        ...

    def log_dataset(self, run_id: str, dataset: Dataset) -> None:
        """Record a dataset the run used; the run must be running (``RunStateError``)."""
        ...

    def create_experiment(
        self, name: str, description: str | None, owner: str | None, now: int
    ) -> Experiment:
        """Create an experiment, or update the description/owner given (None keeps the old)."""
        ...

    # -- reads -----------------------------------------------------------------------------
    def get_run(self, run_id: str) -> Run:
        """The run with this id or unique id prefix (``rules.resolve_prefix``):
        ``RunNotFoundError`` if none, ``InvalidValueError`` if the prefix is ambiguous."""
        ...

    def find_runs(self, flt: RunFilter) -> list[Run]:
        """Runs matching every filter, newest ``start_time`` first unless ``order_by``."""
        ...

    def metric_history(self, run_id: str, key: str, *, after_step: int | None = None) -> list[Metric]:
        """Points of one metric in step order (ties in logging order), only those with a step
        above ``after_step`` when given; ``[]`` for an unknown run or key."""
        ...

    def metric_window(
        self,
        run_id: str,
        key: str,
        *,
        after_step: int | None = None,
        before_step: int | None = None,
        max_points: int | None = None,
    ) -> tuple[list[Metric], int]:
        """The points of one metric with ``after_step < step < before_step`` (each bound
        optional) in step order, and how many there are. With ``max_points`` (at least 2) and
        more points than that, at most ``max_points`` of them: the window's first and last
        points and each bucket's minimum and maximum, NaN never one of them, a bucket of only
        NaN keeping one NaN point (``chachaml._downsample``; docs/adr/0025: buckets may be cut
        differently, by step ranges). ``([], 0)`` for an unknown run or key."""
        ...

    def metric_summaries(self, run_id: str) -> dict[str, dict[str, Any]]:
        """Per metric key of a run: ``{"last", "min", "max", "count", "last_step"}`` (min and max
        ignore NaN and are None when every point was NaN); ``{}`` for an unknown run."""
        ...

    def experiments(self) -> list[Experiment]:
        """All experiments with their run counts, oldest first."""
        ...

    # -- search and the lifecycle of data ---------------------------------------------------
    def best_run(self, flt: RunFilter, key: str, mode: str) -> Run | None:
        """The matching run with the highest (``mode="max"``) or lowest (``"min"``) value of
        ``key`` at any step, with ``best_value`` / ``best_step`` set; None if none logged it."""
        ...

    def delete_run(self, run_id: str) -> None:
        """Delete a run and all it logged, its artifact bytes too; children keep living
        (``parent_id`` None). ``RunNotFoundError`` if unknown; ``ConflictError`` if a registered
        model version needs it."""
        ...

    def delete_experiment(self, name: str) -> int:
        """Delete an experiment and all its runs (as ``delete_run``); returns the run count.
        ``ExperimentNotFoundError`` if there is no such experiment."""
        ...

    def archive_runs(
        self, archived: bool, *, experiment: str | None = None, started_before: int | None = None
    ) -> int:
        """Archive (finished runs only) or unarchive matching runs; returns how many changed."""
        ...

    # -- copies from another store (chachaml migrate; docs/adr/0017) -------------------------
    def restore_run(self, run: Run, metrics: Iterable[Metric]) -> bool:
        """Write a finished run copied from another store exactly as given (id, experiment,
        status, times, error, note, env, archived, created_by, parent, params, tags, datasets)
        with its metric points (steps, timestamps, order as given), in ONE transaction; False,
        writing nothing, if a run with this id exists. ``InvalidValueError`` for a running run,
        ``RunNotFoundError`` when ``parent_id`` is not here."""
        ...


class ArtifactStore(Protocol):
    """Artifacts: metadata rows plus bytes, streamed in and out.

    Names follow ``rules.check_artifact_name`` (``InvalidValueError``, nothing written);
    identical bytes again are a no-op, other bytes raise ``ConflictError`` unless
    ``overwrite`` (``rules.artifact_unchanged``); a name cannot be a file and a folder at once
    (``rules.artifact_ancestors``); the run must be running to write (``RunStateError``).
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
    ) -> Artifact:
        """Store ``data`` (bytes, or a binary file read in chunks: never whole in memory) as the
        run's artifact ``name``; the bytes are durable before the row. Returns the metadata."""
        ...

    def get_artifact(self, run_id: str, name: str) -> Artifact:
        """The metadata of one artifact (``ArtifactNotFoundError`` naming those the run has;
        ``RunNotFoundError`` for an unknown run)."""
        ...

    def list_artifacts(self, run_id: str) -> list[Artifact]:
        """The run's artifacts by name (``RunNotFoundError`` for an unknown run)."""
        ...

    def open_artifact(self, run_id: str, name: str) -> BinaryIO:
        """The artifact's bytes as a binary file object open for reading (the caller closes it)."""
        ...

    def restore_artifact(self, artifact: Artifact, data: bytes | BinaryIO) -> Artifact:
        """Store an artifact copied from another store: ``data`` streamed (durable before the
        row), the metadata as given (format, content type, created), whatever the run's status.
        The same bytes already there: a no-op; other bytes: ``ConflictError``; bytes whose sha256
        or size differ from ``artifact``'s: ``StoreError`` and no row. ``RunNotFoundError`` when
        the run is not here."""
        ...


class RegistryStore(Protocol):
    """The model registry. Each write is one transaction; at most one version per model is
    ``production`` (``rules.archives_production``: promoting one archives the previous one in
    the same transaction); a missing model or version raises ``ModelNotFoundError`` and changes
    nothing. ``who`` and ``now`` are recorded in the history."""

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
    ) -> ModelVersion:
        """Register an existing artifact of a run as the model's next version (1, 2, ...).
        ``RunNotFoundError`` / ``ArtifactNotFoundError`` when the source is missing."""
        ...

    def promote(
        self, name: str, version: int, stage: str, *, who: str | None = None, now: int
    ) -> ModelVersion:
        """Move a version to ``stage``; a no-op (no event) if it is there already."""
        ...

    def set_alias(
        self, name: str, alias: str, version: int, *, who: str | None = None, now: int
    ) -> ModelVersion:
        """Point ``alias`` at ``version`` (moving it from any other version)."""
        ...

    def delete_alias(self, name: str, alias: str, *, who: str | None = None, now: int) -> bool:
        """Remove an alias; True if it existed."""
        ...

    def set_model_description(
        self, name: str, description: str | None, *, version: int | None = None, now: int
    ) -> None:
        """Set the description of the model, or of one version."""
        ...

    def get_model_version(
        self, name: str, *, version: int | None = None, stage: str | None = None, alias: str | None = None
    ) -> ModelVersion:
        """One version: by number, else by alias, else the highest version at ``stage``."""
        ...

    def get_model(self, name: str) -> Model:
        """The model with all its versions (oldest first)."""
        ...

    def models(self) -> list[Model]:
        """Every model by name, without versions (``latest_version``, ``production_version``)."""
        ...

    def model_versions(self, name: str) -> list[ModelVersion]:
        """The model's versions, oldest first."""
        ...

    def model_history(self, name: str) -> list[ModelEvent]:
        """Registrations, stage and alias changes, oldest first."""
        ...

    def restore_model(self, model: Model, history: Sequence[ModelEvent]) -> bool:
        """Write a model copied from another store (``model.versions`` with their numbers,
        stages, times and authors; ``model.aliases``; ``history`` as given) in one transaction;
        False, writing nothing, if a model of that name exists. ``ArtifactNotFoundError`` when a
        version's artifact (or run) is not here."""
        ...


class AutomationStore(Protocol):
    """Alerts, their events, and pipelines (SPEC section 11). Each write is one transaction.

    The store keeps the records; the ``Client`` decides (which op crosses, when to deliver a
    webhook, how a pipeline moves on). An unknown alert or pipeline raises ``NotFoundError``
    naming it and how to list what exists.
    """

    def put_alert(
        self,
        name: str,
        *,
        metric: str,
        op: str,
        threshold: float,
        experiment: str | None,
        webhook: str | None,
        now: int,
    ) -> Alert:
        """Create the alert ``name`` or change it (an upsert), and return it.

        A new alert has ``version`` 1 and ``created == updated == now``; the store marks where
        its metric points stood, for ``alert_candidates``' "logged since". If the definition
        differs from the stored one (``_automation_rules.alert_changed``), ``version`` goes up by
        one, ``updated`` becomes ``now`` and the mark moves (``created`` is kept); the same
        definition again changes nothing and returns the stored alert.
        """
        ...

    def get_alert(self, name: str) -> Alert:
        """The alert called ``name`` (``NotFoundError`` if there is none)."""
        ...

    def alerts(self) -> list[Alert]:
        """Every alert, by name."""
        ...

    def delete_alert(self, name: str) -> bool:
        """Remove an alert and its history; True if it existed."""
        ...

    def alert_candidates(self, alert: Alert, run_ids: Sequence[str] | None = None) -> list[AlertPoint]:
        """The runs ``alert`` may fire for now, each with its latest point of ``alert.metric``.

        A run is a candidate when it is in scope (of ``alert.experiment`` when set; among
        ``run_ids`` when given; not archived; running or finished), has a point of the metric
        written to the store after the ``put_alert`` that made this version (whatever the
        point's ``timestamp``: the store keeps its own mark, exact across clocks), and has no
        event of this alert at ``alert.version`` yet. An alert that was removed or changed
        since it was read has no candidates. Its latest point is the one at the highest step (ties: the last
        logged), as in ``Run.metrics``. Ordered by run id.
        """
        ...

    def add_alert_events(self, alert: Alert, points: Sequence[AlertPoint], now: int) -> list[AlertEvent]:
        """Record that ``alert`` fired for these points' runs and return the new events.

        At most one event per run and alert version, even with concurrent callers: a run that
        fired already (or an alert that changed since ``alert`` was read) is skipped and not
        returned. Events get increasing ids; ``delivery`` is ``"pending"`` when the alert has a
        webhook, else None.
        """
        ...

    def set_alert_delivery(self, event_id: int, delivery: str, attempts: int, error: str | None) -> None:
        """Record a webhook's outcome on an event (no error if the event is gone)."""
        ...

    def alert_history(self, name: str) -> list[AlertEvent]:
        """The events of the alert ``name``, oldest first (``[]`` for an unknown alert)."""
        ...

    def put_pipeline(self, pipeline: Pipeline) -> None:
        """Create or replace a pipeline with its steps (status, run ids) in one transaction."""
        ...

    def get_pipeline(self, pipeline_id: str) -> Pipeline:
        """The pipeline with this id or unique id prefix: ``NotFoundError`` if none,
        ``InvalidValueError`` if the prefix matches several."""
        ...

    def pipelines(self, *, name: str | None = None, limit: int | None = None) -> list[Pipeline]:
        """Pipelines (of this name, when given), newest ``created`` first, at most ``limit``."""
        ...


@runtime_checkable
class Store(RunStore, ArtifactStore, RegistryStore, AutomationStore, Protocol):
    """What every backend implements: the four roles. See the module docstring."""


@runtime_checkable
class LocalArtifacts(Protocol):
    """Optional: a store whose artifact bytes are files on this machine (SQLite's are).

    Check with ``isinstance(store, LocalArtifacts)``; a remote store does not have it, and the
    ``Client`` then raises a ``ChachamlError`` saying so instead of an ``AttributeError``.
    """

    def artifact_path(self, run_id: str, name: str) -> str:
        """The absolute path of the file holding an artifact (read it; never write to it)."""
        ...

    def gc_artifacts(self, *, dry_run: bool = False) -> GcReport:
        """Remove files of the artifact folder that no row references, and abandoned temporary
        files; report them (and rows whose file is missing). ``dry_run`` removes nothing."""
        ...
