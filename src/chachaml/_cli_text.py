"""Plain-text output of the command line: tables that fit the terminal, git-style short ids.

Kept apart from ``chachaml.cli`` (argument parsing and commands) so each stays small.
"""

from __future__ import annotations

import math
import shutil
import unicodedata
from collections.abc import Iterable, Sequence
from typing import Any

__all__ = ["cell", "short_ids", "table", "terminal_width"]

MIN_ID = 8  # like git's default abbreviation


def terminal_width() -> int:
    """The terminal's width (``$COLUMNS`` first; 80 when not a terminal)."""
    return max(40, shutil.get_terminal_size((80, 24)).columns)


def short_ids(ids: Iterable[str]) -> dict[str, str]:
    """Each id shortened like git: the shortest prefix of at least 8 characters unique among ``ids``."""
    ids = list(dict.fromkeys(ids))
    n = MIN_ID
    while n < 32 and len({i[:n] for i in ids}) < len(ids):
        n += 1
    return {i: i[:n] for i in ids}


def cell(v: Any) -> str:
    """A value as table text: floats in 6 significant digits, None empty, one line."""
    if v is None:
        return ""
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, float):
        return "nan" if math.isnan(v) else f"{v:.6g}"
    text = str(v)
    # One line per row, and no terminal control sequences from logged text.
    return "".join(ch if ch.isprintable() else " " for ch in text.replace("\n", " "))


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _cut(text: str, width: int) -> str:
    if _width(text) <= width:
        return text
    out, used = [], 0
    for ch in text:
        w = _width(ch)
        if used + w > width - 1:
            break
        out.append(ch)
        used += w
    return "".join(out) + "…"


def table(
    headers: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    width: int | None = None,
    shrink: Sequence[int] = (),
    keep: int | None = None,
) -> str:
    """An aligned table no wider than ``width`` (default: the terminal's).

    Columns listed in ``shrink`` (indices, first shrunk first) are cut with ``…`` to 16
    characters; then the optional columns (from index ``keep`` on; default: none) are dropped
    from the right; then the listed columns are cut to 6 characters, and finally any column
    that still does not fit is dropped from the right.

    Returns:
        the table text (a header line, a rule, one line per row), without a trailing newline.
    """
    limit = width or terminal_width()
    keep = len(headers) if keep is None else keep
    text = [[cell(v) for v in row] for row in rows]
    heads = list(headers)
    widths = [max([_width(h)] + [_width(r[i]) for r in text]) for i, h in enumerate(heads)]
    numeric = [
        bool(rows)
        and all(
            isinstance(r[i], int | float) and not isinstance(r[i], bool) for r in rows if r[i] is not None
        )
        for i in range(len(heads))
    ]

    def total() -> int:
        return sum(widths) + 2 * (len(widths) - 1)

    def squeeze(floor_of: int) -> None:
        for i in shrink:
            over = total() - limit
            if over <= 0:
                return
            floor = max(_width(heads[i]), floor_of)
            widths[i] = max(min(floor, widths[i]), widths[i] - over)

    def drop(down_to: int) -> None:
        while total() > limit and len(widths) > down_to:
            widths.pop()
            heads.pop()
            numeric.pop()

    squeeze(16)  # first cut long text to a readable width,
    drop(keep)  # then drop optional columns from the right,
    squeeze(6)  # then cut harder,
    drop(1)  # and drop what still does not fit.
    lines = []
    for row in [heads, *text]:
        parts = []
        for i, w in enumerate(widths):
            value = _cut(row[i], w)
            pad = " " * (w - _width(value))
            parts.append(pad + value if numeric[i] and row is not heads else value + pad)
        lines.append("  ".join(parts).rstrip())
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
