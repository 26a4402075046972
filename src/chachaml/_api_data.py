"""The ``Client``'s analysis and data-lifecycle verbs: best run, comparisons, exports, deleting
and archiving runs and experiments, garbage-collecting artifact files."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from chachaml import _process
from chachaml._api_base import FILTERS
from chachaml._api_runs import RunsApi
from chachaml._values import check_key
from chachaml.entities import Run
from chachaml.errors import InvalidValueError, StoreError
from chachaml.rules import check_mode, started_before
from chachaml.store.base import LocalArtifacts

# Annotations only: these load with the first verb that needs them, not with the Client
if TYPE_CHECKING:
    from chachaml.entities import (
        GcReport,
    )
    from chachaml.results import Comparison


class DataApi(RunsApi):
    """Analysis and the lifecycle of data (a layer of ``chachaml.client.Client``)."""

    __slots__ = ()

    def best_run(
        self,
        metric: str,
        *,
        experiment: str | None = None,
        mode: str = "max",
        where: str | None = None,
        **filters: Any,
    ) -> Run | None:
        """The run holding the best value of ``metric`` at any step, or None if no run logged it.

        Every step of every matching run counts; NaN is never best. The returned ``Run`` has
        ``best_value`` and ``best_step`` set. Ties go to the run that started first, and within
        a run to the earliest step.

        Args:
            metric: the metric key, e.g. ``"val_acc"``.
            experiment: only runs of this experiment.
            mode: ``"max"`` (default) or ``"min"`` (for losses).
            where: a query narrowing the runs, e.g. ``"params.model = 'resnet'"``.
            **filters: the other filters of ``runs()`` (status, tags, include_archived, ...).

        Raises:
            InvalidValueError: a bad ``mode``, or a paging/ordering or unknown argument.
            QueryError: ``where`` is malformed.
        """
        metric = check_key(metric, "metric key")
        check_mode(mode)
        for bad in ("order_by", "limit", "offset"):
            if bad in filters:
                raise InvalidValueError(f"best_run() takes no {bad}=; it returns one run")
        unknown = sorted(set(filters) - set(FILTERS))
        if unknown:
            raise InvalidValueError(
                f"best_run() got unexpected arguments {unknown}; it takes the filters of runs()"
            )
        flt = self._filter(experiment=experiment, where=where, **filters)
        return self.store.best_run(flt, metric, mode)

    def compare_runs(self, runs: Iterable[Any]) -> Comparison:
        """Params and latest metrics of these runs side by side (a ``Comparison``).

        ``runs`` are Runs, ids or unique prefixes (a ``RunList`` works), in column order.

        Raises:
            InvalidValueError: ``runs`` is not a list of runs (e.g. None) or is empty.
            RunNotFoundError: an id matches no run.
        """
        if isinstance(runs, str | Run):
            raise InvalidValueError("compare_runs() takes a list of runs or ids, e.g. compare_runs([a, b])")
        if not isinstance(runs, Iterable):
            raise InvalidValueError(
                f"compare_runs() takes a list of runs or ids, got {type(runs).__name__} {runs!r}; "
                "pass e.g. compare_runs([a, b]) or compare_runs(runs(limit=3))"
            )
        wanted = list(runs)
        if not wanted:
            raise InvalidValueError("compare_runs() needs at least one run id; pass e.g. runs(limit=3)")
        from chachaml.results import Comparison

        return Comparison.of([self.get_run(r) for r in wanted])

    def export_runs(self, **filters: Any) -> list[dict[str, Any]]:
        """``runs(**filters).to_records()``: flat dicts with ``params.<key>``, ``metrics.<key>``
        and ``tags.<key>`` columns that never overwrite a run attribute."""
        return self.runs(**filters).to_records()

    # -- the lifecycle of data -----------------------------------------------------------------
    def delete_run(self, run: Any) -> None:
        """Delete a run for good: its params, metrics, tags, datasets, artifacts and their bytes.

        Child runs are kept (their ``parent_id`` becomes None).

        Raises:
            RunNotFoundError: no such run.
            ConflictError: the run backs a registered model version (archive it instead).
        """
        self.store.delete_run(self.resolve_run_id(run))

    def delete_experiment(self, name: str) -> int:
        """Delete an experiment and all its runs for good; returns how many runs. The name is
        free again afterwards.

        Raises:
            ExperimentNotFoundError: there is no such experiment.
            ConflictError: one of its runs backs a registered model version; nothing is deleted.
        """
        return self.store.delete_experiment(check_key(name, "experiment name"))

    def archive_runs(self, *, older_than_days: float | None = None, experiment: str | None = None) -> int:
        """Hide finished runs that started ``older_than_days`` ago or earlier from default
        listings; returns how many. Running runs are never archived; None archives every
        finished run (of ``experiment``, when given)."""
        before = started_before(older_than_days, _process.now_ms())
        exp = None if experiment is None else check_key(experiment, "experiment name")
        return self.store.archive_runs(True, experiment=exp, started_before=before)

    def unarchive_runs(self, *, older_than_days: float | None = None, experiment: str | None = None) -> int:
        """Undo ``archive_runs`` for archived runs matching the same filters; returns how many."""
        before = started_before(older_than_days, _process.now_ms())
        exp = None if experiment is None else check_key(experiment, "experiment name")
        return self.store.archive_runs(False, experiment=exp, started_before=before)

    def gc_artifacts(self, *, dry_run: bool = False) -> GcReport:
        """Remove artifact files no run references (and abandoned temporary files); report them.

        Raises:
            StoreError: the store keeps no local artifact folder (a remote store: its server
                collects garbage itself).
        """
        return self._local("gc_artifacts").gc_artifacts(dry_run=dry_run)

    def _local(self, what: str) -> LocalArtifacts:
        store = self.store
        if not isinstance(store, LocalArtifacts):
            raise StoreError(
                f"{what} needs a store that keeps artifacts on this machine, and {store.uri} does "
                "not; use load_artifact / open_artifact to read artifacts instead"
            )
        return store
