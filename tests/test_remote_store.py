"""The remote store with real client and server processes (SPEC 10): the spool survives a
client killed with -9 (the next process or ``chachaml sync`` sends it), a server killed and
restarted mid-run loses and duplicates nothing, a refused token is an error (never a silent
drop), a feature smoke through the module verbs, and 16 clients x 10,000 points."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests._teamserver import START_TIMEOUT_S, ServerProcess, write_tokens

from chachaml.client import Client

pytestmark = pytest.mark.slow

TOKEN = "writer-token-0123456789abcdef"


def _env(tmp_path: Path, token: str | None = TOKEN) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHACHAML_")}
    env["XDG_STATE_HOME"] = str(tmp_path / "state")
    if token:
        env["CHACHAML_TOKEN"] = token
    return env


def _python(code: str, env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip


def _finish(proc: subprocess.Popen[str]) -> str:
    out, err = proc.communicate(timeout=START_TIMEOUT_S * 3)
    assert proc.returncode == 0, err
    return out


def _points(db: str, run_id: str, key: str = "x") -> list[tuple[int, float]]:
    with Client(db) as c:
        return [(m.step, m.value) for m in c.metric_history(run_id, key)]


@pytest.fixture
def tokens(tmp_path: Path) -> Path:
    path = tmp_path / "tokens"
    write_tokens(path, ann=("write", TOKEN), rob=("read", "reader-token-0123456789abcdef"))
    return path


@pytest.fixture
def server(tmp_path: Path, tokens: Path) -> Iterator[ServerProcess]:
    srv = ServerProcess(str(tmp_path / "team.db"), ["--tokens", str(tokens)]).start()
    yield srv
    srv.stop()


SMOKE = """
import sys, math, chachaml as c
c.use_store(sys.argv[1])
with c.with_run("smoke", experiment="team", tags={"k": "v"}) as run:
    c.log_params({"lr": 0.1, "layers": [1, 2]})
    for i in range(50):
        c.log_metric("loss", 1 / (i + 1))
    c.log_metrics({"acc": 0.9, "nan": math.nan, "inf": math.inf}, step=3)
    c.set_note("# hello")
    c.log_artifact("cfg.json", {"a": 1})
    assert c.load_artifact(run.id, "cfg.json") == {"a": 1}
    assert len(c.metric_history(run.id, "loss")) == 50   # its own reads see its own writes
    assert c.get_run(run.id).metrics["loss"] == 1 / 50
mv = c.register_model("m", artifact="cfg.json", run_id=run.id)
c.promote("m", mv.version, "production")
assert c.load_model("m") == {"a": 1}
best = c.best_run("acc", experiment="team")
assert best.id == run.id
print(run.id)
"""


def test_feature_smoke_through_the_module_verbs(server: ServerProcess, tmp_path: Path) -> None:
    run_id = _finish(_python(SMOKE, _env(tmp_path), server.url)).strip()
    with Client(server.store) as c:
        run = c.get_run(run_id)
        assert run.status == "completed" and run.created_by == "ann"
        assert run.params == {"lr": 0.1, "layers": [1, 2]} and run.tags["k"] == "v"
        assert run.note == "# hello" and run.metrics["acc"] == 0.9 and math_is_nan(run.metrics["nan"])
        assert [s for s, _ in _points(server.store, run_id, "loss")] == list(range(50))
        assert c.get_model_version("m", stage="production").run_id == run_id
        assert c.model_history("m")[-1].who == "ann"  # who from the token, too
    assert not list((tmp_path / "state").rglob("*.spool"))  # everything sent: spool files gone


def math_is_nan(x: float) -> bool:
    return x != x


AUTOMATION = """
import sys, chachaml as c
c.use_store(sys.argv[1])
alert = c.add_alert("high-loss", "loss", ">", 2, experiment="team")
assert c.add_alert("high-loss", "loss", ">", 2, experiment="team").version == 1  # same: no change
assert [a.name for a in c.alerts()] == ["high-loss"]
with c.with_run("hot", experiment="team") as hot:
    c.log_metric("loss", 5.0, step=0)
with c.with_run("cool", experiment="team"):
    c.log_metric("loss", 1.0, step=0)
