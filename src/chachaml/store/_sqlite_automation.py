"""Alerts, their events and pipelines in the SQLite store (migration 6; docs/adr/0013).

The SQL is kept portable (``ON CONFLICT ... DO NOTHING``/``DO UPDATE``, no ``rowid``, no
SQLite-only functions) so a PostgreSQL store can take it nearly as it is. The decisions
(which op crosses, whether an upsert changes an alert) are ``chachaml._automation_rules``'.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

from chachaml._automation_rules import alert_changed
from chachaml.automation_entities import Alert, AlertEvent, Pipeline, PipelineStep
from chachaml.errors import InvalidValueError, NotFoundError
from chachaml.rules import PREFIX_CANDIDATES
from chachaml.store._sqlite_base import SqliteBase, chunks, marks, point_value
from chachaml.store.base import AlertPoint

_ALERT_COLS = "name, metric, op, threshold, experiment, webhook, created, updated, version"
_EVENT_COLS = (
    "id, alert, run_id, metric, value, step, op, threshold, fired, webhook, delivery, attempts, error"
)
_PIPELINE_COLS = "id, name, status, created, updated"

# A run is a candidate once per alert version: it logged the metric since the alert changed and
# has no event of this version. The latest point is metric_summary's (folded by _reading()); the
# last point's own timestamp answers "logged since" without touching the metrics table in the
# usual case (the newest point is the last one), the EXISTS covers steps logged out of order.
_CANDIDATES = """
SELECT s.run_id, r.experiment, s.last_step, s.last_value, s.last_is_nan, s.last_timestamp
FROM metric_summary s JOIN runs r ON r.id = s.run_id
WHERE s.key = ? AND r.archived = 0 {scope}
  AND (s.last_timestamp >= ? OR EXISTS (
        SELECT 1 FROM metrics m WHERE m.run_id = s.run_id AND m.key = s.key AND m.timestamp >= ?))
  AND NOT EXISTS (
        SELECT 1 FROM alert_events e WHERE e.alert = ? AND e.alert_version = ? AND e.run_id = s.run_id)
ORDER BY s.run_id
"""
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
    return Alert(*row)


def _event(row: Sequence[Any]) -> AlertEvent:
    return AlertEvent(*row)


class AutomationMixin(SqliteBase):
    """The ``AutomationStore`` role of ``SqliteStore``."""

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
        with self._tx() as conn:
            row = conn.execute(f"SELECT {_ALERT_COLS} FROM alerts WHERE name = ?", (name,)).fetchone()
            if row is None:
                conn.execute(
                    f"INSERT INTO alerts ({_ALERT_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 1)",
                    (name, metric, op, threshold, experiment, webhook, now, now),
                )
                return Alert(name, metric, op, threshold, experiment, webhook, now, now, 1)
            old = _alert(row)
            if not alert_changed(old, metric, op, threshold, experiment, webhook):
                return old
            conn.execute(
                "UPDATE alerts SET metric = ?, op = ?, threshold = ?, experiment = ?, webhook = ?, "
                "updated = ?, version = version + 1 WHERE name = ?",
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
        with self._reading() as conn:
            if conn is None:
                return []
            return [_alert(r) for r in conn.execute(f"SELECT {_ALERT_COLS} FROM alerts ORDER BY name")]

    def delete_alert(self, name: str) -> bool:
        with self._tx() as conn:
            conn.execute("DELETE FROM alert_events WHERE alert = ?", (name,))
            return conn.execute("DELETE FROM alerts WHERE name = ?", (name,)).rowcount == 1

    def alert_candidates(self, alert: Alert, run_ids: Sequence[str] | None = None) -> list[AlertPoint]:
        scope = ""
        fixed: list[Any] = [alert.metric]
        if alert.experiment is not None:
            scope += " AND r.experiment = ?"
            fixed.append(alert.experiment)
        tail = [alert.updated, alert.updated, alert.name, alert.version]
        batches: list[Sequence[str] | None] = [None] if run_ids is None else list(chunks(list(run_ids)))
        found: list[AlertPoint] = []
        with self._reading() as conn:
            if conn is None:
                return []
            for batch in batches:
                sql_scope = scope if batch is None else f"{scope} AND s.run_id IN ({marks(len(batch))})"
                args = [*fixed, *(batch or ()), *tail]
                for run_id, experiment, step, value, is_nan, ts in conn.execute(
                    _CANDIDATES.format(scope=sql_scope), args
                ):
                    found.append(AlertPoint(run_id, experiment, step, point_value(value, is_nan), ts))
        found.sort(key=lambda p: p.run_id)
        return found

    def add_alert_events(self, alert: Alert, points: Sequence[AlertPoint], now: int) -> list[AlertEvent]:
        delivery = "pending" if alert.webhook else None
        added: list[AlertEvent] = []
        with self._tx() as conn:
            for p in points:
                cur = conn.execute(
                    _ADD_EVENT,
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
                if cur.rowcount == 1:
                    assert cur.lastrowid is not None
                    added.append(
                        AlertEvent(
                            id=cur.lastrowid,
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
