"""Pipelines and alerts over HTTP (SPEC 11): the read endpoints, the page twins, and a server
that fires alerts as points arrive, seen by a real webhook receiver, all over a real
``chachaml ui`` process."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests._webserver import Server
from tests.test_alerts import Receiver, receiver  # noqa: F401 (the fixture)

import chachaml

pytestmark = pytest.mark.slow


def _boom(_: Any) -> Any:
    raise RuntimeError("no data")


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Server, str]]:
    path = str(tmp_path / "auto.db")
    with chachaml.with_store(path):
        chachaml.run_pipeline("prep", [("load", lambda _: 1), ("clean", lambda x: x)])
        with pytest.raises(RuntimeError):
            chachaml.run_pipeline("train", [("load", _boom), ("fit", lambda x: x)])
    srv = Server(path).start()
    try:
        yield srv, path
    finally:
        assert srv.stop() == 0


def test_pipelines_list_newest_first_and_filter(served: tuple[Server, str]) -> None:
    srv, path = served
    expected = [p.to_dict() for p in chachaml.Client(path).pipelines()]
    assert sorted(p["name"] for p in expected) == ["prep", "train"]
    listed = srv.request("GET", "/api/v1/pipelines")
    assert listed.status == 200 and listed.json() == {"pipelines": expected}
    assert srv.request("GET", "/pipelines.json").json() == {"pipelines": expected}  # the page's twin
    named = srv.request("GET", "/api/v1/pipelines?name=prep").json()["pipelines"]
    assert [(p["name"], p["status"]) for p in named] == [("prep", "completed")]
    assert srv.request("GET", "/api/v1/pipelines?limit=1").json() == {"pipelines": expected[:1]}
    assert srv.request("GET", "/api/v1/pipelines?limit=0").error["type"] == "InvalidValueError"


def test_one_pipeline_by_id_or_prefix_with_its_steps(served: tuple[Server, str]) -> None:
    srv, path = served
    train = chachaml.Client(path).pipelines(name="train")[0]
    for ref in (train.id, train.id[:6]):
        got = srv.request("GET", f"/api/v1/pipelines/{ref}")
        assert got.status == 200 and got.json() == train.to_dict()
    assert [(s["name"], s["status"]) for s in got.json()["steps"]] == [("load", "failed"), ("fit", "skipped")]
    assert got.json()["steps"][0]["run_id"] == train.steps[0].run_id
    assert srv.request("GET", f"/pipelines/{train.id[:6]}.json").json() == train.to_dict()
    missing = srv.request("GET", "/api/v1/pipelines/feedbeef")
    assert missing.status == 404 and "feedbeef" in missing.error["message"]


def test_alerts_and_their_history(served: tuple[Server, str]) -> None:
    srv, path = served
    assert srv.request("GET", "/api/v1/alerts").json() == {"alerts": []}
    c = chachaml.Client(path)
    alert = c.add_alert("hot", "loss", ">", 2.0, experiment="mnist")
    (listed,) = srv.request("GET", "/api/v1/alerts").json()["alerts"]
    assert listed == {**alert.to_dict(), "condition": "loss > 2"}
    assert srv.request("GET", "/alerts.json").json()["alerts"] == [listed]
    assert srv.request("GET", "/api/v1/alerts/hot/history").json() == {"alert": "hot", "events": []}
    c.add_alert("team/hot", "loss", ">", 2.0)  # a name with "/" is one alert, not a path
    assert srv.request("GET", "/api/v1/alerts/team%2Fhot/history").json() == {
        "alert": "team/hot",
        "events": [],
    }
    unknown = srv.request("GET", "/api/v1/alerts/cold/history")
    assert unknown.status == 404 and "cold" in unknown.error["message"]


def _batch(srv: Server, run_id: str, body: dict[str, Any]) -> Any:
    reply = srv.request("POST", f"/api/v1/runs/{run_id}/batch", body)
    assert reply.status == 200, reply.body
    return reply.json()


def test_the_server_fires_alerts_as_points_arrive(
    served: tuple[Server, str],
    receiver: Receiver,  # noqa: F811 (the fixture imported above)
) -> None:
    srv, path = served
    chachaml.Client(path).add_alert("hot", "loss", ">", 2.0, webhook=receiver.url)
    run = srv.request("POST", "/api/v1/runs", {"name": "r", "experiment": "mnist"}).json()["id"]
    history = "/api/v1/alerts/hot/history"

    _batch(srv, run, {"metrics": [{"key": "loss", "value": 1.5, "step": 0}]})
    assert srv.request("GET", history).json()["events"] == []  # below the threshold: nothing

    _batch(srv, run, {"batch_id": "b1", "metrics": [{"key": "loss", "value": 3.0, "step": 1}]})
    # The check runs inside the batch's request: its event is stored when the reply comes.
    (event,) = srv.request("GET", history).json()["events"]
    assert (event["run_id"], event["value"], event["step"]) == (run, 3.0, 1)
    body = receiver.bodies.get(timeout=30)  # the webhook is POSTed in the background
    assert (body["alert"], body["run_id"], body["experiment"], body["value"]) == ("hot", run, "mnist", 3.0)

    # The same run never fires it twice; a repeated batch_id is not applied nor checked again.
    _batch(srv, run, {"metrics": [{"key": "loss", "value": 5.0, "step": 2}]})
    assert _batch(srv, run, {"batch_id": "b1", "metrics": [{"key": "loss", "value": 3.0, "step": 1}]}) == {
        "applied": False,
        "batch_id": "b1",
    }
    other = srv.request("POST", "/api/v1/runs", {"name": "s"}).json()["id"]
    _batch(srv, other, {"params": {"lr": 0.1}})  # no points: no check
    _batch(srv, other, {"metrics": [{"key": "loss", "value": 9.0}]})
    events = srv.request("GET", history).json()["events"]
    assert [(e["run_id"], e["value"]) for e in events] == [(run, 3.0), (other, 9.0)]
    assert receiver.bodies.get(timeout=30)["run_id"] == other
    # Every delivery ends recorded as delivered (polled: the outcome is written after the POST).
    deadline = time.monotonic() + 30
    while {e["delivery"] for e in srv.request("GET", history).json()["events"]} != {"delivered"}:
        assert time.monotonic() < deadline, srv.request("GET", history).json()
        time.sleep(0.05)
    assert receiver.bodies.empty()
    settled = srv.request("GET", history).json()["events"]
    assert srv.request("GET", f"{history}?limit=1").json()["events"] == settled[-1:]


def test_the_server_fires_alerts_for_points_a_remote_store_sends(
    tmp_path: Path,
    receiver: Receiver,  # noqa: F811 (the fixture imported above)
) -> None:
    # The remote store ships spooled points through /api/v1/store/log_batch, not the public
    # batch endpoint: the server must check alerts on that path too (SPEC 11).
    from tests._teamserver import InProcessServer

    from chachaml.store.remote import RemoteStore

    server = InProcessServer(str(tmp_path / "server.db"))
    try:
        chachaml.Client(server.store).add_alert("hot", "loss", ">", 2.0, webhook=receiver.url)
        remote = chachaml.Client(RemoteStore(server.url, spool_root=str(tmp_path / "state")))
        try:
            run = remote.start_run("r", experiment="mnist")
            remote.log_metric("loss", 1.5, run=run)
            remote.log_metric("loss", 3.0, run=run)
            remote.store.flush()  # the spooled points reach the server
            # Nobody called check_alerts: the server fired the alert as the batch arrived.
            events = chachaml.Client(server.store).alert_history("hot")
            assert [(e.run_id, e.value) for e in events] == [(run.id, 3.0)]
            assert receiver.bodies.get(timeout=30)["run_id"] == run.id
        finally:
            remote.close()
            remote.store.close()
    finally:
        server.close()