# Through a tracking server the server checks alerts as the points arrive (SPEC 11): the hot
# run fired when its batch landed, so the client's check fires nothing more (once per run).
assert c.check_alerts(wait=0) == []
assert [(e.alert, e.run_id, e.value) for e in c.alert_history("high-loss")] == [("high-loss", hot.id, 5.0)]

def boom(prev):
    raise ValueError("boom")

try:
    c.run_pipeline("train", [("prep", lambda _: 3), ("fit", boom)], experiment="team")
except ValueError:
    pass
(failed,) = c.pipelines(name="train")
assert failed.status == "failed" and [s.status for s in failed.steps] == ["completed", "failed"]
assert c.resume_pipeline(failed.id[:8], steps=[("prep", lambda _: 3), ("fit", lambda x: x * 2)]) == 6
done = c.get_pipeline(failed.id)
assert done.status == "completed" and [s.status for s in done.steps] == ["completed", "completed"]
c.remove_alert("high-loss")
assert c.alerts() == []
print(hot.id, done.id)
"""


def test_alerts_and_pipelines_through_use_store(server: ServerProcess, tmp_path: Path) -> None:
    hot_id, pipeline_id = _finish(_python(AUTOMATION, _env(tmp_path), server.url)).split()
    with Client(server.store) as c:  # what the server's own store holds
        assert c.alerts() == []
        pipeline = c.get_pipeline(pipeline_id)
        assert pipeline.status == "completed" and [s.name for s in pipeline.steps] == ["prep", "fit"]
        assert c.get_run(pipeline_id).status == "completed"
        assert c.get_run(hot_id).created_by == "ann"
        steps = c.runs(parent_id=pipeline_id)
        assert sorted(r.status for r in steps) == ["completed", "completed", "failed"]


LOG_AND_WAIT = """
import sys, chachaml as c
from chachaml.store.remote import RemoteStore
c.use_store(sys.argv[1])
run = c.start_run("r")
print(run.id, flush=True)
sys.stdin.readline()            # the test stops the server here
for i in range(int(sys.argv[2])):
    c.log_metric("x", float(i))  # returns once the point is in the spool
print("logged", flush=True)
sys.stdin.readline()            # killed with -9 here
"""


@pytest.mark.parametrize("sender", ["next-process", "chachaml-sync"])
def test_points_of_a_client_killed_after_logging_are_sent_by_the_next_process(
    tmp_path: Path, tokens: Path, sender: str
) -> None:
    db = str(tmp_path / "team.db")
    srv = ServerProcess(db, ["--tokens", str(tokens)]).start()
    env = _env(tmp_path)
    client = _python(LOG_AND_WAIT, env, srv.url, "1000")
    assert client.stdout is not None and client.stdin is not None
    run_id = client.stdout.readline().strip()
    assert srv.stop()[0] == 0  # the server goes away: the points can only go to the spool
    client.stdin.write("\n")
    client.stdin.flush()
    assert client.stdout.readline().strip() == "logged"
    client.kill()  # SIGKILL: no exit handler runs
    client.communicate(timeout=START_TIMEOUT_S)
    # its points wait in the spool or in the journal in front of it (store/_remote_buffer.py)
    left = [*(tmp_path / "state").rglob("*.spool"), *(tmp_path / "state").rglob("*.journal")]
    assert 1 <= len(left) <= 2
    srv = ServerProcess(db, ["--tokens", str(tokens)], port=srv.port).start()
    try:
        if sender == "next-process":
            code = "import sys, chachaml as c; c.use_store(sys.argv[1]); c.flush()"
            _finish(_python(code, env, srv.url))
        else:
            proc = subprocess.run(
                [sys.executable, "-m", "chachaml", "sync", "--store", srv.url],
                capture_output=True, text=True, env=env, timeout=START_TIMEOUT_S,
            )  # fmt: skip
            assert proc.returncode == 0, proc.stderr
            assert "sent 1000 point(s)" in proc.stdout
    finally:
        srv.stop()
    assert _points(db, run_id) == [(i, float(i)) for i in range(1000)]
    assert not list((tmp_path / "state").rglob("*.spool"))
    assert not list((tmp_path / "state").rglob("*.journal"))


KILLED_BEFORE_THE_SENDER = """
import os, signal, sys, chachaml as c
store = c.use_store(sys.argv[1])
run = c.start_run("r")
print(run.id, flush=True)
sys.stdin.readline()            # the test stops the server here
store._kick = lambda: None      # the sender never wakes: points stay where log_metric put them
half = int(sys.argv[2])
for i in range(half):
    c.log_metric("x", float(i))
