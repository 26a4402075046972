"""Artifacts and the model registry for the SQLite store (filled in by issue 4)."""

from __future__ import annotations

from chachaml.store._sqlite_base import SqliteBase


class ArtifactsMixin(SqliteBase):
    pass
