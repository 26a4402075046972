"""Alerts, their events and pipelines in the SQLite store (migration 6; docs/adr/0013).

The SQL is kept portable (``ON CONFLICT ... DO NOTHING``/``DO UPDATE``, no SQLite-only
functions; the metric ``rowid`` and ``lastrowid`` behind two hooks) so the PostgreSQL store
takes it as it is (``_pg_roles``). The decisions
(which op crosses, whether an upsert changes an alert) are ``chachaml._automation_rules``'.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from chachaml.errors import InvalidValueError, NotFoundError
from chachaml.rules import PREFIX_CANDIDATES
from chachaml.store._sqlite_base import SqliteBase, chunks, marks, point_value
from chachaml.store.base import AlertPoint

if TYPE_CHECKING:  # loaded by the functions below on first use, not with the store (first use)
    from chachaml.automation_entities import Alert, AlertEvent, Pipeline

_ALERT_COLS = "name, metric, op, threshold, experiment, webhook, created, updated, version"
_EVENT_COLS = (
    "id, alert, run_id, metric, value, step, op, threshold, fired, webhook, delivery, attempts, error"
)
_PIPELINE_COLS = "id, name, status, created, updated"

# A run is a candidate once per alert version: it logged the metric since the alert was created
# or changed (a metric rowid above the alert's since_point: exact, whatever the points' timestamps
# or the clocks say) and has no event of this version. The latest point is metric_summary's
# (folded by _reading()). Over every run, the points logged since are read by rowid range (one
# pass over them); for a few given runs, by the (run_id, key, step) index.
_CANDIDATES = """
SELECT s.run_id, r.experiment, s.last_step, s.last_value, s.last_is_nan, s.last_timestamp
FROM metric_summary s JOIN runs r ON r.id = s.run_id
WHERE s.key = :key AND r.archived = 0 {scope}
  AND NOT EXISTS (
        SELECT 1 FROM alert_events e WHERE e.alert = :alert AND e.alert_version = :version
        AND e.run_id = s.run_id)
ORDER BY s.run_id
"""
_SINCE_ANY = " AND s.run_id IN (SELECT m.run_id FROM metrics m WHERE m.{point} > :since AND m.key = :key)"
_SINCE_EACH = (
    " AND EXISTS (SELECT 1 FROM metrics m WHERE m.run_id = s.run_id AND m.key = s.key AND m.{point} > :since)"
)
# Inserted only while the alert still has the version the points were chosen for, and at most
# once per (alert, version, run) whoever else is checking at the same time.
_ADD_EVENT = """
INSERT INTO alert_events
    (alert, alert_version, run_id, metric, value, step, op, threshold, fired, webhook, delivery, attempts)