store._buffer.move()            # the first half moves into the spool, as the sender would
for i in range(half, 2 * half):
    c.log_metric("x", float(i))  # the second half is only in the memory-mapped journal
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_points_in_the_journal_before_the_spool_are_sent_once_after_a_kill(
    tmp_path: Path, tokens: Path
) -> None:
    """store/_remote_buffer.py: a log call returns once its point is in the mapped journal; the
    sender moves points into the spool later. Killed with half the points moved, the process
    leaves both files, and `chachaml sync` sends every point exactly once, in order."""
    db = str(tmp_path / "team.db")
    srv = ServerProcess(db, ["--tokens", str(tokens)]).start()
    env = _env(tmp_path)
    client = _python(KILLED_BEFORE_THE_SENDER, env, srv.url, "3000")
    assert client.stdout is not None and client.stdin is not None
    run_id = client.stdout.readline().strip()
    assert srv.stop()[0] == 0
    client.stdin.write("\n")
    client.stdin.flush()
    client.communicate(timeout=START_TIMEOUT_S)
    assert client.returncode == -signal.SIGKILL
    state = tmp_path / "state"
    assert len(list(state.rglob("*.spool"))) == 1 and len(list(state.rglob("*.journal"))) == 1
    srv = ServerProcess(db, ["--tokens", str(tokens)], port=srv.port).start()
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "chachaml", "sync", "--store", srv.url],
            capture_output=True, text=True, env=env, timeout=START_TIMEOUT_S,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        assert "sent 6000 point(s)" in proc.stdout
    finally:
        srv.stop()
    assert _points(db, run_id) == [(i, float(i)) for i in range(6000)]
    assert not list(state.rglob("*.spool")) and not list(state.rglob("*.journal"))


RUN_THROUGH = """
import sys, chachaml as c
c.use_store(sys.argv[1])
run = c.start_run("r")
print(run.id, flush=True)
n = int(sys.argv[2])
for i in range(n):
    c.log_metric("x", float(i))
    if i == n // 4:
        print("quarter", flush=True)
c.end_run()                     # waits until the server has every point
print("done", flush=True)
"""


def test_server_killed_and_restarted_mid_run_loses_and_duplicates_nothing(
    tmp_path: Path, tokens: Path
) -> None:
    db = str(tmp_path / "team.db")
    srv = ServerProcess(db, ["--tokens", str(tokens)]).start()
    env = _env(tmp_path)
    n = 20_000
    client = _python(RUN_THROUGH, env, srv.url, str(n))
    assert client.stdout is not None
    run_id = client.stdout.readline().strip()
    assert client.stdout.readline().strip() == "quarter"
    srv.stop(signal.SIGKILL)  # mid-run, no goodbye: batches may be applied without a reply
    srv = ServerProcess(db, ["--tokens", str(tokens)], port=srv.port).start()
    try:
        assert _finish(client).strip().endswith("done")
    finally:
        srv.stop()
    assert _points(db, run_id) == [(i, float(i)) for i in range(n)]  # 0 lost, 0 duplicated, in order
    with Client(db) as c:
        assert c.get_run(run_id).status == "completed"


def test_a_batch_whose_reply_was_lost_is_applied_once_across_a_server_restart(
    tmp_path: Path, tokens: Path
) -> None:
    """The server applies a batch, the reply is lost, the server is killed and restarted, the
    client resends the batch: it is written once (its id is recorded in the store)."""
    from tests._teamserver import ReplyDropper

    db = str(tmp_path / "team.db")
    srv = ServerProcess(db, ["--tokens", str(tokens)]).start()
    proxy = ReplyDropper(srv.port)
    n = 5000
    env = _env(tmp_path)
    env["CHACHAML_SEND_TIMEOUT"] = "2"  # a reply that never comes is given up on sooner
    client = _python(RUN_THROUGH, env, proxy.url, str(n))
    try:
        assert client.stdout is not None
        run_id = client.stdout.readline().strip()
        assert proxy.dropped.wait(START_TIMEOUT_S)
        srv.stop(signal.SIGKILL)
        srv = ServerProcess(db, ["--tokens", str(tokens)], port=srv.port).start()
        proxy.resume()
        assert _finish(client).strip().endswith("done")
    finally:
        proxy.close()
        srv.stop()
    assert _points(db, run_id) == [(i, float(i)) for i in range(n)]


