"""The values chachaml hands back: frozen, slotted dataclasses with readable reprs.

Entities are snapshots. A ``Run`` returned by ``start_run`` does not change when you log to it:
ask again with ``chachaml.get_run(run.id)`` (or ``current_run()``) for the latest state.
Times are integer milliseconds since the Unix epoch (UTC).
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, overload

from chachaml import _display

__all__ = [
    "Artifact",
    "Comparison",
    "Dataset",
    "Experiment",
    "GcReport",
    "KeySplit",
    "Metric",
    "Model",
    "ModelEvent",
    "ModelVersion",
    "Run",
    "RunList",
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


def _plain(value: Any) -> Any:
    """A value as plain JSON-friendly data: entities via ``to_dict``, tuples as lists."""
    if isinstance(value, _Entity):
        return value.to_dict()
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    return value


class _Entity:
    """Base of the simple entities: ``to_dict`` is their fields, in order, as plain data."""

    __slots__ = ()
    __dataclass_fields__: ClassVar[dict[str, Any]]

    def to_dict(self) -> dict[str, Any]:
        return {name: _plain(getattr(self, name)) for name in self.__dataclass_fields__}


@dataclass(frozen=True, slots=True)
class Metric(_Entity):
    """One logged point of a metric."""

    key: str
    value: float
    step: int
    timestamp: int

    def __repr__(self) -> str:
        return f"Metric({self.key!r}, {self.value!r}, step={self.step})"


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


def _fmt_size(n: int) -> str:
    """A byte count as ``812 B`` / ``1.2 kB`` / ``3.4 MB`` (decimal units)."""
    if n < 1000:
        return f"{n} B"
    size = n / 1000
    for unit in ("kB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            break
        size /= 1000
    return f"{size:.1f} {unit}"


#: Registry stages, in lifecycle order (SPEC section 3). At most one version per model is
#: ``production``.
STAGES = ("none", "staging", "production", "archived")


@dataclass(frozen=True, slots=True)
class Artifact(_Entity):
    """Metadata of a file kept with a run (``log_artifact``, ``log_file``, ...).

    ``path`` is relative to the store's artifact folder (``<run_id>/<name>``); ask
    ``chachaml.artifact_path(run_id, name)`` for the absolute path. ``format`` says how
    ``load_artifact`` decodes the bytes.
    """

    run_id: str
    name: str
    size: int
    sha256: str
    content_type: str
    format: str
    created: int
    path: str = ""

    def __repr__(self) -> str:
        return (
            f"<Artifact {self.name!r} {_fmt_size(self.size)} {self.format} "
            f"run={self.run_id[:8]} sha256={self.sha256[:12]}>"
        )

    def _repr_html_(self) -> str:
        return _display.html_table(
            ["name", "size", "format", "content type", "sha256", "run", "created"],
            [
                [
                    self.name,
                    _fmt_size(self.size),
                    self.format,
                    self.content_type,
                    self.sha256[:12],
                    self.run_id[:8],
                    _display.fmt_time(self.created),
                ]
            ],
        )


@dataclass(frozen=True, slots=True)
class ModelVersion(_Entity):
    """One registered version of a model: an artifact of a run, at a stage."""

    model: str
    version: int
    run_id: str
    artifact: str
    stage: str = "none"
    description: str | None = None
    created: int | None = None
    created_by: str | None = None
    aliases: tuple[str, ...] = ()

    def _row(self) -> list[Any]:
        return [
            f"v{self.version}",
            self.stage,
            ", ".join(self.aliases),
            self.run_id[:8],
            self.artifact,
            self.created_by,
            _display.fmt_time(self.created),
            self.description,
        ]

    _HEADERS = ("version", "stage", "aliases", "run", "artifact", "by", "created", "description")

    def __repr__(self) -> str:
        aliases = f" aliases={list(self.aliases)}" if self.aliases else ""
        return (
            f"<ModelVersion {self.model!r} v{self.version} {self.stage}{aliases}"
            f" run={self.run_id[:8]} artifact={self.artifact!r}>"
        )

    def _repr_html_(self) -> str:
        return _display.html_table(self._HEADERS, [self._row()], caption=f"{self.model} v{self.version}")


@dataclass(frozen=True, slots=True)
class Model(_Entity):
    """A registered model: a name whose versions move through stages.

    ``versions`` holds the versions, oldest first, when the model was read with
    ``chachaml.model(name)``; ``models()`` leaves it empty (use ``latest_version``).
    """

    name: str
    description: str | None = None
    created: int | None = None
    updated: int | None = None
    latest_version: int | None = None
    production_version: int | None = None
    aliases: dict[str, int] = field(default_factory=dict)
    versions: tuple[ModelVersion, ...] = ()

    def __repr__(self) -> str:
        prod = f" production=v{self.production_version}" if self.production_version else ""
        return f"<Model {self.name!r} versions={self.latest_version or 0}{prod}>"

    def _repr_html_(self) -> str:
        caption = self.name + (f": {self.description}" if self.description else "")
        if not self.versions:
            return _display.html_table(
                ["name", "versions", "production", "updated"],
                [
                    [
                        self.name,
                        self.latest_version or 0,
                        self.production_version,
                        _display.fmt_time(self.updated),
                    ]
                ],
                caption=caption,
            )
        return _display.html_table(ModelVersion._HEADERS, [v._row() for v in self.versions], caption=caption)


@dataclass(frozen=True, slots=True)
class ModelEvent(_Entity):
    """One change in the registry: a version registered, a stage or alias changed.

    ``kind`` is ``register``, ``stage`` or ``alias``; ``from_value`` / ``to_value`` are the stage
    before and after, or the version an alias pointed at before and after (``None`` when the
    alias did not exist, or was deleted).
    """

    model: str
    version: int | None
    kind: str
    from_value: str | None
    to_value: str | None
    who: str | None
    at: int
    alias: str | None = None

    def __repr__(self) -> str:
        what = self.kind if self.alias is None else f"alias {self.alias!r}"
        return (
            f"<ModelEvent {self.model!r} v{self.version} {what} {self.from_value} -> {self.to_value}"
            f" by {self.who} at {_display.fmt_time(self.at)}>"
        )


@dataclass(frozen=True, slots=True)
class GcReport(_Entity):
    """What ``chachaml.gc()`` removed (or, with ``dry_run=True``, would remove).

    ``removed`` lists paths relative to the artifact folder; ``missing`` lists artifacts whose
    row exists but whose file is gone (deleted by hand), as ``<run_id>/<name>``.
    """

    removed: tuple[str, ...] = ()
    freed_bytes: int = 0
    missing: tuple[str, ...] = ()
    dry_run: bool = False

    def __repr__(self) -> str:
        verb = "would remove" if self.dry_run else "removed"
        n = len(self.removed)
        missing = f", {len(self.missing)} missing" if self.missing else ""
        return f"<GcReport {verb} {n} file{'s' if n != 1 else ''}, {_fmt_size(self.freed_bytes)}{missing}>"


@dataclass(frozen=True, slots=True)
class Run:
    """A snapshot of one run: attributes, params, latest metrics, tags, datasets.

    ``metrics`` maps each key to its latest value (the value at the highest step; among equal
    steps, the one logged last). ``error`` is ``None`` or a dict with ``type``, ``message`` and
    ``traceback``. ``best_value`` / ``best_step`` are set only on runs returned by ``best_run``.
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
        from chachaml import plotting  # rendering and its history reads live outside the entities

        return plotting.run_html(self)


