"""``chachaml server`` as a real process (waitress and the stdlib engine): tokens, 401/403 that
change nothing, created_by from the token, 413, health, the access log, graceful shutdown and
the refusal to bind a public address without tokens (SPEC 10)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests._teamserver import ServerProcess, request, write_tokens

from chachaml.client import Client

pytestmark = pytest.mark.slow

ALICE = "alice-write-token-0123456789"
BOB = "bob-read-token-0123456789abc"


@pytest.fixture(params=["waitress", "stdlib"])
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ServerProcess]:
    tokens = tmp_path / "tokens"
    write_tokens(tokens, alice=("write", ALICE), bob=("read", BOB))
    srv = ServerProcess(str(tmp_path / "team.db"), ["--tokens", str(tokens), "--wsgi", request.param])
    srv.start()
    yield srv
    srv.stop()


def _count_runs(path: str) -> int:
    with Client(path) as c:
        return len(c.runs(include_archived=True))


def test_first_line_and_health_without_a_token(server: ServerProcess) -> None:
    assert server.first_line == f"chachaml UI at {server.url}/\n"
    assert request(server.url + "/api/v1/health") == (200, {"status": "ok"})


def test_missing_or_unknown_token_is_401_before_anything_else(server: ServerProcess) -> None:
    for token in (None, "not-a-known-token-at-all"):
        status, body = request(server.url + "/api/v1/runs", token=token)
        assert status == 401 and body["error"]["type"] == "AccessError"
        # a write with a bad token is refused before its body is even read
        status, body = request(server.url + "/api/v1/runs", "POST", {"name": "x"}, token=token)
        assert status == 401
        status, _ = request(server.url + "/api/v1/store/experiments", "POST", {"args": {}}, token=token)
        assert status == 401
    assert _count_runs(server.store) == 0


def test_a_read_token_reads_and_gets_403_on_every_write(server: ServerProcess) -> None:
    status, made = request(server.url + "/api/v1/runs", "POST", {"name": "a"}, token=ALICE)
    assert status == 201
    assert request(server.url + "/api/v1/runs", token=BOB)[0] == 200
    writes = [
        ("POST", "/api/v1/runs", {"name": "b"}),
        ("POST", f"/api/v1/runs/{made['id']}/end", {}),
        ("DELETE", f"/api/v1/runs/{made['id']}", None),
        ("PUT", f"/api/v1/runs/{made['id']}/note", {"note": "hi"}),
        ("PATCH", "/api/v1/anything/at/all", {}),
        ("POST", "/api/v1/store/create_run", {"args": {}}),
        ("POST", "/api/v1/store/log_batch", {"args": {"run_id": made["id"], "tags": {"a": "b"}}}),
    ]
    for method, path, body in writes:
        status, reply = request(server.url + path, method, body, token=BOB)
        assert status == 403, (method, path, reply)
        assert "read" in reply["error"]["message"]
    # a read through the store endpoint is allowed with a read token
    status, reply = request(
        server.url + "/api/v1/store/get_run", "POST", {"args": {"run_id": made["id"]}}, token=BOB
    )
    assert status == 200 and reply["result"]["status"] == "running"
    with Client(server.store) as c:
        (run,) = c.runs()
        assert run.note is None and run.status == "running" and run.tags == {}


def test_a_read_token_reads_alerts_and_pipelines_and_gets_403_on_their_writes_and_restores(
    server: ServerProcess,
) -> None:
    from chachaml.store.remote import RemoteStore

    writer = RemoteStore(server.url, token=ALICE, adopt=False, spool_root=str(Path(server.store).parent))
    try:
        alert = writer.put_alert("a", metric="loss", op=">", threshold=1.0, experiment=None,
                                 webhook=None, now=1)  # fmt: skip
    finally:
        writer.close()
    run = {"id": "e" * 32, "experiment": "x", "status": "completed", "start_time": 1, "end_time": 2}
    art = "/api/v1/store/artifact/" + "e" * 32 + "/m.bin?restore=true&sha256=00&size=1&created=1"
    pipe = {"id": "d" * 32, "name": "p", "status": "running", "steps": [], "created": 1, "updated": 1}
    writes = [
        ("POST", "/api/v1/store/put_alert", {"args": {"name": "b", "metric": "m", "op": ">",
         "threshold": 1, "experiment": None, "webhook": None, "now": 1}}),
        ("POST", "/api/v1/store/delete_alert", {"args": {"name": "a"}}),
        ("POST", "/api/v1/store/add_alert_events", {"args": {"alert": alert.to_dict(), "points": [],
         "now": 1}}),
        ("POST", "/api/v1/store/set_alert_delivery", {"args": {"event_id": 1, "delivery": "failed",
         "attempts": 1, "error": "x"}}),
        ("POST", "/api/v1/store/put_pipeline", {"args": {"pipeline": pipe}}),
        ("POST", "/api/v1/store/restore_run", {"args": {"run": run, "metrics": []}}),
        ("POST", "/api/v1/store/restore_model", {"args": {"model": {"name": "m"}, "history": []}}),
        ("PUT", art, b"x"),
    ]  # fmt: skip
    for method, path, body in writes:
        headers = {"Content-Type": "application/octet-stream"} if isinstance(body, bytes) else None
        status, reply = request(server.url + path, method, body, token=BOB, headers=headers)
        assert status == 403, (method, path, reply)
        assert "read" in reply["error"]["message"]
    reads = [
        ("get_alert", {"name": "a"}),
        ("alerts", {}),
        ("alert_candidates", {"alert": alert.to_dict(), "run_ids": None}),
        ("alert_history", {"name": "a"}),
        ("pipelines", {"name": None, "limit": None}),
    ]
    for method, args in reads:
        status, reply = request(f"{server.url}/api/v1/store/{method}", "POST", {"args": args}, token=BOB)
        assert status == 200, (method, reply)
    status, reply = request(f"{server.url}/api/v1/store/get_pipeline", "POST",
                            {"args": {"pipeline_id": "d" * 32}}, token=BOB)  # fmt: skip
    assert status == 404 and reply["error"]["type"] == "NotFoundError"
    with Client(server.store) as c:  # nothing the read token sent was written
        assert [a.name for a in c.alerts()] == ["a"] and c.pipelines() == []
        assert len(c.runs(include_archived=True)) == 0 and c.models() == []


def test_the_new_store_methods_check_every_argument(server: ServerProcess) -> None:
    run = {"id": "e" * 32, "experiment": "x", "status": "completed", "start_time": 1, "end_time": 2}
    alert = {"name": "a", "metric": "m", "op": ">", "threshold": 1.0, "created": 1, "updated": 1,
             "version": 1}  # fmt: skip
    bad = [
        ("put_alert", {"name": "b", "metric": "m", "op": ">", "threshold": "1", "experiment": None,
                       "webhook": None, "now": 1}),  # a threshold as text
        ("put_alert", {"name": "b", "metric": "m", "op": ">", "threshold": 1, "experiment": None,
                       "webhook": None}),  # "now" missing
        ("put_alert", {"name": "b", "metric": "m", "op": ">", "threshold": True, "experiment": None,
                       "webhook": None, "now": 1}),  # a bool is no number
        ("restore_run", {"run": {**run, "start_time": "1"}, "metrics": []}),
        ("restore_run", {"run": run, "metrics": [["loss", 1.0, None, 1]]}),  # a copy has steps
        ("restore_run", {"run": {**run, "tags": {"k": 1}}, "metrics": []}),
        ("restore_model", {"model": {"name": "m", "versions": [{"model": "m"}]}, "history": []}),
        ("restore_model", {"model": {"name": "m"}, "history": [{"model": "m", "kind": "x"}]}),
        ("add_alert_events", {"alert": alert, "points": [{"run_id": "r"}], "now": 1}),
        ("alert_candidates", {"alert": {**alert, "version": "1"}, "run_ids": None}),
        ("alert_candidates", {"alert": alert, "run_ids": "abc"}),
        ("set_alert_delivery", {"event_id": "1", "delivery": "x", "attempts": 1, "error": None}),
        ("put_pipeline", {"pipeline": {"id": "p", "name": "p", "status": "running", "created": 1,
                                       "updated": 1, "steps": [{"name": 1}]}}),
        ("pipelines", {"name": None, "limit": "3"}),
        ("get_pipeline", {"pipeline_id": "d", "extra": 1}),
    ]  # fmt: skip
    for method, args in bad:
        status, reply = request(f"{server.url}/api/v1/store/{method}", "POST", {"args": args}, token=ALICE)
        assert status == 400 and reply["error"]["type"] == "InvalidValueError", (method, args, reply)
    for query in ("restore=true&size=1&created=1", "restore=true&sha256=00&size=x&created=1"):
        status, reply = request(
            f"{server.url}/api/v1/store/artifact/{'e' * 32}/m.bin?{query}",
            "PUT",
            b"x",
            token=ALICE,
            headers={"Content-Type": "application/octet-stream"},
        )
        assert status == 400 and reply["error"]["type"] == "InvalidValueError", (query, reply)
    with Client(server.store) as c:  # nothing was written
        assert c.alerts() == [] and c.pipelines() == [] and len(c.runs(include_archived=True)) == 0
        assert c.models() == []


def test_created_by_is_the_token_name_whatever_the_client_claims(server: ServerProcess) -> None:
    _, made = request(server.url + "/api/v1/runs", "POST", {"name": "a"}, token=ALICE)
    assert made["created_by"] == "alice"
    new = {
        "id": "f" * 32, "experiment": "e", "start_time": 1, "created_by": "mallory",
        "owner": {"host": "h", "pid": 1, "proc_start": "x"},
    }  # fmt: skip
    status, reply = request(
        server.url + "/api/v1/store/create_run", "POST", {"args": {"new": new}}, token=ALICE
    )
    assert status == 200 and reply["result"]["created_by"] == "alice"
    with Client(server.store) as c:
        assert {r.created_by for r in c.runs()} == {"alice"}


def test_a_body_over_the_limit_is_413_and_changes_nothing(tmp_path: Path) -> None:
    srv = ServerProcess(str(tmp_path / "s.db"), ["--max-upload", "1000"]).start()
    try:
        _, made = request(srv.url + "/api/v1/runs", "POST", {"name": "a"})
        status, reply = request(
            srv.url + f"/api/v1/runs/{made['id']}/artifacts/big.bin",
            "PUT",
            b"x" * 5000,
            headers={"Content-Type": "application/octet-stream"},
        )
        assert status == 413, reply
        status, reply = request(srv.url + f"/api/v1/runs/{made['id']}/artifacts/ok.bin", "PUT", b"x" * 10,
                                headers={"Content-Type": "application/octet-stream"})  # fmt: skip
        assert status == 201, reply
    finally:
        srv.stop()
    with Client(srv.store) as c:
        assert [a.name for a in c.list_artifacts(made["id"])] == ["ok.bin"]


def test_access_log_is_json_lines(tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    srv = ServerProcess(str(tmp_path / "s.db"), ["--access-log", str(log)]).start()
    try:
        request(srv.url + "/api/v1/health")
        request(srv.url + "/api/v1/nothing-here")
    finally:
        srv.stop()
    recs = [json.loads(line) for line in log.read_text().splitlines()]
    assert [(r["method"], r["path"], r["status"]) for r in recs] == [
        ("GET", "/api/v1/health", 200),
        ("GET", "/api/v1/nothing-here", 404),
    ]
    assert all({"ts", "remote", "user", "ms"} <= set(r) for r in recs)


@pytest.mark.parametrize("engine", ["waitress", "stdlib"])
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_graceful_shutdown_finishes_the_request_in_flight(tmp_path: Path, sig: int, engine: str) -> None:
    """A large upload in flight when the signal comes is completed and answered, then exit 0."""
    srv = ServerProcess(str(tmp_path / "s.db"), ["--wsgi", engine]).start()
    _, made = request(srv.url + "/api/v1/runs", "POST", {"name": "a"})
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=60)
    # Each half is far larger than the loopback socket buffers, so sending the first half
    # returns only once the server is reading this request: it is in flight when the signal comes.
    size = 64 << 20
    conn.putrequest("PUT", f"/api/v1/runs/{made['id']}/artifacts/big.bin")
    conn.putheader("Content-Type", "application/octet-stream")
    conn.putheader("Content-Length", str(size))
    conn.endheaders()
    conn.send(b"y" * (size // 2))  # half the body is sent: the request is in flight
    status_box: list[int] = []
    stopped = threading.Event()

    def stop() -> None:
        status_box.append(srv.stop(sig)[0])
        stopped.set()

    stopper = threading.Thread(target=stop)
    stopper.start()
    conn.send(b"y" * (size // 2))
    resp = conn.getresponse()
    assert resp.status == 201, resp.read()
    conn.close()
    stopper.join(60)
    assert stopped.is_set() and status_box == [0]
    with Client(srv.store) as c:
        assert c.list_artifacts(made["id"])[0].size == size


def test_no_public_bind_without_tokens(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "chachaml", "server", "--store", str(tmp_path / "s.db"),
         "--host", "0.0.0.0", "--port", "0"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 1
    assert "--tokens" in proc.stderr and "--insecure-no-auth" in proc.stderr
    assert proc.stdout == ""


def test_insecure_no_auth_allows_a_public_bind(tmp_path: Path) -> None:
    srv = ServerProcess(str(tmp_path / "s.db"), ["--host", "0.0.0.0", "--insecure-no-auth"]).start()
    try:
        assert request(f"http://127.0.0.1:{srv.port}/api/v1/health")[0] == 200
    finally:
        srv.stop()


def test_a_bad_tokens_file_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "tokens"
    bad.write_text("alice admin 0123456789abcdefgh\n")
    proc = subprocess.run(
        [sys.executable, "-m", "chachaml", "server", "--store", str(tmp_path / "s.db"), "--tokens", str(bad)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 1 and "admin" in proc.stderr and "read or write" in proc.stderr


def test_the_ui_asks_for_a_token(server: ServerProcess) -> None:
    status, body = request(server.url + "/")
    assert status == 401 and b"token" in body and b"localStorage" in body
    status, _ = request(server.url + "/api/v1/runs", headers={"Cookie": f"chachaml_token={BOB}"})
    assert status == 200


def test_openapi_describes_the_team_endpoints(server: ServerProcess) -> None:
    status, doc = request(server.url + "/api/v1/openapi.json", token=BOB)
    assert status == 200
    assert doc["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    assert doc["paths"]["/api/v1/health"]["get"]["security"] == []
    assert "log_batch" in doc["paths"]["/api/v1/store/{method}"]["post"]["description"]
    assert "put" in doc["paths"]["/api/v1/store/artifact/{run_id}/{name}"]
    assert "/api/v1/runs" in doc["paths"]  # the application's own routes are still there
