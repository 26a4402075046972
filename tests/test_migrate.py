"""``chachaml migrate SOURCE DEST`` (issue 10, part 5), run as a real subprocess.

Each test compares the source and the destination exhaustively through the public ``Client``:
experiments, every run's fields (ids, times, status, error, params, tags, note, env, datasets,
archived, parent), every metric point (step, value, timestamp, order), metric summaries, every
artifact (metadata and the sha256 of the bytes read back), every model (versions, stages,
aliases, descriptions) and its history.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import pty
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import _s3
import chachaml
from chachaml.client import Client


def dump(target: Any, artifacts: str | None = None, *, skip_running: bool = True) -> str:
    """Everything a store holds, as canonical JSON text (NaN compares as text)."""
    with Client(target, **({"artifacts": artifacts} if artifacts else {})) as c:
        runs = sorted(c.runs(include_archived=True), key=lambda r: r.id)
        out: dict[str, Any] = {
            "experiments": [
                {**e.to_dict(), "run_count": None} if skip_running else e.to_dict() for e in c.experiments()
            ],
            "runs": {},
            "models": {},
        }
        for run in runs:
            if skip_running and run.status == "running":
                continue
            arts = []
            for art in c.list_artifacts(run):
                with c.open_artifact(run, art.name) as fh:
                    data = hashlib.sha256(fh.read()).hexdigest()
                arts.append({**art.to_dict(), "read_sha256": data})
            out["runs"][run.id] = {
                "run": run.to_dict(),
                "history": {k: [m.to_dict() for m in c.metric_history(run, k)] for k in run.metrics},
                "summaries": c.metric_summaries(run),
                "artifacts": arts,
            }
        for model in c.models():
            out["models"][model.name] = {
                "model": c.model(model.name).to_dict(),
                "history": [e.to_dict() for e in c.model_history(model.name)],
            }
    return json.dumps(out, sort_keys=True, default=str)


def make_source(path: Path, *, big: bytes = b"") -> dict[str, str]:
    """A store with one of everything migrate must copy; returns some ids."""
    ids: dict[str, str] = {}
    with Client(path) as c:
        c.create_experiment("vision", description="image models", owner="alice")
        parent = c.start_run("parent", experiment="vision", tags={"team": "cv"})
        c.log_params(
            {"lr": 0.01, "layers": [64, 32], "opt": {"name": "adam", "b": 0.9}, "n": 2**70}, run=parent
        )
        for step in range(50):
            c.log_metric("loss", 1 / (step + 1), step, run=parent)
        c.log_metric("odd", float("nan"), 0, run=parent)
        c.log_metric("odd", float("inf"), 1, run=parent)
        c.log_metric("odd", -2.0, 1, run=parent)  # a tie on step 1: order matters
        c.set_note("# why\nbecause", run=parent)
        c.log_dataset("train.csv", run=parent, n_rows=10, n_cols=3, features=["a", "b", "c"], digest="abc")
        c.log_artifact("model.pkl", {"weights": [1, 2, 3]}, run=parent)
        c.log_artifact("plots/loss.txt", "a plot", run=parent)
        if big:
            c.store.log_artifact(
                parent.id, "big.bin", big, format="bytes", content_type="application/octet-stream", created=1
            )
        child = c.start_run("child", experiment="vision", parent_id=parent)
        c.log_metric("acc", 0.5, run=child)
        c.end_run(child)
        c.end_run(parent)
        old = c.start_run("old", experiment="archive-me")
        c.end_run(old, status="failed")
        c.archive_runs(older_than_days=0, experiment="archive-me")
        c.register_model("churn", artifact="model.pkl", run_id=parent)
        c.register_model("churn", artifact="model.pkl", run_id=parent, stage="staging", description="v2")
        c.promote("churn", 1, "production")
        c.promote("churn", 2, "production")
        c.set_alias("churn", "champion", 2)
        c.set_alias("churn", "old", 1)
        c.delete_alias("churn", "old")
        c.set_model_description("churn", "churn model")
        ids.update(parent=parent.id, child=child.id, old=old.id)
    with chachaml.with_store(path):  # a run that failed with an error, through the verbs
        try:
            with chachaml.with_run("boom") as boom:
                chachaml.log_metric("x", 1.0)
                raise ValueError("boom")
        except ValueError:
            pass
        ids["boom"] = boom.id
    return ids


def migrate(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "chachaml", "migrate", *args],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, **(env or {})},
    )


@pytest.mark.slow
def test_sqlite_to_sqlite_copies_everything_and_a_rerun_copies_nothing(tmp_path: Path) -> None:
    src, dst = tmp_path / "laptop.db", tmp_path / "team.db"
    ids = make_source(src)
    with Client(src) as c:  # a run still running in the source is left for a later migrate
        live = c.start_run("live")
        c.log_metric("m", 1.0, run=live)
        before = dump(src)
        proc = migrate(str(src), str(dst))
        assert proc.returncode == 0, proc.stderr
        assert "runs: 4 copied" in proc.stdout and "1 run(s) still running" in proc.stdout, proc.stdout
        assert dump(dst) == before
        assert json.loads(dump(dst))["runs"][ids["boom"]]["run"]["error"]["type"] == "ValueError"
        again = migrate(str(src), str(dst))
        assert again.returncode == 0, again.stderr
        assert "runs: 0 copied (0 metric points), 4 already there" in again.stdout
        assert "artifacts: 0 copied (0 bytes), 2 already there" in again.stdout
        assert "models: 0 copied, 1 already there" in again.stdout
        assert dump(dst) == before
        c.end_run(live)  # once it has ended, the next migrate copies it (and only it)
    third = migrate(str(src), str(dst), "--quiet")
    assert third.returncode == 0 and third.stderr == ""
    assert "runs: 1 copied (1 metric points), 4 already there" in third.stdout
    assert dump(dst, skip_running=False) == dump(src, skip_running=False)
    # A record changed in the source after it was copied is reported, never rewritten.
    with Client(src) as c:
        c.set_tag("late", "yes", run=ids["parent"])
        c.promote("churn", 1, "staging")
    changed = migrate(str(src), str(dst))
    assert changed.returncode == 1
    assert f"problem: run {ids['parent'][:8]} differs" in changed.stdout
    assert "problem: model 'churn' differs" in changed.stdout
    with Client(dst) as c:
        assert "late" not in c.get_run(ids["parent"]).tags


@pytest.mark.slow
def test_sqlite_to_sqlite_with_artifacts_in_s3(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    _s3.use_moto(monkeypatch)
    location = _s3.new_location()
    src, dst = tmp_path / "laptop.db", tmp_path / "team.db"
    make_source(src, big=os.urandom(1 << 20) * 9)  # 9 MiB: a multipart upload
    proc = migrate(str(src), str(dst), "--artifacts", location, env=_s3.environ())
    assert proc.returncode == 0, proc.stderr
    assert "artifacts: 3 copied" in proc.stdout
    assert dump(dst, location) == dump(src)
    bucket, _, prefix = location[len("s3://") :].partition("/")
    keys = [o["Key"] for o in _s3.client().list_objects_v2(Bucket=bucket, Prefix=prefix)["Contents"]]
    assert sum(k.endswith(("model.pkl", "plots/loss.txt", "big.bin")) for k in keys) == 3
    assert not (tmp_path / "team-artifacts").exists()  # the bytes went to S3, not next to the file
    again = migrate(str(src), str(dst), "--artifacts", location, env=_s3.environ())
    assert "artifacts: 0 copied (0 bytes), 3 already there" in again.stdout
    # And out again: a source whose artifacts are in S3, into a plain SQLite file.
    back = tmp_path / "back.db"
    out = migrate(str(dst), str(back), "--source-artifacts", location, env=_s3.environ())
    assert out.returncode == 0, out.stderr
    assert dump(back) == dump(src)
    assert (tmp_path / "back-artifacts").is_dir()


@pytest.mark.slow
@pytest.mark.skipif(not hasattr(fcntl, "F_SETPIPE_SZ"), reason="needs Linux pipes (F_SETPIPE_SZ)")
def test_killed_mid_copy_then_rerun_gives_the_same_destination_as_one_go(tmp_path: Path) -> None:
    src, killed, one_go = tmp_path / "src.db", tmp_path / "killed.db", tmp_path / "one_go.db"
    total = 300
    with Client(src) as c:
        for i in range(total):
            run = c.start_run(f"r{i}", experiment=f"e{i % 3}")
            c.log_metrics({"loss": 1 / (i + 1), "acc": i / total}, run=run)
            c.log_artifact("out.txt", f"run {i}", run=run)
            c.end_run(run)
    # The child writes one progress line per run into a pipe of 4096 bytes that this test stops
    # reading: it blocks there long before its last run, so the kill lands mid-copy for sure.
    read_end, write_end = os.pipe()
    fcntl.fcntl(write_end, fcntl.F_SETPIPE_SZ, 4096)
    child = subprocess.Popen(
        [sys.executable, "-m", "chachaml", "migrate", str(src), str(killed)],
        stdout=subprocess.DEVNULL,
        stderr=write_end,
    )
    os.close(write_end)
    with os.fdopen(read_end, "rb", buffering=0) as progress:
        lines = 0
        while lines < 20:
            byte = progress.read(1)
            assert byte, "migrate ended before the test could interrupt it"
            lines += byte == b"\n"
        child.send_signal(signal.SIGKILL)
        assert child.wait(timeout=60) == -signal.SIGKILL
    with Client(killed) as c:
        copied = len(c.runs(include_archived=True))
        # Interrupted: some runs are there, not all, and the run being copied last may lack
        # its artifact (its row is written before its artifacts are copied).
        assert 20 <= copied < total
    rerun = migrate(str(src), str(killed))
    assert rerun.returncode == 0, rerun.stderr
    assert f"runs: {total - copied} copied" in rerun.stdout, rerun.stdout
    proc = migrate(str(src), str(one_go))
    assert proc.returncode == 0, proc.stderr
    assert dump(killed) == dump(one_go) == dump(src)


def test_progress_is_a_bar_on_a_terminal_lines_otherwise_and_nothing_when_quiet(tmp_path: Path) -> None:
    src = tmp_path / "src.db"
    with Client(src) as c:
        for i in range(3):
            c.end_run(c.start_run(f"r{i}"))
    plain = migrate(str(src), str(tmp_path / "a.db"))
    assert [line for line in plain.stderr.splitlines() if line.startswith("migrate: run ")][-1].startswith(
        "migrate: run 3/3 "
    )
    main, replica = pty.openpty()  # stderr on a terminal
    child = subprocess.Popen(
        [sys.executable, "-m", "chachaml", "migrate", str(src), str(tmp_path / "b.db")],
        stdout=subprocess.PIPE,
        stderr=replica,
    )
    os.close(replica)
    out, _ = child.communicate(timeout=120)
    seen = b""
    while True:
        try:
            piece = os.read(main, 4096)
        except OSError:  # EIO: the terminal's other side is closed
            break
        if not piece:
            break
        seen += piece
    os.close(main)
    assert child.returncode == 0
    assert b"\r[" in seen and b"3/3 runs" in seen and b"migrate: run 1/3" not in seen
    assert b"runs: 3 copied" in out
    quiet = migrate(str(src), str(tmp_path / "c.db"), "-q")
    assert quiet.returncode == 0 and quiet.stderr == "" and "runs: 3 copied" in quiet.stdout


def test_errors_name_the_cause(tmp_path: Path) -> None:
    missing = migrate(str(tmp_path / "nope.db"), str(tmp_path / "d.db"))
    assert (
        missing.returncode == 1
        and "no chachaml store" in missing.stderr
        and "Traceback" not in missing.stderr
    )
    assert not (tmp_path / "d.db").exists()
    src = tmp_path / "s.db"
    with Client(src) as c:
        run = c.start_run()
        c.log_artifact("a.txt", "source bytes", run=run)
        c.end_run(run)
    same = migrate(str(src), f"sqlite:///{src}")
    assert same.returncode == 1 and "same store" in same.stderr
    usage = migrate(str(src))
    assert usage.returncode == 2
    # The destination already holds other bytes under the same name: reported, exit 1.
    dst = tmp_path / "d2.db"
    with Client(dst) as c:
        from chachaml import _process
        from chachaml.store.base import NewRun

        c.store.create_run(NewRun(run.id, "default", run.start_time, _process.owner()))  # same id
        c.log_artifact("a.txt", "other bytes", run=run.id)
        c.end_run(run.id)
    clash = migrate(str(src), str(dst))
    assert clash.returncode == 1
    assert "problem: artifact 'a.txt' of run" in clash.stdout and "other bytes" in clash.stdout
    with Client(dst) as c:
        assert c.load_artifact(run.id, "a.txt") == "other bytes"  # never overwritten


@pytest.mark.slow
def test_sqlite_to_a_server_and_back_copies_everything(tmp_path: Path) -> None:
    from tests._teamserver import ServerProcess, write_tokens

    src, back = tmp_path / "laptop.db", tmp_path / "back.db"
    token = "migrate-writer-token-0123456789"
    write_tokens(tmp_path / "tokens", ann=("write", token), rob=("read", "migrate-reader-token-0123456789"))
    ids = make_source(src, big=os.urandom(3 << 20))
    before = dump(src)
    env = {"CHACHAML_TOKEN": token, "XDG_STATE_HOME": str(tmp_path / "state")}
    srv = ServerProcess(str(tmp_path / "team.db"), ["--tokens", str(tmp_path / "tokens")]).start()
    try:
        into = migrate(str(src), srv.url, env=env)
        assert into.returncode == 0, into.stderr
        assert "runs: 4 copied" in into.stdout and "artifacts: 3 copied" in into.stdout, into.stdout
        assert "models: 1 copied" in into.stdout, into.stdout
        assert dump(srv.store) == before  # the server's own store: authors and times as given
        assert json.loads(dump(srv.store))["runs"][ids["parent"]]["run"]["created_by"] != "ann"
        again = migrate(str(src), srv.url, env=env)
        assert again.returncode == 0, again.stderr
        assert "runs: 0 copied (0 metric points), 4 already there" in again.stdout
        assert "artifacts: 0 copied (0 bytes), 3 already there" in again.stdout
        assert "models: 0 copied, 1 already there" in again.stdout
        out = migrate(srv.url, str(back), env=env)
        assert out.returncode == 0, out.stderr
        assert "runs: 4 copied" in out.stdout and "models: 1 copied" in out.stdout, out.stdout
        assert dump(back) == before
        # a read token may copy OUT of the server, never INTO it
        reader = {**env, "CHACHAML_TOKEN": "migrate-reader-token-0123456789"}
        assert migrate(srv.url, str(tmp_path / "read.db"), env=reader).returncode == 0
        assert dump(tmp_path / "read.db") == before
        with Client(tmp_path / "more.db") as c:
            c.end_run(c.start_run("more", experiment="vision"))
        refused = migrate(str(tmp_path / "more.db"), srv.url, env=reader)
        assert refused.returncode == 1 and "403" in refused.stderr, refused
        assert dump(srv.store) == before
    finally:
        srv.stop()
    assert not list((tmp_path / "state").rglob("*.spool"))


@pytest.mark.slow
def test_sqlite_to_postgresql_with_artifacts_in_s3_copies_everything_once(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from _postgres import fresh_database

    _s3.use_moto(monkeypatch)
    location = _s3.new_location()
    src = tmp_path / "laptop.db"
    ids = make_source(src)
    with fresh_database() as url:
        proc = migrate(str(src), url, "--artifacts", location, env=_s3.environ())
        assert proc.returncode == 0, proc.stderr
        assert "runs: 4 copied" in proc.stdout and "artifacts: 2 copied" in proc.stdout, proc.stdout
        # runs, summaries (latest, min, max of restored points), artifacts' bytes, models, history
        assert dump(url, location) == dump(src)
        assert json.loads(dump(url, location))["runs"][ids["parent"]]["run"]["metrics"]["loss"] == 1 / 50
        again = migrate(str(src), url, "--artifacts", location, env=_s3.environ())
        assert again.returncode == 0, again.stderr
        assert "runs: 0 copied (0 metric points), 4 already there" in again.stdout
        assert "artifacts: 0 copied (0 bytes), 2 already there" in again.stdout
        assert "models: 0 copied, 1 already there" in again.stdout
        assert dump(url, location) == dump(src)


MILLION = 1_000_000


def _million_point_source(path: Path) -> str:
    """A store holding one finished run of 1,000,000 points (too many for one JSON request)."""
    from chachaml.entities import Metric, Run
    from chachaml.store import open_store

    run = Run(id="d" * 32, experiment="long", status="completed", start_time=1, end_time=2)
    store = open_store(str(path))
    try:
        points = (Metric("loss", 1.0 / (i + 1), i, 1_700_000_000_000 + i) for i in range(MILLION))
        assert store.restore_run(run, points)
    finally:
        store.close()
    return run.id


def _check_million(target: str, run_id: str) -> None:
    with Client(target) as c:
        got = c.metric_history(run_id, "loss")
        run = c.get_run(run_id)
    assert len(got) == MILLION
    assert all(m.step == i and m.value == 1.0 / (i + 1) for i, m in enumerate(got))
    assert got[-1].timestamp == 1_700_000_000_000 + MILLION - 1
    assert run.status == "completed" and run.metrics["loss"] == 1.0 / MILLION


@pytest.mark.slow
@pytest.mark.parametrize("dest", ["server", "postgresql"])
def test_a_run_of_a_million_points_is_copied_into_a_server_and_into_postgresql(
    tmp_path: Path, dest: str
) -> None:
    from tests._teamserver import ServerProcess, write_tokens

    from _postgres import fresh_database

    src = tmp_path / "laptop.db"
    run_id = _million_point_source(src)
    token = "migrate-writer-token-0123456789"
    env = {"CHACHAML_TOKEN": token, "XDG_STATE_HOME": str(tmp_path / "state")}
    with fresh_database() as url:
        srv = None
        if dest == "server":
            write_tokens(tmp_path / "tokens", ann=("write", token))
            srv = ServerProcess(url, ["--tokens", str(tmp_path / "tokens")]).start()
        try:
            into = srv.url if srv else url
            proc = migrate(str(src), into, "--quiet", env=env)
            assert proc.returncode == 0, proc.stderr
            assert f"runs: 1 copied ({MILLION} metric points)" in proc.stdout, proc.stdout
            again = migrate(str(src), into, "--quiet", env=env)
            assert again.returncode == 0, again.stderr
            assert "runs: 0 copied (0 metric points), 1 already there" in again.stdout, again.stdout
        finally:
            if srv:
                srv.stop()
        _check_million(url, run_id)
