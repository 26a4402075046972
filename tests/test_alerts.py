"""Alerts (issue 11 part 2; SPEC section 11): add_alert, alerts, remove_alert, check_alerts,
alert_history, and webhooks delivered to a real HTTP receiver on 127.0.0.1."""

from __future__ import annotations

import http.server
import json
import math
import queue
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

import chachaml
from chachaml import _process, _webhooks
from chachaml.client import Client
from chachaml.errors import InvalidValueError, NotFoundError
from conftest import Clock


# -- a real webhook receiver ---------------------------------------------------------------------
@dataclass
class Receiver:
    """An HTTP server on 127.0.0.1 that records each POST and answers with ``statuses`` in turn
    (the last one repeats); while ``hold`` is clear it keeps each request waiting."""

    url: str
    statuses: list[int]
    bodies: queue.Queue[dict[str, Any]] = field(default_factory=queue.Queue)
    hold: threading.Event = field(default_factory=threading.Event)
    hits: int = 0

    def next_status(self) -> int:
        self.hits += 1
        return self.statuses[min(self.hits, len(self.statuses)) - 1]

    def received(self) -> list[dict[str, Any]]:
        out = []
        while not self.bodies.empty():
            out.append(self.bodies.get_nowait())
        return out


def _strict_json(text: str) -> Any:
    def refuse(name: str) -> None:
        raise ValueError(f"not JSON: {name}")

    return json.loads(text, parse_constant=refuse)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    rec = Receiver(url="", statuses=[200])
    rec.hold.set()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            assert self.headers["Content-Type"] == "application/json"
            rec.hold.wait(30)
            rec.bodies.put(_strict_json(body.decode("utf-8")))
            status = rec.next_status()
            self.send_response(status)
            self.end_headers()
            self.wfile.write(b"nope" if status >= 400 else b"ok")

        def log_message(self, *args: Any) -> None:  # keep test output quiet
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    rec.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield rec
    finally:
        rec.hold.set()
        server.shutdown()
        server.server_close()
        thread.join(10)


def _closed_port_url() -> str:
    with socket.socket() as s:  # bound, never listening: connections are refused
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/hook"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[None]:
    chachaml.use_store(tmp_path / "alerts.db")
    yield


def _run(name: str, *points: float, experiment: str | None = None) -> str:
    with chachaml.with_run(name, experiment=experiment) as run:
        for v in points:
            chachaml.log_metric("loss", v)
    return run.id


# -- defining alerts ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(op="=>"), "'=>'"),
        (dict(op=">", threshold="2"), "real number, got str '2'"),
        (dict(op=">", threshold=True), "real number, got bool"),
        (dict(op=">", threshold=float("nan")), "finite"),
        (dict(op=">", threshold=float("inf")), "finite"),
        (dict(op=">", threshold=1.0, webhook="ftp://x/y"), "'ftp://x/y'"),
        (dict(op=">", threshold=1.0, webhook="http:///nohost"), "with a host"),
        (dict(op=">", threshold=1.0, webhook=42), "URL string"),
        (dict(op=">", threshold=1.0, name=""), "alert name must not be empty"),
        (dict(op=">", threshold=1.0, metric=3), "alert metric must be a str"),
    ],
)
def test_add_alert_refuses_bad_arguments_naming_them(
    store: None, kwargs: dict[str, Any], message: str
) -> None:
    args: dict[str, Any] = dict(name="a", metric="loss", threshold=1.0)
    args.update(kwargs)
    with pytest.raises(InvalidValueError, match=message.replace("(", r"\(").replace("?", r"\?")):
        chachaml.add_alert(
            args.pop("name"), args.pop("metric"), args.pop("op"), args.pop("threshold"), **args
        )
    assert chachaml.alerts() == []


def test_numpy_thresholds_are_numbers_and_numpy_bools_are_not(store: None) -> None:
    np = pytest.importorskip("numpy")
    assert chachaml.add_alert("a", "loss", ">", np.float32(2.5)).threshold == 2.5
    assert chachaml.add_alert("b", "loss", "<", np.int64(3)).threshold == 3.0
    with pytest.raises(InvalidValueError, match="real number"):
        chachaml.add_alert("c", "loss", ">", np.bool_(True))


