"""Notebook views: HTML with status colours, inline SVG sparklines and SVG line charts.

The output is self-contained: inline styles and SVG, no script, no external resource, every
logged string escaped. The colours and the chart's look follow the web UI
(``chachaml/web/static``) so a run looks the same in both places.

The entities call ``run_view`` and ``runlist_view`` from their ``_repr_html_``. Sparklines need
metric histories, which live in a store, and the entities sit below the context and the
``Client`` (docs/architecture.md): so this module imports neither. It reads from the current
store only when the context layer is already loaded (``sys.modules``), that is when the user has
been using chachaml's verbs; otherwise, or for a run that is not in the current store, a view
shows no sparklines. A view never opens a database file and never raises (ADR-0011).
"""

from __future__ import annotations

import html
import math
import sys
from collections.abc import Mapping, Sequence
from typing import Any

from chachaml import _display

__all__ = [
    "PALETTE",
    "downsample",
    "nice_ticks",
    "run_html",
    "runlist_html",
    "sparkline",
    "status_badge",
    "svg_chart",
]

#: Line colours, in order (Tableau 10, as in the web UI).
PALETTE = ("#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7", "#9c755f")

# status -> (text colour, background, border), as the UI's badges
_STATUS = {
    "running": ("#2563eb", "#eff6ff", "#bfdbfe"),
    "completed": ("#16a34a", "#f0fdf4", "#bbf7d0"),
    "failed": ("#dc2626", "#fef2f2", "#fecaca"),
    "killed": ("#b45309", "#fffbeb", "#fde68a"),
}
_FONT = "font-family:system-ui,-apple-system,'Segoe UI',sans-serif"
esc = html.escape
_SPARK_RUNS = 20  # a RunList view draws sparklines for its first rows only (it shows 20)


def status_badge(status: str) -> str:
    """A coloured pill for a run status."""
    fg, bg, border = _STATUS.get(status, ("#64748b", "#f8fafc", "#e2e8f0"))
    return (
        f'<span style="color:{fg};background:{bg};border:1px solid {border};border-radius:99px;'
        f'padding:0 8px;font-size:11px;font-weight:600;white-space:nowrap">{esc(status)}</span>'
    )


def downsample(points: Sequence[tuple[float, float]], max_points: int) -> list[tuple[float, float]]:
    """At most about ``max_points`` points: the first, the last, and each bucket's min and max.

    The web API's rule (SPEC 9.2), so spikes survive in a sparkline as in the UI's charts.
    """
    n = len(points)
    if n <= max_points or max_points < 4:
        return list(points)
    buckets = max(1, (max_points - 2) // 2)
    out = [points[0]]
    size = (n - 2) / buckets
    for b in range(buckets):
        chunk = points[1 + int(b * size) : 1 + int((b + 1) * size)]
        finite = [p for p in chunk if math.isfinite(p[1])]
        if not finite:
            out.extend(chunk[:1])
            continue
        lo = min(finite, key=lambda p: p[1])
        hi = max(finite, key=lambda p: p[1])
        out.extend(sorted({lo, hi}, key=lambda p: p[0]))
    out.append(points[-1])
    return out


def sparkline(values: Sequence[float], *, width: int = 96, height: int = 20, color: str = "#2563eb") -> str:
    """An inline SVG sparkline of ``values`` (non-finite values leave gaps); empty for none."""
    pts = downsample(list(enumerate(values)), 2 * width)
    finite = [v for _, v in pts if math.isfinite(v)]
    if not finite:
        return ""
    lo, hi = min(finite), max(finite)
    span = (hi - lo) or 1.0
    last = max(len(values) - 1, 1)
    pad = 2

    def xy(i: float, v: float) -> str:
        x = pad + (i / last) * (width - 2 * pad)
        y = pad + (1 - (v - lo) / span) * (height - 2 * pad)
        return f"{x:.1f},{y:.1f}"

    segments, seg = [], []
    for i, v in pts:
        if math.isfinite(v):
            seg.append(xy(i, v))
        elif seg:
            segments.append(seg)
            seg = []
    if seg:
        segments.append(seg)
    lines = "".join(
        f'<polyline points="{" ".join(s)}" fill="none" stroke="{color}" stroke-width="1.3" '
        'stroke-linejoin="round"/>'
        for s in segments
    )
    end = segments[-1][-1].split(",")
    title = f"{len(values)} points, min {_display.fmt_value(lo)}, max {_display.fmt_value(hi)}"
    return (
        f'<svg class="chachaml-spark" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        f'style="vertical-align:middle" xmlns="http://www.w3.org/2000/svg"><title>{esc(title)}</title>{lines}'
        f'<circle cx="{end[0]}" cy="{end[1]}" r="1.8" fill="{color}"/></svg>'
    )


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]], caption: str = "") -> str:
    """A table whose cells are already HTML (escaped by the caller)."""
    cell = "padding:3px 10px;text-align:left;border-bottom:1px solid #eef0f3;white-space:nowrap"
    parts = ["<table>"]
    if caption:
        parts.append(f'<caption style="text-align:left;color:#677284">{esc(caption)}</caption>')
    parts.append(
        "<thead><tr>" + "".join(f'<th style="{cell}">{esc(h)}</th>' for h in headers) + "</tr></thead>"
    )
    parts.append("<tbody>")
    for row in rows:
        parts.append("<tr>" + "".join(f'<td style="{cell}">{c}</td>' for c in row) + "</tr>")
    parts.append("</tbody></table>")
    return "".join(parts)


