"""``Client``: the verbs over one explicit store (shim until h8-arch lands).

This is a THIN, TEMPORARY shim written for the MCP server (issue 11) while the architecture
work (branch h8-arch) builds the real ``Client``. It implements only the methods the MCP server
calls, with the names and arguments of the agreed interface, by running the module-level verbs
inside ``chachaml.with_store(self.store)`` and passing ``run=`` explicitly. The lead replaces
this file with the real one at merge; nothing else may depend on its internals.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from chachaml import context
from chachaml.entities import Artifact, Comparison, Experiment, Metric, Model, Run, RunList
from chachaml.store import is_store, open_store
from chachaml.store.base import Store

__all__ = ["Client"]


class Client:
    """The chachaml verbs over one explicit store (shim until h8-arch lands).

    Args:
        target: a path, ``":memory:"``, a ``sqlite:///`` URI or a ``Store`` object. A client
            made from a ``Store`` object never closes that store.
    """

    def __init__(self, target: Any) -> None:
        self._owned = not is_store(target)
        self.store: Store = open_store(target)

    def close(self) -> None:
        """Close the store if this client opened it."""
        if self._owned:
            self.store.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- reads ----------------------------------------------------------------------------------
    def runs(self, **filters: Any) -> RunList:
        """``chachaml.runs(**filters)`` on this store."""
        from chachaml import reading

        with context.with_store(self.store):
            return reading.runs(**filters)

    def get_run(self, ref: Any) -> Run:
        """The run ``ref`` names (a ``Run``, a full id or a unique id prefix)."""
        from chachaml import reading

        with context.with_store(self.store):
            return reading.get_run(ref.id if isinstance(ref, Run) else ref)

    def metric_history(self, ref: Any, key: str, *, after_step: int | None = None) -> list[Metric]:
        """Every point of metric ``key`` of the run ``ref`` (only steps above ``after_step``)."""
        from chachaml import reading

        with context.with_store(self.store):
            points = reading.metric_history(ref.id if isinstance(ref, Run) else ref, key)
        return points if after_step is None else [p for p in points if p.step > after_step]

    def metric_summaries(self, ref: Any) -> dict[str, dict[str, Any]]:
        """``{key: {"last", "min", "max", "count", "last_step"}}`` for each metric of ``ref``.

        The shim reads each history in full; the real client reads the summary table.
        """
        run = self.get_run(ref)
        out: dict[str, dict[str, Any]] = {}
        for key in run.metrics:
            points = self.metric_history(run.id, key)
            numbers = [p.value for p in points if not math.isnan(p.value)]
            out[key] = {
                "last": run.metrics[key],
                "min": min(numbers) if numbers else None,
                "max": max(numbers) if numbers else None,
                "count": len(points),
                "last_step": max((p.step for p in points), default=None),
            }
        return out

    def experiments(self) -> list[Experiment]:
        """All experiments with their run counts."""
        from chachaml import reading

        with context.with_store(self.store):
            return reading.experiments()

    def best_run(
        self, metric: str, *, experiment: str | None = None, mode: str = "max", where: str | None = None
    ) -> Run | None:
        """The run with the best value of ``metric`` at any step (see ``chachaml.best_run``)."""
        from chachaml import analysis

        with context.with_store(self.store):
            return analysis.best_run(metric, experiment=experiment, mode=mode, where=where)

    def compare_runs(self, refs: Iterable[Any]) -> Comparison:
        """Params and latest metrics of these runs side by side."""
        from chachaml import analysis

        with context.with_store(self.store):
            return analysis.compare_runs(refs)

    def list_artifacts(self, ref: Any) -> list[Artifact]:
        """The artifacts of the run ``ref``, by name."""
        from chachaml import artifacts

        with context.with_store(self.store):
            return artifacts.list_artifacts(ref)

    def models(self) -> list[Model]:
        """Every registered model."""
        from chachaml import registry

        with context.with_store(self.store):
            return registry.models()

    def model(self, name: str) -> Model:
        """The model ``name`` with all its versions."""
        from chachaml import registry

        with context.with_store(self.store):
            return registry.model(name)

    # -- writes (run= is required: a Client never looks at the current run) ---------------------
    def set_tag(self, key: str, value: Any, *, run: Any) -> None:
        """Set tag ``key`` of the run ``run`` (finished runs included)."""
        from chachaml import tracking

        with context.with_store(self.store):
            tracking.set_tag(key, value, run=run)

    def set_note(self, markdown: str, *, run: Any) -> None:
        """Replace the note of the run ``run``."""
        from chachaml import tracking

        with context.with_store(self.store):
            tracking.set_note(markdown, run=run)