def test_add_alert_is_an_upsert_by_name(store: None, clock: Clock) -> None:
    first = chachaml.add_alert("hot", "loss", ">", 2)
    assert isinstance(first.threshold, float) and first.threshold == 2.0
    clock.now += 10
    assert chachaml.add_alert("hot", "loss", ">", 2.0) == first  # the same definition: unchanged
    changed = chachaml.add_alert("hot", "loss", ">=", 3.5, experiment="mnist")
    assert (changed.op, changed.threshold, changed.experiment, changed.version) == (">=", 3.5, "mnist", 2)
    assert changed.created == first.created and changed.updated == first.created + 10
    assert chachaml.alerts() == [changed]
    assert repr(changed) == "<Alert 'hot': loss >= 3.5 experiment='mnist'>"


def test_remove_alert_and_unknown_names(store: None) -> None:
    chachaml.add_alert("hot", "loss", ">", 2.0)
    chachaml.remove_alert("hot")
    assert chachaml.alerts() == []
    with pytest.raises(NotFoundError, match="no alert is named 'hot'"):
        chachaml.remove_alert("hot")
    with pytest.raises(NotFoundError, match="'hot'"):
        chachaml.alert_history("hot")


# -- evaluating alerts -------------------------------------------------------------------------------
def test_check_alerts_fires_once_per_run_that_crosses(store: None) -> None:
    chachaml.add_alert("hot", "loss", ">", 2.0)
    hot = _run("hot", 1.0, 3.0)  # finished runs count
    cool = _run("cool", 3.0, 1.0)  # crossed once, but its latest value is below
    chachaml.start_run("running")
    chachaml.log_metric("loss", 2.5)  # a running run counts too
    live = chachaml.current_run()
    assert live is not None

    events = chachaml.check_alerts()
    assert sorted(e.run_id for e in events) == sorted([hot, live.id])
    assert cool not in {e.run_id for e in events}
    assert all(
        (e.alert, e.metric, e.op, e.threshold, e.delivery) == ("hot", "loss", ">", 2.0, None) for e in events
    )
    assert {e.run_id: (e.value, e.step) for e in events}[hot] == (3.0, 1)

    chachaml.log_metric("loss", 4.0)
    assert chachaml.check_alerts() == []  # each run fires an alert at most once
    assert [e.run_id for e in chachaml.alert_history("hot")] == [e.run_id for e in events]
    chachaml.end_run()


def test_only_points_logged_since_the_alert_was_created_or_changed_count(store: None) -> None:
    with chachaml.with_run("before") as before:  # a point stamped before the alert existed
        chachaml.log_metric("loss", 5.0, timestamp=_process.now_ms() - 60_000)
    chachaml.add_alert("hot", "loss", ">", 2.0)
    assert chachaml.check_alerts() == []
    after = _run("after", 5.0)
    assert [e.run_id for e in chachaml.check_alerts()] == [after]
    with chachaml.with_run(run_id=after):  # stamped before the change below
        chachaml.log_metric("loss", 6.0, timestamp=_process.now_ms() - 60_000)
    chachaml.add_alert("hot", "loss", ">", 4.0)  # changed: a fresh start, every run may fire again
    assert chachaml.check_alerts() == []
    with chachaml.with_run(run_id=before.id):
        chachaml.log_metric("loss", 4.5)
    (event,) = chachaml.check_alerts()
    assert (event.run_id, event.value, event.threshold) == (before.id, 4.5, 4.0)


@pytest.mark.parametrize(
    ("op", "fires"), [(">", [3.0]), (">=", [2.0, 3.0]), ("<", [1.0]), ("<=", [1.0, 2.0])]
)
def test_each_op_compares_the_latest_value(store: None, op: str, fires: list[float]) -> None:
    chachaml.add_alert("a", "loss", op, 2.0)
    for v in (1.0, 2.0, 3.0):
        _run(f"v{v}", v)
    assert sorted(e.value for e in chachaml.check_alerts()) == fires


def test_nan_never_fires_and_inf_does(store: None) -> None:
    chachaml.add_alert("a", "loss", ">", 2.0)
    _run("nan", float("nan"))
    inf = _run("inf", float("inf"))
    (event,) = chachaml.check_alerts()
    assert event.run_id == inf and math.isinf(event.value)


def test_an_alert_watches_only_its_experiment(store: None) -> None:
    chachaml.add_alert("a", "loss", ">", 2.0, experiment="mnist")
    mine = _run("m", 5.0, experiment="mnist")
    _run("c", 5.0, experiment="cifar")
    assert [e.run_id for e in chachaml.check_alerts()] == [mine]


def test_check_alerts_limited_to_run_ids_is_what_a_server_calls_per_batch(store: None) -> None:
    chachaml.add_alert("a", "loss", ">", 2.0)
    a, b = _run("a", 5.0), _run("b", 5.0)
    assert [e.run_id for e in chachaml.check_alerts(run_ids=[a[:10]])] == [a]  # a prefix resolves
    assert chachaml.check_alerts(run_ids=[]) == []
    assert [e.run_id for e in chachaml.check_alerts(run_ids=[chachaml.get_run(b), a])] == [b]


