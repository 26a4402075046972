"""The API object (``chachaml.client.Client``, issue 8) and the wire format of entities and errors.

The interface pinned here is the one the CLI, web, server and MCP engineers code against
(prompts/client.md): every verb over one explicit store, writes naming their run, one resolver.
"""

from __future__ import annotations

import inspect
import io
import math
from pathlib import Path
from typing import Any

import pytest

import chachaml
from chachaml import errors
from chachaml.client import Client
from chachaml.entities import (
    Artifact,
    Dataset,
    Experiment,
    GcReport,
    Metric,
    Model,
    ModelEvent,
    ModelVersion,
    Run,
)
from chachaml.errors import (
    ArtifactNotFoundError,
    ChachamlError,
    ConflictError,
    InvalidValueError,
    ModelNotFoundError,
    QueryError,
    RunNotFoundError,
    RunStateError,
    StoreError,
    error_from_dict,
    error_to_dict,
)
from chachaml.results import Comparison, KeySplit, RunList
from chachaml.store import LocalArtifacts, open_store
from chachaml.store.base import Store

#: The agreed interface (prompts/client.md): name -> parameters, in order.
INTERFACE = {
    "runs": [
        "experiment", "status", "name", "parent_id", "created_by", "tags", "where",
        "order_by", "limit", "offset", "include_archived",
    ],
    "get_run": ["run"],
    "last_run": ["filters"],
    "metric_history": ["run", "key", "after_step"],
    "metric_summaries": ["run"],
    "experiments": [],
    "create_experiment": ["name", "description", "owner"],
    "best_run": ["metric", "experiment", "mode", "where", "filters"],
    "compare_runs": ["runs"],
    "export_runs": ["filters"],
    "list_artifacts": ["run"],
    "load_artifact": ["run", "name"],
    "open_artifact": ["run", "name"],
    "models": [],
    "model": ["name"],
    "model_versions": ["name"],
    "model_history": ["name"],
    "get_model_version": ["name", "version", "stage", "alias"],
    "load_model": ["name", "version", "stage", "alias"],
    "diff_versions": ["name", "v1", "v2"],
    "start_run": ["name", "experiment", "tags", "parent_id", "run_id"],
    "end_run": ["run", "status"],
    "log_param": ["key", "value", "run", "overwrite"],
    "log_params": ["params", "run", "overwrite"],
    "log_metric": ["key", "value", "step", "run", "timestamp"],
    "log_metrics": ["metrics", "step", "run", "timestamp"],
    "set_tag": ["key", "value", "run"],
    "set_tags": ["tags", "run"],
    "delete_tag": ["key", "run"],
    "set_note": ["markdown", "run"],
    "log_dataset": ["name", "run", "role", "source", "n_rows", "n_cols", "features", "digest"],
    "log_artifact": ["name", "value", "run", "format", "overwrite"],
    "log_file": ["path", "name", "run", "overwrite"],
    "delete_run": ["run"],
    "delete_experiment": ["name"],
    "archive_runs": ["older_than_days", "experiment"],
    "unarchive_runs": ["older_than_days", "experiment"],
    "gc_artifacts": ["dry_run"],
    "register_model": ["name", "artifact", "run_id", "stage", "description"],
    "promote": ["name", "version", "stage"],
    "set_alias": ["name", "alias", "version"],
    "delete_alias": ["name", "alias"],
    "set_model_description": ["name", "description", "version"],
}  # fmt: skip


