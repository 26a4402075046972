"""Schema versions: old databases are migrated on open, newer ones are refused untouched.

Old databases are built with plain ``sqlite3`` from the released migrations in
``chachaml.store._sqlite_schema`` and filled with plain SQL, the way an older chachaml left them.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

import chachaml
from chachaml.errors import SchemaVersionError, StoreError
from chachaml.store._sqlite_schema import LATEST, MIGRATIONS
from chachaml.store.base import RunFilter

RUN_A = "a" * 32
RUN_B = "b" * 32
T0 = 1_700_000_000_000


def _build(db: Path, version: int) -> None:
    """A database at ``version``: only migrations up to it, then rows written with plain SQL."""
    conn = sqlite3.connect(db)
    try:
        for number, statements in MIGRATIONS:
            if number <= version:
                for stmt in statements:
                    conn.execute(stmt)
        conn.execute(f"PRAGMA user_version = {version}")
        conn.execute("INSERT INTO experiments (name, created) VALUES ('legacy', ?)", (T0,))
        conn.executemany(
            "INSERT INTO runs (id, experiment, name, status, start_time, end_time, created_by, env, "
            "archived, host, pid, proc_start, heartbeat) "
            "VALUES (?, 'legacy', ?, ?, ?, ?, 'ada', '{}', 0, 'old-host', 1, '', ?)",
            [
                (RUN_A, "first", "completed", T0, T0 + 5_000, T0 + 5_000),
                (RUN_B, "second", "failed", T0 + 10_000, T0 + 12_000, T0 + 12_000),
            ],
        )
        conn.executemany(
            "INSERT INTO params (run_id, key, value) VALUES (?, ?, ?)",
            [
                (RUN_A, "lr", json.dumps(0.01)),
                (RUN_A, "layers", json.dumps(3)),
                (RUN_A, "optimizer.name", json.dumps("adam")),
                (RUN_A, "augment", json.dumps(True)),
                (RUN_B, "lr", json.dumps(0.1)),
            ],
        )
        conn.executemany(
            "INSERT INTO tags (run_id, key, value) VALUES (?, ?, ?)", [(RUN_A, "team", "vision")]
        )
        # (run, key, step, value, is_nan) in logging order: steps out of order, a repeated step
        # (the one logged last wins), and a NaN stored as NULL + is_nan.
        points = [
            (RUN_A, "loss", 0, 1.0, 0),
            (RUN_A, "loss", 2, 0.25, 0),
            (RUN_A, "loss", 1, 0.5, 0),
            (RUN_A, "acc", 0, 0.5, 0),
            (RUN_A, "acc", 1, 0.75, 0),
            (RUN_A, "acc", 1, 0.8, 0),
            (RUN_A, "grad", 0, 3.0, 0),
            (RUN_A, "grad", 1, None, 1),
            (RUN_B, "loss", 0, 2.0, 0),
            (RUN_B, "loss", 1, 4.0, 0),
        ]
        conn.executemany(
            "INSERT INTO metrics (run_id, key, step, value, timestamp, is_nan) VALUES (?, ?, ?, ?, ?, ?)",
            [(r, k, s, v, T0 + i, n) for i, (r, k, s, v, n) in enumerate(points)],
        )
        conn.execute(
            "INSERT INTO datasets (run_id, name, role, source, n_rows, n_cols, features, digest, created) "
            "VALUES (?, 'mnist', 'train', 's3://data/mnist', 60000, 784, NULL, 'abc', ?)",
            (RUN_A, T0),
        )
        conn.commit()
    finally:
        conn.close()


def _pragma(db: Path, name: str) -> object:
    conn = sqlite3.connect(db)
    try:
        return conn.execute(f"PRAGMA {name}").fetchone()[0]
    finally:
        conn.close()


def test_migrations_are_numbered_one_to_latest_in_order() -> None:
    numbers = [number for number, _ in MIGRATIONS]
    assert numbers == list(range(1, LATEST + 1))


@pytest.mark.parametrize("version", [number for number, _ in MIGRATIONS if number < LATEST])
def test_a_database_of_an_older_schema_is_migrated_on_open_and_its_data_reads_back(
    tmp_path: Path, version: int
) -> None:
    db = tmp_path / "old.db"
    _build(db, version)
    assert _pragma(db, "user_version") == version

    with chachaml.with_store(db):
        a = chachaml.get_run(RUN_A)
        b = chachaml.get_run("bbbb")  # by id prefix
        listed = chachaml.runs(experiment="legacy")
        loss = chachaml.metric_history(RUN_A, "loss")
        grad = chachaml.metric_history(RUN_A, "grad")

    assert _pragma(db, "user_version") == LATEST
    assert _pragma(db, "integrity_check") == "ok"
    assert [r.id for r in listed] == [RUN_B, RUN_A]
    assert a.name == "first" and a.status == "completed" and a.created_by == "ada"
    assert a.start_time == T0 and a.end_time == T0 + 5_000
    assert a.params == {"lr": 0.01, "layers": 3, "optimizer.name": "adam", "augment": True}
    assert a.tags == {"team": "vision"}
    assert [d.name for d in a.datasets] == ["mnist"]
    # Latest = the value at the highest step; at a repeated step, the one logged last.
    assert a.metrics["loss"] == 0.25
    assert a.metrics["acc"] == 0.8
    assert a.metrics["grad"] != a.metrics["grad"]  # NaN survives
    assert set(a.metrics) == {"loss", "acc", "grad"}
    assert b.status == "failed" and b.params == {"lr": 0.1} and b.metrics == {"loss": 4.0}
    assert [(m.step, m.value) for m in loss] == [(0, 1.0), (1, 0.5), (2, 0.25)]
    assert [m.step for m in grad] == [0, 1] and grad[1].value != grad[1].value


@pytest.mark.parametrize("version", [number for number, _ in MIGRATIONS if number < LATEST])
def test_the_metric_summary_of_a_migrated_database_is_filled_on_the_first_read(
    tmp_path: Path, version: int
) -> None:
    db = tmp_path / "old.db"
    _build(db, version)

    with chachaml.with_store(db):
        chachaml.runs()

    conn = sqlite3.connect(db)
    try:
        summary = conn.execute(
            "SELECT run_id, key, last_step, last_value, last_is_nan, min, max, count "
            "FROM metric_summary ORDER BY run_id, key"
        ).fetchall()
        watermark = conn.execute("SELECT value FROM chachaml_meta WHERE key = 'summary_rowid'").fetchone()
        top = conn.execute("SELECT max(rowid) FROM metrics").fetchone()
    finally:
        conn.close()
    assert summary == [
        (RUN_A, "acc", 1, 0.8, 0, 0.5, 0.8, 3),
        (RUN_A, "grad", 1, None, 1, 3.0, 3.0, 2),
        (RUN_A, "loss", 2, 0.25, 0, 0.25, 1.0, 3),
        (RUN_B, "loss", 1, 4.0, 0, 2.0, 4.0, 2),
    ]
    assert watermark == top


def test_a_migrated_database_accepts_new_runs_and_points(tmp_path: Path) -> None:
    db = tmp_path / "old.db"
    _build(db, 1)

    with chachaml.with_store(db), chachaml.with_run("new", experiment="legacy") as run:
        chachaml.log_metric("loss", 0.5)
        chachaml.log_metric("loss", 0.4)
        chachaml.log_param("lr", 0.2)

    with chachaml.with_store(db):
        assert chachaml.get_run(run.id).metrics == {"loss": 0.4}
        assert chachaml.get_run(RUN_A).metrics["loss"] == 0.25
        assert len(chachaml.runs(experiment="legacy")) == 3
    assert _pragma(db, "journal_mode") == "wal"


def _newer(db: Path) -> None:
    """A database written by a future chachaml: every known migration plus a higher version."""
    _build(db, LATEST)
    conn = sqlite3.connect(db)
    try:
        conn.execute("CREATE TABLE from_the_future (x)")
        conn.execute(f"PRAGMA user_version = {LATEST + 1}")
        conn.commit()
    finally:
        conn.close()


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_a_database_from_a_newer_version_is_refused_with_the_version_and_the_fix(tmp_path: Path) -> None:
    folder = tmp_path / "data"
    folder.mkdir()
    db = folder / "future.db"
    _newer(db)

    with pytest.raises(SchemaVersionError) as info, chachaml.with_store(db):
        chachaml.runs()

    message = str(info.value)
    assert f"version {LATEST + 1}" in message
    assert str(LATEST) in message
    assert "upgrade chachaml" in message and "pip install -U chachaml" in message
    assert isinstance(info.value, StoreError)


def test_a_database_from_a_newer_version_is_left_untouched_by_reads_and_writes(tmp_path: Path) -> None:
    folder = tmp_path / "data"
    folder.mkdir()
    db = folder / "future.db"
    _newer(db)
    before = _snapshot(folder)

    with chachaml.with_store(db):
        with pytest.raises(SchemaVersionError):
            chachaml.get_run(RUN_A)
        with pytest.raises(SchemaVersionError):
            chachaml.start_run("new")
        with pytest.raises(SchemaVersionError):
            chachaml.log_metric("loss", 1.0, run=RUN_A)
        assert chachaml.current_run() is None

    assert _snapshot(folder) == before  # same files, same bytes: no WAL switch, no new tables
    assert _pragma(db, "user_version") == LATEST + 1
    assert _pragma(db, "journal_mode") == "delete"


def test_opening_a_fresh_file_sets_wal_mode_and_the_latest_version(tmp_path: Path) -> None:
    db = tmp_path / "fresh.db"

    with chachaml.with_store(db):
        assert len(chachaml.runs()) == 0
        assert not db.exists()  # reads never create the file
        with chachaml.with_run("first"):
            chachaml.log_metric("loss", 1.0)

    assert _pragma(db, "journal_mode") == "wal"
    assert _pragma(db, "user_version") == LATEST
    conn = sqlite3.connect(db)
    try:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    finally:
        conn.close()
    assert {"experiments", "runs", "params", "tags", "metrics", "datasets"} <= tables
    assert {"metric_summary", "chachaml_meta"} <= tables


def test_opening_the_same_old_database_twice_migrates_it_once(tmp_path: Path) -> None:
    db = tmp_path / "old.db"
    _build(db, 1)

    first = chachaml.use_store(db)
    with chachaml.with_store(str(db)):
        assert len(chachaml.runs()) == 2
    assert len(first.find_runs(RunFilter())) == 2
    assert _pragma(db, "user_version") == LATEST
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("SELECT count(*) FROM chachaml_meta").fetchone()[0] == 1
    finally:
        conn.close()
