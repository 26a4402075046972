"""The PostgreSQL backend against the real server: what the conformance suite cannot show.

Each test gets its own database (``tests/_postgres.py``; fails on CI when the server is down,
skips elsewhere). The conformance suite (``tests/conformance``) runs every store method on
PostgreSQL too; here: the URL and the public API, the schema and its migrations, concurrent
processes (writers, migrators, promotions), typed params, NaN and infinities, dead-run reaping,
the pool and the artifact location.
"""

from __future__ import annotations

import math
import os
import re
import subprocess
import sys
import threading
import time
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import chachaml
from _postgres import ADMIN_URL, fresh_database, require_postgres
from chachaml import _process
from chachaml.errors import InvalidValueError, MissingDependencyError, SchemaVersionError, StoreError
from chachaml.store import open_store
from chachaml.store._pg_schema import LATEST
from chachaml.store.base import NewRun, RunFilter
from chachaml.store.postgres import PostgresStore

WORKER = str(Path(__file__).with_name("_workers_postgres.py"))
REGISTRY_WORKER = str(Path(__file__).with_name("_workers_registry.py"))


@pytest.fixture
def url() -> Iterator[str]:
    with fresh_database() as made:
        yield made


@pytest.fixture
def pg(url: str) -> Iterator[PostgresStore]:
    with chachaml.with_store(url) as store:
        assert isinstance(store, PostgresStore)
        yield store


def sql(url: str, query: str, *args: Any) -> list[Any]:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        cur = conn.execute(query, args)
        return cur.fetchall() if cur.description else []


def _run_workers(args_for: list[list[str]], go: Path) -> list[str]:
    """Start the worker processes, let them wait at the starting line, go, and collect stdout."""
    procs = [
        subprocess.Popen([sys.executable, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for args in args_for
    ]
    go.touch()
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0] * len(procs), [err for _, err in outs]
    return [out for out, _ in outs]


# -- opening and the public API ---------------------------------------------------------------------
def test_use_store_opens_a_postgresql_url_and_the_api_works_unchanged(url: str) -> None:
    store = chachaml.use_store(url)
    assert isinstance(store, PostgresStore)
    assert chachaml.use_store(url) is store  # a re-run notebook cell reuses the pool
    with chachaml.with_run("baseline", experiment="pg", tags={"team": "nlp"}) as run:
        chachaml.log_params({"lr": 0.01, "opt": {"name": "adam"}, "layers": [1, 2]})
        for loss in (0.5, 0.25, 0.125):
            chachaml.log_metric("loss", loss)
        chachaml.log_metric("acc", 0.9, step=10)
    got = chachaml.get_run(run.id[:8])
    assert got.status == "completed" and got.end_time is not None and got.end_time >= got.start_time
    assert got.params == {"lr": 0.01, "opt.name": "adam", "layers": [1, 2]}
    assert got.metrics == {"loss": 0.125, "acc": 0.9}
    assert [(m.step, m.value) for m in chachaml.metric_history(run.id, "loss")] == [
        (0, 0.5),
        (1, 0.25),
        (2, 0.125),
    ]
    assert chachaml.best_run("loss", mode="min").best_step == 2
    # ids and times mean what they mean in SQLite: the hex id, integer ms since the epoch (UTC)
    assert sql(url, "SELECT id, start_time FROM runs") == [(run.id, got.start_time)]
    assert abs(got.start_time - _process.now_ms()) < 3_600_000


def test_the_password_never_appears_in_uri_repr_or_errors() -> None:
    require_postgres()
    store = open_store("postgresql://postgres:s3cret@127.0.0.1:1/nowhere")
    try:
        assert "s3cret" not in store.uri and "s3cret" not in repr(store)
        assert store.uri.startswith("postgresql://postgres:***@127.0.0.1:1/nowhere")
        with pytest.raises(StoreError, match="cannot connect") as info:
            store.experiments()
        assert "s3cret" not in str(info.value)
        assert "check that the server runs" in str(info.value)
    finally:
        store.close()


def test_a_missing_psycopg_names_the_extra_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "psycopg", None)  # what an environment without it looks like
    store = open_store("postgresql://postgres@127.0.0.1:5432/test")
    with pytest.raises(MissingDependencyError, match=r"chachaml\[postgres\]"):
        store.experiments()
    store.close()