SELECT ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0
WHERE EXISTS (SELECT 1 FROM alerts WHERE name = ? AND version = ?)
ON CONFLICT (alert, alert_version, run_id) DO NOTHING
"""


def _alert(row: Sequence[Any]) -> Alert:
    from chachaml.automation_entities import Alert

    return Alert(*row)


def _event(row: Sequence[Any]) -> AlertEvent:
    from chachaml.automation_entities import AlertEvent

    return AlertEvent(*row)


class AutomationMixin(SqliteBase):
    """The ``AutomationStore`` role of ``SqliteStore``.

    What differs on another engine is two hooks: ``_POINT`` (the metric column that orders
    points: SQLite's ``rowid``) with ``_NEWEST_POINT`` (its highest value), and ``_insert_event``.
    """

    _POINT = "rowid"
    _NEWEST_POINT = "(SELECT coalesce(max(rowid), 0) FROM metrics)"

    # -- alerts --------------------------------------------------------------------------------
    def put_alert(
        self,
        name: str,
        *,
        metric: str,
        op: str,
        threshold: float,
        experiment: str | None,
        webhook: str | None,
        now: int,
    ) -> Alert:
        from chachaml._automation_rules import alert_changed
        from chachaml.automation_entities import Alert

        with self._tx() as conn:
            row = conn.execute(f"SELECT {_ALERT_COLS} FROM alerts WHERE name = ?", (name,)).fetchone()
            if row is None:
                conn.execute(
                    f"INSERT INTO alerts ({_ALERT_COLS}, since_point) "
                    f"VALUES (?, ?, ?, ?, ?, ?, ?, ?, 1, {self._NEWEST_POINT})",
                    (name, metric, op, threshold, experiment, webhook, now, now),
                )
                return Alert(name, metric, op, threshold, experiment, webhook, now, now, 1)
            old = _alert(row)
            if not alert_changed(old, metric, op, threshold, experiment, webhook):
                return old
            conn.execute(
                "UPDATE alerts SET metric = ?, op = ?, threshold = ?, experiment = ?, webhook = ?, "
                f"updated = ?, version = version + 1, since_point = {self._NEWEST_POINT} WHERE name = ?",
                (metric, op, threshold, experiment, webhook, now, name),
            )
            return Alert(name, metric, op, threshold, experiment, webhook, old.created, now, old.version + 1)

    def get_alert(self, name: str) -> Alert:
        with self._reading() as conn:
            row = None
            if conn is not None:
                row = conn.execute(f"SELECT {_ALERT_COLS} FROM alerts WHERE name = ?", (name,)).fetchone()
        if row is None:
            raise NotFoundError(f"no alert is named {name!r}; list them with chachaml.alerts()")
        return _alert(row)

    def alerts(self) -> list[Alert]:
        with self._plain_read() as conn:  # definitions only: a server lists them every batch
            if conn is None:
                return []
            return [_alert(r) for r in conn.execute(f"SELECT {_ALERT_COLS} FROM alerts ORDER BY name")]

    def delete_alert(self, name: str) -> bool:
        with self._tx() as conn:
            conn.execute("DELETE FROM alert_events WHERE alert = ?", (name,))
            return conn.execute("DELETE FROM alerts WHERE name = ?", (name,)).rowcount == 1

    def alert_candidates(self, alert: Alert, run_ids: Sequence[str] | None = None) -> list[AlertPoint]:
        named: dict[str, Any] = {"key": alert.metric, "alert": alert.name, "version": alert.version}
        scope = ""
        if alert.experiment is not None:
            scope += " AND r.experiment = :experiment"
            named["experiment"] = alert.experiment
        found: list[AlertPoint] = []
        with self._reading() as conn:
            if conn is None:
                return []
            row = conn.execute(
                "SELECT since_point FROM alerts WHERE name = ? AND version = ?", (alert.name, alert.version)
            ).fetchone()
            if row is None:  # removed or changed since it was read: the next check sees the new one
                return []
            named["since"] = row[0]
            batches: list[Sequence[str]] = [()] if run_ids is None else list(chunks(list(run_ids)))
            for batch in batches:
                args = dict(named)
                where = scope + _SINCE_ANY.format(point=self._POINT)
                if run_ids is not None:  # named parameters throughout: the ids are :id0, :id1, ...
                    args.update({f"id{i}": run_id for i, run_id in enumerate(batch)})
                    listed = ", ".join(f":id{i}" for i in range(len(batch)))
                    where = f"{scope}{_SINCE_EACH.format(point=self._POINT)} AND s.run_id IN ({listed})"
                for run_id, experiment, step, value, is_nan, ts in conn.execute(
                    _CANDIDATES.format(scope=where), args
                ):
                    found.append(AlertPoint(run_id, experiment, step, point_value(value, is_nan), ts))
        found.sort(key=lambda p: p.run_id)
        return found

    def _delete_runs(self, conn: sqlite3.Connection, run_ids: Sequence[str]) -> None:
        """Deleting runs (``LifecycleMixin``, later in the MRO) also deletes their alert events,
        and lowers each alert's ``since_point`` to the highest metric rowid left: SQLite hands
        the rowids of deleted top rows out again, and new points must still count as new."""
        super()._delete_runs(conn, run_ids)  # type: ignore[misc]
        for chunk in chunks(list(run_ids)):
            conn.execute(f"DELETE FROM alert_events WHERE run_id IN ({marks(len(chunk))})", chunk)
        conn.execute(f"UPDATE alerts SET since_point = min(since_point, {self._NEWEST_POINT})")

    def add_alert_events(self, alert: Alert, points: Sequence[AlertPoint], now: int) -> list[AlertEvent]:
        from chachaml.automation_entities import AlertEvent

        delivery = "pending" if alert.webhook else None
        added: list[AlertEvent] = []
        with self._tx() as conn:
            for p in points:
                event_id = self._insert_event(
                    conn,
                    (
                        alert.name,
                        alert.version,
                        p.run_id,
                        alert.metric,
                        p.value,
                        p.step,
                        alert.op,
                        alert.threshold,
                        now,
                        alert.webhook,
                        delivery,
                        alert.name,
                        alert.version,
                    ),
                )
                if event_id is not None:
                    added.append(
                        AlertEvent(
                            id=event_id,
                            alert=alert.name,
                            run_id=p.run_id,
                            metric=alert.metric,
                            value=p.value,
                            step=p.step,
                            op=alert.op,
                            threshold=alert.threshold,
                            fired=now,
                            webhook=alert.webhook,
                            delivery=delivery,
                        )
                    )
        return added

    @staticmethod
    def _insert_event(conn: sqlite3.Connection, args: Sequence[Any]) -> int | None:
        """Insert one event (``_ADD_EVENT``); its id, or None when it was not inserted."""
        cur = conn.execute(_ADD_EVENT, args)
        return cur.lastrowid if cur.rowcount == 1 else None

    def set_alert_delivery(self, event_id: int, delivery: str, attempts: int, error: str | None) -> None:
        with self._tx() as conn:
            conn.execute(
                "UPDATE alert_events SET delivery = ?, attempts = ?, error = ? WHERE id = ?",
                (delivery, attempts, error, event_id),
            )

    def alert_history(self, name: str) -> list[AlertEvent]:
        with self._reading() as conn:
            if conn is None:
                return []
            return [
                _event(r)
                for r in conn.execute(
                    f"SELECT {_EVENT_COLS} FROM alert_events WHERE alert = ? ORDER BY id", (name,)
                )
            ]

    # -- pipelines -----------------------------------------------------------------------------
    def put_pipeline(self, pipeline: Pipeline) -> None:
        with self._tx() as conn:
            conn.execute(
                f"INSERT INTO pipelines ({_PIPELINE_COLS}) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT (id) DO UPDATE SET name = excluded.name, status = excluded.status, "
                "updated = excluded.updated",
                (pipeline.id, pipeline.name, pipeline.status, pipeline.created, pipeline.updated),
            )
            conn.execute("DELETE FROM pipeline_steps WHERE pipeline_id = ?", (pipeline.id,))
            conn.executemany(
                "INSERT INTO pipeline_steps (pipeline_id, position, name, status, run_id) "
                "VALUES (?, ?, ?, ?, ?)",
                [(pipeline.id, i, s.name, s.status, s.run_id) for i, s in enumerate(pipeline.steps)],
            )

    def get_pipeline(self, pipeline_id: str) -> Pipeline:
        if not isinstance(pipeline_id, str) or not pipeline_id:
            raise InvalidValueError(f"a pipeline id must be a non-empty str, got {pipeline_id!r}")
        with self._reading() as conn:
            rows: list[Any] = []
            if conn is not None:
                rows = conn.execute(
                    f"SELECT {_PIPELINE_COLS} FROM pipelines WHERE id = ?", (pipeline_id,)
                ).fetchall()
                if not rows:
                    prefix = pipeline_id.lower()
                    rows = conn.execute(
                        f"SELECT {_PIPELINE_COLS} FROM pipelines WHERE id >= ? AND id < ? "
                        f"ORDER BY id LIMIT {PREFIX_CANDIDATES}",
                        (prefix, prefix + "\U0010ffff"),
                    ).fetchall()
            if not rows:
                raise NotFoundError(
                    f"no pipeline has the id (or id prefix) {pipeline_id!r} in {self.uri}; "
                    "list them with chachaml.pipelines()"
                )
            if len(rows) > 1:
                ids = ", ".join(r[0] for r in rows[:10])
                raise InvalidValueError(
                    f"the id prefix {pipeline_id!r} matches several pipelines ({ids}); type more characters"
                )
            assert conn is not None
            return self._with_steps(conn, rows)[0]

    def pipelines(self, *, name: str | None = None, limit: int | None = None) -> list[Pipeline]:
        sql = f"SELECT {_PIPELINE_COLS} FROM pipelines"
        args: list[Any] = []
        if name is not None:
            sql += " WHERE name = ?"
            args.append(name)
        sql += " ORDER BY created DESC, id DESC"
        if limit is not None:
            sql += " LIMIT ?"
            args.append(limit)
        with self._reading() as conn:
            if conn is None:
                return []
            return self._with_steps(conn, conn.execute(sql, args).fetchall())

    @staticmethod
    def _with_steps(conn: sqlite3.Connection, rows: Sequence[Any]) -> list[Pipeline]:
        from chachaml.automation_entities import Pipeline, PipelineStep

        steps: dict[str, list[PipelineStep]] = {r[0]: [] for r in rows}
        for chunk in chunks(list(steps)):
            for pid, name, status, run_id in conn.execute(
                f"SELECT pipeline_id, name, status, run_id FROM pipeline_steps "
                f"WHERE pipeline_id IN ({marks(len(chunk))}) ORDER BY pipeline_id, position",
                chunk,
            ):
                steps[pid].append(PipelineStep(name, status, run_id))
        return [
            Pipeline(id=r[0], name=r[1], status=r[2], steps=tuple(steps[r[0]]), created=r[3], updated=r[4])
            for r in rows
        ]
