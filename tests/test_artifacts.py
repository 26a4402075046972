"""Artifacts: formats, safe names, atomic writes, conflicts, crashes and garbage collection."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import chachaml
from chachaml.errors import (
    ArtifactNotFoundError,
    ConflictError,
    InvalidValueError,
    NoActiveRunError,
    RunNotFoundError,
    RunStateError,
)
from chachaml.store._files import CHUNK, TMP_PREFIX, LocalFiles
from chachaml.store.base import Store

WORKER = str(Path(__file__).with_name("_workers_registry.py"))


class Point:
    """A user-defined class: pickled by reference, so it must load back as the same type."""

    def __init__(self, x: int, y: int) -> None:
        self.x, self.y = x, y

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Point) and (self.x, self.y) == (other.x, other.y)


def _root(store: Store) -> Path:
    root = store.artifact_root  # type: ignore[attr-defined]
    assert root is not None
    return Path(root)


def _files_under(path: Path) -> list[str]:
    if not path.exists():
        return []
    return sorted(str(p.relative_to(path)) for p in path.rglob("*") if p.is_file())


def _rows(store: Store) -> list[tuple[Any, ...]]:
    with sqlite3.connect(store.path) as conn:  # type: ignore[attr-defined]
        return conn.execute(
            "SELECT run_id, name, size, sha256, format FROM artifacts ORDER BY name"
        ).fetchall()


# -- formats ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("value", "fmt", "expected_format"),
    [
        ({"weights": [0.1, 0.2], "bias": None}, None, "pickle"),
        (Point(1, 2), None, "pickle"),
        ("# Report\n\nAccuracy went **up**. ✓", None, "text"),
        (b"\x00\x01binary\xff", None, "bytes"),
        ({"a": [1, 2.5, "x", None, True]}, "json", "json"),
        ("plain words", "text", "text"),
        (bytearray(b"abc"), "bytes", "bytes"),
        ([1, 2, 3], "pickle", "pickle"),
    ],
)
def test_value_round_trips_through_its_format(
    chachaml_store: Store, value: Any, fmt: str | None, expected_format: str
) -> None:
    with chachaml.with_run() as run:
        art = chachaml.log_artifact("thing", value, format=fmt)
    assert art.format == expected_format
    loaded = chachaml.load_artifact(run.id, "thing")
    assert loaded == (bytes(value) if isinstance(value, bytearray) else value)
    assert type(loaded) is (bytes if isinstance(value, bytearray) else type(value))


@pytest.mark.parametrize(
    "array",
    [np.arange(12, dtype=np.int16).reshape(3, 4), np.array([1.5, np.nan, np.inf]), np.zeros((0, 3))],
)
def test_numpy_array_is_stored_as_npy_and_keeps_dtype_and_shape(chachaml_store: Store, array: Any) -> None:
    with chachaml.with_run() as run:
        art = chachaml.log_artifact("weights.npy", array)
    assert art.format == "npy"
    assert art.content_type == "application/x-npy"
    loaded = chachaml.load_artifact(run.id, "weights.npy")
    assert loaded.dtype == array.dtype and loaded.shape == array.shape
    np.testing.assert_array_equal(loaded, array)
    assert chachaml.artifact_path(run.id, "weights.npy").endswith("weights.npy")
    np.testing.assert_array_equal(np.load(chachaml.artifact_path(run.id, "weights.npy")), array)


def test_object_array_is_refused_as_npy_rather_than_pickled_silently(chachaml_store: Store) -> None:
    with chachaml.with_run() as run, pytest.raises(InvalidValueError, match="format='pickle'"):
        chachaml.log_artifact("objs", np.array([{"a": 1}, None]), format="npy")
    assert chachaml.list_artifacts(run.id) == []


@settings(max_examples=40, deadline=None)
@given(text=st.text(), data=st.binary(max_size=5000))
def test_any_text_and_any_bytes_round_trip(
    tmp_path_factory: pytest.TempPathFactory, text: str, data: bytes
) -> None:
    db = tmp_path_factory.mktemp("rt") / "rt.db"
    with chachaml.with_store(db), chachaml.with_run() as run:
        chachaml.log_artifact("t.txt", text)
        chachaml.log_artifact("b.bin", data)
        assert chachaml.load_artifact(run.id, "t.txt") == text
        assert chachaml.load_artifact(run.id, "b.bin") == data


def test_content_type_follows_the_name_for_text_and_bytes(chachaml_store: Store) -> None:
    with chachaml.with_run():
        assert chachaml.log_artifact("README.md", "# hi").content_type == "text/markdown; charset=utf-8"
        assert chachaml.log_artifact("notes", "hi").content_type == "text/plain; charset=utf-8"
        assert chachaml.log_artifact("pic.png", b"\x89PNG").content_type == "image/png"
        assert chachaml.log_artifact("blob", b"x").content_type == "application/octet-stream"
        assert chachaml.log_artifact("m", {"a": 1}).content_type == "application/x-python-pickle"


def test_wrong_value_for_a_format_raises_and_writes_nothing(chachaml_store: Store) -> None:
    with chachaml.with_run() as run:
        with pytest.raises(InvalidValueError, match="format 'text' takes a str"):
            chachaml.log_artifact("a", 42, format="text")
        with pytest.raises(InvalidValueError, match="format 'bytes' takes bytes"):
            chachaml.log_artifact("a", "text", format="bytes")
        with pytest.raises(InvalidValueError, match="format='pickle'"):
            chachaml.log_artifact("a", {1, 2}, format="json")
        with pytest.raises(InvalidValueError, match="unknown artifact format 'yaml'"):
            chachaml.log_artifact("a", {}, format="yaml")
        with pytest.raises(InvalidValueError, match="cannot pickle"):
            chachaml.log_artifact("a", lambda: 1)
    assert chachaml.list_artifacts(run.id) == []
    assert _files_under(_root(chachaml_store)) == []


def test_a_registered_format_is_used_for_logging_and_loading(chachaml_store: Store) -> None:
    from chachaml.artifacts import FORMATS, register_format

    register_format(
        "upper",
        encode=lambda v: str(v).upper().encode(),
        decode=lambda fh: fh.read().decode().lower(),
        content_type="text/x-upper",
    )
    try:
        with chachaml.with_run() as run:
            art = chachaml.log_artifact("shout", "hello", format="upper")
        assert (art.format, art.content_type) == ("upper", "text/x-upper")
        assert Path(chachaml.artifact_path(run.id, "shout")).read_bytes() == b"HELLO"
        assert chachaml.load_artifact(run.id, "shout") == "hello"
    finally:
        del FORMATS["upper"]
    with pytest.raises(InvalidValueError, match=r"'upper'.*not registered"):
        chachaml.load_artifact(run.id, "shout")


def test_table_from_dicts_is_stored_as_json_columns_and_rows(chachaml_store: Store) -> None:
    rows = [{"id": 1, "score": np.float32(0.5)}, {"id": 2, "label": "cat"}]
    with chachaml.with_run() as run:
        art = chachaml.log_table("preds", rows)
    assert art.format == "table"
    assert art.content_type == "application/vnd.chachaml.table+json"
    on_disk = json.loads(Path(chachaml.artifact_path(run.id, "preds")).read_text())
    assert on_disk == {"columns": ["id", "score", "label"], "rows": [[1, 0.5, None], [2, None, "cat"]]}
    assert chachaml.load_artifact(run.id, "preds") == [
        {"id": 1, "score": 0.5, "label": None},
        {"id": 2, "score": None, "label": "cat"},
    ]


def test_table_from_headers_and_rows_and_from_a_dataframe(chachaml_store: Store) -> None:
    import pandas as pd

    with chachaml.with_run() as run:
        chachaml.log_table("t1", (["a", "b"], [(1, 2), (3, 4)]))
        chachaml.log_table("t2", pd.DataFrame({"a": [1, 3], "b": [2.5, 4.5]}))
        with pytest.raises(InvalidValueError, match="row 1 has 1 cells but there are 2 headers"):
            chachaml.log_table("bad", (["a", "b"], [(1, 2), (3,)]))
        with pytest.raises(InvalidValueError, match="unique"):
            chachaml.log_table("bad", (["a", "a"], [(1, 2)]))
        with pytest.raises(InvalidValueError, match="list of dicts"):
            chachaml.log_table("bad", 42)
    assert chachaml.load_artifact(run.id, "t1") == [{"a": 1, "b": 2}, {"a": 3, "b": 4}]
    assert chachaml.load_artifact(run.id, "t2") == [{"a": 1, "b": 2.5}, {"a": 3, "b": 4.5}]
    assert [a.name for a in chachaml.list_artifacts(run.id)] == ["t1", "t2"]


def test_figure_is_stored_as_png(chachaml_store: Store) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    ax.plot([0, 1, 2], [1, 0.5, 0.2])
    try:
        with chachaml.with_run() as run:
            art = chachaml.log_figure(fig, "plots/loss.png")
            chachaml.log_figure(ax, "plots/from-axes.png")  # an Axes works too
            with pytest.raises(InvalidValueError, match="matplotlib Figure"):
                chachaml.log_figure("not a figure", "x.png")
    finally:
        plt.close(fig)
    assert art.content_type == "image/png"
    data = chachaml.load_artifact(run.id, "plots/loss.png")
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert art.size == len(data)


@pytest.mark.slow
def test_log_figure_without_matplotlib_says_what_to_install(tmp_path: Path) -> None:
    code = (
        "import sys; sys.modules['matplotlib'] = None\n"
        "import chachaml\n"
        f"chachaml.use_store({str(tmp_path / 'x.db')!r})\n"
        "chachaml.start_run()\n"
        "try:\n"
        "    chachaml.log_figure(object(), 'f.png')\n"
        "except chachaml.MissingDependencyError as e:\n"
        "    print('MISSING', isinstance(e, ImportError), e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert "MISSING True" in out.stdout
    assert "pip install matplotlib" in out.stdout


# -- files ----------------------------------------------------------------------------------------
def test_log_file_streams_a_multi_chunk_file_and_records_its_hash(
    chachaml_store: Store, tmp_path: Path
) -> None:
    src = tmp_path / "data" / "train.csv"
    src.parent.mkdir()
    payload = os.urandom(3 * CHUNK + 12345)
    src.write_bytes(payload)
    with chachaml.with_run() as run:
        art = chachaml.log_file(src)
        named = chachaml.log_file(str(src), "inputs/train-copy.csv")
    assert art.name == "train.csv"
    assert art.size == len(payload)
    assert art.sha256 == hashlib.sha256(payload).hexdigest()
    assert art.content_type == "text/csv"
    assert named.sha256 == art.sha256
    assert chachaml.load_artifact(run.id, "train.csv") == payload
    stored = Path(chachaml.artifact_path(run.id, "inputs/train-copy.csv"))
    assert stored.read_bytes() == payload
    assert stored == _root(chachaml_store) / run.id / "inputs" / "train-copy.csv"


def test_log_file_refuses_missing_files_and_folders(chachaml_store: Store, tmp_path: Path) -> None:
    with chachaml.with_run() as run:
        with pytest.raises(InvalidValueError, match="no file at"):
            chachaml.log_file(tmp_path / "nope.bin")
        with pytest.raises(InvalidValueError, match="is a folder"):
            chachaml.log_file(tmp_path, "dir")
    assert chachaml.list_artifacts(run.id) == []


def test_artifacts_live_next_to_the_database(tmp_path: Path) -> None:
    with chachaml.with_store(tmp_path / "exp.db"), chachaml.with_run() as run:
        chachaml.log_artifact("m.pkl", {"a": 1})
    assert (tmp_path / "exp-artifacts" / run.id / "m.pkl").is_file()


def test_memory_store_keeps_artifacts_in_a_temporary_folder_removed_on_close() -> None:
    with chachaml.with_store(":memory:") as store:
        assert store.artifact_root is None  # type: ignore[attr-defined]  # nothing created yet
        with chachaml.with_run() as run:
            chachaml.log_artifact("a.txt", "hello")
        root = _root(store)
        assert (root / run.id / "a.txt").read_text() == "hello"
        assert chachaml.load_artifact(run.id, "a.txt") == "hello"
    assert not root.exists()


# -- names ----------------------------------------------------------------------------------------
HOSTILE_NAMES = [
    "",
    "..",
    ".",
    "../escape.txt",
    "../../etc/passwd",
    "a/../../escape.txt",
    "a/../b",
    "/etc/passwd",
    "/tmp/x",
    "C:/Windows/x",
    "c:x",
    "..\\escape.txt",
    "a\\..\\..\\b",
    "x\x00y",
    "lone\udc80surrogate",
    "tab\tname",
    "a//b",
    "a/./b",
    "trailing/",
    TMP_PREFIX + "x",
    "x" * 1001,
    "a/" + "y" * 256,
]


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_name_that_could_escape_the_run_folder_raises_and_writes_nothing(
    chachaml_store: Store, tmp_path: Path, name: str
) -> None:
    before = _files_under(tmp_path)
    with chachaml.with_run() as run:
        with pytest.raises(InvalidValueError):
            chachaml.log_artifact(name, b"payload")
        with pytest.raises(InvalidValueError):
            chachaml.log_artifact(name, "text")
        with pytest.raises(InvalidValueError):
            chachaml.log_table(name, [{"a": 1}])
        src = tmp_path.parent / f"src-{os.getpid()}.bin"
        src.write_bytes(b"file payload")
        try:
            with pytest.raises(InvalidValueError):
                chachaml.log_file(src, name)
        finally:
            src.unlink()
    after = [f for f in _files_under(tmp_path) if not f.startswith("chachaml.db")]
    assert after == [f for f in before if not f.startswith("chachaml.db")]
    assert chachaml.list_artifacts(run.id) == []
    assert not _root(chachaml_store).exists()


@settings(max_examples=300, deadline=None)
@given(name=st.text(alphabet=st.sampled_from(["a", ".", "/", "\\", ":", "\x00", "~", " ", "é"]), max_size=12))
def test_every_accepted_name_resolves_inside_the_run_folder(
    tmp_path_factory: pytest.TempPathFactory, name: str
) -> None:
    root = tmp_path_factory.getbasetemp() / "names-root"
    files = LocalFiles(str(root))
    run_id = "0" * 32
    try:
        path = files.final_path(run_id, name)
    except InvalidValueError:
        return
    run_dir = os.path.realpath(root / run_id)
    assert os.path.commonpath([run_dir, os.path.realpath(path)]) == run_dir
    assert os.path.realpath(path) != run_dir


def test_symlink_inside_the_run_folder_cannot_lead_outside(chachaml_store: Store, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    with chachaml.with_run() as run:
        chachaml.log_artifact("first.txt", "x")
        os.symlink(outside, _root(chachaml_store) / run.id / "link")
        with pytest.raises(InvalidValueError, match="outside the run's folder"):
            chachaml.log_artifact("link/evil.txt", "owned")
    assert list(outside.iterdir()) == []


def test_names_with_slashes_make_folders(chachaml_store: Store) -> None:
    with chachaml.with_run() as run:
        chachaml.log_artifact("plots/2024/loss.txt", "l")
        chachaml.log_artifact("plots/acc.txt", "a")
    assert [a.name for a in chachaml.list_artifacts(run.id)] == ["plots/2024/loss.txt", "plots/acc.txt"]
    assert (_root(chachaml_store) / run.id / "plots" / "2024" / "loss.txt").read_text() == "l"


def test_an_artifact_cannot_be_both_a_file_and_a_folder(chachaml_store: Store) -> None:
    with chachaml.with_run() as run:
        chachaml.log_artifact("a", "file")
        chachaml.log_artifact("b/c", "nested")
        with pytest.raises(ConflictError, match="clashes with the artifact 'a'"):
            chachaml.log_artifact("a/x", "under a file")
        with pytest.raises(ConflictError, match="clashes with the artifact 'b/c'"):
            chachaml.log_artifact("b", "over a folder")
    assert chachaml.load_artifact(run.id, "a") == "file"
    assert chachaml.load_artifact(run.id, "b/c") == "nested"
    assert [a.name for a in chachaml.list_artifacts(run.id)] == ["a", "b/c"]


# -- immutability ------------------------------------------------------------------------------------
def test_same_bytes_again_is_a_no_op(chachaml_store: Store) -> None:
    with chachaml.with_run() as run:
        first = chachaml.log_artifact("m.txt", "same")
        path = Path(chachaml.artifact_path(run.id, "m.txt"))
        st_before = path.stat()
        again = chachaml.log_artifact("m.txt", "same")
    assert again == first  # the stored artifact, with its original creation time
    st_after = path.stat()
    assert (st_after.st_ino, st_after.st_mtime_ns) == (st_before.st_ino, st_before.st_mtime_ns)
    assert len(_rows(chachaml_store)) == 1


def test_same_file_logged_twice_is_a_no_op(chachaml_store: Store, tmp_path: Path) -> None:
    src = tmp_path / "w.bin"
    src.write_bytes(b"weights" * 1000)
    with chachaml.with_run() as run:
        first = chachaml.log_file(src)
        assert chachaml.log_file(src) == first
    assert _files_under(_root(chachaml_store)) == [f"{run.id}/w.bin"]  # no temporary file left


def test_other_bytes_raise_conflict_and_leave_the_original_intact(
    chachaml_store: Store, tmp_path: Path
) -> None:
    src = tmp_path / "other.bin"
    src.write_bytes(b"different")
    with chachaml.with_run() as run:
        original = chachaml.log_artifact("m.bin", b"original")
        path = Path(chachaml.artifact_path(run.id, "m.bin"))
        with pytest.raises(ConflictError, match="overwrite=True"):
            chachaml.log_artifact("m.bin", b"changed")
        with pytest.raises(ConflictError):
            chachaml.log_file(src, "m.bin")
        with pytest.raises(ConflictError, match="format 'bytes'"):
            chachaml.log_artifact("m.bin", "original")  # same bytes, but text instead of bytes
    assert path.read_bytes() == b"original"
    assert chachaml.list_artifacts(run.id) == [original]
    assert _files_under(_root(chachaml_store)) == [f"{run.id}/m.bin"]  # the rejected copies are gone


def test_overwrite_replaces_bytes_and_metadata(chachaml_store: Store) -> None:
    with chachaml.with_run() as run:
        chachaml.log_artifact("m", {"v": 1})
        new = chachaml.log_artifact("m", "now text", overwrite=True)
    assert new.format == "text"
    assert new.sha256 == hashlib.sha256(b"now text").hexdigest()
    assert chachaml.load_artifact(run.id, "m") == "now text"
    assert chachaml.list_artifacts(run.id) == [new]


# -- runs -------------------------------------------------------------------------------------------
def test_logging_needs_a_running_run(chachaml_store: Store, tmp_path: Path) -> None:
    with pytest.raises(NoActiveRunError):
        chachaml.log_artifact("a", b"x")
    with chachaml.with_run() as run:
        pass
    with pytest.raises(RunStateError, match="completed"):
        chachaml.log_artifact("a", b"x", run=run)
    src = tmp_path / "f.bin"
    src.write_bytes(b"f")
    with pytest.raises(RunStateError):
        chachaml.log_file(src, run=run.id)
    assert chachaml.list_artifacts(run.id) == []
    assert not (_root(chachaml_store) / run.id).exists()


def test_missing_artifact_raises_naming_what_the_run_has(chachaml_store: Store) -> None:
    with chachaml.with_run() as run:
        chachaml.log_artifact("model.pkl", 1)
    with pytest.raises(ArtifactNotFoundError, match=r"'model.pk'.*its artifacts: 'model.pkl'") as exc:
        chachaml.load_artifact(run.id, "model.pk")
    assert isinstance(exc.value, LookupError)
    with pytest.raises(ArtifactNotFoundError):
        chachaml.artifact_path(run.id, "nope")
    with pytest.raises(RunNotFoundError):
        chachaml.load_artifact("f" * 32, "model.pkl")
    with pytest.raises(RunNotFoundError):
        chachaml.list_artifacts("f" * 32)


def test_reads_accept_a_run_object_or_an_id_prefix(chachaml_store: Store) -> None:
    with chachaml.with_run() as run:
        chachaml.log_artifact("x", 1)
        assert [a.name for a in chachaml.list_artifacts()] == ["x"]  # default: the current run
    assert chachaml.load_artifact(run, "x") == 1
    assert chachaml.load_artifact(run.id[:6], "x") == 1
    assert chachaml.artifact_path(run.id[:6], "x") == chachaml.artifact_path(run.id, "x")


def test_file_deleted_behind_our_back_is_reported_not_misread(chachaml_store: Store) -> None:
    with chachaml.with_run() as run:
        chachaml.log_artifact("gone.txt", "x")
    os.unlink(chachaml.artifact_path(run.id, "gone.txt"))
    with pytest.raises(ArtifactNotFoundError, match=r"its file .* is missing"):
        chachaml.load_artifact(run.id, "gone.txt")
    assert chachaml.gc_artifacts().missing == (f"{run.id}/gone.txt",)


def test_deleting_a_run_removes_its_artifact_files(chachaml_store: Store) -> None:
    with chachaml.with_run() as doomed:
        chachaml.log_artifact("a/b.txt", "x")
    with chachaml.with_run() as kept:
        chachaml.log_artifact("c.txt", "y")
    chachaml.delete_run(doomed.id)
    assert _files_under(_root(chachaml_store)) == [f"{kept.id}/c.txt"]
    assert [r[1] for r in _rows(chachaml_store)] == ["c.txt"]


# -- entities -----------------------------------------------------------------------------------------
def test_artifact_prints_short_and_converts_to_dict(chachaml_store: Store) -> None:
    with chachaml.with_run() as run:
        art = chachaml.log_artifact("model.pkl", b"x" * 2048)
    assert repr(art) == f"<Artifact 'model.pkl' 2.0 kB bytes run={run.id[:8]} sha256={art.sha256[:12]}>"
    assert art.to_dict()["path"] == f"{run.id}/model.pkl"
    assert set(art.to_dict()) == {
        "run_id",
        "name",
        "size",
        "sha256",
        "content_type",
        "format",
        "created",
        "path",
    }
    assert "<table>" in art._repr_html_() and "model.pkl" in art._repr_html_()


def test_loading_a_pickle_is_documented_as_running_code() -> None:
    assert "runs code" in (chachaml.load_artifact.__doc__ or "")
    assert "runs code" in (chachaml.load_model.__doc__ or "")


# -- crashes and garbage collection --------------------------------------------------------------------
@pytest.mark.slow
def test_crash_between_bytes_and_row_leaves_an_orphan_that_gc_removes(chachaml_store: Store) -> None:
    with chachaml.with_run() as run:
        chachaml.log_artifact("kept.txt", "kept")
        proc = subprocess.run(
            [sys.executable, WORKER, "crash_after_rename", chachaml_store.path, run.id, "half.bin"],  # type: ignore[attr-defined]
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert proc.returncode == 17, proc.stderr
        orphan = _root(chachaml_store) / run.id / "half.bin"
        assert orphan.read_bytes() == b"orphan bytes" * 1000  # the bytes made it to disk ...
        assert [a.name for a in chachaml.list_artifacts(run.id)] == ["kept.txt"]  # ... the row did not
        with pytest.raises(ArtifactNotFoundError):
            chachaml.load_artifact(run.id, "half.bin")

        preview = chachaml.gc_artifacts(dry_run=True)
        assert preview.removed == (f"{run.id}/half.bin",) and preview.dry_run
        assert orphan.exists()

        report = chachaml.gc_artifacts()
        assert report.removed == (f"{run.id}/half.bin",)
        assert report.freed_bytes == 12000
        assert not orphan.exists()
        assert chachaml.load_artifact(run.id, "kept.txt") == "kept"
        assert chachaml.gc_artifacts().removed == ()

        chachaml.log_artifact("half.bin", b"logged again after the crash")  # the name is usable
    assert chachaml.load_artifact(run.id, "half.bin") == b"logged again after the crash"


@pytest.mark.slow
def test_sigkill_during_a_streamed_copy_leaves_a_temp_file_that_gc_removes(
    chachaml_store: Store, tmp_path: Path
) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with chachaml.with_run() as run:
        chachaml.log_artifact("kept.txt", "kept")
        proc = subprocess.Popen(
            [sys.executable, WORKER, "log_fifo", chachaml_store.path, run.id, "big.bin", str(fifo)],  # type: ignore[attr-defined]
            stderr=subprocess.PIPE,
        )
        run_dir = _root(chachaml_store) / run.id
        try:
            with open(fifo, "wb") as pipe:  # blocks until the worker opens the pipe for reading
                pipe.write(os.urandom(2 * CHUNK))
                pipe.flush()
                deadline = time.monotonic() + 60
                while True:  # wait until the worker has copied part of the stream
                    temps = [p for p in run_dir.iterdir() if p.name.startswith(TMP_PREFIX)]
                    if temps and temps[0].stat().st_size >= CHUNK // 2:
                        break
                    assert time.monotonic() < deadline, "the worker never started copying"
                    time.sleep(0.01)
                proc.send_signal(signal.SIGKILL)
                proc.wait(timeout=60)
        except BrokenPipeError:
            pass
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            assert proc.stderr is not None
            proc.stderr.close()
        assert proc.returncode == -signal.SIGKILL
        temp = temps[0]
        assert temp.exists()
        assert [a.name for a in chachaml.list_artifacts(run.id)] == ["kept.txt"]
        report = chachaml.gc_artifacts()
    assert report.removed == (f"{run.id}/{temp.name}",)
    assert report.freed_bytes >= CHUNK // 2
    assert _files_under(_root(chachaml_store)) == [f"{run.id}/kept.txt"]


def test_gc_keeps_a_temp_file_whose_writer_is_alive(chachaml_store: Store) -> None:
    with chachaml.with_run() as run:
        chachaml.log_artifact("kept.txt", "kept")
    live = _root(chachaml_store) / run.id / f"{TMP_PREFIX}{_host()}-{os.getpid()}-abc"
    live.write_bytes(b"being written")
    dead_pid = _dead_pid()
    dead = _root(chachaml_store) / run.id / f"{TMP_PREFIX}{_host()}-{dead_pid}-abc"
    dead.write_bytes(b"left behind")
    report = chachaml.gc_artifacts()
    assert report.removed == (f"{run.id}/{dead.name}",)
    assert live.exists() and not dead.exists()


def test_gc_removes_folders_of_runs_that_no_longer_exist(chachaml_store: Store) -> None:
    with chachaml.with_run() as run:
        chachaml.log_artifact("kept.txt", "kept")
    ghost = _root(chachaml_store) / ("e" * 32) / "deep" / "file.bin"
    ghost.parent.mkdir(parents=True)
    ghost.write_bytes(b"12345")
    stray = _root(chachaml_store) / "README-not-ours.txt"  # files directly in the root are left alone
    stray.write_text("hi")
    report = chachaml.gc_artifacts()
    assert report.removed == ("e" * 32 + "/deep/file.bin",)
    assert report.freed_bytes == 5
    assert not (_root(chachaml_store) / ("e" * 32)).exists()
    assert stray.exists()
    assert chachaml.load_artifact(run.id, "kept.txt") == "kept"
    assert "removed 1 file, 5 B" in repr(report)


def test_gc_on_a_store_without_artifacts_reports_nothing(chachaml_store: Store) -> None:
    report = chachaml.gc_artifacts()
    assert report.removed == () and report.freed_bytes == 0 and report.missing == ()


@pytest.mark.slow
def test_two_processes_logging_one_name_with_different_bytes_one_wins_intact(chachaml_store: Store) -> None:
    go = Path(chachaml_store.path).with_name("go")  # type: ignore[attr-defined]
    with chachaml.with_run() as run:
        procs = [
            subprocess.Popen(
                [
                    sys.executable,
                    WORKER,
                    "log_same",
                    chachaml_store.path,
                    run.id,
                    "race.bin",
                    payload,
                    str(go),
                ],  # type: ignore[attr-defined]
                stdout=subprocess.PIPE,
                text=True,
            )
            for payload in ("A", "B", "C")
        ]
        time.sleep(0.5)
        go.touch()
        outcomes = sorted(p.communicate(timeout=120)[0].strip() for p in procs)
        assert all(p.returncode == 0 for p in procs)
        assert outcomes == ["conflict", "conflict", "stored"]
        (art,) = chachaml.list_artifacts(run.id)
        data = Path(chachaml.artifact_path(run.id, "race.bin")).read_bytes()
        assert hashlib.sha256(data).hexdigest() == art.sha256 and len(data) == art.size == 100_000
        assert _files_under(_root(chachaml_store)) == [f"{run.id}/race.bin"]


def _host() -> str:
    from chachaml.store import _files

    return _files._HOST


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_streams_and_partly_read_files_are_stored_from_their_current_position(
    chachaml_store: Store, tmp_path: Path
) -> None:
    import io

    payload = os.urandom(2 * CHUNK + 7)
    src = tmp_path / "src.bin"
    src.write_bytes(payload)
    with chachaml.with_run() as run:
        streamed = chachaml_store.log_artifact(
            run.id, "stream.bin", io.BytesIO(payload), format="bytes", content_type="x/y", created=1
        )
        with open(src, "rb") as fh:  # a buffered reader that has already read ahead
            fh.read(100)
            tail = chachaml_store.log_artifact(
                run.id, "tail.bin", fh, format="bytes", content_type="x/y", created=1
            )
    assert (streamed.size, streamed.sha256) == (len(payload), hashlib.sha256(payload).hexdigest())
    assert (tail.size, tail.sha256) == (len(payload) - 100, hashlib.sha256(payload[100:]).hexdigest())
    assert chachaml.load_artifact(run.id, "tail.bin") == payload[100:]


def test_the_artifacts_guide_runs() -> None:
    """Every ```python block of docs/artifacts.md, in order, in one namespace (a fresh folder)."""
    _run_guide("artifacts.md")


def _run_guide(page: str) -> None:
    import re

    text = (Path(__file__).resolve().parents[1] / "docs" / page).read_text(encoding="utf-8")
    blocks = re.findall(r"^```python\n(.*?)^```", text, re.MULTILINE | re.DOTALL)
    assert blocks
    namespace: dict[str, Any] = {"__name__": f"docs_{page.removesuffix('.md')}"}
    for number, source in enumerate(blocks, 1):
        exec(compile(source, f"{page} (python block {number})", "exec"), namespace)


def test_lone_surrogates_in_names_and_text_are_refused_before_anything_is_written(
    chachaml_store: Store,
) -> None:
    with chachaml.with_run() as run:
        with pytest.raises(InvalidValueError, match="lone surrogate"):
            chachaml.log_artifact("bad\udc80name.txt", "x")
        with pytest.raises(InvalidValueError, match="lone surrogate"):
            chachaml.log_artifact("ok.txt", "bad \ud800 text")
        with pytest.raises(InvalidValueError, match="lone surrogate"):
            chachaml.log_artifact("ok.json", {"k": "\udfff"}, format="json")
        with pytest.raises(InvalidValueError, match="as JSON"):
            loop: list[Any] = []
            loop.append(loop)
            chachaml.log_artifact("loop.json", loop, format="json")
    assert chachaml.list_artifacts(run.id) == []
    assert _files_under(_root(chachaml_store)) == []


@pytest.mark.slow
def test_quick_artifacts_benchmark_reports_every_figure_and_cleans_up(tmp_path: Path) -> None:
    """The benchmark script runs and prints each figure with a verdict (timings never asserted)."""
    script = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_artifacts.py"
    proc = subprocess.run(
        [sys.executable, str(script), "--quick", "--dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    for label in ("log_file 64 MB", "memory, log_file 64 MB", "memory vs file size", "register_model"):
        assert any(line.startswith(label) for line in proc.stdout.splitlines()), proc.stdout
    assert proc.stdout.count("load_model (") == 3
    assert "summary:" in proc.stdout
    assert list(tmp_path.iterdir()) == []  # the large files are deleted
