"""``chachaml.plot``: the UI's line chart of one metric, inline in Jupyter and as text in a REPL.

The SVG comes from ``chachaml._html``, which also renders the notebook views of ``Run`` and
``RunList``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from chachaml import _display, _html
from chachaml.errors import InvalidValueError

__all__ = ["Plot", "plot"]

X_AXES = ("step", "relative", "wall")
_MAX_POINTS = 1000  # per line, like the UI (first, last and each bucket's min and max kept)


@dataclass(frozen=True, slots=True)
class Line:
    """One run's history of the plotted metric: (x, value) points in x order."""

    run_id: str
    label: str
    points: tuple[tuple[float, float], ...]
    count: int  # points in the full history (``points`` may be downsampled)


@dataclass(frozen=True, slots=True)
class Plot:
    """A chart of one metric over one or more runs, from ``chachaml.plot``.

    Renders as an inline SVG chart in Jupyter (``_repr_html_``; self-contained, no script) and
    as a short text summary elsewhere (``repr``). ``svg()`` gives the SVG markup.
    """

    key: str
    x: str
    lines: tuple[Line, ...]

    def svg(self, width: int = 640, height: int = 300) -> str:
        """The chart as an SVG document string."""
        x_label = {
            "step": "step",
            "relative": "seconds since the run started",
            "wall": "wall time (ms since epoch)",
        }
        return _html.svg_chart(
            [(line.label, line.points) for line in self.lines],
            title=self.key,
            x_label=x_label[self.x],
            width=width,
            height=height,
        )

    def _repr_html_(self) -> str:
        return f'<div class="chachaml-plot">{self.svg()}</div>'

    def __repr__(self) -> str:
        n = len(self.lines)
        head = f"<Plot {self.key!r} x={self.x}: {n} run{'s' if n != 1 else ''}"
        rows = []
        for line in self.lines:
            finite = [y for _, y in line.points if math.isfinite(y)]
            if finite:
                stats = (
                    f"last={_display.fmt_value(finite[-1])} min={_display.fmt_value(min(finite))} "
                    f"max={_display.fmt_value(max(finite))}"
                )
            else:
                stats = "no finite values"
            rows.append(f"  {line.run_id[:8]} {line.label!r}: {line.count} points, {stats}")
        return head + ">\n" + "\n".join(rows) if rows else head + ">"


def _run_refs(runs: Any) -> list[Any]:
    from chachaml.entities import Run
    from chachaml.results import RunList

    if isinstance(runs, Run | str):
        return [runs]
    if isinstance(runs, RunList | Iterable):
        refs = list(runs)
        if refs and all(isinstance(r, Run | str) for r in refs):
            return refs
    raise InvalidValueError(
        f"plot() takes a Run, a RunList, a run id or a list of those, got {type(runs).__name__}: {runs!r}"
    )


def plot(runs: Any, key: str, *, x: str = "step") -> Plot:
    """A chart of the metric ``key`` for ``runs`` (one line per run), from the current store.

    Args:
        runs: a ``Run``, a ``RunList``, a run id (or unique prefix), or a list of runs or ids.
        key: the metric key.
        x: ``"step"`` (default), ``"relative"`` (seconds since each run started) or ``"wall"``
            (the timestamps).

    Returns:
        A ``Plot``: an inline SVG chart in Jupyter, a text summary in a terminal.

    Raises:
        InvalidValueError: ``x`` is not one of the axes, ``runs`` is not runs, or none of the
            runs logged ``key`` (the message lists the keys they did log).
        RunNotFoundError: an id matches no run.
    """
    from chachaml import context

    if x not in X_AXES:
        raise InvalidValueError(f"plot(x={x!r}): x must be one of {', '.join(X_AXES)}")
    client = context.client()
    runs_ = [client.get_run(r) for r in _run_refs(runs)]
    lines = []
    for run in runs_:
        # The extremes-keeping downsample happens in the store (a pyramid for long histories,
        # docs/adr/0025); the x-axis downsample below then only trims a time axis.
        history, count = client.metric_window(run.id, key, max_points=_MAX_POINTS)
        if not history:
            continue
        if x == "step":
            pts = [(float(m.step), m.value) for m in history]
        else:
            origin = run.start_time if x == "relative" else 0
            scale = 1000.0 if x == "relative" else 1.0
            pts = sorted(((m.timestamp - origin) / scale, m.value) for m in history)
        label = run.name or run.short_id
        lines.append(Line(run.id, label, tuple(_html.downsample(pts, _MAX_POINTS)), count))
    if not lines:
        logged = sorted({k for r in runs_ for k in r.metrics})
        hint = f"; they logged: {', '.join(logged)}" if logged else "; they logged no metrics"
        n = len(runs_)
        raise InvalidValueError(f"none of the {n} run{'s' if n != 1 else ''} logged the metric {key!r}{hint}")
    return Plot(key, x, tuple(lines))
