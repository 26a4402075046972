"""The values chachaml hands back: frozen, slotted dataclasses with readable reprs.

Each has ``to_dict()`` and ``from_dict()`` (plain JSON-friendly data both ways: the wire format).
Lists of runs and comparisons are in ``chachaml.results``.

Entities are snapshots. A ``Run`` returned by ``start_run`` does not change when you log to it:
ask again with ``chachaml.get_run(run.id)`` (or ``current_run()``) for the latest state.
Times are integer milliseconds since the Unix epoch (UTC).
"""

from __future__ import annotations

import gc
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from itertools import repeat
from typing import TYPE_CHECKING, Any

from chachaml import rules
from chachaml._entity_base import _build, _Entity

__all__ = [
    "Artifact",
    "Dataset",
    "Experiment",
    "GcReport",
    "Metric",
    "Model",
    "ModelEvent",
    "ModelVersion",
    "LAZY_RUN_FIELDS",
    "Run",
    "RUN_ATTRIBUTES",
    "STAGES",
]

#: Attribute columns of a run, in the order records and tables show them.
RUN_ATTRIBUTES = (
    "id",
    "name",
    "experiment",
    "status",
    "start_time",
    "end_time",
    "duration",
    "parent_id",
    "created_by",
)


def _bulk_new(cls: Any, n: int, columns: Mapping[str, Any]) -> list[Any]:
    """``n`` new instances of the slotted ``cls`` with each slot in ``columns`` set from its
    column (an iterable of ``n`` values), without running ``__init__``: the objects are made by
    ``object.__new__`` and each column is stored through its slot descriptor, C calls mapped
    over the column, so no Python function runs per object. Slots left out stay unset.
    """
    out = list(map(object.__new__, repeat(cls, n)))
    for name, column in columns.items():
        deque(map(getattr(cls, name).__set__, out, column), 0)
    return out


@dataclass(frozen=True, slots=True)
class Metric(_Entity):
    """One logged point of a metric."""

    key: str
    value: float
    step: int
    timestamp: int

    def __repr__(self) -> str:
        return f"Metric({self.key!r}, {self.value!r}, step={self.step})"

    @classmethod
    def _from_rows(cls, key: str, rows: Sequence[tuple[float | None, int, int]]) -> list[Metric]:
        """``[Metric(key, value, step, timestamp) for value, step, timestamp in rows]``, built
        column by column without a Python call per point (docs/adr/0024-lazy-reads-and-first-use.md).

        A ``None`` value is NaN (SQLite stores a NaN as NULL). The objects are created with
        ``object.__new__`` and their slots filled through the slot descriptors (C calls mapped
        over each column), which skips the frozen ``__init__``'s four ``object.__setattr__``
        calls per point; the garbage collector is paused meanwhile, since a Metric holds no
        reference cycle and a collection every 700 new objects would walk the list again and
        again. The result is the same as building each point with ``Metric(...)``.
        """
        n = len(rows)
        if n == 0:
            return []
        was_enabled = gc.isenabled()
        gc.disable()
        try:
            values, steps, stamps = zip(*rows, strict=True)
            if None in values:
                nan = float("nan")
                values = tuple(nan if v is None else v for v in values)
            columns = {"key": repeat(key, n), "value": values, "step": steps, "timestamp": stamps}
            return _bulk_new(cls, n, columns)
        finally:
            if was_enabled:
                gc.enable()


@dataclass(frozen=True, slots=True)
class Dataset(_Entity):
    """A dataset a run used, as recorded by ``log_dataset``."""

    name: str
    role: str = "train"
    source: str | None = None
    n_rows: int | None = None
    n_cols: int | None = None
    features: list[str] | None = None
    digest: str | None = None
    created: int | None = None

    def __repr__(self) -> str:
        dims = [f"n_rows={self.n_rows}"] if self.n_rows is not None else []
        dims += [f"n_cols={self.n_cols}"] if self.n_cols is not None else []
        shape = "".join(f", {d}" for d in dims)
        return f"Dataset({self.name!r}, role={self.role!r}{shape})"


@dataclass(frozen=True, slots=True)
class Experiment(_Entity):
    """A named group of runs."""

    name: str
    description: str | None = None
    owner: str | None = None
    created: int | None = None
    run_count: int = 0

    def __repr__(self) -> str:
        return f"<Experiment {self.name!r} runs={self.run_count}>"


STAGES = rules.STAGES  # the registry stages (defined with the other rules)


# Defined on first access by ``chachaml._registry_entities`` (a first log never needs them;
# docs/adr/0028-first-use-imports.md). ``from chachaml.entities import Model`` works as before.
_LAZY = frozenset(("Artifact", "GcReport", "Model", "ModelEvent", "ModelVersion"))

if TYPE_CHECKING:
    from chachaml._registry_entities import Artifact as Artifact
    from chachaml._registry_entities import GcReport as GcReport
    from chachaml._registry_entities import Model as Model
    from chachaml._registry_entities import ModelEvent as ModelEvent
    from chachaml._registry_entities import ModelVersion as ModelVersion
