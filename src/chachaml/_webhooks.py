"""Webhook delivery of alert events: a JSON POST with a timeout and bounded retries (ADR-0013).

``check_alerts()`` is called from training loops, so a slow or dead receiver must never stall
or break one. Each event is POSTed in a daemon thread (``start``); ``check_alerts`` waits for
the deliveries a bounded time (``wait``) and returns, and a delivery still going on records its
outcome in the alert's history when it ends. Failures are recorded, never raised. At interpreter
exit, deliveries still in flight get up to ``Policy.longest()`` seconds to finish, so a script
that checks alerts just before it ends still delivers.

Retried: connection errors, timeouts, HTTP 408, 429 and 5xx (the receiver may recover).
Not retried: other 4xx (the request itself is wrong; sending it again cannot help).
"""

from __future__ import annotations

import atexit
import contextlib
import math
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from chachaml.automation_entities import AlertEvent

__all__ = ["DEFAULT_POLICY", "Policy", "payload", "post", "start"]

_RETRY_STATUS = frozenset({408, 429})
_MAX_ERROR = 500  # characters of a receiver's answer kept in the history


@dataclass(frozen=True, slots=True)
class Policy:
    """How hard to try: seconds per attempt, attempts in all, first pause (doubling after each)."""

    timeout_s: float = 5.0
    attempts: int = 3
    backoff_s: float = 0.5

    def longest(self) -> float:
        """The longest one delivery can take: every attempt timing out, plus the pauses."""
        pauses = sum(self.backoff_s * 2**i for i in range(self.attempts - 1))
        return float(self.attempts * self.timeout_s + pauses)


DEFAULT_POLICY = Policy()


def _finite(x: float) -> float | str:
    """JSON has no NaN or infinity: such a value is sent as the text Python prints."""
    return x if math.isfinite(x) else repr(x)


def payload(event: AlertEvent, experiment: str | None = None) -> dict[str, Any]:
    """The JSON body POSTed for an event: its fields, plus ``text`` (one readable line, the
    field chat tools such as Slack show) and the run's ``experiment`` when known."""
    body: dict[str, Any] = event.to_dict()
    for key in ("delivery", "attempts", "error"):  # the outcome of this very POST: unknown yet
        body.pop(key, None)
    body["value"] = _finite(event.value)
    body["threshold"] = _finite(event.threshold)
    body["experiment"] = experiment
    body["text"] = (
        f"chachaml alert {event.alert!r}: run {event.run_id[:8]} {event.metric}={event.value:g} "
        f"{event.op} {event.threshold:g} at step {event.step}"
    )
    return body


def post(url: str, body: dict[str, Any], policy: Policy = DEFAULT_POLICY) -> tuple[str, int, str | None]:
    """POST ``body`` as JSON to ``url``, retrying as the module docstring says.

    Returns:
        ``(delivery, attempts, error)``: ``"delivered"`` (any 2xx answer) or ``"failed"`` with
        the last error; never raises for a network or HTTP failure.
    """
    # Imported here: urllib.request pulls in http.client and email (tens of ms), which a
    # process that never sends a webhook should not pay for at its first log call.
    import json
    import urllib.error
    import urllib.request

    data = json.dumps(body, allow_nan=False).encode("utf-8")
    error: str | None = None
    for attempt in range(1, policy.attempts + 1):
        request = urllib.request.Request(
            url,
            data=data,
            method="POST",
            headers={"Content-Type": "application/json", "User-Agent": "chachaml-alerts"},
        )
        retry = True
        try:
            with urllib.request.urlopen(request, timeout=policy.timeout_s) as answer:
                answer.read(_MAX_ERROR)
            return "delivered", attempt, None
        except urllib.error.HTTPError as exc:  # the receiver answered, with an error status
            detail = exc.read(_MAX_ERROR).decode("utf-8", "replace").strip() if exc.fp else ""
            error = f"HTTP {exc.code} {exc.reason}" + (f": {detail}" if detail else "")
            retry = exc.code >= 500 or exc.code in _RETRY_STATUS
        except (urllib.error.URLError, OSError, ValueError) as exc:  # refused, timed out, bad host
            reason = getattr(exc, "reason", exc)
            error = f"{type(reason).__name__}: {reason}"
        if not retry or attempt == policy.attempts:
            break
        time.sleep(policy.backoff_s * 2 ** (attempt - 1))
    return "failed", attempt, (error or "no answer")[:_MAX_ERROR]


class _Flight:
    """The deliveries of one ``check_alerts`` call: done events, and their outcomes."""

    def __init__(self, events: Sequence[AlertEvent]) -> None:
        self.done = {e.id: threading.Event() for e in events}
        self.outcome: dict[int, AlertEvent] = {}

    def wait(self, seconds: float | None) -> dict[int, AlertEvent]:
        """Wait up to ``seconds`` (None: until all are done) and return the outcomes so far."""
        deadline = None if seconds is None else time.monotonic() + seconds
        for flag in self.done.values():
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            flag.wait(left)
        return dict(self.outcome)


_in_flight: set[threading.Thread] = set()  # for the bounded join at exit
_in_flight_lock = threading.Lock()


def _after_fork_in_child() -> None:
    """A forked child has none of its parent's threads, and must not inherit a held lock."""
    global _in_flight_lock
    _in_flight_lock = threading.Lock()
    _in_flight.clear()


os.register_at_fork(after_in_child=_after_fork_in_child)


def start(
    events: Sequence[AlertEvent],
    record: Callable[[AlertEvent], None],
    experiments: dict[str, str | None] | None = None,
    policy: Policy = DEFAULT_POLICY,
) -> _Flight:
    """Deliver each event to its webhook, each in a daemon thread, and ``record`` the outcome.

    Args:
        events: fired events whose alert has a webhook (``event.webhook`` set).
        record: stores an event's outcome (the store's ``set_alert_delivery``); an exception it
            raises (a closed store) is swallowed: delivery must never fail a caller.
        experiments: run id -> experiment, added to the payloads.
        policy: timeout, attempts and backoff.

    Returns:
        the flight, to ``wait`` on for a bounded time.
    """
    flight = _Flight(events)
    for event in events:
        thread = threading.Thread(
            target=_deliver,
            args=(event, record, (experiments or {}).get(event.run_id), policy, flight),
            name=f"chachaml-webhook-{event.id}",
            daemon=True,
        )
        with _in_flight_lock:
            _in_flight.add(thread)
        thread.start()
    return flight


def _deliver(
    event: AlertEvent,
    record: Callable[[AlertEvent], None],
    experiment: str | None,
    policy: Policy,
    flight: _Flight,
) -> None:
    try:
        assert event.webhook is not None
        try:
            delivery, attempts, error = post(event.webhook, payload(event, experiment), policy)
        except Exception as exc:  # a bug must still end as a recorded failure, not a lost thread
            delivery, attempts, error = "failed", 0, f"{type(exc).__name__}: {exc}"
        done = replace(event, delivery=delivery, attempts=attempts, error=error)
        flight.outcome[event.id] = done
        with contextlib.suppress(Exception):  # the store is closed or failing: nothing left to tell
            record(done)
    finally:
        flight.done[event.id].set()
        with _in_flight_lock:
            _in_flight.discard(threading.current_thread())


@atexit.register
def _finish_at_exit() -> None:
    """Give deliveries still running a bounded time to finish before the interpreter ends."""
    deadline = time.monotonic() + DEFAULT_POLICY.longest()
    with _in_flight_lock:
        threads = list(_in_flight)
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
