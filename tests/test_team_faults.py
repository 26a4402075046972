"""Team scale under load and faults, with real processes over real HTTP on real PostgreSQL
(SPEC 10, issue 10 part 6): two ``chachaml server`` processes sharing one database take 16
clients at once, and a PostgreSQL cluster restarted (or killed) mid-run is recovered from by the
server without a restart of its own: 0 points lost, 0 duplicated, no 5xx that loses data.

The restart tests use a private cluster (``tests/_postgres.PrivateCluster``): the shared server
on :5432 is never restarted.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from tests._postgres import fresh_database, private_cluster
from tests._teamserver import START_TIMEOUT_S, ServerProcess, request, write_tokens

from chachaml.client import Client

pytestmark = pytest.mark.slow

ANN = "ann-writer-token-0123456789"
BOB = "bob-writer-token-0123456789"


def _env(tmp_path: Path, token: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHACHAML_")}
    env["XDG_STATE_HOME"] = str(tmp_path / "state")
    env["CHACHAML_TOKEN"] = token
    return env


def _python(code: str, env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip


def _finish(proc: subprocess.Popen[str]) -> str:
    out, err = proc.communicate(timeout=START_TIMEOUT_S * 10)
    assert proc.returncode == 0, err
    return out


def _points(url: str, run_id: str) -> list[tuple[int, float]]:
    with Client(url) as c:
        return [(m.step, m.value) for m in c.metric_history(run_id, "x")]


def _statuses(*logs: Path) -> list[int]:
    return [json.loads(line)["status"] for log in logs for line in log.read_text().splitlines()]


@pytest.fixture
def tokens(tmp_path: Path) -> Path:
    path = tmp_path / "tokens"
    write_tokens(path, ann=("write", ANN), bob=("write", BOB))
    return path


LOAD = """
import sys, chachaml as c
c.use_store(sys.argv[1])
run = c.start_run("load")
for i in range(int(sys.argv[2])):
    c.log_metric("x", float(i))
c.end_run()                     # returns once the server has every point
print(run.id)
"""
#: Points per client in the unit test; ``benchmarks/bench_team.py --only two_servers`` runs the
#: full 16 x 10,000 through the same two servers and checks the same counts.
POINTS = 2_500


def test_two_servers_on_one_postgresql_take_sixteen_clients(tmp_path: Path, tokens: Path) -> None:
    with fresh_database() as url:
        logs = [tmp_path / "a.log", tmp_path / "b.log"]
        servers = [
            ServerProcess(url, ["--tokens", str(tokens), "--access-log", str(log)]).start() for log in logs
        ]
        try:
            procs = [
                _python(LOAD, _env(tmp_path, ANN if i % 2 else BOB), servers[i % 2].url, str(POINTS))
                for i in range(16)
            ]
            ids = [_finish(p).strip() for p in procs]
        finally:
            for srv in servers:
                srv.stop()
        assert len(set(ids)) == 16
        for run_id in ids:
            assert _points(url, run_id) == [(i, float(i)) for i in range(POINTS)]  # 0 lost, 0 twice
        with Client(url) as c:
            runs = [c.get_run(run_id) for run_id in ids]
            assert sorted(r.created_by or "" for r in runs) == ["ann"] * 8 + ["bob"] * 8
            assert all(r.status == "completed" for r in runs)
        statuses = [_statuses(log) for log in logs]
        assert all(s for s in statuses)  # both servers took requests
        assert all(code < 500 for s in statuses for code in s)


RUN_THROUGH = """
import sys, chachaml as c
c.use_store(sys.argv[1])
run = c.start_run("r")
print(run.id, flush=True)
n = int(sys.argv[2])
for i in range(n):
    c.log_metric("x", float(i))
    if i == n // 4:
        print("quarter", flush=True)  # the test restarts PostgreSQL now, while this goes on
c.end_run()                     # waits until the server has every point
print("done", flush=True)
"""


@pytest.mark.parametrize("how", ["restart", "kill"])
def test_postgresql_restarted_mid_run_the_server_recovers_without_a_restart(
    tmp_path: Path, tokens: Path, how: str
) -> None:
    with private_cluster() as cluster:
        log = tmp_path / "access.log"
        srv = ServerProcess(cluster.url, ["--tokens", str(tokens), "--access-log", str(log)]).start()
        n = 20_000
        clients = [_python(RUN_THROUGH, _env(tmp_path, tok), srv.url, str(n)) for tok in (ANN, BOB)]
        try:
            ids = []
            for client in clients:
                assert client.stdout is not None
                ids.append(client.stdout.readline().strip())
                assert client.stdout.readline().strip() == "quarter"
            server_pid = srv.proc.pid if srv.proc else None
            if how == "restart":
                cluster.restart()
            else:
                cluster.kill_hard()
                probe = {"args": {"run_id": ids[0]}}  # while it is down: a 503, never a 500
                status, _ = request(f"{srv.url}/api/v1/store/get_run", "POST", probe, token=ANN)
                assert status == 503
                cluster.start()
            for client in clients:
                assert _finish(client).strip().endswith("done")
            assert srv.proc is not None and srv.proc.poll() is None and srv.proc.pid == server_pid
        finally:
            for client in clients:
                if client.poll() is None:
                    client.kill()
                    client.communicate()
            srv.stop()
        for run_id in ids:
            assert _points(cluster.url, run_id) == [(i, float(i)) for i in range(n)]
        with Client(cluster.url) as c:
            assert [c.get_run(i).status for i in ids] == ["completed", "completed"]
        statuses = _statuses(log)
        assert all(code < 500 or code == 503 for code in statuses), sorted(set(statuses))


def test_a_server_whose_database_is_down_answers_503_and_recovers(tmp_path: Path, tokens: Path) -> None:
    """Down: every store call is a 503 naming the database (the client retries it), the health
    endpoint still answers; back up: the same server process serves again."""
    with private_cluster() as cluster:
        srv = ServerProcess(cluster.url, ["--tokens", str(tokens)]).start()
        try:
            from chachaml.store.remote import RemoteStore

            remote = RemoteStore(srv.url, token=ANN, adopt=False, spool_root=str(tmp_path / "state"))
            run_id = Client(remote).start_run("r").id
            cluster.kill_hard()
            body = {"args": {"run_id": run_id, "metrics": [["x", 1.0, 0, 1]], "batch_id": "b1"}}
            status, err = request(f"{srv.url}/api/v1/store/log_batch", "POST", body, token=ANN)
            assert status == 503, err
            assert err["error"]["type"] == "StoreUnavailableError"
            assert "PostgreSQL" in err["error"]["message"] and "again" in err["error"]["message"]
            assert request(f"{srv.url}/api/v1/health")[0] == 200
            cluster.start()
            status, out = request(f"{srv.url}/api/v1/store/log_batch", "POST", body, token=ANN)
            assert (status, out) == (200, {"result": True})
            status, out = request(f"{srv.url}/api/v1/store/log_batch", "POST", body, token=ANN)
            assert (status, out) == (200, {"result": False})  # a resend is applied once
            remote.close()
        finally:
            srv.stop()
        assert _points(cluster.url, run_id) == [(0, 1.0)]
