"""The ``ArtifactStore`` and ``RegistryStore`` roles, and the optional ``LocalArtifacts``, on
every backend. Bytes go in as bytes or as a stream and come out as a stream; nothing here looks
at files, except through ``LocalArtifacts`` when a backend has it."""

from __future__ import annotations

import hashlib
import io

import pytest

from chachaml.errors import (
    ArtifactNotFoundError,
    ConflictError,
    InvalidValueError,
    ModelNotFoundError,
    RunNotFoundError,
    RunStateError,
    StoreError,
)
from chachaml.store.base import LocalArtifacts, Store

from .test_store_contract import T0, new_run


def put(store: Store, run_id: str, name: str, data: bytes | io.BytesIO, **kw: object) -> object:
    return store.log_artifact(
        run_id, name, data, format="bytes", content_type="application/octet-stream", created=T0, **kw
    )  # type: ignore[arg-type]


# -- artifacts ------------------------------------------------------------------------------------
def test_log_artifact_records_size_and_sha256_and_open_streams_the_bytes(store: Store) -> None:
    run = new_run(store)
    data = b"0123456789" * 1000
    art = put(store, run.id, "dir/blob.bin", io.BytesIO(data))
    assert (art.name, art.size, art.sha256) == ("dir/blob.bin", len(data), hashlib.sha256(data).hexdigest())  # type: ignore[attr-defined]
    assert store.get_artifact(run.id, "dir/blob.bin") == art
    with store.open_artifact(run.id, "dir/blob.bin") as fh:
        assert fh.read() == data


def test_artifacts_are_immutable_unless_overwritten(store: Store) -> None:
    run = new_run(store)
    first = put(store, run.id, "a", b"one")
    assert put(store, run.id, "a", b"one") == first  # identical bytes: a no-op
    with pytest.raises(ConflictError, match="overwrite=True"):
        put(store, run.id, "a", b"two")
    with store.open_artifact(run.id, "a") as fh:
        assert fh.read() == b"one"
    put(store, run.id, "a", b"two", overwrite=True)
    with store.open_artifact(run.id, "a") as fh:
        assert fh.read() == b"two"


def test_artifact_names_cannot_escape_or_be_a_file_and_a_folder(store: Store) -> None:
    run = new_run(store)
    for bad in ("../x", "/etc/passwd", "a//b", "", "a\\b"):
        with pytest.raises(InvalidValueError):
            put(store, run.id, bad, b"x")
    put(store, run.id, "plots", b"x")
    with pytest.raises(ConflictError, match="plots"):
        put(store, run.id, "plots/loss.png", b"y")
    assert [a.name for a in store.list_artifacts(run.id)] == ["plots"]


def test_artifacts_need_a_running_run_and_an_existing_one(store: Store) -> None:
    run = new_run(store)
    store.end_run(run.id, "completed", T0 + 1)
    with pytest.raises(RunStateError):
        put(store, run.id, "late", b"x")
    with pytest.raises(RunNotFoundError):
        put(store, "f" * 32, "x", b"x")
    with pytest.raises(RunNotFoundError):
        store.list_artifacts("f" * 32)


def test_list_and_get_artifacts(store: Store) -> None:
    run = new_run(store)
    for name in ("b", "a/z", "a/y"):
        put(store, run.id, name, name.encode())
    assert [a.name for a in store.list_artifacts(run.id)] == ["a/y", "a/z", "b"]
    with pytest.raises(ArtifactNotFoundError, match="'a/y'"):  # names what the run has
        store.get_artifact(run.id, "nope")
    with pytest.raises(ArtifactNotFoundError):
        store.open_artifact(run.id, "nope")


