"""``Run.env``'s package list is stored once per distinct list and reads exactly as logged.

The SQLite store keeps ``env["packages"]`` in ``env_packages`` keyed by a digest (schema
migration 5, docs/adr/0018); a listing decodes each distinct list once, not once per run.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import chachaml
from chachaml._process import owner
from chachaml.store._sqlite_schema import LATEST, MIGRATIONS
from chachaml.store.base import NewRun, RunFilter
from chachaml.store.sqlite import SqliteStore

T0 = 1_700_000_000_000
PACKAGES_A = {"numpy": "1.26.4", "torch": "2.3.0", "Zope.Interface": "6.0"}
PACKAGES_B = {"numpy": "2.0.0"}


def _env(packages: dict[str, str] | None, argv: str) -> dict[str, Any]:
    env: dict[str, Any] = {"python": "3.11.7", "host": "h", "argv": ["train.py", argv]}
    if packages is not None:
        env["packages"] = packages
    env["git_commit"] = "abc"  # after "packages": the key order must survive
    return env


def _store_with(tmp_path: Path, envs: list[dict[str, Any]]) -> SqliteStore:
    store = SqliteStore(str(tmp_path / "runs.db"))
    for i, env in enumerate(envs):
        store.create_run(NewRun(id=f"{i:032x}", experiment="e", start_time=T0 + i, owner=owner(), env=env))
    return store


def test_runs_sharing_a_package_list_store_it_once_and_read_it_back_exactly(tmp_path: Path) -> None:
    envs = [_env(PACKAGES_A, "--lr=1"), _env(PACKAGES_A, "--lr=2"), _env(PACKAGES_B, "x"), _env(None, "y")]
    store = _store_with(tmp_path, envs)
    try:
        listed = {r.id: r.env for r in store.find_runs(RunFilter())}
        for i, env in enumerate(envs):
            got = store.get_run(f"{i:032x}").env
            assert got == env and list(got) == list(env)
            assert listed[f"{i:032x}"] == env and list(listed[f"{i:032x}"]) == list(env)
            if "packages" in env:
                assert list(got["packages"]) == list(env["packages"])
    finally:
        store.close()
    conn = sqlite3.connect(tmp_path / "runs.db")
    try:
        assert conn.execute("SELECT count(*) FROM env_packages").fetchone()[0] == 2
        stored = [r[0] for r in conn.execute("SELECT env FROM runs")]
    finally:
        conn.close()
    assert not any("torch" in text or "numpy" in text for text in stored)


def test_a_listing_reads_each_distinct_package_list_once(tmp_path: Path) -> None:
    envs = [_env(PACKAGES_A if i % 2 else PACKAGES_B, str(i)) for i in range(50)]
    store = _store_with(tmp_path, envs)
    try:
        statements: list[str] = []
        store.find_runs(RunFilter(limit=1))  # open the connection
        assert store._conn is not None
        store._conn.set_trace_callback(statements.append)
        runs = store.find_runs(RunFilter())
        again = store.find_runs(RunFilter())
        # Run.env of a listing is read on first access, for the whole list (docs/adr/0024).
        got, got_again = [r.env for r in runs], [r.env for r in again]
        store._conn.set_trace_callback(None)
    finally:
        store.close()
    reads = [s for s in statements if "FROM env_packages" in s]
    assert len(reads) == 1  # both lists in one statement, and none for the second listing
    assert len(runs) == len(again) == 50
    assert got == got_again == list(reversed(envs))


def test_each_run_gets_its_own_env_dict(tmp_path: Path) -> None:
    store = _store_with(tmp_path, [_env(PACKAGES_A, "1"), _env(PACKAGES_A, "2")])
    try:
        first, second = store.find_runs(RunFilter())
        first.env["packages"]["numpy"] = "0.0"
        first.env["python"] = "2.7"
        assert second.env["packages"] == PACKAGES_A
        assert store.get_run(first.id).env["packages"] == PACKAGES_A
        assert store.find_runs(RunFilter())[0].env == _env(PACKAGES_A, "2")
    finally:
        store.close()


def test_a_run_records_this_process_s_packages(tmp_path: Path) -> None:
    from chachaml._process import environment

    with chachaml.with_store(str(tmp_path / "runs.db")), chachaml.with_run("r") as run:
        run_id = run.id
    with chachaml.Client(str(tmp_path / "runs.db")) as client:
        env = client.get_run(run_id).env
    assert env["packages"] == environment()["packages"] and "pytest" in {k.lower() for k in env["packages"]}


def test_a_v4_database_with_inline_package_lists_is_migrated(tmp_path: Path) -> None:
    db = tmp_path / "v4.db"
    conn = sqlite3.connect(db)
    for number, statements in MIGRATIONS:
        if number <= 4:
            for stmt in statements:
                conn.execute(stmt)
    conn.execute("PRAGMA user_version = 4")
    envs = [_env(PACKAGES_A, "1"), _env(PACKAGES_A, "2"), _env(None, "3"), {"packages": "not a dict"}]
    rows = [(f"{i:032x}", json.dumps(env), T0 + i) for i, env in enumerate(envs)]
    rows.append(("f" * 32, '{not json, but mentions "packages"', T0 + 9))
    conn.executemany(
        "INSERT INTO runs (id, experiment, status, start_time, env) VALUES (?, 'e', 'completed', ?, ?)",
        [(r, t, e) for r, e, t in rows],
    )
    conn.commit()
    conn.close()

    store = SqliteStore(str(db))
    try:
        for i, env in enumerate(envs):
            got = store.get_run(f"{i:032x}").env
            assert got == env and list(got) == list(env)
        # (the run whose env is not JSON is left out: it did not read before either)
        listed = store.find_runs(RunFilter(where=f"start_time < {T0 + 9}", order_by="start_time"))
    finally:
        store.close()
    assert [r.env for r in listed] == envs
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == LATEST
        assert conn.execute("SELECT count(*) FROM env_packages").fetchone()[0] == 1
        texts = dict(conn.execute("SELECT id, env FROM runs").fetchall())
    finally:
        conn.close()
    assert "torch" not in texts["0" * 32] and "torch" not in texts[f"{1:032x}"]
    assert texts["f" * 32] == '{not json, but mentions "packages"'  # left as it was
