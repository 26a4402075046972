"""Run search for the SQLite store: filters, the ``where=`` language, ordering, paging."""

from __future__ import annotations

from typing import Any

from chachaml.errors import QueryError
from chachaml.store._sqlite_base import SqliteBase
from chachaml.store.base import RunFilter


class QueryMixin(SqliteBase):
    def _compile_filter(self, flt: RunFilter) -> tuple[str, list[Any], str]:
        """(WHERE clause, its bound values, ORDER BY clause) for ``runs`` rows."""
        where, args = ["1 = 1"], []
        if not flt.include_archived:
            where.append("runs.archived = 0")
        for col in ("experiment", "status", "name", "parent_id", "created_by"):
            value = getattr(flt, col)
            if value is not None:
                where.append(f"runs.{col} = ?")
                args.append(value)
        for k, v in (flt.tags or {}).items():
            where.append(
                "EXISTS (SELECT 1 FROM tags t WHERE t.run_id = runs.id AND t.key = ? AND t.value = ?)"
            )
            args.extend([k, v])
        if flt.where or flt.order_by:
            raise QueryError("where= and order_by= are not supported by this build yet")
        return " AND ".join(where), args, "runs.start_time DESC, runs.rowid DESC"