def test_pool_size_comes_from_the_url_or_the_environment(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    store = open_store(url + "?pool_size=2")
    try:
        store.experiments()
        assert store._get_pool().max_size == 2  # type: ignore[attr-defined]
        assert "pool_size=2" in store.uri  # reopening elsewhere keeps it
    finally:
        store.close()
    monkeypatch.setenv("CHACHAML_PG_POOL_SIZE", "3")
    store = open_store(url)
    try:
        store.experiments()
        assert store._get_pool().max_size == 3  # type: ignore[attr-defined]
    finally:
        store.close()
    with pytest.raises(InvalidValueError, match="pool_size='zero'"):
        open_store(url + "?pool_size=zero")


def test_a_closed_store_refuses_calls(url: str) -> None:
    store = open_store(url)
    store.experiments()
    store.close()
    store.close()  # idempotent
    with pytest.raises(chachaml.errors.RunStateError, match="closed"):
        store.experiments()


# -- schema and migrations ------------------------------------------------------------------------------
def test_the_schema_version_is_recorded_and_plain_sql_reads_the_tables(pg: PostgresStore, url: str) -> None:
    with chachaml.with_run() as run:
        chachaml.log_metric("loss", 1.5)
    assert sql(url, "SELECT max(version) FROM chachaml_schema") == [(LATEST,)]
    assert sql(url, "SELECT run_id, key, step, value, timestamp FROM metrics") == [
        (run.id, "loss", 0, 1.5, chachaml.metric_history(run.id, "loss")[0].timestamp)
    ]


def test_a_database_written_by_a_newer_chachaml_is_refused(url: str) -> None:
    first = open_store(url)
    first.experiments()  # migrates
    first.close()
    sql(url, "INSERT INTO chachaml_schema (version, applied) VALUES (%s, 0)", LATEST + 1)
    store = open_store(url)
    with pytest.raises(SchemaVersionError, match=f"schema version {LATEST + 1}"):
        store.experiments()
    store.close()


def test_a_version_1_database_is_upgraded_and_keeps_its_runs(url: str) -> None:
    import psycopg

    from chachaml.store._pg_schema import MIGRATIONS

    with psycopg.connect(url, autocommit=True) as conn, conn.transaction():  # as the first release left it
        conn.execute("CREATE TABLE chachaml_schema (version INTEGER PRIMARY KEY, applied BIGINT NOT NULL)")
        for stmt in MIGRATIONS[0][1]:
            conn.execute(stmt)
        conn.execute("INSERT INTO chachaml_schema VALUES (1, 0)")
        conn.execute(
            "INSERT INTO runs (id, experiment, status, start_time, end_time, env) "
            "VALUES (repeat('a', 32), 'old', 'completed', 1, 2, %s)",
            ('{"python": "3.12", "packages": {"numpy": "2.0"}}',),
        )
    with chachaml.with_store(url) as store:
        old = chachaml.get_run("a" * 8)
        assert old.experiment == "old" and old.env == {"python": "3.12", "packages": {"numpy": "2.0"}}
        run = chachaml.start_run()
        assert store.log_batch(run.id, metrics=[("m", 1.0, None, 1), ("m", 2.0, None, 2)], batch_id="x")
        assert not store.log_batch(run.id, metrics=[("m", 1.0, None, 1), ("m", 2.0, None, 2)], batch_id="x")
        chachaml.end_run()
        assert [p.value for p in chachaml.metric_history(run.id, "m")] == [1.0, 2.0]
        assert store.put_alert("a", metric="m", op=">", threshold=0, experiment=None, webhook=None, now=1)
    assert sql(url, "SELECT version FROM chachaml_schema ORDER BY version") == [
        (v,) for v in range(1, LATEST + 1)
    ]


def test_runs_share_one_copy_of_their_package_list(pg: PostgresStore, url: str) -> None:
    env = {"python": "3.12", "packages": {"numpy": "2.0", "torch": "2.4"}}
    ids = []
    for name in ("a", "b"):
        run = pg.create_run(
            NewRun(id=uuid.uuid4().hex, experiment="e", start_time=1, owner=chachaml._lifecycle.owner(),
                   name=name, env=env)
        )  # fmt: skip
        ids.append(run.id)
    assert sql(url, "SELECT count(*) FROM env_packages") == [(1,)]
    assert sql(url, "SELECT count(*) FROM runs WHERE position('numpy' in env) > 0") == [(0,)]  # stored once
    assert [pg.get_run(i).env for i in ids] == [env, env]
    assert [r.env for r in pg.find_runs(RunFilter())] == [env, env]


def test_threads_creating_one_alert_at_once_all_succeed_and_make_one(pg: PostgresStore) -> None:
    # Distinct pooled connections: without the alert lock, all but one insert would fail on the
    # primary key (SQLite serialises the read-then-insert with BEGIN IMMEDIATE).
    barrier = threading.Barrier(4)
    failures: list[BaseException] = []

    def put(threshold: float) -> None:
        barrier.wait()
        try:
            pg.put_alert(
                "hot", metric="loss", op=">", threshold=threshold, experiment=None, webhook=None, now=1
            )
        except BaseException as exc:  # collected: the test names every failure
            failures.append(exc)

    threads = [threading.Thread(target=put, args=(float(i),)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []
    alert = pg.get_alert("hot")
    assert [a.name for a in pg.alerts()] == ["hot"] and alert.version in range(1, 5)


def test_restored_runs_have_their_summaries(pg: PostgresStore) -> None:
    from chachaml.entities import Metric, Run

    run = Run(id=uuid.uuid4().hex, experiment="copy", status="completed", start_time=1, end_time=9)
    points = [Metric("m", float(i % 7), i // 3, 10 + i) for i in range(12_000)]  # > one insert batch
    points.append(Metric("m", math.nan, 3999, 99))  # the latest step: a NaN, which min/max skip
    assert pg.restore_run(run, points) is True
    got = pg.get_run(run.id)
    assert math.isnan(got.metrics["m"])
    assert pg.best_run(RunFilter(), "m", "max") is not None
    assert pg.best_run(RunFilter(), "m", "max").best_value == 6.0  # type: ignore[union-attr]
    assert pg.best_run(RunFilter(), "m", "min").best_value == 0.0  # type: ignore[union-attr]


@pytest.mark.slow
def test_eight_processes_opening_a_fresh_database_at_once_migrate_it_once(url: str, tmp_path: Path) -> None:
    go = tmp_path / "go"
    outs = _run_workers([[WORKER, "open", url, str(go)] for _ in range(8)], go)
    assert outs == ["ok\n"] * 8
    assert sql(url, "SELECT version FROM chachaml_schema") == [(v,) for v in range(1, LATEST + 1)]


# -- concurrency -----------------------------------------------------------------------------------------
@pytest.mark.slow
def test_concurrent_default_step_writers_never_share_a_step(
    pg: PostgresStore, url: str, tmp_path: Path
) -> None:
    run = chachaml.start_run("shared")
    go = tmp_path / "go"
    n, per = 6, 150
    _run_workers([[WORKER, "log", url, run.id, str(per), str(go)] for _ in range(n)], go)
    steps = [m.step for m in chachaml.metric_history(run.id, "loss")]
    assert sorted(steps) == list(range(n * per))  # unique, and no gap
    summary = pg.metric_summaries(run.id)["loss"]
    assert (summary["count"], summary["last_step"]) == (n * per, n * per - 1)
    chachaml.end_run()


@pytest.mark.slow
def test_concurrent_batches_and_single_points_never_share_a_step(
    pg: PostgresStore, url: str, tmp_path: Path
) -> None:
    """Many-point batches resolve their default steps under the summary rows' locks, the same
    locks single log_metric calls take: 6 processes mixing both never share or skip a step."""
    run = chachaml.start_run("shared")
    go = tmp_path / "go"
    n, rounds = 6, 10
    _run_workers([[WORKER, "batch", url, run.id, str(rounds), str(go)] for _ in range(n)], go)
    loss = chachaml.metric_history(run.id, "loss")
    acc = chachaml.metric_history(run.id, "acc")
    assert sorted(m.step for m in loss) == list(range(n * rounds * 41))
    assert sorted(m.step for m in acc) == list(range(n * rounds * 40))
    summaries = pg.metric_summaries(run.id)
    assert (summaries["loss"]["count"], summaries["loss"]["last_step"]) == (
        n * rounds * 41,
        n * rounds * 41 - 1,
    )
    assert (summaries["loss"]["min"], summaries["loss"]["max"]) == (-1.0, 39.0 + rounds - 1)
    assert summaries["loss"]["last"] == loss[-1].value  # the point with the highest step
    assert (summaries["acc"]["count"], summaries["acc"]["min"]) == (n * rounds * 40, 0.0)
    chachaml.end_run()


@pytest.mark.slow
def test_eight_processes_promoting_at_once_leave_exactly_one_production(
    pg: PostgresStore, url: str, tmp_path: Path
) -> None:
    with chachaml.with_run() as run:
        chachaml.log_artifact("model.pkl", {"w": 1})
    versions = [chachaml.register_model("m", artifact="model.pkl", run_id=run.id).version for _ in range(6)]
    go = tmp_path / "go"
    args = [REGISTRY_WORKER, "promote", url, "m", ",".join(map(str, versions)), "10"]
    _run_workers([[*args, str(seed), str(go)] for seed in range(8)], go)
    stages = {v.version: v.stage for v in chachaml.model_versions("m")}
    assert list(stages.values()).count("production") == 1
    production: set[int] = set()  # replay: every promotion archived the one before, in order
    for event in chachaml.model_history("m"):
        if event.kind == "stage" and event.to_value == "production":
            assert production == set(), f"v{event.version} promoted while {production} was production"
            production.add(event.version)  # type: ignore[arg-type]
        elif event.kind == "stage" and event.from_value == "production":
            production.discard(event.version)  # type: ignore[arg-type]
    assert production == {v for v, s in stages.items() if s == "production"}


@pytest.mark.slow
def test_concurrent_first_values_of_one_param_store_exactly_one(
    pg: PostgresStore, url: str, tmp_path: Path
) -> None:
    run = chachaml.start_run("contested")
    go = tmp_path / "go"
    outs = _run_workers([[WORKER, "param", url, run.id, str(i / 10), str(go)] for i in range(1, 7)], go)
    assert sorted(o.strip() for o in outs) == ["conflict"] * 5 + ["stored"]
    stored = chachaml.get_run(run.id).params["lr"]
    assert [o.strip() for o in outs].index("stored") == round(stored * 10) - 1  # the winner's value
    chachaml.end_run()


def test_a_forked_child_opens_its_own_connections_and_the_parent_keeps_its_own(pg: PostgresStore) -> None:
    run = chachaml.start_run("forked")
    chachaml.log_metric("m", 0.0)  # the parent's pool is open and in use
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # 3.12+: fork() with threads running
        pid = os.fork()
    if pid == 0:  # the child: log through the same store object, then leave without cleanup
        code = 1
        try:
            chachaml.log_metric("m", 1.0, run=run.id)
            code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    chachaml.log_metric("m", 2.0)  # the child closed nothing of ours
    assert [(m.step, m.value) for m in chachaml.metric_history(run.id, "m")] == [(0, 0.0), (1, 1.0), (2, 2.0)]
    chachaml.end_run()


# -- values ------------------------------------------------------------------------------------------------
def test_params_keep_their_json_type_and_queries_compare_by_type(pg: PostgresStore) -> None:
    made = {}
    for name, lr in (("small", 0.01), ("big", 0.5), ("text", "0.01"), ("flag", True), ("none", None)):
        with chachaml.with_run(name) as run:
            chachaml.log_param("lr", lr)
            made[name] = run.id

    def names(where: str) -> set[str]:
        return {r.name for r in chachaml.runs(where=where)}  # type: ignore[misc]

    assert names("params.lr < 0.1") == {"small"}
    assert names("params.lr >= 0.1") == {"big"}
    assert names("params.lr = '0.01'") == {"text"}
    assert names("params.lr = 0.01") == {"small"}
    assert names("params.lr != 0.01") == {"big", "text", "flag"}  # null and missing: neither
    assert names("params.lr = true") == {"flag"}
    assert names("params.lr in (0.5, '0.01')") == {"big", "text"}
    assert names("params.lr like '0.0%'") == {"text"}
    assert names("params.lr is null") == {"none"}
    assert [r.name for r in chachaml.runs(where="params.lr < 1", order_by="params.lr desc")] == [
        "big",
        "small",
    ]
    assert chachaml.get_run(made["small"]).params["lr"] == 0.01


def test_nan_and_infinities_round_trip_and_nan_is_not_null(pg: PostgresStore, url: str) -> None:
    with chachaml.with_run("odd") as run:
        for v in (float("nan"), float("inf"), float("-inf"), float("nan")):
            chachaml.log_metric("x", v)
        chachaml.log_metric("inf", float("inf"))
    values = [m.value for m in chachaml.metric_history(run.id, "x")]
    assert math.isnan(values[0]) and values[1:3] == [math.inf, -math.inf] and math.isnan(values[3])
    assert math.isnan(chachaml.get_run(run.id).metrics["x"])  # the latest point is NaN
    assert list(chachaml.runs(where="metrics.x is null")) == []
    assert [r.id for r in chachaml.runs(where="metrics.x is not null")] == [run.id]
    assert list(chachaml.runs(where="metrics.x > 0")) == []  # NaN compares with nothing, as in SQLite
    assert [r.id for r in chachaml.runs(where="metrics.inf > 1e308")] == [run.id]
    assert pg.metric_summaries(run.id)["x"]["max"] == math.inf  # min/max skip NaN
    # plain SQL tells NaN from a missing value
    assert sql(url, "SELECT count(*) FROM metrics WHERE is_nan = 1 AND value = 'NaN'") == [(2,)]


def test_a_nul_character_round_trips_in_params_and_is_refused_clearly_in_text_columns(
    pg: PostgresStore,
) -> None:
    with chachaml.with_run() as run:
        chachaml.log_params({"a": "ok", "b": "bad\x00value"})  # JSON text: the NUL is escaped
        with pytest.raises(InvalidValueError, match="NUL"):
            chachaml.set_tags({"fine": "x", "t": "a\x00b"})  # PostgreSQL text cannot hold it
    got = chachaml.get_run(run.id)
    assert got.params == {"a": "ok", "b": "bad\x00value"} and got.tags == {}
    assert [r.id for r in chachaml.runs(where="params.a = 'ok'")] == [run.id]


# -- dead runs ----------------------------------------------------------------------------------------------
def _ended_pid() -> int:
    """The pid of a process that has exited (and been reaped)."""
    code = "import os; print(os.getpid())"
    return int(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout)


def _owned_run(store: PostgresStore, host: str, pid: int, heartbeat_age_ms: int) -> str:
    now = _process.now_ms()
    run_id = uuid.uuid4().hex
    store.create_run(
        NewRun(
            id=run_id,
            experiment="default",
            start_time=now - heartbeat_age_ms,
            owner=_process.Owner(host=host, pid=pid, proc_start=""),
        )
    )
    return run_id


def test_runs_of_other_hosts_are_judged_by_their_heartbeat(pg: PostgresStore) -> None:
    stale = _owned_run(pg, "elsewhere", 4242, _process.STALE_MS + 60_000)
    fresh = _owned_run(pg, "elsewhere", 4243, 1_000)
    assert pg.get_run(stale).status == "killed"
    assert pg.get_run(stale).error["type"] == "ProcessDied"  # type: ignore[index]
    assert pg.get_run(fresh).status == "running"


def test_a_run_of_this_host_whose_process_is_gone_is_killed_on_the_next_read(pg: PostgresStore) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    dead_pid = int(proc.stdout)
    gone = _owned_run(pg, _process.HOST, dead_pid, 1_000)  # a fresh heartbeat, but no process
    alive = _owned_run(pg, _process.HOST, os.getpid(), 1_000)
    assert pg.get_run(gone).status == "killed"
    assert pg.get_run(alive).status == "running"


def test_a_server_can_judge_every_run_by_heartbeat_only(url: str) -> None:
    store = open_store(url, is_dead=_process.is_dead_by_heartbeat)
    try:
        proc = subprocess.run(
            [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
        )
        gone = _owned_run(store, _process.HOST, int(proc.stdout), 1_000)  # type: ignore[arg-type]
        assert store.get_run(gone).status == "running"  # its heartbeat is fresh
    finally:
        store.close()


# -- artifacts -----------------------------------------------------------------------------------------------
def test_artifacts_go_to_the_folder_given_else_the_environment_else_the_default(
    url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    chosen = tmp_path / "chosen"
    with chachaml.with_store(url, artifacts=chosen), chachaml.with_run() as run:
        chachaml.log_artifact("notes.txt", "hello")
        assert chachaml.artifact_path(run.id, "notes.txt") == str(chosen / run.id / "notes.txt")
    assert (chosen / run.id / "notes.txt").read_text() == "hello"

    monkeypatch.setenv("CHACHAML_ARTIFACTS", str(tmp_path / "from-env"))
    store = open_store(url)
    assert store.artifact_root == str(tmp_path / "from-env")  # type: ignore[attr-defined]
    store.close()
    monkeypatch.delenv("CHACHAML_ARTIFACTS")
    store = open_store(url)
    assert store.artifact_root == os.path.abspath("chachaml-artifacts")  # type: ignore[attr-defined]
    # another process reopening store.uri finds the same folder
    assert open_store(store.uri).artifact_root == store.artifact_root  # type: ignore[attr-defined]
    store.close()


def test_artifacts_of_a_postgresql_store_can_live_in_object_storage(
    url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import _s3

    _s3.use_moto(monkeypatch)
    location = _s3.new_location()
    bucket, _, prefix = location[len("s3://") :].partition("/")
    with chachaml.with_store(url, artifacts=location) as store, chachaml.with_run() as run:
        chachaml.log_artifact("model.json", {"w": [1, 2]})
        assert store.artifact_root == location  # type: ignore[attr-defined]
        uri = store.uri
    listed = _s3.client().list_objects_v2(Bucket=bucket, Prefix=f"{prefix}/{run.id}/")
    assert [o["Key"] for o in listed.get("Contents", ())] == [f"{prefix}/{run.id}/model.json"]
    # the store's URI names the location: reopened from it, the artifact reads back
    with chachaml.with_store(uri) as again:
        assert again.artifact_root == location  # type: ignore[attr-defined]
        assert chachaml.load_artifact(run.id, "model.json") == {"w": [1, 2]}
    assert not (Path.cwd() / "chachaml-artifacts" / run.id).exists()


def test_unknown_artifact_locations_are_refused_clearly(url: str) -> None:
    with pytest.raises(InvalidValueError, match="unknown artifact location scheme 'ftp'"):
        open_store(url, artifacts="ftp://host/x")
    # (a SQLite file takes artifacts= too since docs/adr/0017: tests/test_s3_artifacts.py)


def test_find_runs_pages_and_filters_like_sqlite(pg: PostgresStore) -> None:
    for i in range(5):
        with chachaml.with_run(f"r{i}", experiment="a" if i % 2 else "b"):
            chachaml.log_metric("acc", i / 10)
    assert [r.name for r in chachaml.runs(limit=2, offset=1)] == ["r3", "r2"]
    assert [r.name for r in chachaml.runs(experiment="a", order_by="metrics.acc asc")] == ["r1", "r3"]
    assert pg.find_runs(RunFilter(where="metrics.acc.max > 0.25", offset=1)) != []
    assert ADMIN_URL.rsplit("/", 1)[0] in pg.uri


# -- the pytest fixture and the benchmark ---------------------------------------------------------------
def test_the_pytest_fixture_gives_each_test_a_database_of_its_own_dropped_after_it(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    require_postgres()
    monkeypatch.setenv("CHACHAML_TEST_STORE", ADMIN_URL)
    seen = tmp_path / "seen.txt"
    pytester.makepyfile(
        f"""
        import chachaml

        def _note(store):
            with open({str(seen)!r}, "a") as fh:
                fh.write(store.uri.split("?")[0].rsplit("/", 1)[1] + "\\n")

        def test_one(chachaml_store):
            _note(chachaml_store)
            assert type(chachaml_store).__name__ == "PostgresStore"
            with chachaml.with_run("a"):
                chachaml.log_metric("m", 1.0)
                chachaml.log_artifact("a.txt", "x")
            assert len(chachaml.runs()) == 1

        def test_two(chachaml_store):
            _note(chachaml_store)
            assert len(chachaml.runs()) == 0
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)
    names = seen.read_text().split()
    assert len(set(names)) == 2 and all(n.startswith("chachaml_test_") for n in names)
    left = sql(ADMIN_URL, "SELECT datname FROM pg_database WHERE datname = ANY(%s)", names)
    assert left == []


@pytest.mark.slow
def test_bench_team_reports_the_postgresql_log_metric_figure(tmp_path: Path) -> None:
    require_postgres()
    script = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_team.py"
    proc = subprocess.run(
        [sys.executable, str(script), "--quick", "--url", ADMIN_URL],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    line = next(x for x in proc.stdout.splitlines() if x.startswith("log_metric (PostgreSQL)"))
    assert re.search(r"floor\s+\d+\.\d+ µs\s+ratio\s+\d+\.\d+\s+target <=2\.0\s+(PASS|FAIL)", line), line
    assert list(tmp_path.iterdir()) == []  # it wrote nothing where it ran


def test_an_unreachable_server_fails_the_tests_on_ci_and_skips_them_elsewhere(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYTHONPATH", str(Path(__file__).parent))  # where _postgres.py lives
    pytester.makepyfile(
        """
        from _postgres import require_postgres

        def test_needs_the_server():
            require_postgres()
        """
    )
    monkeypatch.setenv("CHACHAML_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:1/none")
    monkeypatch.delenv("CI", raising=False)
    pytester.runpytest_subprocess("-p", "no:cacheprovider").assert_outcomes(skipped=1)
    monkeypatch.setenv("CI", "true")
    failed = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    failed.assert_outcomes(failed=1)
    failed.stdout.fnmatch_lines(["*CI must run the PostgreSQL tests*"])


def test_the_postgres_scheme_is_an_alias(url: str) -> None:
    store = open_store("postgres://" + url.split("://", 1)[1])
    try:
        assert isinstance(store, PostgresStore) and store.experiments() == []
    finally:
        store.close()


def test_user_queries_run_in_a_read_only_transaction(pg: PostgresStore) -> None:
    with chachaml.with_run("r"):
        chachaml.log_metric("m", 1.0)
    with pytest.raises(StoreError, match="read-only transaction"), pg._reading() as conn:
        pg._select(conn, "UPDATE runs SET name = 'written' RETURNING id", [])
    assert [r.name for r in chachaml.runs(where="metrics.m = 1")] == ["r"]
    assert chachaml.best_run("m").name == "r"


def test_connections_the_server_ended_are_replaced_without_an_error(url: str) -> None:
    store = open_store(url + "?pool_size=2")
    try:
        run = _owned_run(store, _process.HOST, os.getpid(), 0)  # type: ignore[arg-type]
        store.log_metric(run, "m", 1.0, None, 1)
        name = url.rsplit("/", 1)[1]
        ended = sql(
            ADMIN_URL,
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
            name,
        )
        assert ended and all(ok for (ok,) in ended)  # what a server restart does to them
        deadline = time.monotonic() + 30  # the backends end asynchronously: wait until they have
        while sql(ADMIN_URL, "SELECT 1 FROM pg_stat_activity WHERE datname = %s", name):
            assert time.monotonic() < deadline, "the terminated backends never ended"
            time.sleep(0.01)
        for value in (2.0, 3.0):  # no "server closed the connection" for the caller
            store.log_metric(run, "m", value, None, 1)
        assert [m.value for m in store.metric_history(run, "m")] == [1.0, 2.0, 3.0]
    finally:
        store.close()


def test_a_literal_with_a_nul_matches_what_it_means_since_no_stored_text_holds_one(
    pg: PostgresStore,
) -> None:
    for name in ("a", "ab", "b"):
        with chachaml.with_run(name):
            chachaml.set_tag("t", name)
            chachaml.log_param("p", name)
    with chachaml.with_run(None):
        pass  # no name, no tag, no param

    def names(where: str) -> list[str | None]:
        return sorted((r.name for r in chachaml.runs(where=where)), key=str)

    for field in ("name", "tags.t", "params.p"):
        assert names(f"{field} = 'a\x00b'") == []
        assert names(f"{field} != 'a\x00b'") == ["a", "ab", "b"]
        assert names(f"{field} < 'a\x00b'") == ["a"]  # byte order: 'a' < 'a\0b' < 'ab'
        assert names(f"{field} > 'a\x00b'") == ["ab", "b"]
        assert names(f"{field} in ('a\x00', 'b')") == ["b"]
        assert names(f"{field} like 'a\x00%'") == []
        assert names(f"not {field} like 'a\x00%'") == ["a", "ab", "b"]
