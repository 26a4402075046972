"""Plain-text and HTML rendering shared by the entities (tables, times, escaping).

Kept apart from ``entities`` so the dataclasses stay declarations and rendering can grow
(RunList tables, comparisons) without touching them.
"""

from __future__ import annotations

import html
import math
import time
from collections.abc import Iterable, Sequence
from typing import Any


def fmt_time(ms: int | None) -> str:
    """Milliseconds since the epoch as local ``YYYY-mm-dd HH:MM:SS`` (empty for None)."""
    if ms is None:
        return ""
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ms / 1000))


def fmt_duration(ms: int | None) -> str:
    """A duration in milliseconds as ``1.2s`` / ``3m04s`` / ``2h05m``."""
    if ms is None:
        return ""
    s = ms / 1000
    if s < 60:
        return f"{s:.1f}s"
    m, s = divmod(int(s), 60)
    if m < 60:
        return f"{m}m{s:02d}s"
    h, m = divmod(m, 60)
    return f"{h}h{m:02d}m"


def fmt_value(v: Any, width: int = 24) -> str:
    """A compact cell: floats in 6 significant digits, long text cut with an ellipsis."""
    if v is None:
        text = ""
    elif isinstance(v, float):
        text = "nan" if math.isnan(v) else f"{v:.6g}"
    else:
        text = str(v)
    if len(text) > width:
        text = text[: width - 1] + "…"
    return text


def text_table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """An aligned plain-text table; numbers right-aligned, text left-aligned."""
    cells = [[fmt_value(v) for v in row] for row in rows]
    raw = [list(row) for row in rows] if not isinstance(rows, list) else rows
    widths = [len(h) for h in headers]
    for row in cells:
        for i, c in enumerate(row):
            widths[i] = max(widths[i], len(c))
    numeric = (
        [
            all(isinstance(r[i], int | float) and not isinstance(r[i], bool) for r in raw if r[i] is not None)
            and any(r[i] is not None for r in raw)
            for i in range(len(headers))
        ]
        if raw
        else [False] * len(headers)
    )

    def line(row: Sequence[str]) -> str:
        return "  ".join(
            c.rjust(widths[i]) if numeric[i] else c.ljust(widths[i]) for i, c in enumerate(row)
        ).rstrip()

    out = [line(list(headers)), "  ".join("-" * w for w in widths)]
    out.extend(line(r) for r in cells)
    return "\n".join(out)


def html_table(headers: Sequence[str], rows: Iterable[Sequence[Any]], caption: str = "") -> str:
    """An HTML table with escaped cells, for ``_repr_html_``."""
    esc = html.escape
    parts = ["<table>"]
    if caption:
        parts.append(f"<caption>{esc(caption)}</caption>")
    parts.append("<thead><tr>" + "".join(f"<th>{esc(h)}</th>" for h in headers) + "</tr></thead>")
    parts.append("<tbody>")
    for row in rows:
        parts.append("<tr>" + "".join(f"<td>{esc(fmt_value(v, 60))}</td>" for v in row) + "</tr>")
    parts.append("</tbody></table>")
    return "".join(parts)


def kv_html(title: str, mapping: dict[str, Any]) -> str:
    """A two-column key/value table (used for params, metrics and tags of one run)."""
    if not mapping:
        return ""
    return html_table(["key", "value"], sorted(mapping.items()), caption=title)