def test_local_artifacts_when_the_backend_has_them(store: Store) -> None:
    if not isinstance(store, LocalArtifacts):
        pytest.skip("this backend keeps no local artifact files (LocalArtifacts is optional)")
    run = new_run(store)
    put(store, run.id, "f.txt", b"hello")
    if str(getattr(store, "artifact_root", "")).startswith("s3://"):  # bytes in object storage
        with pytest.raises(StoreError, match="object storage"):
            store.artifact_path(run.id, "f.txt")
    else:
        path = store.artifact_path(run.id, "f.txt")
        with open(path, "rb") as fh:
            assert fh.read() == b"hello"
    assert store.gc_artifacts(dry_run=True).removed == ()
    assert store.gc_artifacts().missing == ()


# -- registry ---------------------------------------------------------------------------------------
def _registered(store: Store) -> str:
    run = new_run(store)
    put(store, run.id, "model.pkl", b"weights")
    store.register_model("churn", run_id=run.id, artifact="model.pkl", who="alice", now=T0)
    store.register_model(
        "churn", run_id=run.id, artifact="model.pkl", stage="staging", description="v2", now=T0 + 1
    )
    return run.id


def test_register_model_numbers_versions_and_needs_the_artifact(store: Store) -> None:
    run_id = _registered(store)
    versions = store.model_versions("churn")
    assert [(v.version, v.stage, v.description) for v in versions] == [
        (1, "none", None),
        (2, "staging", "v2"),
    ]
    assert versions[0].created_by == "alice" and versions[0].run_id == run_id
    with pytest.raises(ArtifactNotFoundError, match=r"model\.pkl"):
        store.register_model("churn", run_id=run_id, artifact="missing", now=T0)
    with pytest.raises(RunNotFoundError):
        store.register_model("churn", run_id="f" * 32, artifact="model.pkl", now=T0)
    with pytest.raises(ConflictError):  # a run behind a version cannot be deleted
        store.delete_run(run_id)


def test_promote_keeps_one_production_version_and_records_history(store: Store) -> None:
    _registered(store)
    store.promote("churn", 1, "production", who="bob", now=T0 + 2)
    v2 = store.promote("churn", 2, "production", who="bob", now=T0 + 3)
    assert v2.stage == "production"
    assert [v.stage for v in store.model_versions("churn")] == ["archived", "production"]
    with pytest.raises(ModelNotFoundError):
        store.promote("churn", 9, "production", now=T0 + 4)
    assert store.get_model_version("churn", stage="production").version == 2
    kinds = [(e.kind, e.version, e.from_value, e.to_value) for e in store.model_history("churn")]
    assert kinds[-2:] == [("stage", 1, "production", "archived"), ("stage", 2, "staging", "production")]


def test_aliases_and_descriptions(store: Store) -> None:
    _registered(store)
    assert store.set_alias("churn", "champion", 1, now=T0).aliases == ("champion",)
    store.set_alias("churn", "champion", 2, now=T0 + 1)
    assert store.get_model_version("churn", alias="champion").version == 2
    assert store.delete_alias("churn", "champion", now=T0 + 2) is True
    assert store.delete_alias("churn", "champion", now=T0 + 3) is False
    with pytest.raises(ModelNotFoundError, match="alias"):
        store.get_model_version("churn", alias="champion")
    store.set_model_description("churn", "the model", now=T0 + 4)
    store.set_model_description("churn", "second", version=2, now=T0 + 5)
    model = store.get_model("churn")
    assert (model.description, model.latest_version, [v.description for v in model.versions]) == (
        "the model",
        2,
        [None, "second"],
    )
    assert [(m.name, m.latest_version) for m in store.models()] == [("churn", 2)]


def test_unknown_models_and_versions_raise_model_not_found(store: Store) -> None:
    for call in (
        lambda: store.get_model("nope"),
        lambda: store.model_versions("nope"),
        lambda: store.model_history("nope"),
        lambda: store.get_model_version("nope", version=1),
        lambda: store.set_alias("nope", "a", 1, now=T0),
        lambda: store.delete_alias("nope", "a", now=T0),
        lambda: store.set_model_description("nope", "d", now=T0),
    ):
        with pytest.raises(ModelNotFoundError, match="nope"):
            call()
    assert store.models() == []
