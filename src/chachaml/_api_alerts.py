"""The ``Client``'s alert verbs (SPEC section 11; docs/automation.md; docs/adr/0013).

Only ``check_alerts()`` evaluates alerts, never a log call: a training loop decides when the
check costs its few queries. A tracking server calls ``check_alerts(run_ids=..., wait=0)``
after each batch it ingests, limited to the runs of that batch.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from chachaml import _process
from chachaml._api_registry import RegistryApi
from chachaml._values import check_key
from chachaml.errors import InvalidValueError, NotFoundError

if TYPE_CHECKING:  # the rules and records load with the first alert verb, not with the Client
    from chachaml.automation_entities import Alert, AlertEvent

#: How long ``check_alerts`` waits for webhook deliveries by default, in seconds.
WEBHOOK_WAIT_S = 2.0


class AlertsApi(RegistryApi):
    """Alerts on metrics, with webhooks (mixed into ``chachaml.client.Client``)."""

    __slots__ = ()

    def add_alert(
        self,
        name: str,
        metric: str,
        op: str,
        threshold: Any,
        *,
        experiment: str | None = None,
        webhook: str | None = None,
    ) -> Alert:
        """Create the alert ``name``, or change it (an upsert by name), and return it.

        The alert fires for a run when the run's latest value of ``metric`` compares with
        ``threshold`` by ``op``; ``check_alerts()`` evaluates it. A changed alert starts afresh:
        only points logged from now on count, and every run may fire it once again. The same
        definition again changes nothing.

        Args:
            name: the alert's name (its identity).
            metric: the metric key to watch, e.g. ``"loss"``.
            op: ``">"``, ``">="``, ``"<"`` or ``"<="``.
            threshold: a finite real number.
            experiment: watch only the runs of this experiment (default: every run).
            webhook: an ``http(s)://`` URL that receives each event as a JSON POST.

        Raises:
            InvalidValueError: a bad name, metric, op, threshold, experiment or webhook URL.
        """
        from chachaml._automation_rules import check_op, check_threshold, check_webhook

        return self.store.put_alert(
            check_key(name, "alert name"),
            metric=check_key(metric, "alert metric"),
            op=check_op(op),
            threshold=check_threshold(threshold),
            experiment=None if experiment is None else check_key(experiment, "experiment name"),
            webhook=check_webhook(webhook),
            now=_process.now_ms(),
        )

    def alerts(self) -> list[Alert]:
        """Every alert, by name."""
        return self.store.alerts()

    def remove_alert(self, name: str) -> None:
        """Remove the alert ``name`` and its history.

        Raises:
            NotFoundError: there is no such alert (``alerts()`` lists them).
        """
        name = check_key(name, "alert name")
        if not self.store.delete_alert(name):
            raise NotFoundError(f"no alert is named {name!r}; list them with chachaml.alerts()")

    def alert_history(self, name: str) -> list[AlertEvent]:
        """The events of the alert ``name``, oldest first, with their webhook deliveries.

        Raises:
            NotFoundError: there is no such alert.
        """
        name = check_key(name, "alert name")
        events = self.store.alert_history(name)
        if not events:
            self.store.get_alert(name)  # an unknown alert raises NotFoundError instead of []
        return events

    def check_alerts(
        self, *, run_ids: Iterable[Any] | None = None, wait: float | None = WEBHOOK_WAIT_S
    ) -> list[AlertEvent]:
        """Evaluate every alert now and return the events this call fired.

        For each alert, each run in its scope (running or finished, not archived) that logged
        the metric since the alert was created or last changed is compared by its latest value
        (the point at the highest step; a NaN never fires). A run fires an alert at most once,
        even when several processes check at the same time. Webhooks are POSTed in background
        threads; this call waits for them at most ``wait`` seconds, and a delivery still going
        on records its outcome in ``alert_history`` when it ends. A failing webhook is
        recorded, never raised.

        Args:
            run_ids: check only these runs (Runs, ids or prefixes): what a tracking server
                passes after ingesting a batch. Default: every run.
            wait: seconds to wait for webhook deliveries (0: do not wait; None: until done).

        Returns:
            the new events, oldest alert name first; each shows its delivery as of the return
            (``"pending"`` when it was still going on).

        Raises:
            InvalidValueError: ``wait`` is negative or not a number.
        """
        if wait is not None and (
            isinstance(wait, bool) or not isinstance(wait, int | float) or not wait >= 0 or math.isinf(wait)
        ):
            raise InvalidValueError(f"wait= must be a number of seconds >= 0 or None, got {wait!r}")
        from chachaml._automation_rules import crosses

        ids = None if run_ids is None else sorted({self.resolve_run_id(r, "run_ids=") for r in run_ids})
        if ids is not None and not ids:
            return []
        store = self.store
        fired: list[AlertEvent] = []
        experiments: dict[str, str | None] = {}
        now = _process.now_ms()
        for alert in store.alerts():
            points = [
                p for p in store.alert_candidates(alert, ids) if crosses(alert.op, p.value, alert.threshold)
            ]
            if points:
                fired += store.add_alert_events(alert, points, now)
                experiments.update((p.run_id, p.experiment) for p in points)
        hooked = [e for e in fired if e.webhook]
        if not hooked:
            return fired
        from chachaml import _webhooks  # threads and urllib only for a store that has webhooks

        def record(event: AlertEvent) -> None:
            assert event.delivery is not None
            store.set_alert_delivery(event.id, event.delivery, event.attempts, event.error)

        outcomes = _webhooks.start(hooked, record, experiments).wait(wait)
        return [outcomes.get(e.id, e) for e in fired]