else:

    def __getattr__(name: str) -> Any:
        if name not in _LAZY:
            raise AttributeError(f"module 'chachaml.entities' has no attribute {name!r}")
        from chachaml import _registry_entities

        value = getattr(_registry_entities, name)
        globals()[name] = value  # later lookups are plain attribute reads
        return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | _LAZY)


#: The fields of a ``Run`` from ``runs()`` / ``search_runs()`` that are read on first access,
#: for the whole result list at once (docs/adr/0024-lazy-reads-and-first-use.md).
LAZY_RUN_FIELDS = ("params", "metrics", "tags", "env", "datasets")


@dataclass(frozen=True, slots=True)
class Run:
    """A snapshot of one run: attributes, params, latest metrics, tags, datasets.

    ``metrics`` maps each key to its latest value (the value at the highest step; among equal
    steps, the one logged last). ``error`` is ``None`` or a dict with ``type``, ``message`` and
    ``traceback``. ``best_value`` / ``best_step`` are set only on runs returned by ``best_run``.

    The runs of a list from ``runs()`` / ``search_runs()`` read ``params``, ``metrics``,
    ``tags``, ``env`` and ``datasets`` when one of them is first read, for every run of the
    list at once (one query per table): a query that only needs the matching runs' ids, names
    or statuses never pays for them. Those fields then hold the store's state at that moment.
    """

    id: str
    experiment: str
    status: str
    start_time: int
    name: str | None = None
    end_time: int | None = None
    parent_id: str | None = None
    created_by: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    note: str | None = None
    error: dict[str, str] | None = None
    env: dict[str, Any] = field(default_factory=dict)
    datasets: list[Dataset] = field(default_factory=list)
    archived: bool = False
    best_value: float | None = None
    best_step: int | None = None
    # What reads the lazy fields of a run from runs() (None once read, and for every other run).
    _lazy: Any = field(default=None, init=False, repr=False, compare=False)

    if not TYPE_CHECKING:  # (the type checker sees the fields as plain attributes)

        def __getattr__(self, name: str) -> Any:
            # Called only when a slot is unset: a lazy field of a run from runs(), not read yet.
            if name in LAZY_RUN_FIELDS:
                lazy = object.__getattribute__(self, "_lazy")
                if lazy is not None:
                    lazy.load()
                    return object.__getattribute__(self, name)
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def __getstate__(self) -> list[Any]:
        """Pickle (and copy) the fields' values, lazy ones read first; never the reader."""
        return [getattr(self, name) for name in _RUN_FIELD_NAMES]

    def __setstate__(self, state: list[Any]) -> None:
        for name, value in zip(_RUN_FIELD_NAMES, state, strict=True):
            object.__setattr__(self, name, value)
        object.__setattr__(self, "_lazy", None)

    @property
    def duration(self) -> int | None:
        """Milliseconds from start to end (``None`` while running)."""
        return None if self.end_time is None else self.end_time - self.start_time

    @property
    def short_id(self) -> str:
        return self.id[:8]

    def to_dict(self) -> dict[str, Any]:
        """Everything about the run as plain JSON-friendly values."""
        return {
            "id": self.id,
            "experiment": self.experiment,
            "name": self.name,
            "status": self.status,
            "start_time": self.start_time,
            "end_time": self.end_time,
            "duration": self.duration,
            "parent_id": self.parent_id,
            "created_by": self.created_by,
            "params": dict(self.params),
            "metrics": dict(self.metrics),
            "tags": dict(self.tags),
            "note": self.note,
            "error": self.error,
            "env": dict(self.env),
            "datasets": [d.to_dict() for d in self.datasets],
            "archived": self.archived,
            "best_value": self.best_value,
            "best_step": self.best_step,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Run:
        """The run ``to_dict`` gave this dict for (``duration`` is derived, so it is ignored)."""
        return _build(  # type: ignore[no-any-return]
            cls,
            data,
            {
                "params": dict,
                "metrics": dict,
                "tags": dict,
                "env": dict,
                "error": dict,
                "datasets": lambda ds: [Dataset.from_dict(d) for d in ds],
            },
        )

    def to_record(self) -> dict[str, Any]:
        """A flat dict: run attributes, then ``params.<key>``, ``metrics.<key>``, ``tags.<key>``.

        Prefixed columns can never clobber an attribute column.
        """
        rec: dict[str, Any] = {a: getattr(self, a) for a in RUN_ATTRIBUTES}
        rec.update({f"params.{k}": v for k, v in self.params.items()})
        rec.update({f"metrics.{k}": v for k, v in self.metrics.items()})
        rec.update({f"tags.{k}": v for k, v in self.tags.items()})
        return rec

    def __repr__(self) -> str:
        name = f" {self.name!r}" if self.name else ""
        extra = f" best={self.best_value!r}@{self.best_step}" if self.best_step is not None else ""
        err = f" error={self.error['type']}" if self.error else ""
        return (
            f"<Run {self.short_id}{name} {self.status} experiment={self.experiment!r}"
            f" params={len(self.params)} metrics={len(self.metrics)}{extra}{err}>"
        )

    def _repr_html_(self) -> str:
        from chachaml import _html  # the notebook view: status colour, a sparkline per metric

        return _html.run_view(self)


_RUN_FIELD_NAMES = tuple(name for name in Run.__dataclass_fields__ if not name.startswith("_"))