def _cell(value: Any) -> str:
    return esc(_display.fmt_value(value, 60))


def run_html(run: Any, histories: Mapping[str, Sequence[float]]) -> str:
    """A run for a notebook: header with coloured status, then metrics with sparklines, params, tags.

    Args:
        run: a ``Run``.
        histories: metric key -> its values in step order (may miss keys: no sparkline then).
    """
    name = esc(run.name or run.short_id)
    duration = _display.fmt_duration(run.duration) or "running"
    parent = f" · parent {esc(run.parent_id[:8])}" if run.parent_id else ""
    head = (
        f'<div style="{_FONT};margin:2px 0 8px"><strong style="font-size:15px">{name}</strong> '
        f"{status_badge(run.status)} "
        f'<span style="color:#677284;font-size:12px">{esc(run.id)} · experiment {esc(run.experiment)} · '
        f"started {esc(_display.fmt_time(run.start_time))} · {esc(duration)}{parent}</span></div>"
    )
    parts = [f'<div class="chachaml-run" style="{_FONT};font-size:13px">', head]
    if run.metrics:
        rows = []
        for k in sorted(run.metrics):
            values = list(histories.get(k, ()))
            finite = [v for v in values if math.isfinite(v)]
            rows.append(
                [
                    esc(k),
                    _cell(run.metrics[k]),
                    sparkline(values),
                    _cell(min(finite)) if finite else "",
                    _cell(max(finite)) if finite else "",
                    str(len(values)) if values else "",
                ]
            )
        parts.append(_table(["metric", "last", "history", "min", "max", "points"], rows))
    side = [
        _table(["key", "value"], [[esc(k), _cell(v)] for k, v in sorted(mapping.items())], caption=title)
        for title, mapping in (("params", run.params), ("tags", run.tags))
        if mapping
    ]
    if side:
        parts.append(
            '<div style="display:flex;gap:24px;align-items:flex-start;flex-wrap:wrap">'
            + "".join(side)
            + "</div>"
        )
    if run.error:
        parts.append(
            '<div style="color:#991b1b;background:#fef2f2;border:1px solid #fecaca;border-radius:6px;'
            f'padding:6px 10px;margin-top:6px"><strong>{esc(str(run.error.get("type")))}</strong>: '
            f"{esc(str(run.error.get('message')))}</div>"
        )
    parts.append("</div>")
    return "".join(parts)