def test_a_refused_token_is_an_error_never_a_silent_drop(tmp_path: Path, tokens: Path) -> None:
    from chachaml.errors import AccessError
    from chachaml.store.remote import RemoteStore

    db = str(tmp_path / "team.db")
    srv = ServerProcess(db, ["--tokens", str(tokens)]).start()
    state = str(tmp_path / "state")
    try:
        bad = Client(RemoteStore(srv.url, token="wrong-token-0123456789", spool_root=state))
        with pytest.raises(AccessError, match=r"401.*CHACHAML_TOKEN"):
            bad.start_run("x")
        reader = Client(RemoteStore(srv.url, token="reader-token-0123456789abcdef", spool_root=state))
        with pytest.raises(AccessError, match="403"):
            reader.start_run("x")
        good = RemoteStore(srv.url, token=TOKEN, spool_root=state)
        run = Client(good).start_run("r")
        srv.stop()
        (tmp_path / "tokens2").write_text("rob read reader-token-0123456789abcdef\n")  # ann revoked
        srv = ServerProcess(db, ["--tokens", str(tmp_path / "tokens2")], port=srv.port).start()
        Client(good).log_metric("x", 1.0, run=run)  # spooled: returns
        with pytest.raises(AccessError, match="401"):
            good.flush()
        with pytest.raises(AccessError):
            Client(good).log_metric("x", 2.0, run=run)  # the next log call raises too
        assert len(list((tmp_path / "state").rglob("*.spool"))) == 1  # the point is kept
    finally:
        srv.stop()
    assert _points(db, run.id) == []


LOAD = """
import sys, chachaml as c
c.use_store(sys.argv[1])
run = c.start_run("load")
for i in range(int(sys.argv[2])):
    c.log_metric("x", float(i))
c.end_run()
print(run.id)
"""


def test_sixteen_clients_ten_thousand_points_each(tmp_path: Path, tokens: Path) -> None:
    db = str(tmp_path / "team.db")
    log = tmp_path / "access.log"
    srv = ServerProcess(db, ["--tokens", str(tokens), "--access-log", str(log)]).start()
    env = _env(tmp_path)
    n = 10_000
    try:
        procs = [_python(LOAD, env, srv.url, str(n)) for _ in range(16)]
        ids = [_finish(p).strip() for p in procs]
    finally:
        srv.stop()
    assert len(set(ids)) == 16
    for run_id in ids:
        assert _points(db, run_id) == [(i, float(i)) for i in range(n)]
    import json

    statuses = [json.loads(line)["status"] for line in log.read_text().splitlines()]
    assert statuses and all(s < 500 for s in statuses)


FORK = """
import os, sys, chachaml as c
c.use_store(sys.argv[1])
run = c.start_run("parent")
c.log_metric("x", 1.0)
pid = os.fork()
if pid == 0:                      # the child logs to its own run through its own spool
    child = c.start_run("child")
    c.log_metric("x", 2.0)
    c.end_run()
    os._exit(0)
c.log_metric("x", 3.0)
assert os.waitpid(pid, 0)[1] == 0
c.end_run()
print(run.id)
"""


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork is POSIX only")
def test_a_forked_child_gets_its_own_spool(server: ServerProcess, tmp_path: Path) -> None:
    run_id = _finish(_python(FORK, _env(tmp_path), server.url)).strip()
    assert _points(server.store, run_id) == [(0, 1.0), (1, 3.0)]
    with Client(server.store) as c:
        (child,) = c.runs(name="child")
        assert child.status == "completed"
        assert [(m.step, m.value) for m in c.metric_history(child.id, "x")] == [(0, 2.0)]


EXIT_WHILE_DOWN = """
import sys, chachaml as c
c.use_store(sys.argv[1])
run = c.start_run("r")
print(run.id, flush=True)
sys.stdin.readline()            # the test stops the server here
for i in range(100):
    c.log_metric("x", float(i))
"""  # then the process exits with its run open and the points unsent


