"""The explicit-store API object: a THIN SHIM until h8-arch lands the real ``Client``.

Only the methods the command line and the web API use are here, with the names and arguments
agreed in the architecture issue (``/work/prompts/client.md``). Each calls the existing
module-level verbs inside ``chachaml.with_store(self.store)`` and passes ``run=`` explicitly.
The lead replaces this file with the real one at merge.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from typing import Any, BinaryIO

from chachaml import analysis, artifacts, context, reading, registry, tracking
from chachaml.entities import (
    Artifact,
    Comparison,
    Dataset,
    Experiment,
    GcReport,
    Metric,
    Model,
    ModelEvent,
    ModelVersion,
    Run,
    RunList,
)
from chachaml.store import is_store, open_store
from chachaml.store._files import check_name
from chachaml.store.base import Store

__all__ = ["Client"]


class Client:
    """Every verb over one explicit store (shim until h8-arch lands)."""

    def __init__(self, target: Any) -> None:
        self._owned = not is_store(target)
        self.store: Store = open_store(target)

    def close(self) -> None:
        if self._owned:
            self.store.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextlib.contextmanager
    def _scope(self) -> Iterator[None]:
        with context.with_store(self.store):
            yield

    # -- reads ------------------------------------------------------------------------------
    def runs(self, **filters: Any) -> RunList:
        with self._scope():
            return reading.runs(**filters)

    def get_run(self, ref: Any) -> Run:
        with self._scope():
            return self.store.get_run(reading.full_run_id(self.store, ref))

    def last_run(self, **filters: Any) -> Run | None:
        with self._scope():
            return reading.last_run(**filters)

    def metric_history(self, ref: Any, key: str, *, after_step: int | None = None) -> list[Metric]:
        with self._scope():
            points = reading.metric_history(ref, key)
        if after_step is not None:
            points = [p for p in points if p.step > after_step]
        return points

    def metric_summaries(self, ref: Any) -> dict[str, dict[str, Any]]:
        run = self.get_run(ref)
        out: dict[str, dict[str, Any]] = {}
        for key in sorted(run.metrics):
            points = self.metric_history(run.id, key)
            values = [p.value for p in points if p.value == p.value]  # NaN is never min or max
            out[key] = {
                "last": run.metrics[key],
                "min": min(values) if values else None,
                "max": max(values) if values else None,
                "count": len(points),
                "last_step": max((p.step for p in points), default=None),
            }
        return out

    def experiments(self) -> list[Experiment]:
        with self._scope():
            return reading.experiments()

    def create_experiment(
        self, name: str, *, description: str | None = None, owner: str | None = None
    ) -> Experiment:
        with self._scope():
            return reading.create_experiment(name, description=description, owner=owner)

    def best_run(
        self, metric: str, *, experiment: str | None = None, mode: str = "max", where: str | None = None
    ) -> Run | None:
        with self._scope():
            return analysis.best_run(metric, experiment=experiment, mode=mode, where=where)

    def compare_runs(self, refs: Any) -> Comparison:
        with self._scope():
            return analysis.compare_runs(refs)

    def export_runs(self, **filters: Any) -> list[dict[str, Any]]:
        with self._scope():
            return analysis.export_runs(**filters)

    def list_artifacts(self, ref: Any) -> list[Artifact]:
        with self._scope():
            return artifacts.list_artifacts(ref)

    def load_artifact(self, ref: Any, name: str) -> Any:
        with self._scope():
            return artifacts.load_artifact(ref, name)

    def open_artifact(self, ref: Any, name: str) -> BinaryIO:
        run_id = self.get_run(ref).id
        self.store.get_artifact(run_id, check_name(name))  # ArtifactNotFoundError first
        return self.store.open_artifact(run_id, name)

    def models(self) -> list[Model]:
        with self._scope():
            return registry.models()

    def model(self, name: str) -> Model:
        with self._scope():
            return registry.model(name)

    def model_versions(self, name: str) -> list[ModelVersion]:
        with self._scope():
            return registry.model_versions(name)

    def model_history(self, name: str) -> list[ModelEvent]:
        with self._scope():
            return registry.model_history(name)

    def get_model_version(self, name: str, version: int) -> ModelVersion:
        with self._scope():
            return registry.get_model_version(name, version=version)

    # -- writes (run= is explicit) ------------------------------------------------------------
    def start_run(
        self,
        name: str | None = None,
        *,
        experiment: str | None = None,
        tags: Mapping[str, Any] | None = None,
        parent_id: str | None = None,
        run_id: str | None = None,
    ) -> Run:
        with self._scope():
            _, run = tracking._open_run(name, experiment or "default", tags, parent_id, run_id)
        return run

    def end_run(self, ref: Any, status: str = "completed") -> None:
        if status not in ("completed", "failed", "killed"):
            from chachaml.errors import InvalidValueError

            raise InvalidValueError(
                f"status {status!r} is not a final status; use one of completed, failed, killed"
            )
        run_id = self.get_run(ref).id
        context.process.open_runs.pop(run_id, None)
        from chachaml import _lifecycle

        self.store.end_run(run_id, status, _lifecycle.now_ms(), None)

    def log_param(self, key: str, value: Any, *, run: Any, overwrite: bool = False) -> None:
        with self._scope():
            tracking.log_param(key, value, overwrite=overwrite, run=self._id(run))

    def log_params(self, mapping: Mapping[str, Any], *, run: Any, overwrite: bool = False) -> None:
        with self._scope():
            tracking.log_params(mapping, overwrite=overwrite, run=self._id(run))

    def log_metric(
        self, key: str, value: Any, step: int | None = None, *, run: Any, timestamp: Any = None
    ) -> None:
        with self._scope():
            tracking.log_metric(key, value, step, timestamp=timestamp, run=self._id(run))

    def log_metrics(self, mapping: Mapping[str, Any], step: int | None = None, *, run: Any) -> None:
        with self._scope():
            tracking.log_metrics(mapping, step, run=self._id(run))

    def set_tag(self, key: str, value: Any, *, run: Any) -> None:
        with self._scope():
            tracking.set_tag(key, value, run=self._id(run))

    def set_tags(self, mapping: Mapping[str, Any], *, run: Any) -> None:
        with self._scope():
            tracking.set_tags(mapping, run=self._id(run))

    def delete_tag(self, key: str, *, run: Any) -> None:
        with self._scope():
            tracking.delete_tag(key, run=self._id(run))

    def set_note(self, markdown: str, *, run: Any) -> None:
        with self._scope():
            tracking.set_note(markdown, run=self._id(run))

    def log_dataset(self, name: str, *, run: Any, **fields: Any) -> Dataset:
        with self._scope():
            return tracking.log_dataset(name, run=self._id(run), **fields)

    def log_artifact(
        self, name: str, value: Any, *, run: Any, format: str | None = None, overwrite: bool = False
    ) -> Artifact:
        with self._scope():
            return artifacts.log_artifact(name, value, format=format, overwrite=overwrite, run=self._id(run))

    def log_file(self, path: Any, name: str | None = None, *, run: Any, overwrite: bool = False) -> Artifact:
        with self._scope():
            return artifacts.log_file(path, name, overwrite=overwrite, run=self._id(run))

    def delete_run(self, ref: Any) -> None:
        with self._scope():
            analysis.delete_run(ref)

    def delete_experiment(self, name: str) -> int:
        with self._scope():
            return analysis.delete_experiment(name)

    def archive_runs(self, *, older_than_days: float | None, experiment: str | None = None) -> int:
        with self._scope():
            return analysis.archive_runs(older_than_days, experiment=experiment)

    def unarchive_runs(self, *, older_than_days: float | None = None, experiment: str | None = None) -> int:
        with self._scope():
            return analysis.unarchive_runs(older_than_days, experiment=experiment)

    def gc_artifacts(self, *, dry_run: bool = False) -> GcReport:
        with self._scope():
            return artifacts.gc(dry_run=dry_run)

    def register_model(
        self,
        name: str,
        *,
        artifact: str,
        run_id: Any,
        stage: str = "none",
        description: str | None = None,
    ) -> ModelVersion:
        with self._scope():
            return registry.register_model(
                name, artifact=artifact, run_id=self._id(run_id), stage=stage, description=description
            )

    def promote(self, name: str, version: int, stage: str) -> ModelVersion:
        with self._scope():
            return registry.promote(name, version, stage)

    def set_alias(self, name: str, alias: str, version: int) -> ModelVersion:
        with self._scope():
            return registry.set_alias(name, alias, version)

    def delete_alias(self, name: str, alias: str) -> bool:
        with self._scope():
            return registry.delete_alias(name, alias)

    def set_model_description(self, name: str, description: str | None) -> None:
        with self._scope():
            registry.set_model_description(name, description)

    def _id(self, run: Any) -> str:
        """The full id of a run reference (a ``Run``, an id or a unique prefix)."""
        return reading.full_run_id(self.store, run)