class RunList(Sequence[Run]):
    """An immutable list of runs, newest first, that prints as a table.

    ``to_records()`` gives flat dicts (see ``Run.to_record``); ``to_csv``, ``to_pandas`` and
    ``to_polars`` export them. pandas and polars are imported only when asked for.
    """

    __slots__ = ("_runs",)
    _MAX_ROWS = 20  # rows shown when printing; the count is always shown

    def __init__(self, runs: Sequence[Run] = ()) -> None:
        self._runs = tuple(runs)

    @overload
    def __getitem__(self, i: int) -> Run: ...
    @overload
    def __getitem__(self, i: slice) -> RunList: ...
    def __getitem__(self, i: int | slice) -> Run | RunList:
        if isinstance(i, slice):
            return RunList(self._runs[i])
        return self._runs[i]

    def __len__(self) -> int:
        return len(self._runs)

    def __iter__(self) -> Iterator[Run]:
        return iter(self._runs)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, RunList):
            return self._runs == other._runs
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    @property
    def ids(self) -> list[str]:
        return [r.id for r in self._runs]

    def to_records(self) -> list[dict[str, Any]]:
        """One flat dict per run (see ``Run.to_record``)."""
        return [r.to_record() for r in self._runs]

    def _columns(self) -> list[str]:
        cols: dict[str, None] = dict.fromkeys(RUN_ATTRIBUTES)
        for rec in self.to_records():
            cols.update(dict.fromkeys(rec))
        return list(cols)

    def to_csv(self, path: str | os.PathLike[str]) -> None:
        """Write the records to ``path`` as CSV (UTF-8, header row first)."""
        cols = self._columns()
        with open(path, "w", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, fieldnames=cols)
            writer.writeheader()
            writer.writerows(self.to_records())

    def to_pandas(self) -> Any:
        """The records as a ``pandas.DataFrame`` (needs pandas)."""
        from chachaml._optional import require

        pd = require("pandas", "pandas")
        return pd.DataFrame(self.to_records(), columns=self._columns())

    def to_polars(self) -> Any:
        """The records as a ``polars.DataFrame`` (needs polars)."""
        from chachaml._optional import require

        pl = require("polars", "polars")
        cols = self._columns()
        # Params may hold different types in different runs: sniff every row, widen mixed columns.
        rows = [{c: rec.get(c) for c in cols} for rec in self.to_records()]
        return pl.DataFrame(rows, strict=False, infer_schema_length=None)

    def _table_rows(self) -> tuple[list[str], list[list[Any]]]:
        runs = self._runs[: self._MAX_ROWS]
        params = list(dict.fromkeys(k for r in runs for k in r.params))[:4]
        metrics = list(dict.fromkeys(k for r in runs for k in r.metrics))[:4]
        headers = ["id", "name", "experiment", "status", "started", "duration"]
        headers += [f"params.{k}" for k in params] + [f"metrics.{k}" for k in metrics]
        rows = [
            [
                r.short_id,
                r.name,
                r.experiment,
                r.status,
                _display.fmt_time(r.start_time),
                _display.fmt_duration(r.duration),
            ]
            + [r.params.get(k) for k in params]
            + [r.metrics.get(k) for k in metrics]
            for r in runs
        ]
        return headers, rows

    def __repr__(self) -> str:
        n = len(self._runs)
        if not n:
            return "RunList(0 runs)"
        headers, rows = self._table_rows()
        more = f"\n... {n - len(rows)} more" if n > len(rows) else ""
        return f"RunList({n} run{'s' if n != 1 else ''})\n{_display.text_table(headers, rows)}{more}"

    def _repr_html_(self) -> str:
        from chachaml import plotting

        return plotting.runlist_html(self)


