"""The copy primitives of each role (``restore_run``, ``restore_artifact``, ``restore_model``):
records written with the ids and times another store gave them (``chachaml migrate``)."""

from __future__ import annotations

import hashlib
import io
import json
import math
import uuid
from collections.abc import Iterator

import pytest

from chachaml.entities import Artifact, Dataset, Metric, Model, ModelEvent, ModelVersion, Run
from chachaml.errors import (
    ArtifactNotFoundError,
    ConflictError,
    InvalidValueError,
    ModelNotFoundError,
    RunNotFoundError,
    StoreError,
)
from chachaml.store.base import RunFilter, Store

from .test_store_contract import T0


def finished_run(run_id: str | None = None, **kw: object) -> Run:
    fields: dict[str, object] = {
        "id": run_id or uuid.uuid4().hex,
        "experiment": "copied",
        "status": "failed",
        "start_time": T0,
        "end_time": T0 + 5000,
        "name": "old",
        "created_by": "carol",
        "params": {"lr": 0.1, "layers": [64, 32], "opt": "adam", "big": 2**70},
        "tags": {"team": "nlp"},
        "note": "# notes",
        "error": {"type": "ValueError", "message": "boom", "traceback": "tb"},
        "env": {"python": "3.11.7"},
        "datasets": [
            Dataset("train.csv", role="train", n_rows=10, features=["a", "b"], digest="d", created=T0 + 1)
        ],
        "archived": True,
    }
    fields.update(kw)
    return Run(**fields)  # type: ignore[arg-type]


def points(n: int = 5) -> list[Metric]:
    out = [Metric("loss", 1.0 / (i + 1), i * 10, T0 + i) for i in range(n)]
    out += [
        Metric("odd", math.nan, 0, T0 + 7),
        Metric("odd", math.inf, 1, T0 + 8),
        Metric("odd", -1.5, 1, T0 + 9),
    ]
    return out


def _json(value: object) -> str:
    return json.dumps(value, sort_keys=True, default=str)  # NaN compares as text


def test_restore_run_writes_the_run_and_its_points_as_given_and_only_once(store: Store) -> None:
    parent = finished_run(status="completed", error=None, archived=False, datasets=[])
    assert store.restore_run(parent, []) is True
    run = finished_run(parent_id=parent.id)
    assert store.restore_run(run, points()) is True
    got = store.get_run(run.id)
    for field in (
        "experiment",
        "status",
        "start_time",
        "end_time",
        "name",
        "created_by",
        "params",
        "tags",
        "note",
        "error",
        "env",
        "datasets",
        "archived",
        "parent_id",
    ):
        assert _json(getattr(got, field)) == _json(getattr(run, field)), field
    assert _json(store.metric_history(run.id, "loss")) == _json([m for m in points() if m.key == "loss"])
    odd = store.metric_history(run.id, "odd")
    assert [(m.step, m.timestamp) for m in odd] == [
        (0, T0 + 7),
        (1, T0 + 8),
        (1, T0 + 9),
    ]  # ties: order given
    assert math.isnan(odd[0].value) and odd[1].value == math.inf and odd[2].value == -1.5
    assert store.metric_summaries(run.id)["loss"]["count"] == 5
    assert got.metrics["odd"] == -1.5  # the last of the highest step, as on the source
    # Again: nothing written, nothing doubled.
    assert store.restore_run(run, points()) is False
    assert len(store.metric_history(run.id, "loss")) == 5
    assert "copied" in [e.name for e in store.experiments()]


def test_restore_run_is_all_or_nothing(store: Store) -> None:
    run = finished_run()

    def broken() -> Iterator[Metric]:
        yield from points(3)
        raise OSError("the source went away mid-copy")

    with pytest.raises(OSError, match="mid-copy"):
        store.restore_run(run, broken())
    with pytest.raises(RunNotFoundError):
        store.get_run(run.id)
    assert store.restore_run(run, points(3)) is True
    assert len(store.metric_history(run.id, "loss")) == 3


def test_restore_run_refuses_running_runs_and_missing_parents(store: Store) -> None:
    with pytest.raises(InvalidValueError, match="still running"):
        store.restore_run(finished_run(status="running", end_time=None), [])
    with pytest.raises(RunNotFoundError, match="parent"):
        store.restore_run(finished_run(parent_id="f" * 32), [])
    assert store.find_runs(RunFilter()) == []  # nothing was written


def _artifact(run_id: str, data: bytes, name: str = "m/model.bin") -> Artifact:
    return Artifact(
        run_id, name, len(data), hashlib.sha256(data).hexdigest(), "application/octet-stream", "bytes", T0 + 3
    )


def test_restore_artifact_keeps_metadata_on_a_finished_run_and_is_idempotent(store: Store) -> None:
    run = finished_run()
    store.restore_run(run, [])
    data = b"weights" * 1000
    art = store.restore_artifact(_artifact(run.id, data), io.BytesIO(data))
    assert (art.size, art.sha256, art.created, art.format) == (
        len(data),
        hashlib.sha256(data).hexdigest(),
        T0 + 3,
        "bytes",
    )
    assert store.get_artifact(run.id, "m/model.bin") == art
    with store.open_artifact(run.id, "m/model.bin") as fh:
        assert fh.read() == data
    assert store.restore_artifact(_artifact(run.id, data), io.BytesIO(data)) == art  # again: a no-op
    with pytest.raises(ConflictError):
        store.restore_artifact(_artifact(run.id, b"other"), b"other")
    with pytest.raises(StoreError, match="sha256"):  # the bytes read are not what the source recorded
        store.restore_artifact(_artifact(run.id, b"promised", name="x.bin"), b"delivered")
    assert [a.name for a in store.list_artifacts(run.id)] == ["m/model.bin"]
    with pytest.raises(RunNotFoundError):
        store.restore_artifact(_artifact("f" * 32, b"x"), b"x")


def test_restore_model_writes_versions_aliases_and_history_as_given(store: Store) -> None:
    run = finished_run()
    store.restore_run(run, [])
    store.restore_artifact(_artifact(run.id, b"w", name="model.pkl"), b"w")
    versions = (
        ModelVersion("churn", 1, run.id, "model.pkl", "archived", None, T0 + 10, "alice"),
        ModelVersion("churn", 2, run.id, "model.pkl", "production", "v2", T0 + 20, "bob", ("champion",)),
    )
    model = Model("churn", "the model", T0 + 10, T0 + 30, 2, 2, {"champion": 2}, versions)
    history = [
        ModelEvent("churn", 1, "register", None, "none", "alice", T0 + 10),
        ModelEvent("churn", 2, "register", None, "staging", "bob", T0 + 20),
        ModelEvent("churn", 1, "stage", "production", "archived", "bob", T0 + 25),
        ModelEvent("churn", 2, "alias", None, "2", "bob", T0 + 30, alias="champion"),
    ]
    assert store.restore_model(model, history) is True
    assert store.get_model("churn").to_dict() == model.to_dict()
    assert [e.to_dict() for e in store.model_history("churn")] == [e.to_dict() for e in history]
    assert store.get_model_version("churn", alias="champion").version == 2
    assert store.restore_model(model, history) is False
    assert len(store.model_history("churn")) == 4
    missing = Model("other", None, T0, T0, 1, None, {}, (ModelVersion("other", 1, run.id, "nope.pkl"),))
    with pytest.raises(ArtifactNotFoundError, match=r"nope\.pkl"):
        store.restore_model(missing, [])
    with pytest.raises(ModelNotFoundError):
        store.get_model("other")
