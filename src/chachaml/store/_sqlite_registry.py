"""The model registry of the SQLite store: models, versions, stages, aliases, history.

Every write is one ``BEGIN IMMEDIATE`` transaction, so read-then-write sequences (next version
number, "archive the current production version, then promote this one") are serialised across
threads and processes. "At most one production version per model" is also a database rule: the
partial unique index ``model_versions_one_production`` (migration 3) refuses a second one, so
even a bug here could not commit two. A call that raises changes nothing: checks come first and
the transaction rolls back on any error (the Clojure original archived the production version
before noticing that the version to promote did not exist).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, NoReturn

from chachaml import entities
from chachaml.errors import ArtifactNotFoundError, ConflictError, ModelNotFoundError, RunNotFoundError
from chachaml.rules import archives_production
from chachaml.store._sqlite_base import SqliteBase, chunks, marks

if TYPE_CHECKING:  # defined on first use (chachaml._registry_entities)
    from chachaml.entities import Model, ModelEvent, ModelVersion

_VERSION_COLS = "model, version, run_id, artifact, stage, description, created, created_by"


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'s' if n != 1 else ''}"


class RegistryMixin(SqliteBase):
    """Registry operations; see the module docstring for the transaction rules."""

    # -- writes --------------------------------------------------------------------------------
    def _artifacts_hint(self, conn: sqlite3.Connection, run_id: str) -> str:
        """What a run does have, for "no such artifact" messages (the first ten names)."""
        names = [
            r[0]
            for r in conn.execute(
                "SELECT name FROM artifacts WHERE run_id = ? ORDER BY name LIMIT 10", (run_id,)
            )
        ]
        return f"its artifacts: {', '.join(map(repr, names))}" if names else "it has no artifacts"

    def register_model(
        self,
        name: str,
        *,
        run_id: str,
        artifact: str,
        stage: str = "none",
        description: str | None = None,
        who: str | None = None,
        now: int,
    ) -> ModelVersion:
        with self._tx() as conn:
            if conn.execute("SELECT 1 FROM runs WHERE id = ?", (run_id,)).fetchone() is None:
                raise RunNotFoundError(
                    f"cannot register model {name!r}: no run has the id {run_id!r}; "
                    "pass run_id= of an existing run (see chachaml.runs())"
                )
            if (
                conn.execute(
                    "SELECT 1 FROM artifacts WHERE run_id = ? AND name = ?", (run_id, artifact)
                ).fetchone()
                is None
            ):
                has = self._artifacts_hint(conn, run_id)
                raise ArtifactNotFoundError(
                    f"cannot register model {name!r}: run {run_id[:8]} has no artifact {artifact!r} "
                    f"({has}); log the model first with chachaml.log_artifact({artifact!r}, model) "
                    "and pass that artifact name (not a file path)"
                )
            conn.execute(
                "INSERT INTO models (name, created, updated) VALUES (?, ?, ?) "
                "ON CONFLICT (name) DO UPDATE SET updated = excluded.updated",
                (name, now, now),
            )
            version = int(
                conn.execute(
                    "SELECT coalesce(max(version), 0) + 1 FROM model_versions WHERE model = ?", (name,)
                ).fetchone()[0]
            )
            if archives_production(stage):
                self._archive_production(conn, name, who, now)
            conn.execute(
                f"INSERT INTO model_versions ({_VERSION_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (name, version, run_id, artifact, stage, description, now, who),
            )
            self._event(conn, name, version, "register", None, stage, who, now)
            return self._version_row(conn, name, version)

    def promote(
        self, name: str, version: int, stage: str, *, who: str | None = None, now: int
    ) -> ModelVersion:
        with self._tx() as conn:
            row = conn.execute(
                "SELECT stage FROM model_versions WHERE model = ? AND version = ?", (name, version)
            ).fetchone()
            if row is None:
                self._no_version(
                    conn, name, f"version {version}", "promote one of them (nothing was changed)"
                )
            if row[0] != stage:
                if archives_production(stage):
                    self._archive_production(conn, name, who, now)
                conn.execute(
                    "UPDATE model_versions SET stage = ? WHERE model = ? AND version = ?",
                    (stage, name, version),
                )
                conn.execute("UPDATE models SET updated = ? WHERE name = ?", (now, name))
                self._event(conn, name, version, "stage", row[0], stage, who, now)
            return self._version_row(conn, name, version)

    def set_alias(
        self, name: str, alias: str, version: int, *, who: str | None = None, now: int
    ) -> ModelVersion:
        with self._tx() as conn:
            if (
                conn.execute(
                    "SELECT 1 FROM model_versions WHERE model = ? AND version = ?", (name, version)
                ).fetchone()
                is None
            ):
                self._no_version(
                    conn, name, f"version {version}", f"point the alias {alias!r} at one of them"
                )
            old = conn.execute(
                "SELECT version FROM model_aliases WHERE model = ? AND alias = ?", (name, alias)
            ).fetchone()
            if old is None or old[0] != version:
                conn.execute(
                    "INSERT INTO model_aliases (model, alias, version) VALUES (?, ?, ?) "
                    "ON CONFLICT (model, alias) DO UPDATE SET version = excluded.version",
                    (name, alias, version),
                )
                conn.execute("UPDATE models SET updated = ? WHERE name = ?", (now, name))
                before = None if old is None else str(old[0])
                self._event(conn, name, version, "alias", before, str(version), who, now, alias)
            return self._version_row(conn, name, version)

    def delete_alias(self, name: str, alias: str, *, who: str | None = None, now: int) -> bool:
        with self._tx() as conn:
            self._require_model(conn, name)
            old = conn.execute(
                "SELECT version FROM model_aliases WHERE model = ? AND alias = ?", (name, alias)
            ).fetchone()
            if old is None:
                return False
            conn.execute("DELETE FROM model_aliases WHERE model = ? AND alias = ?", (name, alias))
            conn.execute("UPDATE models SET updated = ? WHERE name = ?", (now, name))
            self._event(conn, name, old[0], "alias", str(old[0]), None, who, now, alias)
            return True

    def set_model_description(
        self, name: str, description: str | None, *, version: int | None = None, now: int
    ) -> None:
        with self._tx() as conn:
            self._require_model(conn, name)
            if version is None:
                conn.execute(
                    "UPDATE models SET description = ?, updated = ? WHERE name = ?", (description, now, name)
                )
                return
            cur = conn.execute(
                "UPDATE model_versions SET description = ? WHERE model = ? AND version = ?",
                (description, name, version),
            )
            if cur.rowcount != 1:
                self._no_version(conn, name, f"version {version}", "describe one of them")
            conn.execute("UPDATE models SET updated = ? WHERE name = ?", (now, name))

    def _archive_production(self, conn: sqlite3.Connection, name: str, who: str | None, now: int) -> None:
        """Move the model's production version (if any) to ``archived``, with a history event."""
        for (version,) in conn.execute(
            "SELECT version FROM model_versions WHERE model = ? AND stage = 'production'", (name,)
        ).fetchall():
            conn.execute(
                "UPDATE model_versions SET stage = 'archived' WHERE model = ? AND version = ?",
                (name, version),
            )
            self._event(conn, name, version, "stage", "production", "archived", who, now)

    @staticmethod
    def _event(
        conn: sqlite3.Connection,
        name: str,
        version: int | None,
        kind: str,
        before: str | None,
        after: str | None,
        who: str | None,
        now: int,
        alias: str | None = None,
    ) -> None:
        conn.execute(
            "INSERT INTO registry_events (model, version, kind, alias, from_value, to_value, who, at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (name, version, kind, alias, before, after, who, now),
        )

    # -- lookups and their errors ---------------------------------------------------------------
    def _require_model(self, conn: sqlite3.Connection | None, name: str) -> None:
        if conn is None or conn.execute("SELECT 1 FROM models WHERE name = ?", (name,)).fetchone() is None:
            known = (
                []
                if conn is None
                else [r[0] for r in conn.execute("SELECT name FROM models ORDER BY name LIMIT 11")]
            )
            hint = (
                f"registered models: {', '.join(map(repr, known[:10]))}"
                if known
                else "no model is registered"
            )
            raise ModelNotFoundError(
                f"no model named {name!r} in {self.uri} ({hint}); register one with "
                f"chachaml.register_model({name!r}, artifact=...)"
            )

    def _no_version(self, conn: sqlite3.Connection | None, name: str, which: str, fix: str) -> NoReturn:
        self._require_model(conn, name)
        assert conn is not None
        rows = conn.execute(
            "SELECT version, stage FROM model_versions WHERE model = ? ORDER BY version", (name,)
        ).fetchall()
        have = ", ".join(f"v{v} {s}" for v, s in rows[-10:])
        raise ModelNotFoundError(f"model {name!r} has no {which} (its versions: {have or 'none'}); {fix}")

    def _aliases(self, conn: sqlite3.Connection, name: str) -> dict[int, tuple[str, ...]]:
        out: dict[int, list[str]] = {}
        for alias, version in conn.execute(
            "SELECT alias, version FROM model_aliases WHERE model = ? ORDER BY alias", (name,)
        ):
            out.setdefault(version, []).append(alias)
        return {v: tuple(a) for v, a in out.items()}

    def _version_row(self, conn: sqlite3.Connection, name: str, version: int) -> ModelVersion:
        row = conn.execute(
            f"SELECT {_VERSION_COLS} FROM model_versions WHERE model = ? AND version = ?", (name, version)
        ).fetchone()
        aliases = tuple(
            r[0]
            for r in conn.execute(
                "SELECT alias FROM model_aliases WHERE model = ? AND version = ? ORDER BY alias",
                (name, version),
            )
        )
        return _version(row, aliases)

    # -- reads ---------------------------------------------------------------------------------
    def get_model_version(
        self,
        name: str,
        *,
        version: int | None = None,
        stage: str | None = None,
        alias: str | None = None,
    ) -> ModelVersion:
        """One version: by number, by alias, or the highest version at ``stage``."""
        with self._reading() as conn:
            row: Any = None
            if conn is not None:
                if version is not None:
                    row = conn.execute(
                        "SELECT version FROM model_versions WHERE model = ? AND version = ?", (name, version)
                    ).fetchone()
                elif alias is not None:
                    row = conn.execute(
                        "SELECT version FROM model_aliases WHERE model = ? AND alias = ?", (name, alias)
                    ).fetchone()
                else:
                    row = conn.execute(
                        "SELECT max(version) FROM model_versions WHERE model = ? AND stage = ?", (name, stage)
                    ).fetchone()
                    row = None if row is None or row[0] is None else row
            if row is None:
                if version is not None:
                    self._no_version(conn, name, f"version {version}", "load one of them by version=")
                if alias is not None:
                    self._require_model(conn, name)
                    assert conn is not None
                    known = [
                        r[0]
                        for r in conn.execute(
                            "SELECT alias FROM model_aliases WHERE model = ? ORDER BY alias", (name,)
                        )
                    ]
                    raise ModelNotFoundError(
                        f"model {name!r} has no alias {alias!r} (its aliases: "
                        f"{', '.join(map(repr, known)) or 'none'}); set it with "
                        f"chachaml.set_alias({name!r}, {alias!r}, version)"
                    )
                self._no_version(
                    conn,
                    name,
                    f"version at stage {stage!r}",
                    f"promote one with chachaml.promote({name!r}, version, {stage!r}), "
                    "or load one by version=",
                )
            assert conn is not None
            return self._version_row(conn, name, int(row[0]))

    def model_versions(self, name: str) -> list[ModelVersion]:
        with self._reading() as conn:
            self._require_model(conn, name)
            assert conn is not None
            aliases = self._aliases(conn, name)
            return [
                _version(r, aliases.get(r[1], ()))
                for r in conn.execute(
                    f"SELECT {_VERSION_COLS} FROM model_versions WHERE model = ? ORDER BY version", (name,)
                )
            ]

    def get_model(self, name: str) -> Model:
        versions = self.model_versions(name)
        with self._reading() as conn:
            assert conn is not None
            return self._models(conn, "WHERE m.name = ?", (name,), tuple(versions))[0]

    def models(self) -> list[Model]:
        with self._reading() as conn:
            return [] if conn is None else self._models(conn, "", (), ())

    def _models(
        self, conn: sqlite3.Connection, where: str, args: Sequence[Any], versions: tuple[ModelVersion, ...]
    ) -> list[Model]:
        rows = conn.execute(
            "SELECT m.name, m.description, m.created, m.updated, "
            "(SELECT max(version) FROM model_versions v WHERE v.model = m.name), "
            "(SELECT version FROM model_versions v WHERE v.model = m.name AND v.stage = 'production') "
            f"FROM models m {where} ORDER BY m.name",
            args,
        ).fetchall()
        aliases: dict[str, dict[str, int]] = {}
        for model, alias, version in conn.execute(
            f"SELECT model, alias, version FROM model_aliases "
            f"{'WHERE model = ?' if where else ''} ORDER BY model, alias",
            args,
        ):
            aliases.setdefault(model, {})[alias] = version
        return [
            entities.Model(
                name=n,
                description=d,
                created=c,
                updated=u,
                latest_version=latest,
                production_version=prod,
                aliases=aliases.get(n, {}),
                versions=versions,
            )
            for n, d, c, u, latest, prod in rows
        ]

    def model_history(self, name: str) -> list[ModelEvent]:
        with self._reading() as conn:
            self._require_model(conn, name)
            assert conn is not None
            return [
                entities.ModelEvent(
                    model=name, version=v, kind=k, alias=a, from_value=f, to_value=t, who=w, at=at
                )
                for v, k, a, f, t, w, at in conn.execute(
                    "SELECT version, kind, alias, from_value, to_value, who, at FROM registry_events "
                    "WHERE model = ? ORDER BY id",
                    (name,),
                )
            ]

    # -- deletion guard (called by delete_run inside its transaction) ------------------------------
    def _check_deletable(self, conn: sqlite3.Connection, run_ids: Sequence[str]) -> None:
        """Refuse to delete runs that back registered model versions (SPEC section 8)."""
        super()._check_deletable(conn, run_ids)
        backing: list[tuple[str, int, str]] = []
        for chunk in chunks(list(run_ids)):
            backing += conn.execute(
                f"SELECT model, version, run_id FROM model_versions WHERE run_id IN ({marks(len(chunk))}) "
                "ORDER BY model, version",
                chunk,
            ).fetchall()
        if backing:
            versions = ", ".join(f"{m!r} v{v} (run {r[:8]})" for m, v, r in backing[:10])
            more = f" and {len(backing) - 10} more" if len(backing) > 10 else ""
            runs = sorted({r for _, _, r in backing})
            raise ConflictError(
                f"cannot delete {_plural(len(runs), 'run')}: they back the registered model "
                f"versions {versions}{more}, which need their source run and artifact; "
                "archive the run instead (chachaml.archive_runs) to hide it"
            )


def _version(row: Sequence[Any], aliases: tuple[str, ...]) -> ModelVersion:
    return entities.ModelVersion(
        model=row[0],
        version=row[1],
        run_id=row[2],
        artifact=row[3],
        stage=row[4],
        description=row[5],
        created=row[6],
        created_by=row[7],
        aliases=aliases,
    )