def runlist_html(
    headers: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    caption: str,
    histories: Mapping[tuple[int, str], Sequence[float]],
) -> str:
    """A RunList table: status badges, and a sparkline beside each ``metrics.<key>`` value.

    Args:
        headers: the column names of ``RunList._table_rows``.
        rows: its rows (plain values).
        caption: the table caption (the run count).
        histories: (row index, metric key) -> values in step order.
    """
    status_col = list(headers).index("status") if "status" in headers else -1
    out_rows = []
    for i, row in enumerate(rows):
        cells = []
        for j, (h, v) in enumerate(zip(headers, row, strict=True)):
            if j == status_col:
                cells.append(status_badge(str(v)))
            elif h.startswith("metrics."):
                spark = sparkline(histories.get((i, h[len("metrics.") :]), ()), width=64, height=16)
                cells.append(f"{_cell(v)} {spark}" if spark else _cell(v))
            else:
                cells.append(_cell(v))
        out_rows.append(cells)
    return f'<div class="chachaml-runs" style="{_FONT}">{_table(headers, out_rows, caption)}</div>'


def nice_ticks(lo: float, hi: float, count: int) -> list[float]:
    """Round tick values (1, 2, 5 x 10^k apart) covering [lo, hi], about ``count`` of them."""
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi <= lo:
        return [lo]
    raw = (hi - lo) / max(1, count)
    p = 10 ** math.floor(math.log10(raw))
    f = raw / p
    step = (1 if f < 1.5 else 2 if f < 3 else 5 if f < 7 else 10) * p
    ticks: list[float] = []
    v = math.ceil(lo / step) * step
    while v <= hi + step * 1e-9 and len(ticks) < 50:
        ticks.append(0.0 if abs(v) < step * 1e-9 else float(f"{v:.12g}"))
        v += step
    return ticks


