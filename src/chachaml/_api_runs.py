"""The ``Client``'s run verbs: start and end runs, log to them, read them back."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from chachaml import _owned, _process
from chachaml._api_base import ClientBase
from chachaml._values import (
    check_key,
    metric_points,
    metric_value,
    params_items,
    step_value,
    tag_value,
    timestamp_value,
)
from chachaml.entities import Dataset, Experiment, Metric, Run
from chachaml.errors import InvalidValueError
from chachaml.rules import check_count, check_features, check_final_status, check_tags, is_full_id
from chachaml.store.base import NewRun

if TYPE_CHECKING:  # loaded by the first query, not by the first log (benchmarks: first use)
    from chachaml.results import RunList


def _new_run_id() -> str:
    """A random (version 4) UUID in 32 hex digits, as ``uuid.uuid4().hex`` gives: without
    importing ``uuid``, which imports ``platform`` and costs milliseconds at first use."""
    b = bytearray(os.urandom(16))
    b[6] = (b[6] & 0x0F) | 0x40  # version 4
    b[8] = (b[8] & 0x3F) | 0x80  # RFC 4122 variant
    return b.hex()


class RunsApi(ClientBase):
    """Run lifecycle, logging and reading (mixed into ``chachaml.client.Client``)."""

    __slots__ = ()

    # -- run lifecycle -------------------------------------------------------------------------
    def start_run(
        self,
        name: str | None = None,
        *,
        experiment: str | None = None,
        tags: Mapping[str, Any] | None = None,
        parent_id: Any = None,
        run_id: Any = None,
    ) -> Run:
        """Create a run (owned by this process) and return it; or resume ``run_id``.

        Like ``chachaml.start_run``, a run left open is ended when the process exits
        (``completed``, or ``failed``/``killed`` when the process fails), and its heartbeat is
        refreshed while the process lives; ``end_run`` ends it earlier.

        Args:
            name: a label for people; need not be unique.
            experiment: the experiment (created on first use); None means the parent's, else
                ``"default"`` (the module-level ``start_run`` adds ``set_experiment`` and
                ``$CHACHAML_EXPERIMENT``, which belong to the context).
            tags: initial tags (values converted with ``str()``).
            parent_id: the parent run (a Run, id or prefix); None for a top-level run.
            run_id: resume this existing run (a Run, id or prefix): it becomes running again
                and ``tags`` are added to it.

        Raises:
            InvalidValueError: a bad name, experiment or tag.
            RunNotFoundError: ``parent_id`` or ``run_id`` names no run.
        """
        if name is not None and not isinstance(name, str):
            raise InvalidValueError(f"run name must be a str or None, got {name!r}")
        if experiment is not None:
            experiment = check_key(experiment, "experiment name")
        clean_tags = check_tags(tags)
        store = self.store
        if run_id is not None:
            resumed = self.resolve_run_id(run_id, "run_id=")
            run = store.resume_run(resumed, _process.owner(), _process.now_ms())
            if clean_tags:
                store.log_batch(run.id, tags=clean_tags)
            _owned.opened(store, run.id)
            return run
        parent = None
        if parent_id is not None:
            parent = self._ref_text(parent_id, "parent_id=")
            if experiment is None or not is_full_id(parent):
                found = store.get_run(parent)  # resolves a prefix; a child takes its experiment
                parent, experiment = found.id, experiment or found.experiment
        run = store.create_run(
            NewRun(
                id=_new_run_id(),
                experiment="default" if experiment is None else experiment,
                start_time=_process.now_ms(),
                owner=_process.owner(),
                name=name,
                parent_id=parent,
                created_by=_process.current_user(),
                tags=clean_tags,
                env=_process.environment(),
            )
        )
        # This process owns the run, however it was started: it is ended at process exit with
        # the process's outcome and its heartbeat is kept fresh, as for chachaml.start_run.
        _owned.opened(store, run.id)
        return run

    def end_run(self, run: Any, status: str = "completed") -> None:
        """End a running run with ``status`` (completed, failed, killed); a finished run is left
        as it is. Returns None, like MLflow's ``end_run``."""
        check_final_status(status)
        run_id = self.resolve_run_id(run)
        self.store.end_run(run_id, status, _process.now_ms(), None)
        _owned.closed(run_id)

    # -- logging -------------------------------------------------------------------------------
    def log_param(self, key: str, value: Any, *, run: Any, overwrite: bool = False) -> None:
        """Log one param. Params are immutable: the same value again is a no-op, another value
        raises ``ConflictError`` unless ``overwrite=True``. A dict value is flattened with dots."""
        items = params_items({check_key(key, "param key"): value})
        self.store.log_batch(self.resolve_run_id(run), params=items, overwrite=overwrite)

    def log_params(self, params: Mapping[str, Any], *, run: Any, overwrite: bool = False) -> None:
        """Log several params at once, all or nothing (see ``log_param``)."""
        run_id = self.resolve_run_id(run)
        items = params_items(params)
        if items:
            self.store.log_batch(run_id, params=items, overwrite=overwrite)

    def log_metric(
        self, key: str, value: Any, step: int | None = None, *, run: Any, timestamp: Any = None
    ) -> None:
        """Log one metric point, committed before this returns.

        ``value`` is a real number (NaN and ±inf are kept); ``step=None`` means the next step for
        this key in this run (``rules.next_step``); ``timestamp`` is integer milliseconds.
        """
        run_id = self.resolve_run_id(run)
        key = check_key(key, "metric key")
        value = metric_value(value, key)
        step = None if step is None else step_value(step)
        ts = _process.now_ms() if timestamp is None else timestamp_value(timestamp)
        self.store.log_metric(run_id, key, value, step, ts)

    def log_metrics(
        self, metrics: Mapping[str, Any], step: int | None = None, *, run: Any, timestamp: Any = None
    ) -> None:
        """Log several metrics at one step in one transaction (all or nothing)."""
        points = metric_points(metrics, step, timestamp, _process.now_ms())
        run_id = self.resolve_run_id(run)
        if points:
            self.store.log_batch(run_id, metrics=points)

    def set_tag(self, key: str, value: Any, *, run: Any) -> None:
        """Set a tag (mutable, a string); allowed on finished runs."""
        self.store.log_batch(self.resolve_run_id(run), tags={check_key(key, "tag key"): tag_value(value)})

    def set_tags(self, tags: Mapping[str, Any], *, run: Any) -> None:
        """Set several tags at once."""
        run_id = self.resolve_run_id(run)
        clean = check_tags(tags)
        if clean:
            self.store.log_batch(run_id, tags=clean)

    def delete_tag(self, key: str, *, run: Any) -> None:
        """Remove a tag (no error if it is not set)."""
        self.store.delete_tag(self.resolve_run_id(run), check_key(key, "tag key"))

    def set_note(self, markdown: str, *, run: Any) -> None:
        """Set the run's note (markdown text), replacing any previous note."""
        if not isinstance(markdown, str):
            raise InvalidValueError(f"a note must be a str of markdown, got {type(markdown).__name__}")
        self.store.set_note(self.resolve_run_id(run), markdown)

    def log_dataset(
        self,
        name: str,
        *,
        run: Any,
        role: str = "train",
        source: str | None = None,
        n_rows: int | None = None,
        n_cols: int | None = None,
        features: list[str] | None = None,
        digest: str | None = None,
    ) -> Dataset:
        """Record a dataset the run used (metadata only: the data is not copied)."""
        run_id = self.resolve_run_id(run)
        ds = Dataset(
            name=check_key(name, "dataset name"),
            role=check_key(role, "dataset role"),
            source=None if source is None else str(source),
            n_rows=check_count("n_rows", n_rows),
            n_cols=check_count("n_cols", n_cols),
            features=check_features(features),
            digest=digest,
            created=_process.now_ms(),
        )
        self.store.log_dataset(run_id, ds)
        return ds

    def create_experiment(
        self, name: str, *, description: str | None = None, owner: str | None = None
    ) -> Experiment:
        """Create an experiment (or update its description/owner) and return it."""
        name = check_key(name, "experiment name")
        return self.store.create_experiment(
            name, description, owner or _process.current_user(), _process.now_ms()
        )

    # -- reading -------------------------------------------------------------------------------
    def get_run(self, run: Any) -> Run:
        """A fresh snapshot of the run (a Run, an id or a unique prefix, like git).

        Raises:
            RunNotFoundError: no run has this id or prefix.
            InvalidValueError: the prefix matches several runs.
        """
        return self.store.get_run(self._ref_text(run, "get_run()'s argument"))

    def runs(
        self,
        *,
        experiment: str | None = None,
        status: str | None = None,
        name: str | None = None,
        parent_id: Any = None,
        created_by: str | None = None,
        tags: Mapping[str, Any] | None = None,
        where: str | None = None,
        order_by: str | None = None,
        limit: int | None = None,
        offset: int = 0,
        include_archived: bool = False,
    ) -> RunList:
        """Runs matching every given filter, newest ``start_time`` first.

        Args:
            experiment, status, name, parent_id, created_by: equality filters.
            tags: runs having all these tag values.
            where: a query, e.g. ``"params.lr < 0.1 and metrics.acc.max > 0.9"``.
            order_by: e.g. ``"metrics.acc desc"`` (default: newest first).
            limit, offset: paging; all matching runs by default.
            include_archived: also list archived runs.

        Raises:
            QueryError: ``where`` or ``order_by`` is malformed (before the store is touched).
        """
        flt = self._filter(
            experiment,
            status,
            name,
            parent_id,
            created_by,
            tags,
            where,
            order_by,
            limit,
            offset,
            include_archived,
        )
        from chachaml.results import RunList

        return RunList(self.store.find_runs(flt))

    def last_run(self, **filters: Any) -> Run | None:
        """The most recently started run matching the filters of ``runs()``, or None."""
        found = self.runs(**{**filters, "limit": 1})
        return found[0] if found else None

    def metric_history(self, run: Any, key: str, *, after_step: int | None = None) -> list[Metric]:
        """Every point of one metric of one run in step order (ties in logging order); with
        ``after_step``, only the points above that step (for live charts).

        Raises:
            RunNotFoundError: the run does not exist (an unknown key gives ``[]``).
        """
        key = check_key(key, "metric key")
        run_id = self.resolve_run_id(run)
        after = None if after_step is None else step_value(after_step)
        points = self.store.metric_history(run_id, key, after_step=after)
        if not points:
            self.store.get_run(run_id)  # an unknown run raises RunNotFoundError instead of []
        return points

    def metric_window(
        self,
        run: Any,
        key: str,
        *,
        after_step: int | None = None,
        before_step: int | None = None,
        max_points: int | None = None,
    ) -> tuple[list[Metric], int]:
        """The points of one metric between ``after_step`` and ``before_step`` (both exclusive,
        both optional) in step order, downsampled to at most ``max_points`` (the first and the
        last point and each bucket's minimum and maximum survive), and how many points the
        window holds. Long histories are read from a min/max pyramid (docs/adr/0025).

        Raises:
            RunNotFoundError: the run does not exist (an unknown key gives ``([], 0)``).
            InvalidValueError: ``max_points`` is below 2.
        """
        key = check_key(key, "metric key")
        run_id = self.resolve_run_id(run)
        after = None if after_step is None else step_value(after_step)
        before = None if before_step is None else step_value(before_step)
        from chachaml._downsample import check_max_points

        check_max_points(max_points)
        points, count = self.store.metric_window(
            run_id, key, after_step=after, before_step=before, max_points=max_points
        )
        if not count:
            self.store.get_run(run_id)
        return points, count

    def metric_summaries(self, run: Any) -> dict[str, dict[str, Any]]:
        """Per metric key: ``{"last", "min", "max", "count", "last_step"}`` over every step."""
        run_id = self.resolve_run_id(run)
        found = self.store.metric_summaries(run_id)
        if not found:
            self.store.get_run(run_id)
        return found

    def experiments(self) -> list[Experiment]:
        """All experiments with their run counts, oldest first."""
        return self.store.experiments()