def test_exit_with_the_server_down_says_so_and_keeps_the_spool(tmp_path: Path, tokens: Path) -> None:
    db = str(tmp_path / "team.db")
    srv = ServerProcess(db, ["--tokens", str(tokens)]).start()
    env = _env(tmp_path)
    env["CHACHAML_FLUSH_TIMEOUT"] = "3"
    env["CHACHAML_SERVER_WAIT"] = "1"
    client = _python(EXIT_WHILE_DOWN, env, srv.url)
    assert client.stdout is not None
    run_id = client.stdout.readline().strip()
    srv.stop()
    _, err = client.communicate("\n", timeout=START_TIMEOUT_S * 2)
    assert client.returncode == 0, err
    assert "waiting for" in err and "chachaml sync" in err
    assert len(list((tmp_path / "state").rglob("*.spool"))) == 1
    assert not list((tmp_path / "state").rglob("*.journal"))  # moved into the spool at exit
    srv = ServerProcess(db, ["--tokens", str(tokens)], port=srv.port).start()
    try:
        sync = [sys.executable, "-m", "chachaml", "sync", "--store", srv.url]
        proc = subprocess.run(
            sync, capture_output=True, text=True, env=_env(tmp_path), timeout=START_TIMEOUT_S
        )
        assert proc.returncode == 0, proc.stderr
    finally:
        srv.stop()
    assert _points(db, run_id) == [(i, float(i)) for i in range(100)]


def test_a_run_too_large_for_one_json_request_is_streamed_whole(
    server: ServerProcess, tmp_path: Path
) -> None:
    """600,000 points are over the 16 MiB JSON limit: restore_run streams them in one PUT."""
    import math

    from chachaml.entities import Metric, Run
    from chachaml.store.remote import RemoteStore

    run = Run(id="c" * 32, experiment="big", status="completed", start_time=1, end_time=2)
    n = 600_000
    values = [math.nan if i == 7 else -math.inf if i == 8 else i * 0.5 for i in range(n)]
    points = (Metric("loss", values[i], i, 1_700_000_000_000 + i) for i in range(n))
    store = RemoteStore(server.url, token=TOKEN, adopt=False, spool_root=str(tmp_path / "state"))
    try:
        assert store.restore_run(run, points) is True
        assert store.restore_run(run, [Metric("loss", 1.0, 0, 1)]) is False  # there: nothing written
        got = store.metric_history(run.id, "loss")
    finally:
        store.close()
    assert len(got) == n
    assert [(m.step, m.timestamp) for m in got] == [(i, 1_700_000_000_000 + i) for i in range(n)]
    assert math.isnan(got[7].value) and got[8].value == -math.inf
    assert all(got[i].value == values[i] for i in range(n) if i != 7)


def test_a_point_the_server_refuses_is_raised_by_the_next_log_call(
    server: ServerProcess, tmp_path: Path
) -> None:
    """A spooled point is refused for good when another process ended its run meanwhile: the
    sender records it, and the next ``log_metric`` (whose hot path only copies into the mapped
    journal) raises it instead of dropping it silently."""
    import time

    from chachaml.errors import RunStateError
    from chachaml.store.remote import RemoteStore

    store = RemoteStore(server.url, token=TOKEN, spool_root=str(tmp_path / "a"))
    other = RemoteStore(server.url, token=TOKEN, spool_root=str(tmp_path / "b"))
    try:
        run = Client(store).start_run("r")
        Client(store).log_metric("x", 0.0, run=run)
        store.flush()  # the first point is in
        assert other.end_run(run.id, "completed", int(time.time() * 1000))  # ended elsewhere
        Client(store).log_metric("x", 1.0, run=run)  # still believed running: spooled, returns
        deadline = time.monotonic() + 30
        while store._pending() and time.monotonic() < deadline:  # the sender gets the refusal
            time.sleep(0.02)
        assert store._pending() == 0
        with pytest.raises(RunStateError, match="refused by the server"):
            Client(store).log_metric("x", 2.0, run=run)
    finally:
        other.close()  # (``store`` is left open, as in the tests above: its sender thread's
        # connection is the thread's own, and closing the store from here would not close it)
    assert _points(str(tmp_path / "team.db"), run.id) == [(0, 0.0)]
