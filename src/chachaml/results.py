"""What queries over many runs hand back: ``RunList`` (a printable, exportable list of runs) and
``Comparison`` (params and metrics of several runs side by side, split by ``KeySplit``).

The single-record values live in ``chachaml.entities``; this module adds rendering and export.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, overload

from chachaml import _display
from chachaml._entity_base import _build
from chachaml.entities import RUN_ATTRIBUTES, Run

__all__ = ["Comparison", "KeySplit", "RunList"]


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
            import csv  # here: only writing a file needs it

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
        records = self.to_records()
        from chachaml._frames import polars_column

        data = {c: polars_column(pl, c, [rec.get(c) for rec in records]) for c in cols}
        return pl.DataFrame(data)

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
        from chachaml import _html  # status badges, sparklines in the metric columns

        return _html.runlist_view(self)


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

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> KeySplit:
        """The split ``to_dict`` gave this dict for."""
        return _build(cls, data, {"same": dict, "differ": dict, "partial": dict})  # type: ignore[no-any-return]

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

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Comparison:
        """The comparison ``to_dict`` gave this dict for."""
        return _build(  # type: ignore[no-any-return]
            cls,
            data,
            {
                "run_ids": tuple,
                "names": tuple,
                "params": KeySplit.from_dict,
                "metrics": KeySplit.from_dict,
            },
        )

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