@pytest.fixture(params=["sqlite-file", "sqlite-memory"])
def client(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    """A client over each backend (tests/conformance/conftest.py lists the same ones)."""
    target = tmp_path / "client.db" if request.param == "sqlite-file" else ":memory:"
    with Client(target) as c:
        yield c


@pytest.mark.parametrize("name", sorted(INTERFACE))
def test_the_client_has_the_agreed_interface(name: str) -> None:
    params = list(inspect.signature(getattr(Client, name)).parameters)[1:]
    assert params == INTERFACE[name]


@pytest.mark.parametrize(
    "name", ["log_param", "log_params", "log_metric", "log_metrics", "set_tag", "set_tags", "delete_tag",
             "set_note", "log_dataset", "log_artifact", "log_file"],
)  # fmt: skip
def test_writes_take_run_as_a_required_keyword(name: str) -> None:
    param = inspect.signature(getattr(Client, name)).parameters["run"]
    assert param.kind is inspect.Parameter.KEYWORD_ONLY and param.default is inspect.Parameter.empty


# -- opening and closing -----------------------------------------------------------------------------
def test_a_client_opened_from_a_path_owns_and_closes_its_store(tmp_path: Path) -> None:
    with Client(str(tmp_path / "a.db")) as c:
        assert isinstance(c.store, Store) and c.store.uri.endswith("a.db")
        c.start_run("x")
        assert "a.db" in repr(c)
    assert c.closed and c.store.closed
    assert "closed" in repr(c)
    with Client(f"sqlite:///{tmp_path / 'a.db'}") as again:
        assert [r.name for r in again.runs()] == ["x"]


def test_a_client_made_from_a_store_object_leaves_it_open(tmp_path: Path) -> None:
    store = open_store(tmp_path / "b.db")
    with Client(store) as c:
        assert c.store is store
        c.start_run("kept")
    assert not store.closed
    assert Client(store).last_run().name == "kept"  # type: ignore[union-attr]
    store.close()


def test_a_memory_client_keeps_its_runs_until_closed() -> None:
    c = Client(":memory:")
    run = c.start_run()
    assert c.get_run(run.id).status == "running"
    c.close()
    with pytest.raises(RunStateError, match="in-memory"):
        c.runs()


def test_unknown_and_not_yet_available_schemes_say_so() -> None:
    with pytest.raises(InvalidValueError, match="unknown store URI scheme 'ftp'"):
        Client("ftp://host/x")
    pg = Client("postgresql://u@host/db")  # the PostgreSQL backend (issue 10): opened lazily
    assert type(pg.store).__name__ == "PostgresStore" and pg.store.uri.startswith("postgresql://u@host/db")
    pg.close()
    # The remote store exists now (issue 10): the URL opens one, without touching the network.
    from chachaml.store.remote import RemoteStore

    with Client("https://tracking.example/", token="t" * 20) as remote:
        assert isinstance(remote.store, RemoteStore) and remote.store.uri == "https://tracking.example"
    with pytest.raises(StoreError, match="not a server URL"):
        Client("http:///no-host")


# -- the verbs ----------------------------------------------------------------------------------------
def test_runs_are_started_logged_ended_and_read_back_through_the_client(client: Client) -> None:
    run = client.start_run("baseline", experiment="mnist", tags={"team": "nlp"})
    client.log_param("lr", 0.1, run=run)
    client.log_params({"opt": {"name": "adam"}}, run=run.id)
    client.log_metric("loss", 0.5, run=run.id[:8])  # a unique prefix works everywhere
    client.log_metric("loss", 0.25, run=run, timestamp=1_700_000_000_000)
    client.log_metrics({"acc": 0.9, "f1": 0.8}, step=3, run=run)
    client.set_tag("stage", "dev", run=run)
    client.set_tags({"a": 1}, run=run)
    client.delete_tag("a", run=run)
    client.set_note("# notes", run=run)
    ds = client.log_dataset("train.csv", run=run, n_rows=10, n_cols=2, features=["x", "y"])
    assert ds.features == ["x", "y"]
    assert client.end_run(run) is None
    got = client.get_run(run.id[:6])
    assert (got.status, got.params, got.tags, got.note) == (
        "completed",
        {"lr": 0.1, "opt.name": "adam"},
        {"team": "nlp", "stage": "dev"},
        "# notes",
    )
    assert got.metrics == {"loss": 0.25, "acc": 0.9, "f1": 0.8}
    assert [(m.step, m.value) for m in client.metric_history(run, "loss")] == [(0, 0.5), (1, 0.25)]
    assert [m.step for m in client.metric_history(run, "loss", after_step=0)] == [1]
    assert client.metric_summaries(run)["loss"] == {
        "last": 0.25, "min": 0.25, "max": 0.5, "count": 2, "last_step": 1,
    }  # fmt: skip
    assert isinstance(client.runs(experiment="mnist"), RunList)
    assert client.last_run(experiment="mnist") == got
    assert [e.name for e in client.experiments()] == ["mnist"]
    assert client.export_runs(experiment="mnist")[0]["params.lr"] == 0.1


def test_start_run_makes_children_and_resumes(client: Client) -> None:
    parent = client.start_run("p", experiment=None)
    assert parent.experiment == "default"
    child = client.start_run("c", parent_id=parent.id[:7])
    assert child.parent_id == parent.id
    client.end_run(child, "failed")
    resumed = client.start_run(run_id=child.id[:9], tags={"again": "yes"})
    assert resumed.status == "running"
    assert client.get_run(child).tags == {"again": "yes"}


def test_a_client_never_writes_to_the_current_run(client: Client) -> None:
    with (
        chachaml.with_store(client.store),
        chachaml.with_run("current"),
        pytest.raises(TypeError, match="run"),
    ):
        client.log_param("lr", 0.1)  # type: ignore[call-arg]


def test_the_run_resolver_refuses_what_is_not_a_run(client: Client) -> None:
    a = client.start_run()
    assert client.resolve_run_id(a) == a.id == client.resolve_run_id(a.id[:5])
    with pytest.raises(InvalidValueError, match="must be a Run or a run id"):
        client.get_run(42)
    with pytest.raises(RunNotFoundError, match="zzz"):
        client.log_param("k", 1, run="zzz")


def test_a_query_typo_is_reported_before_the_store_is_touched(tmp_path: Path) -> None:
    c = Client(tmp_path / "q.db")
    c.close()  # any store call would now raise RunStateError
    with pytest.raises(QueryError, match="position") as info:
        c.runs(where="params.lr <")
    assert info.value.position == len("params.lr <")
    with pytest.raises(QueryError):
        c.best_run("acc", where="metrics.acc >> 1")
    with pytest.raises(QueryError):
        c.runs(order_by="metrics.acc sideways")
    with pytest.raises(RunStateError):
        c.runs(where="params.lr < 1")


def test_analysis_and_the_lifecycle_of_data(client: Client) -> None:
    a = client.start_run("a", experiment="e")
    b = client.start_run("b", experiment="e")
    client.log_metrics({"acc": 0.5}, run=a)
    client.log_metrics({"acc": 0.7}, run=b)
    client.log_param("lr", 0.1, run=a)
    client.log_param("lr", 0.2, run=b)
    best = client.best_run("acc", experiment="e")
    assert best is not None and (best.id, best.best_value) == (b.id, 0.7)
    worst = client.best_run("acc", mode="min", where="params.lr < 0.15")
    assert worst is not None and worst.id == a.id
    with pytest.raises(InvalidValueError, match="limit"):
        client.best_run("acc", limit=1)
    cmp = client.compare_runs([a, b.id])
    assert isinstance(cmp, Comparison) and cmp.params.differ == {"lr": [0.1, 0.2]}
    client.end_run(a)
    client.end_run(b)
    assert client.archive_runs(older_than_days=0, experiment="e") == 2
    assert client.runs() == RunList()
    assert client.unarchive_runs(experiment="e") == 2
    client.delete_run(a.id[:6])
    with pytest.raises(RunNotFoundError):
        client.get_run(a.id)
    assert client.delete_experiment("e") == 1
    assert client.experiments() == []
    created = client.create_experiment("fresh", description="d")
    assert (created.name, created.description) == ("fresh", "d")


def test_artifacts_round_trip_and_stream(client: Client, tmp_path: Path) -> None:
    run = client.start_run()
    art = client.log_artifact("cfg.json", {"a": 1}, run=run, format="json")
    assert art.format == "json" and client.load_artifact(run, "cfg.json") == {"a": 1}
    src = tmp_path / "data.bin"
    src.write_bytes(b"\x00\x01" * 1000)
    client.log_file(src, "data/raw.bin", run=run)
    with client.open_artifact(run.id[:8], "data/raw.bin") as fh:
        assert fh.read() == src.read_bytes()
    client.log_table("t", [{"x": 1}], run=run)
    assert client.load_artifact(run, "t") == [{"x": 1}]
    assert [a.name for a in client.list_artifacts(run)] == ["cfg.json", "data/raw.bin", "t"]
    assert Path(client.artifact_path(run, "cfg.json")).read_text() == '{"a": 1}'
    with pytest.raises(ConflictError):
        client.log_artifact("cfg.json", {"a": 2}, run=run, format="json")
    with pytest.raises(ArtifactNotFoundError, match=r"cfg\.json"):
        client.load_artifact(run, "nope")
    assert client.gc_artifacts(dry_run=True).removed == ()


def test_the_registry_through_the_client(client: Client) -> None:
    run = client.start_run()
    art = client.log_artifact("model.pkl", {"w": [1, 2]}, run=run)
    v1 = client.register_model("churn", artifact=art, stage="production")
    v2 = client.register_model("churn", artifact="model.pkl", run_id=run.id[:8], description="two")
    assert (v1.version, v2.version) == (1, 2)
    assert client.promote("churn", 2, "production").stage == "production"
    assert client.get_model_version("churn", 1).stage == "archived"
    assert client.set_alias("churn", "champion", 1).aliases == ("champion",)
    assert client.load_model("churn", alias="champion") == {"w": [1, 2]}
    assert client.load_model("churn") == {"w": [1, 2]}
    assert client.delete_alias("churn", "champion") is True
    client.set_model_description("churn", "the churn model")
    assert client.model("churn").description == "the churn model"
    assert [m.name for m in client.models()] == ["churn"]
    assert [v.version for v in client.model_versions("churn")] == [1, 2]
    assert [e.kind for e in client.model_history("churn")][:2] == ["register", "register"]
    assert isinstance(client.diff_versions("churn", 1, 2), Comparison)
    with pytest.raises(ModelNotFoundError):
        client.get_model_version("churn", 9)
    with pytest.raises(InvalidValueError, match="run_id"):
        client.register_model("churn", artifact="model.pkl")


class _RemoteLike:
    """A store with the three roles but no local artifact folder (as a remote store will be):
    it forwards the contract to a real SQLite store and hides ``LocalArtifacts``."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def __getattr__(self, name: str) -> Any:
        if name in ("artifact_path", "gc_artifacts"):
            raise AttributeError(name)
        return getattr(self._inner, name)


def test_local_only_capabilities_are_discoverable_and_refused_clearly() -> None:
    inner = open_store(":memory:")
    assert isinstance(inner, LocalArtifacts)
    remote = _RemoteLike(inner)
    assert not isinstance(remote, LocalArtifacts)
    c = Client(remote)
    run = c.start_run()
    c.log_artifact("a.txt", "hi", run=run)
    assert c.load_artifact(run, "a.txt") == "hi"
    with pytest.raises(StoreError, match="gc_artifacts needs a store that keeps artifacts"):
        c.gc_artifacts()
    with pytest.raises(StoreError, match="artifact_path"):
        c.artifact_path(run, "a.txt")
    inner.close()


# -- the wire format --------------------------------------------------------------------------------
def _entities(client: Client) -> list[Any]:
    run = client.start_run("wire", tags={"t": "1"})
    client.log_params({"lr": 0.1, "layers": [1, 2]}, run=run)
    client.log_metric("loss", float("nan"), run=run)
    client.log_metric("acc", 0.5, run=run)
    client.log_dataset("d", run=run, features=["a"], n_rows=3)
    art = client.log_artifact("m.pkl", [1], run=run)
    client.register_model("m", artifact=art)
    client.set_alias("m", "best", 1)
    client.end_run(run, "failed")
    best = client.best_run("acc")
    other = client.start_run("other")
    return [
        client.get_run(run),
        best,
        client.metric_history(run, "acc")[0],
        client.get_run(run).datasets[0],
        client.experiments()[0],
        art,
        client.get_model_version("m", 1),
        client.model("m"),
        client.models()[0],
        client.model_history("m")[0],
        client.gc_artifacts(dry_run=True),
        GcReport(removed=("a/b",), freed_bytes=3, missing=("c/d",), dry_run=True),
        client.compare_runs([run, other]),
    ]


def test_every_entity_round_trips_through_to_dict_and_from_dict(client: Client) -> None:
    for value in _entities(client):
        back = type(value).from_dict(value.to_dict())
        assert back.to_dict() == value.to_dict() or _nan_equal(back.to_dict(), value.to_dict())
        assert type(back) is type(value)


def _nan_equal(a: Any, b: Any) -> bool:
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_nan_equal(a[k], b[k]) for k in a)
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return bool(a == b)


def test_from_dict_survives_json_and_rebuilds_nested_values(client: Client) -> None:
    import json

    run, *_rest = _entities(client)
    back = Run.from_dict(json.loads(json.dumps(run.to_dict())))
    assert back.datasets == run.datasets and isinstance(back.datasets[0], Dataset)
    assert math.isnan(back.metrics["loss"])
    model = client.model("m")
    again = Model.from_dict(json.loads(json.dumps(model.to_dict())))
    assert again == model and isinstance(again.versions[0], ModelVersion)
    assert again.versions[0].aliases == ("best",)
    mv = ModelVersion.from_dict({**model.versions[0].to_dict(), "new_field": 1})  # newer sender
    assert mv == model.versions[0]


@pytest.mark.parametrize("cls", [Metric, Dataset, Experiment, Artifact, ModelVersion, ModelEvent, Run])
def test_from_dict_names_what_is_missing(cls: type) -> None:
    with pytest.raises(InvalidValueError, match=cls.__name__):
        cls.from_dict({})  # type: ignore[attr-defined]
    with pytest.raises(InvalidValueError, match="takes a dict"):
        cls.from_dict([1])  # type: ignore[attr-defined]


def test_comparison_and_keysplit_round_trip() -> None:
    split = KeySplit(same={"a": 1}, differ={"b": [1, 2]}, partial={"c": [None, 3]})
    cmp = Comparison(run_ids=("x", "y"), params=split, metrics=KeySplit(), names=("n", None))
    assert Comparison.from_dict(cmp.to_dict()) == cmp


ERROR_CLASSES = [getattr(errors, n) for n in errors.__all__ if n.endswith("Error")]


@pytest.mark.parametrize("cls", ERROR_CLASSES, ids=lambda c: c.__name__)
def test_every_error_round_trips_as_the_same_class(cls: type[ChachamlError]) -> None:
    exc = cls("something went wrong; do this instead")
    data = error_to_dict(exc)
    attrs = {name: getattr(exc, name) for name in cls.wire_attributes}
    assert data == {"type": cls.__name__, "message": "something went wrong; do this instead", **attrs}
    back = error_from_dict(data)
    assert type(back) is cls and str(back) == str(exc)


def test_a_query_error_keeps_its_query_and_position_on_the_wire(client: Client) -> None:
    with pytest.raises(QueryError) as info:
        client.runs(where="status = running")
    data = error_to_dict(info.value)
    assert (data["type"], data["query"], data["position"]) == ("QueryError", "status = running", 9)
    back = error_from_dict(data)
    assert isinstance(back, QueryError) and isinstance(back, ValueError)
    assert (back.query, back.position, str(back)) == ("status = running", 9, str(info.value))


def test_an_unknown_error_type_becomes_a_chachaml_error_naming_it() -> None:
    back = error_from_dict({"type": "QuotaError", "message": "over quota"})
    assert type(back) is ChachamlError and str(back) == "QuotaError: over quota"
    with pytest.raises(TypeError, match="message"):
        error_from_dict({"type": "StoreError"})
    with pytest.raises(TypeError, match="ChachamlError"):
        error_to_dict(ValueError("x"))  # type: ignore[arg-type]


def test_module_verbs_and_the_client_see_the_same_store(tmp_path: Path) -> None:
    with chachaml.with_store(tmp_path / "m.db") as store:
        with chachaml.with_run("via verbs") as run:
            chachaml.log_metric("loss", 0.1)
        c = Client(store)
        assert c.get_run(run.id).metrics == {"loss": 0.1}
        buf = io.StringIO()
        chachaml.inspect_run(run.id[:8], file=buf)
        assert "via verbs" in buf.getvalue()


def test_folders_and_images_through_the_client(client: Client, tmp_path: Path) -> None:
    import numpy as np

    run = client.start_run()
    folder = tmp_path / "outputs"
    (folder / "plots").mkdir(parents=True)
    (folder / "a.txt").write_text("a")
    (folder / "plots" / "b.txt").write_text("b")
    logged = client.log_artifacts(folder, "out", run=run)
    assert [a.name for a in logged] == ["out/a.txt", "out/plots/b.txt"]
    art = client.log_image("img.png", np.zeros((2, 3), dtype=np.uint8), run=run.id[:8])
    assert art.content_type == "image/png"
    with client.open_artifact(run, "img.png") as fh:
        assert fh.read(8) == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(InvalidValueError, match="numpy array or a PIL image"):
        client.log_image("x.png", [[0]], run=run)