def svg_chart(
    series: Sequence[tuple[str, Sequence[tuple[float, float]]]],
    *,
    title: str,
    x_label: str,
    width: int = 640,
    height: int = 300,
) -> str:
    """A self-contained SVG line chart: axes with ticks, one line per series, a legend.

    Args:
        series: (label, [(x, y), ...] in x order) per line; non-finite y leave gaps.
        title: shown above the plot (the metric key).
        x_label: the x-axis name.
        width, height: size in pixels.
    """
    ml, mr, mt, mb = 60, 16, 30, 40
    legend_rows = (len(series) + 2) // 3 if len(series) > 1 else 0
    total_h = height + 18 * legend_rows + (6 if legend_rows else 0)
    pw, ph = width - ml - mr, height - mt - mb
    xs = [x for _, pts in series for x, _ in pts]
    ys = [y for _, pts in series for _, y in pts if math.isfinite(y)]
    x0, x1 = (min(xs), max(xs)) if xs else (0.0, 1.0)
    y0, y1 = (min(ys), max(ys)) if ys else (0.0, 1.0)
    if x0 == x1:
        x0, x1 = x0 - 1, x1 + 1
    if y0 == y1:
        d = abs(y0) * 0.1 or 1.0
        y0, y1 = y0 - d, y1 + d
    pad = (y1 - y0) * 0.05
    y0, y1 = y0 - pad, y1 + pad

    def px(x: float) -> float:
        return ml + (x - x0) / (x1 - x0) * pw

    def py(y: float) -> float:
        return mt + (1 - (y - y0) / (y1 - y0)) * ph

    out = [
        f'<svg class="chachaml-chart" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{total_h}" '
        f'viewBox="0 0 {width} {total_h}" style="{_FONT};font-size:11px;background:#fff">',
        f'<text x="{ml}" y="18" font-size="13" font-weight="600" fill="#1b2330">{esc(title)}</text>',
    ]
    for t in nice_ticks(y0, y1, max(2, ph // 40)):
        y = py(t)
        out.append(f'<line x1="{ml}" x2="{ml + pw}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e6e8eb"/>')
        label = esc(_display.fmt_value(t))
        out.append(f'<text x="{ml - 6}" y="{y + 4:.1f}" text-anchor="end" fill="#5f6670">{label}</text>')
    for t in nice_ticks(x0, x1, max(2, pw // 90)):
        x = px(t)
        out.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{mt}" y2="{mt + ph}" stroke="#e6e8eb"/>')
        label = _display.fmt_value(int(t) if float(t).is_integer() else t)
        out.append(
            f'<text x="{x:.1f}" y="{mt + ph + 16}" text-anchor="middle" fill="#5f6670">{esc(label)}</text>'
        )
    out.append(f'<path d="M{ml} {mt}V{mt + ph}H{ml + pw}" fill="none" stroke="#9aa1aa"/>')
    out.append(
        f'<text x="{ml + pw / 2:.1f}" y="{mt + ph + 32}" text-anchor="middle" '
        f'fill="#677284">{esc(x_label)}</text>'
    )
    for n, (label, pts) in enumerate(series):
        color = PALETTE[n % len(PALETTE)]
        seg: list[str] = []
        paths = []
        for x, y in pts:
            if math.isfinite(y):
                seg.append(f"{px(x):.1f},{py(y):.1f}")
            elif seg:
                paths.append(seg)
                seg = []
        if seg:
            paths.append(seg)
        finite = [y for _, y in pts if math.isfinite(y)]
        tip = f"{label}: last {_display.fmt_value(finite[-1])}" if finite else label
        out.append(f"<g><title>{esc(tip)}</title>")
        for p in paths:
            if len(p) == 1:
                cx, cy = p[0].split(",")
                out.append(f'<circle cx="{cx}" cy="{cy}" r="2.5" fill="{color}"/>')
            else:
                out.append(
                    f'<polyline points="{" ".join(p)}" fill="none" stroke="{color}" stroke-width="1.6" '
                    'stroke-linejoin="round"/>'
                )
        out.append("</g>")
        if legend_rows:
            lx, ly = ml + (n % 3) * (pw / 3), height + 12 + 18 * (n // 3)
            out.append(f'<rect x="{lx:.1f}" y="{ly - 9}" width="10" height="10" rx="2" fill="{color}"/>')
            out.append(f'<text x="{lx + 14:.1f}" y="{ly}" fill="#1b2330">{esc(label[:40])}</text>')
    out.append("</svg>")
    return "".join(out)


def stored_histories(run_ids: Sequence[str], keys: Sequence[str]) -> dict[tuple[str, str], list[float]]:
    """(run id, key) -> values in step order, from the current store, for the notebook views.

    Best effort, and only when the context layer is in use (see the module docstring): a view
    must always render, so a missing store or run gives no sparkline, not a traceback.
    """
    from chachaml.errors import ChachamlError

    out: dict[tuple[str, str], list[float]] = {}
    context = sys.modules.get("chachaml.context")
    if context is None:
        return out
    try:
        client = context.client()
        for run_id in run_ids[:_SPARK_RUNS]:
            for key in keys:
                try:
                    out[(run_id, key)] = [m.value for m in client.metric_history(run_id, key)]
                except ChachamlError:  # not in this store (or a key it refuses): no sparkline
                    break
    except (ChachamlError, OSError):
        pass
    return out


def run_view(run: Any) -> str:
    """``Run._repr_html_``: the run with a sparkline per metric."""
    found = stored_histories([run.id], list(run.metrics))
    return run_html(run, {k: v for (_, k), v in found.items()})


def runlist_view(runs: Any) -> str:
    """``RunList._repr_html_``: the table with status badges and sparklines in metric columns."""
    headers, rows = runs._table_rows()
    keys = [h[len("metrics.") :] for h in headers if h.startswith("metrics.")]
    shown = list(runs)[: len(rows)]
    found = stored_histories([r.id for r in shown], keys)
    by_row = {(i, k): found.get((r.id, k), []) for i, r in enumerate(shown) for k in keys}
    return runlist_html(headers, rows, caption=f"{len(runs)} runs", histories=by_row)
