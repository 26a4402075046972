"""Artifacts in S3-compatible object storage (issue 10, part 2), against moto's server over HTTP.

What is proven here beyond the conformance suite (which runs whole on a SQLite store with S3
artifacts, ``tests/conformance/conftest.py``): the public API with ``artifacts=``, the object
written before its row, the temporary key, ``gc`` only under a prefix proven to be the store's,
streaming both ways with a bounded memory peak (a 300 MB stream in a subprocess), and boto3 being
optional and lazily imported.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import _s3
import chachaml
from chachaml.client import Client
from chachaml.errors import ArtifactNotFoundError, ConflictError, StoreError
from chachaml.rules import TMP_PREFIX
from chachaml.store import open_store
from chachaml.store._files import _HOST, MARKER_PREFIX


@pytest.fixture
def location(monkeypatch: pytest.MonkeyPatch) -> str:
    _s3.use_moto(monkeypatch)
    return _s3.new_location()


def _keys(location: str) -> list[str]:
    bucket, _, prefix = location[len("s3://") :].partition("/")
    pages = _s3.client().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix + "/")
    return sorted(o["Key"][len(prefix) + 1 :] for p in pages for o in p.get("Contents", ()))


def _put(location: str, rel: str, body: bytes) -> None:
    bucket, _, prefix = location[len("s3://") :].partition("/")
    _s3.client().put_object(Bucket=bucket, Key=f"{prefix}/{rel}", Body=body)


def test_use_store_with_s3_artifacts_round_trips_through_the_public_api(
    location: str, tmp_path: Path
) -> None:
    chachaml.use_store(tmp_path / "runs.db", artifacts=location)
    with chachaml.with_run("s3") as run:
        art = chachaml.log_artifact("model.json", {"w": [1, 2, 3]})
        chachaml.log_artifact("blob.bin", b"\x00\x01" * 1000)
    assert chachaml.load_artifact(run.id, "model.json") == {"w": [1, 2, 3]}
    c = Client(chachaml.current_store())
    with c.open_artifact(run.id, "blob.bin") as fh:
        data = fh.read()
    assert data == b"\x00\x01" * 1000
    with c.open_artifact(run.id, "model.json") as fh:
        assert hashlib.sha256(fh.read()).hexdigest() == art.sha256  # recorded while streaming
    keys = _keys(location)
    assert f"{run.id}/model.json" in keys and f"{run.id}/blob.bin" in keys
    assert [k for k in keys if k.startswith(MARKER_PREFIX)], keys  # the prefix is marked as ours
    assert not (tmp_path / "runs-artifacts").exists()  # nothing went next to the database
    assert not [k for k in keys if TMP_PREFIX in k]  # no temporary object is left behind


def test_client_and_with_store_take_artifacts_too(location: str, tmp_path: Path) -> None:
    with Client(tmp_path / "c.db", artifacts=location) as c:
        run = c.start_run("client")
        c.log_artifact("x.txt", "hello", run=run)
        c.end_run(run)
        assert c.load_artifact(run, "x.txt") == "hello"
    with chachaml.with_store(tmp_path / "c.db", artifacts=location):
        assert chachaml.load_artifact(run.id, "x.txt") == "hello"
    assert f"{run.id}/x.txt" in _keys(location)


def test_same_bytes_are_a_no_op_other_bytes_conflict_and_overwrite_replaces(
    location: str, tmp_path: Path
) -> None:
    store = open_store(tmp_path / "r.db", artifacts=location)
    c = Client(store)
    run = c.start_run()
    first = c.log_artifact("a.bin", b"one", run=run)
    assert c.log_artifact("a.bin", b"one", run=run) == first
    with pytest.raises(ConflictError, match="overwrite=True"):
        c.log_artifact("a.bin", io.BytesIO(b"two"), run=run)
    with store.open_artifact(run.id, "a.bin") as fh:
        assert fh.read() == b"one"  # the stored object was never touched
    c.log_artifact("a.bin", b"two", run=run, overwrite=True)
    with store.open_artifact(run.id, "a.bin") as fh:
        assert fh.read() == b"two"
    assert not [k for k in _keys(location) if TMP_PREFIX in k]
    store.close()


def test_no_row_without_its_object_when_the_upload_fails(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _s3.use_moto(monkeypatch)
    missing = "s3://no-such-bucket-chachaml/x"  # uploads fail: the bucket does not exist
    with Client(tmp_path / "r.db", artifacts=missing) as c:
        run = c.start_run()
        with pytest.raises(StoreError, match="no-such-bucket-chachaml"):
            c.log_artifact("a.bin", b"data", run=run)
        assert c.list_artifacts(run) == []


def test_gc_removes_orphans_and_abandoned_temporaries_under_its_own_prefix_only(
    location: str, tmp_path: Path
) -> None:
    with Client(tmp_path / "r.db", artifacts=location) as c:
        run = c.start_run()
        c.log_artifact("kept.txt", "kept", run=run)
        _put(location, f"{run.id}/orphan.bin", b"12345")
        dead = f"{TMP_PREFIX}{_HOST}-999999999-abcdefabcdef"  # no such pid on this host
        _put(location, f"{run.id}/{dead}", b"xy")
        live = f"{TMP_PREFIX}{_HOST}-{os.getpid()}-abcdefabcdef"  # a writer that is alive
        _put(location, f"{run.id}/{live}", b"z")
        _put(location + "-other", "somebody/else.txt", b"not ours")  # beside our prefix
        report = c.gc_artifacts(dry_run=True)
        assert sorted(report.removed) == sorted([f"{run.id}/orphan.bin", f"{run.id}/{dead}"])
        assert f"{run.id}/orphan.bin" in _keys(location)  # dry run: nothing removed
        report = c.gc_artifacts()
        assert (report.freed_bytes, report.missing) == (7, ())
        assert _keys(location) == sorted(
            [k for k in _keys(location) if k.startswith(MARKER_PREFIX)]
            + [f"{run.id}/kept.txt", f"{run.id}/{live}"]
        )
        assert _keys(location + "-other") == ["somebody/else.txt"]
        assert c.load_artifact(run, "kept.txt") == "kept"
        # An object deleted behind chachaml's back: gc reports the row, reading it names the fix.
        bucket, _, prefix = location[len("s3://") :].partition("/")
        _s3.client().delete_object(Bucket=bucket, Key=f"{prefix}/{run.id}/kept.txt")
        assert c.gc_artifacts(dry_run=True).missing == (f"{run.id}/kept.txt",)
        with pytest.raises(ArtifactNotFoundError, match="overwrite=True"):
            c.load_artifact(run, "kept.txt")


def test_gc_never_touches_a_prefix_another_store_marked(location: str, tmp_path: Path) -> None:
    with Client(tmp_path / "a.db", artifacts=location) as a:
        run = a.start_run()
        a.log_artifact("x.txt", "x", run=run)
    with Client(tmp_path / "b.db", artifacts=location) as b:  # same prefix, another database
        assert b.gc_artifacts().removed == ()
        other = b.start_run()
        with pytest.raises(StoreError, match="belongs to another chachaml store"):
            b.log_artifact("y.txt", "y", run=other)
    assert f"{run.id}/x.txt" in _keys(location)


def test_a_prefix_holding_foreign_objects_is_refused(location: str, tmp_path: Path) -> None:
    _put(location, "someone/data.csv", b"a,b")
    with Client(tmp_path / "r.db", artifacts=location) as c:
        run = c.start_run()
        with pytest.raises(StoreError, match="already holds files"):
            c.log_artifact("x.txt", "x", run=run)
        assert c.gc_artifacts().removed == ()
    assert _keys(location) == ["someone/data.csv"]


def test_delete_run_removes_its_objects_and_artifact_path_says_object_storage(
    location: str, tmp_path: Path
) -> None:
    with Client(tmp_path / "r.db", artifacts=location) as c:
        keep, gone = c.start_run(), c.start_run()
        c.log_artifact("a.txt", "a", run=keep)
        c.log_artifact("b/c.txt", "b", run=gone)
        c.end_run(gone)
        c.delete_run(gone)
        assert not [k for k in _keys(location) if k.startswith(gone.id)]
        assert f"{keep.id}/a.txt" in _keys(location)
        with pytest.raises(StoreError, match="object storage"):
            c.artifact_path(keep, "a.txt")


def test_a_multipart_object_streams_back_in_chunks(location: str, tmp_path: Path) -> None:
    data = os.urandom(1 << 20) * 20  # 20 MiB: three parts of 8 MiB
    with Client(tmp_path / "r.db", artifacts=location) as c:
        run = c.start_run()
        big = tmp_path / "big.bin"
        big.write_bytes(data)
        art = c.log_file(big, run=run)
        assert (art.size, art.sha256) == (len(data), hashlib.sha256(data).hexdigest())
        h = hashlib.sha256()
        with c.open_artifact(run, "big.bin") as fh:
            while piece := fh.read(1 << 20):
                assert len(piece) <= 1 << 20
                h.update(piece)
        assert h.hexdigest() == art.sha256


_STREAM = textwrap.dedent(
    """
    import hashlib, json, resource, sys
    from chachaml.client import Client

    def peak_mb():
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    with Client(sys.argv[1], artifacts=sys.argv[2]) as c:
        run = c.start_run()
        c.log_artifact("warmup.bin", b"x", run=run)  # boto3 and the connection pool loaded
        base = peak_mb()
        art = c.log_file(sys.argv[3], "big.bin", run=run)  # streamed up in parts
        after_put = peak_mb()
        h = hashlib.sha256()
        with c.open_artifact(run, "big.bin") as fh:  # streamed down
            while piece := fh.read(1 << 20):
                h.update(piece)
        print(json.dumps({"base": base, "put": after_put, "get": peak_mb(), "size": art.size,
                          "sha": art.sha256, "read_sha": h.hexdigest()}))
    """
)


@pytest.mark.slow
def test_a_300_mb_file_goes_up_and_down_without_sitting_in_memory(location: str, tmp_path: Path) -> None:
    size = 300 << 20  # a sparse file: 300 MB to read, no disk used
    sparse = tmp_path / "sparse.bin"
    with open(sparse, "wb") as fh:
        fh.truncate(size)
    script = tmp_path / "stream.py"
    script.write_text(_STREAM)
    proc = subprocess.run(
        [sys.executable, str(script), str(tmp_path / "r.db"), location, str(sparse)],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, **_s3.environ()},
    )
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    expected = hashlib.sha256()
    zeros = bytes(1 << 20)
    for _ in range(size >> 20):
        expected.update(zeros)
    assert (got["size"], got["sha"], got["read_sha"]) == (size, expected.hexdigest(), expected.hexdigest())
    # Peak RSS grows by the few 8 MiB parts in flight, not by the 300 MB that went through.
    assert got["put"] - got["base"] < 100, got
    assert got["get"] - got["base"] < 100, got


def test_boto3_is_optional_and_imported_only_for_s3() -> None:
    code = textwrap.dedent(
        """
        import sys
        class Block:
            def find_spec(self, name, path=None, target=None):
                if name == "boto3" or name.startswith(("boto3.", "botocore")):
                    raise ImportError("blocked: " + name)
        sys.meta_path.insert(0, Block())
        import chachaml
        from chachaml.errors import MissingDependencyError
        from chachaml.store import open_store
        with chachaml.with_store(":memory:"):
            with chachaml.with_run():
                chachaml.log_artifact("a.txt", "local artifacts need no boto3")
        try:
            open_store("runs.db", artifacts="s3://bucket/prefix")
        except MissingDependencyError as exc:
            print("MISSING", exc)
        """
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "MISSING" in proc.stdout and "chachaml[s3]" in proc.stdout


def test_a_bad_s3_location_names_the_fix(tmp_path: Path) -> None:
    from chachaml.errors import InvalidValueError

    for bad in ("s3://", "s3:///prefix", "gs://bucket/x"):
        with pytest.raises(InvalidValueError, match="s3://bucket"):
            open_store(tmp_path / "r.db", artifacts=bad)


def test_the_location_is_recorded_in_the_database_and_a_different_one_is_refused(
    location: str, tmp_path: Path
) -> None:
    from chachaml.errors import InvalidValueError

    db = tmp_path / "runs.db"
    with Client(db, artifacts=location) as c:
        run = c.start_run("s3")
        c.log_artifact("model.json", {"w": 1}, run=run)
        c.end_run(run)
    with Client(db) as c:  # reopened without artifacts=: the recorded location is used
        assert c.load_artifact(run.id, "model.json") == {"w": 1}
        assert c.store.artifact_root == location
        run2 = c.start_run("again")
        c.log_artifact("more.json", [2], run=run2)
        c.end_run(run2)
    assert f"{run2.id}/more.json" in _keys(location)
    assert not (tmp_path / "runs-artifacts").exists()
    with Client(db, artifacts=location) as c:  # the same location again is fine
        assert c.load_artifact(run2.id, "more.json") == [2]
    other = _s3.new_location()
    for elsewhere in (other, str(tmp_path / "folder")):
        with pytest.raises(InvalidValueError) as err:
            Client(db, artifacts=elsewhere)
        message = str(err.value)
        assert location in message and os.path.basename(elsewhere) in message, message
        assert "chachaml migrate" in message and f"artifacts={location!r}" in message, message
    with chachaml.with_store(db):
        assert chachaml.load_artifact(run.id, "model.json") == {"w": 1}