def _same_value(a: Any, b: Any) -> bool:
    """Equality for comparisons: ``True`` is not ``1``, and NaN equals NaN."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, float) and isinstance(b, float) and a != a and b != b:
        return True
    return bool(a == b)


@dataclass(frozen=True, slots=True)
class KeySplit:
    """How one kind of value (params or metrics) compares across the runs of a ``Comparison``.

    ``same`` maps each key every run has with one shared value to that value; ``differ`` maps
    each key every run has, with values that are not all equal, to the values aligned with
    ``Comparison.run_ids``; ``partial`` maps each key some runs lack to the aligned values, with
    ``None`` where a run lacks it.
    """

    same: dict[str, Any] = field(default_factory=dict)
    differ: dict[str, list[Any]] = field(default_factory=dict)
    partial: dict[str, list[Any]] = field(default_factory=dict)

    @classmethod
    def of(cls, mappings: Sequence[dict[str, Any]]) -> KeySplit:
        """Split the keys of one mapping per run (``run.params`` or ``run.metrics``)."""
        same: dict[str, Any] = {}
        differ: dict[str, list[Any]] = {}
        partial: dict[str, list[Any]] = {}
        for key in sorted({k for m in mappings for k in m}):
            if not all(key in m for m in mappings):
                partial[key] = [m.get(key) for m in mappings]
                continue
            values = [m[key] for m in mappings]
            if all(_same_value(values[0], v) for v in values[1:]):
                same[key] = values[0]
            else:
                differ[key] = values
        return cls(same, differ, partial)

    def to_dict(self) -> dict[str, Any]:
        return {"same": dict(self.same), "differ": dict(self.differ), "partial": dict(self.partial)}

    def __repr__(self) -> str:
        return (
            f"KeySplit(same={sorted(self.same)}, differ={sorted(self.differ)}, "
            f"partial={sorted(self.partial)})"
        )


@dataclass(frozen=True, slots=True)
class Comparison:
    """Params and metrics (latest values) of several runs side by side, from ``compare_runs``.

    ``params`` and ``metrics`` are ``KeySplit`` values: ``same``, ``differ`` and ``partial``
    keys, lists aligned with ``run_ids``. Prints as a table, one row per key (differences
    first), one column per run.
    """

    run_ids: tuple[str, ...]
    params: KeySplit
    metrics: KeySplit
    names: tuple[str | None, ...] = ()

    @classmethod
    def of(cls, runs: Sequence[Run]) -> Comparison:
        """Compare these runs (in this order)."""
        return cls(
            run_ids=tuple(r.id for r in runs),
            params=KeySplit.of([r.params for r in runs]),
            metrics=KeySplit.of([r.metrics for r in runs]),
            names=tuple(r.name for r in runs),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_ids": list(self.run_ids),
            "names": list(self.names),
            "params": self.params.to_dict(),
            "metrics": self.metrics.to_dict(),
        }

    def _table(self) -> tuple[list[str], list[list[Any]]]:
        n = len(self.run_ids)
        headers = ["", "key", *(i[:8] for i in self.run_ids)]
        rows: list[list[Any]] = []
        if any(self.names):
            rows.append(["", "name", *self.names])
        for section, split in (("params", self.params), ("metrics", self.metrics)):
            for kind, values in (("differ", split.differ), ("partial", split.partial)):
                rows.extend([kind, f"{section}.{k}", *v] for k, v in values.items())
            rows.extend(["same", f"{section}.{k}", *([v] * n)] for k, v in split.same.items())
        return headers, rows

    def _summary(self) -> str:
        def part(section: str, s: KeySplit) -> str:
            return f"{section}: {len(s.differ)} differ, {len(s.partial)} partial, {len(s.same)} same"

        n = len(self.run_ids)
        return (
            f"Comparison of {n} run{'s' if n != 1 else ''} "
            f"({part('params', self.params)}; {part('metrics', self.metrics)})"
        )

    def __repr__(self) -> str:
        headers, rows = self._table()
        return f"{self._summary()}\n{_display.text_table(headers, rows)}"

    def _repr_html_(self) -> str:
        headers, rows = self._table()
        return _display.html_table(headers, rows, caption=self._summary())