def test_check_alerts_refuses_a_bad_wait(store: None) -> None:
    for bad in (-1, "1", float("nan"), True):
        with pytest.raises(InvalidValueError, match="wait="):
            chachaml.check_alerts(wait=bad)  # type: ignore[arg-type]


def test_concurrent_checkers_fire_each_run_once(tmp_path: Path) -> None:
    db = tmp_path / "shared.db"
    with Client(db) as c:
        c.add_alert("a", "loss", ">", 2.0)
        for i in range(20):
            run = c.start_run(f"r{i}")
            c.log_metric("loss", 5.0, run=run)
            c.end_run(run)
    fired: list[list[str]] = []
    start = threading.Barrier(4)

    def check() -> None:
        with Client(db) as mine:  # its own connection, as another process would have
            start.wait()
            fired.append([e.run_id for e in mine.check_alerts()])

    threads = [threading.Thread(target=check) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    every = [r for got in fired for r in got]
    assert len(fired) == 4 and len(every) == 20 and len(set(every)) == 20


# -- webhooks ------------------------------------------------------------------------------------
def test_a_webhook_receives_each_event_as_json(store: None, receiver: Receiver) -> None:
    chachaml.add_alert("hot", "loss", ">", 2.0, webhook=receiver.url)
    run = _run("r", 3.0, experiment="mnist")
    (event,) = chachaml.check_alerts(wait=None)
    assert (event.delivery, event.attempts, event.error) == ("delivered", 1, None)
    (body,) = receiver.received()
    assert body["alert"] == "hot" and body["run_id"] == run and body["experiment"] == "mnist"
    assert (body["metric"], body["value"], body["op"], body["threshold"], body["step"]) == (
        "loss",
        3.0,
        ">",
        2.0,
        0,
    )
    assert body["id"] == event.id and "loss=3 > 2" in body["text"]
    (stored,) = chachaml.alert_history("hot")
    assert (stored.delivery, stored.attempts) == ("delivered", 1)


def test_an_infinite_value_is_sent_as_valid_json(store: None, receiver: Receiver) -> None:
    chachaml.add_alert("hot", "loss", ">", 2.0, webhook=receiver.url)
    _run("r", float("inf"))
    (event,) = chachaml.check_alerts(wait=None)
    assert event.delivery == "delivered"
    assert receiver.received()[0]["value"] == "inf"


def test_a_failing_webhook_is_retried_then_recorded_never_raised(store: None, receiver: Receiver) -> None:
    receiver.statuses = [500]
    chachaml.add_alert("hot", "loss", ">", 2.0, webhook=receiver.url)
    _run("r", 3.0)
    (event,) = chachaml.check_alerts(wait=None)
    assert (event.delivery, event.attempts) == ("failed", _webhooks.DEFAULT_POLICY.attempts)
    assert event.error is not None and "HTTP 500" in event.error and "nope" in event.error
    assert receiver.hits == _webhooks.DEFAULT_POLICY.attempts
    (stored,) = chachaml.alert_history("hot")
    assert (stored.delivery, stored.attempts, stored.error) == ("failed", event.attempts, event.error)


def test_a_receiver_that_recovers_gets_the_event_on_a_retry(store: None, receiver: Receiver) -> None:
    receiver.statuses = [503, 200]
    chachaml.add_alert("hot", "loss", ">", 2.0, webhook=receiver.url)
    _run("r", 3.0)
    (event,) = chachaml.check_alerts(wait=None)
    assert (event.delivery, event.attempts) == ("delivered", 2)
    assert len(receiver.received()) == 2


def test_a_client_error_is_not_retried(store: None, receiver: Receiver) -> None:
    receiver.statuses = [404]
    chachaml.add_alert("hot", "loss", ">", 2.0, webhook=receiver.url)
    _run("r", 3.0)
    (event,) = chachaml.check_alerts(wait=None)
    assert (event.delivery, event.attempts) == ("failed", 1) and "HTTP 404" in (event.error or "")


def test_a_closed_port_is_recorded_as_a_failure(store: None) -> None:
    url = _closed_port_url()
    chachaml.add_alert("hot", "loss", ">", 2.0, webhook=url)
    _run("r", 3.0)
    (event,) = chachaml.check_alerts(wait=None)
    assert event.delivery == "failed" and event.attempts == _webhooks.DEFAULT_POLICY.attempts
    assert "refused" in (event.error or "").lower()
    assert chachaml.alert_history("hot")[0].delivery == "failed"


def test_check_alerts_waits_a_bounded_time_and_the_delivery_is_recorded_later(
    store: None, receiver: Receiver
) -> None:
    receiver.hold.clear()  # the receiver keeps the request waiting
    chachaml.add_alert("hot", "loss", ">", 2.0, webhook=receiver.url)
    _run("r", 3.0)
    (event,) = chachaml.check_alerts(wait=0)
    assert event.delivery == "pending"
    assert chachaml.alert_history("hot")[0].delivery == "pending"
    receiver.hold.set()
    deadline = time.monotonic() + 30
    while chachaml.alert_history("hot")[0].delivery == "pending" and time.monotonic() < deadline:
        time.sleep(0.01)
    assert chachaml.alert_history("hot")[0].delivery == "delivered"


def test_a_delivery_ending_after_its_store_closed_fails_quietly(tmp_path: Path, receiver: Receiver) -> None:
    receiver.hold.clear()
    with Client(tmp_path / "x.db") as c:
        c.add_alert("hot", "loss", ">", 2.0, webhook=receiver.url)
        run = c.start_run("r")
        c.log_metric("loss", 3.0, run=run)
        (event,) = c.check_alerts(wait=0)
    threads = [t for t in threading.enumerate() if t.name == f"chachaml-webhook-{event.id}"]
    receiver.hold.set()
    for t in threads:
        t.join(30)  # an exception in the thread would fail this test (filterwarnings = error)
    assert threads and not any(t.is_alive() for t in threads)
    assert len(receiver.received()) == 1


def test_post_gives_up_on_a_receiver_that_never_answers(receiver: Receiver) -> None:
    receiver.hold.clear()
    policy = _webhooks.Policy(timeout_s=0.2, attempts=2, backoff_s=0.01)
    delivery, attempts, error = _webhooks.post(receiver.url, {"x": 1}, policy)
    receiver.hold.set()
    assert (delivery, attempts) == ("failed", 2) and "timed out" in (error or "")


# -- the Client without context ------------------------------------------------------------------
def test_the_client_has_the_same_verbs(tmp_path: Path, receiver: Receiver) -> None:
    with Client(":memory:") as c:
        alert = c.add_alert("hot", "acc", "<", 0.5, webhook=receiver.url)
        run = c.start_run("r")
        c.log_metric("acc", 0.1, run=run)
        (event,) = c.check_alerts(wait=None)
        assert event.run_id == run.id and event.delivery == "delivered"
        assert c.alerts() == [alert] and c.alert_history("hot")[0].id == event.id
        c.remove_alert("hot")
        assert c.alerts() == []


def test_alert_entities_round_trip_and_print(store: None) -> None:
    alert = chachaml.add_alert("hot", "loss", ">", 2.0, webhook="http://127.0.0.1:1/x")
    assert chachaml.Alert.from_dict(json.loads(json.dumps(alert.to_dict()))) == alert
    assert alert.condition == "loss > 2"
    _run("r", 3.0)
    (event,) = chachaml.check_alerts(wait=0)
    assert chachaml.AlertEvent.from_dict(event.to_dict()) == event
    assert repr(event).startswith(f"<AlertEvent 'hot' run={event.run_id[:8]} loss=3 > 2 at step 0 webhook ")


_EXITS_AT_ONCE = """
import sys
import chachaml
chachaml.use_store(sys.argv[1])
chachaml.add_alert("hot", "loss", ">", 2.0, webhook=sys.argv[2])
with chachaml.with_run("r"):
    chachaml.log_metric("loss", 3.0)
(event,) = chachaml.check_alerts(wait=0)
print(event.delivery)
"""


@pytest.mark.slow
def test_a_script_that_ends_right_after_check_alerts_still_delivers(
    tmp_path: Path, receiver: Receiver
) -> None:
    receiver.hold.clear()  # the POST is still waiting when the script reaches its end
    db = tmp_path / "exit.db"
    script = tmp_path / "exits.py"
    script.write_text(_EXITS_AT_ONCE)
    with subprocess.Popen(
        [sys.executable, str(script), str(db), receiver.url], stdout=subprocess.PIPE, text=True
    ) as child:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "pending"
        receiver.hold.set()
        assert child.wait(60) == 0
    assert [b["alert"] for b in receiver.received()] == ["hot"]
    with Client(db) as c:
        (event,) = c.alert_history("hot")
    assert (event.delivery, event.attempts) == ("delivered", 1)
