"""Which artifact folder belongs to which store, and what ``gc()`` may touch (issue 7, defect 5).

Two stores never share a folder, ``gc()`` removes only files it can prove are its own store's,
and databases written before folders carried a marker keep working (docs/adr/0008).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

import chachaml
from chachaml.errors import StoreError


def _log(db: Path, name: str, value: str) -> str:
    with chachaml.with_store(db), chachaml.with_run() as run:
        chachaml.log_artifact(name, value)
    return run.id


def _load(db: Path, run_id: str, name: str) -> object:
    with chachaml.with_store(db):
        return chachaml.load_artifact(run_id, name)


def _gc(db: Path, dry_run: bool = False) -> chachaml.GcReport:
    with chachaml.with_store(db):
        return chachaml.gc_artifacts(dry_run=dry_run)


def test_stores_runs_and_runs_db_never_share_a_folder_nor_delete_each_others_files(tmp_path: Path) -> None:
    plain, dotdb = tmp_path / "runs", tmp_path / "runs.db"
    a = _log(plain, "a.txt", "of runs")
    b = _log(dotdb, "b.txt", "of runs.db")
    with chachaml.with_store(plain) as s1, chachaml.with_store(dotdb) as s2:
        assert s1.artifact_root != s2.artifact_root  # type: ignore[attr-defined]
        assert s2.artifact_root == str(tmp_path / "runs-artifacts")  # type: ignore[attr-defined]  # SPEC
    assert _gc(plain).removed == ()
    assert _gc(dotdb).removed == ()
    assert _load(plain, a, "a.txt") == "of runs"
    assert _load(dotdb, b, "b.txt") == "of runs.db"


def test_gc_leaves_a_folder_that_was_there_before_the_store(tmp_path: Path) -> None:
    theirs = tmp_path / "runs-artifacts" / "results" / "table.csv"
    theirs.parent.mkdir(parents=True)
    theirs.write_text("a,b\n1,2\n")
    db = tmp_path / "runs.db"
    with chachaml.with_store(db), chachaml.with_run() as run:
        chachaml.log_metric("x", 1.0)
        report = chachaml.gc_artifacts()
        assert report.removed == ()
        assert theirs.read_text() == "a,b\n1,2\n"
        # Logging into it would mix chachaml's files with someone else's: refused, naming it.
        with pytest.raises(StoreError, match="runs-artifacts") as info:
            chachaml.log_artifact("m.txt", "model")
        assert "move" in str(info.value)
        assert chachaml.list_artifacts(run.id) == []
    assert theirs.exists()


def test_gc_leaves_the_folder_of_another_store(tmp_path: Path) -> None:
    first, second = tmp_path / "first.db", tmp_path / "second.db"
    kept = _log(first, "kept.txt", "first's")
    orphan = tmp_path / "first-artifacts" / ("f" * 32) / "orphan.bin"
    orphan.parent.mkdir()
    orphan.write_bytes(b"first's orphan")
    # second.db pointed at first's folder (a copied or renamed folder, a symlink): not its files.
    (tmp_path / "second-artifacts").symlink_to(tmp_path / "first-artifacts")
    with chachaml.with_store(second):
        chachaml.start_run()
        assert chachaml.gc_artifacts().removed == ()
        with pytest.raises(StoreError, match="another chachaml store"):
            chachaml.log_artifact("n.txt", "second's")
        chachaml.end_run()
    assert orphan.exists()
    assert _gc(first).removed == (f"{'f' * 32}/orphan.bin",)
    assert _load(first, kept, "kept.txt") == "first's"


def _make_legacy(db: Path, run_id_name: tuple[str, str], legacy_root: Path) -> None:
    """Turn a store into one written before folder markers: no store id, no marker, old folder."""
    with chachaml.with_store(db) as store:
        root = Path(store.artifact_root)  # type: ignore[attr-defined]
    conn = sqlite3.connect(db)
    with conn:
        conn.execute("DELETE FROM chachaml_meta WHERE key <> 'summary_rowid'")
    conn.close()
    for marker in root.glob(".chachaml-store-*"):
        marker.rmdir()
    if root != legacy_root:
        root.rename(legacy_root)


def test_a_database_written_before_markers_keeps_its_artifacts_and_gc_works(tmp_path: Path) -> None:
    db = tmp_path / "old.db"
    run_id = _log(db, "model.txt", "weights")
    _make_legacy(db, (run_id, "model.txt"), tmp_path / "old-artifacts")
    orphan = tmp_path / "old-artifacts" / run_id / "crash-leftover.bin"
    orphan.write_bytes(b"1234")
    assert _load(db, run_id, "model.txt") == "weights"
    assert _gc(db, dry_run=True).removed == (f"{run_id}/crash-leftover.bin",)
    assert _gc(db).removed == (f"{run_id}/crash-leftover.bin",)
    assert _load(db, run_id, "model.txt") == "weights"
    second = _log(db, "more.txt", "still works")
    assert _load(db, second, "more.txt") == "still works"


def test_a_store_without_db_extension_written_before_markers_keeps_its_old_folder(tmp_path: Path) -> None:
    db = tmp_path / "experiments"
    run_id = _log(db, "model.txt", "weights")
    _make_legacy(db, (run_id, "model.txt"), tmp_path / "experiments-artifacts")
    assert _load(db, run_id, "model.txt") == "weights"
    second = _log(db, "more.txt", "same folder")
    assert (tmp_path / "experiments-artifacts" / second / "more.txt").read_text() == "same folder"
    assert _gc(db).removed == ()
    # Now a store experiments.db appears next to it: its folder is taken, so it is refused
    # rather than sharing it.
    with (
        chachaml.with_store(tmp_path / "experiments.db"),
        chachaml.with_run(),
        pytest.raises(StoreError, match="experiments-artifacts"),
    ):
        chachaml.log_artifact("x.txt", "x")
    assert _load(db, second, "more.txt") == "same folder"
