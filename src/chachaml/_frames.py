"""Dataframe helpers for ``RunList.to_polars``: one column per record key, whatever its types."""

from __future__ import annotations

import json
from typing import Any

__all__ = ["polars_column"]


def _kind(value: Any) -> str:
    """The JSON kind of a param value, as far as a dataframe column's type is concerned."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    return type(value).__name__  # str, list, dict


def polars_column(pl: Any, name: str, values: list[Any]) -> Any:
    """One ``polars.Series`` for a records column, whatever mix of types it holds.

    A param may hold a number in one run and a string, a list or a dict in another. Polars
    cannot infer one type for such a column (it raises its own SchemaError, or silently drops
    the values that do not fit a struct), where pandas keeps an object column. A column of one
    kind keeps its natural type; a mixed one becomes strings: text as it is, everything else as
    its JSON text (``1``, ``true``, ``[1, 2]``), which loses nothing.
    """
    kinds = {_kind(v) for v in values if v is not None}
    if len(kinds) <= 1:
        try:
            return pl.Series(name, values, strict=False)
        except Exception:  # polars' own errors vary by version: fall back to text
            pass
    return pl.Series(
        name,
        [v if v is None or isinstance(v, str) else json.dumps(v, ensure_ascii=False) for v in values],
        dtype=pl.String,
    )
