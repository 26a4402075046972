"""The roles the SQLite store gained after the PostgreSQL backend was written, on PostgreSQL.

Alerts and pipelines (``_sqlite_automation``, docs/adr/0013) and the copy primitives
(``_sqlite_restore``, docs/adr/0017) are inherited; their SQL is the engine-neutral subset.
What differs is replaced here (docs/adr/0021-postgresql-backend.md):

* a metric point's order is ``metrics.seq`` (an identity, never handed out again), SQLite's is
  ``rowid``; "the newest point" is the identity's sequence, so deleting runs never lowers an
  alert's ``since_point``, and reading it costs no scan;
* an event's id comes back through ``RETURNING`` (there is no ``lastrowid``);
* a new alert name is inserted under an advisory lock (SQLite's ``BEGIN IMMEDIATE`` serialises
  the read-then-insert; here two processes could both find the name free);
* ``restore_run`` also writes the copied run's ``metric_summary`` rows: PostgreSQL keeps the
  summaries current on every write, with no fold on read to pick copied points up.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

from chachaml.automation_entities import Alert
from chachaml.store._pg_base import ALERT_LOCK, PostgresBase
from chachaml.store._sqlite_automation import _ADD_EVENT
from chachaml.store.sqlite import SqliteStore

# A batch's summary merged into what earlier batches of the same copy wrote: the rows of a
# later batch come later (a higher seq), so on a tied step its point is the latest.
_LATER = "excluded.last_step >= ms.last_step"
_MERGE_SUMMARY = f"""
INSERT INTO metric_summary AS ms
    (run_id, key, last_step, last_value, last_is_nan, last_timestamp, min, max, count)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (run_id, key) DO UPDATE SET
    last_step = greatest(ms.last_step, excluded.last_step),
    last_value = CASE WHEN {_LATER} THEN excluded.last_value ELSE ms.last_value END,
    last_is_nan = CASE WHEN {_LATER} THEN excluded.last_is_nan ELSE ms.last_is_nan END,
    last_timestamp = CASE WHEN {_LATER} THEN excluded.last_timestamp ELSE ms.last_timestamp END,
    min = least(ms.min, excluded.min),
    max = greatest(ms.max, excluded.max),
    count = ms.count + excluded.count
"""


def _summaries(rows: Sequence[tuple[str, str, int, float, int, int]]) -> list[list[Any]]:
    """Per key, the summary row of points given in writing order (``_MERGE_SUMMARY``'s values)."""
    out: dict[str, list[Any]] = {}
    for run_id, key, step, value, ts, is_nan in rows:
        number = None if is_nan else value  # NaN is no value: min/max skip it, "latest" says NaN
        s = out.get(key)
        if s is None:
            out[key] = [run_id, key, step, number, is_nan, ts, number, number, 1]
            continue
        if step >= s[2]:
            s[2:6] = [step, number, is_nan, ts]
        if number is not None:
            s[6] = number if s[6] is None else min(s[6], number)
            s[7] = number if s[7] is None else max(s[7], number)
        s[8] += 1
    return list(out.values())


class PgRoles(SqliteStore, PostgresBase):
    """Alerts, pipelines and restores of ``PostgresStore`` (see the module docstring)."""

    _POINT = "seq"
    _NEWEST_POINT = "coalesce(pg_sequence_last_value(pg_get_serial_sequence('metrics', 'seq')), 0)"

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
        with self._locking(ALERT_LOCK):
            return super().put_alert(
                name, metric=metric, op=op, threshold=threshold, experiment=experiment,
                webhook=webhook, now=now,
            )  # fmt: skip

    @staticmethod
    def _insert_event(conn: sqlite3.Connection, args: Sequence[Any]) -> int | None:
        row = conn.execute(_ADD_EVENT + " RETURNING id", args).fetchone()
        return None if row is None else int(row[0])

    @staticmethod
    def _insert_points(conn: sqlite3.Connection, rows: list[tuple[str, str, int, float, int, int]]) -> None:
        """Copied points (``restore_run``), and their summaries in the same transaction."""
        SqliteStore._insert_points(conn, rows)
        if rows:
            conn.executemany(_MERGE_SUMMARY, _summaries(rows))
