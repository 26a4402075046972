"""Alerts and pipelines of the remote store (``store.remote``), one RPC each (ADR-0022)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

from chachaml.automation_entities import Alert, AlertEvent, Pipeline
from chachaml.store.base import AlertPoint

__all__ = ["RemoteAutomation"]


class RemoteAutomation:
    """The ``AutomationStore`` role over the tracking server; ``RemoteStore`` mixes it in."""

    def _call(self, method: str, idempotent: bool = True, **args: Any) -> Any:
        raise NotImplementedError  # RemoteStore's

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
        found = self._call("put_alert", name=name, metric=metric, op=op, threshold=threshold,
                           experiment=experiment, webhook=webhook, now=now)  # fmt: skip
        return Alert.from_dict(found)

    def get_alert(self, name: str) -> Alert:
        return Alert.from_dict(self._call("get_alert", name=name))

    def alerts(self) -> list[Alert]:
        return [Alert.from_dict(a) for a in self._call("alerts")]

    def delete_alert(self, name: str) -> bool:
        return bool(self._call("delete_alert", idempotent=False, name=name))  # a resend says False

    def alert_candidates(self, alert: Alert, run_ids: Sequence[str] | None = None) -> list[AlertPoint]:
        found = self._call("alert_candidates", alert=alert.to_dict(),
                           run_ids=None if run_ids is None else list(run_ids))  # fmt: skip
        return [AlertPoint(**p) for p in found]

    def add_alert_events(self, alert: Alert, points: Sequence[AlertPoint], now: int) -> list[AlertEvent]:
        # Not retried on a lost reply: the resend would find the events recorded and return none
        # of them, so their webhooks would never be sent.
        found = self._call("add_alert_events", idempotent=False, alert=alert.to_dict(),
                           points=[asdict(p) for p in points], now=now)  # fmt: skip
        return [AlertEvent.from_dict(e) for e in found]

    def set_alert_delivery(self, event_id: int, delivery: str, attempts: int, error: str | None) -> None:
        self._call("set_alert_delivery", event_id=event_id, delivery=delivery, attempts=attempts, error=error)

    def alert_history(self, name: str) -> list[AlertEvent]:
        return [AlertEvent.from_dict(e) for e in self._call("alert_history", name=name)]

    def put_pipeline(self, pipeline: Pipeline) -> None:
        self._call("put_pipeline", pipeline=pipeline.to_dict())

    def get_pipeline(self, pipeline_id: str) -> Pipeline:
        return Pipeline.from_dict(self._call("get_pipeline", pipeline_id=pipeline_id))

    def pipelines(self, *, name: str | None = None, limit: int | None = None) -> list[Pipeline]:
        return [Pipeline.from_dict(p) for p in self._call("pipelines", name=name, limit=limit)]
