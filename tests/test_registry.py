"""The model registry: versions, stages, the production rule, aliases, loading, history."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import chachaml
from chachaml.entities import Model, ModelEvent, ModelVersion
from chachaml.errors import (
    ArtifactNotFoundError,
    ConflictError,
    InvalidValueError,
    ModelNotFoundError,
    NoActiveRunError,
    RunNotFoundError,
)
from chachaml.store.base import Store

WORKER = str(Path(__file__).with_name("_workers_registry.py"))


@pytest.fixture(autouse=True)
def _user(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHACHAML_USER", "ada")


def _trained(weights: Any, *, lr: float = 0.1) -> str:
    """A finished run holding ``model.pkl``; returns its id."""
    with chachaml.with_run("train") as run:
        chachaml.log_param("lr", lr)
        chachaml.log_metric("rmse", float(np.sum(weights)))
        chachaml.log_artifact("model.pkl", {"w": weights})
    return run.id


def _stages(name: str) -> dict[int, str]:
    return {v.version: v.stage for v in chachaml.model_versions(name)}


def _sql(store: Store, query: str, *args: Any) -> list[tuple[Any, ...]]:
    with sqlite3.connect(store.path) as conn:  # type: ignore[attr-defined]
        return conn.execute(query, args).fetchall()


# -- registering -------------------------------------------------------------------------------------
def test_versions_are_numbered_per_model(chachaml_store: Store) -> None:
    run_id = _trained([1, 2])
    v1 = chachaml.register_model("churn", artifact="model.pkl", run_id=run_id, description="baseline")
    v2 = chachaml.register_model("churn", artifact="model.pkl", run_id=run_id)
    other = chachaml.register_model("fraud", artifact="model.pkl", run_id=run_id[:7])  # an id prefix works
    assert (v1.version, v2.version, other.version) == (1, 2, 1)
    assert v1 == ModelVersion(
        model="churn",
        version=1,
        run_id=run_id,
        artifact="model.pkl",
        stage="none",
        description="baseline",
        created=v1.created,
        created_by="ada",
    )
    assert other.run_id == run_id
    assert [m.name for m in chachaml.models()] == ["churn", "fraud"]


def test_register_defaults_to_the_current_run_and_accepts_the_artifact_object(chachaml_store: Store) -> None:
    with pytest.raises(NoActiveRunError):
        chachaml.register_model("m", artifact="model.pkl")
    with chachaml.with_run() as run:
        art = chachaml.log_artifact("model.pkl", {"w": 1})
        by_name = chachaml.register_model("m", artifact="model.pkl")
    by_object = chachaml.register_model("m", artifact=art)  # no current run needed: the artifact knows it
    assert by_name.run_id == by_object.run_id == run.id
    assert by_object.version == 2


def test_registering_a_missing_artifact_raises_and_creates_nothing(chachaml_store: Store) -> None:
    run_id = _trained([1])
    with pytest.raises(ArtifactNotFoundError, match=r"no artifact './model.pkl'.*'model.pkl'") as exc:
        chachaml.register_model("m", artifact="./model.pkl", run_id=run_id)
    assert isinstance(exc.value, LookupError)
    with pytest.raises(RunNotFoundError):
        chachaml.register_model("m", artifact="model.pkl", run_id="f" * 32)
    assert chachaml.models() == []
    assert _sql(chachaml_store, "SELECT count(*) FROM registry_events") == [(0,)]


def test_bad_arguments_are_refused_with_the_fix(chachaml_store: Store) -> None:
    run_id = _trained([1])
    with pytest.raises(InvalidValueError, match="stage 'prod'"):
        chachaml.register_model("m", artifact="model.pkl", run_id=run_id, stage="prod")
    with pytest.raises(InvalidValueError, match="model name must not be empty"):
        chachaml.register_model("", artifact="model.pkl", run_id=run_id)
    chachaml.register_model("m", artifact="model.pkl", run_id=run_id)
    with pytest.raises(InvalidValueError, match="positive int"):
        chachaml.promote("m", 0, "staging")
    with pytest.raises(InvalidValueError, match="positive int"):
        chachaml.promote("m", True, "staging")  # type: ignore[arg-type]
    with pytest.raises(InvalidValueError, match="stage 'live'"):
        chachaml.promote("m", 1, "live")
    with pytest.raises(InvalidValueError, match="not both"):
        chachaml.load_model("m", version=1, alias="x")


# -- stages --------------------------------------------------------------------------------------------
def test_promoting_to_production_archives_the_previous_production_version(chachaml_store: Store) -> None:
    run_id = _trained([1])
    for _ in range(3):
        chachaml.register_model("m", artifact="model.pkl", run_id=run_id)
    chachaml.promote("m", 1, "production")
    chachaml.promote("m", 2, "staging")
    assert _stages("m") == {1: "production", 2: "staging", 3: "none"}
    promoted = chachaml.promote("m", 3, "production")
    assert promoted.stage == "production"
    assert _stages("m") == {1: "archived", 2: "staging", 3: "production"}
    assert chachaml.model("m").production_version == 3


def test_registering_straight_into_production_archives_the_previous_one(chachaml_store: Store) -> None:
    run_id = _trained([1])
    chachaml.register_model("m", artifact="model.pkl", run_id=run_id, stage="production")
    chachaml.register_model("m", artifact="model.pkl", run_id=run_id, stage="production")
    assert _stages("m") == {1: "archived", 2: "production"}


def test_promoting_a_missing_version_changes_nothing(chachaml_store: Store) -> None:
    run_id = _trained([1])
    chachaml.register_model("m", artifact="model.pkl", run_id=run_id, stage="production")
    history = chachaml.model_history("m")
    with pytest.raises(ModelNotFoundError, match=r"no version 7 .*v1 production.*nothing was changed") as exc:
        chachaml.promote("m", 7, "production")
    assert isinstance(exc.value, LookupError)
    assert _stages("m") == {1: "production"}  # the Clojure original archived v1 here
    assert chachaml.model_history("m") == history
    with pytest.raises(ModelNotFoundError, match="no model named 'nope'"):
        chachaml.promote("nope", 1, "production")


def test_promoting_to_the_current_stage_is_a_no_op(chachaml_store: Store) -> None:
    run_id = _trained([1])
    chachaml.register_model("m", artifact="model.pkl", run_id=run_id, stage="production")
    events = len(chachaml.model_history("m"))
    assert chachaml.promote("m", 1, "production").stage == "production"
    assert len(chachaml.model_history("m")) == events


def test_the_database_itself_refuses_two_production_versions(chachaml_store: Store) -> None:
    run_id = _trained([1])
    chachaml.register_model("m", artifact="model.pkl", run_id=run_id, stage="production")
    chachaml.register_model("m", artifact="model.pkl", run_id=run_id)
    with sqlite3.connect(chachaml_store.path) as conn, pytest.raises(sqlite3.IntegrityError):  # type: ignore[attr-defined]
        conn.execute("UPDATE model_versions SET stage = 'production' WHERE model = 'm' AND version = 2")


@pytest.mark.slow
def test_concurrent_promotions_from_several_processes_leave_exactly_one_production(
    chachaml_store: Store,
) -> None:
    run_id = _trained([1])
    versions = [chachaml.register_model("m", artifact="model.pkl", run_id=run_id).version for _ in range(6)]
    go = Path(chachaml_store.path).with_name("go")  # type: ignore[attr-defined]
    rounds = 25
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                WORKER,
                "promote",
                chachaml_store.path,  # type: ignore[attr-defined]
                "m",
                ",".join(map(str, versions)),
                str(rounds),
                str(seed),
                str(go),
            ],
            stderr=subprocess.PIPE,
            text=True,
        )
        for seed in range(4)
    ]
    time.sleep(0.5)  # let every worker import chachaml and wait at the starting line
    go.touch()
    errors = [p.communicate(timeout=300)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0, 0], errors

    stages = _stages("m")
    assert list(stages.values()).count("production") == 1
    # Replay the history: every promotion to production archived the one before, in order.
    production: set[int] = set()
    for event in chachaml.model_history("m"):
        if event.kind == "stage" and event.to_value == "production":
            assert production == set(), f"v{event.version} promoted while {production} was production"
            production.add(event.version)  # type: ignore[arg-type]
        elif event.kind == "stage" and event.from_value == "production":
            production.discard(event.version)  # type: ignore[arg-type]
    assert production == {v for v, s in stages.items() if s == "production"}


@pytest.mark.slow
def test_concurrent_registrations_get_distinct_consecutive_versions(chachaml_store: Store) -> None:
    run_id = _trained([1])
    go = Path(chachaml_store.path).with_name("go")  # type: ignore[attr-defined]
    procs = [
        subprocess.Popen(
            [sys.executable, WORKER, "register", chachaml_store.path, "m", run_id, "5", str(go)],  # type: ignore[attr-defined]
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    time.sleep(0.5)
    go.touch()
    got = sorted(int(v) for p in procs for v in p.communicate(timeout=300)[0].split())
    assert got == list(range(1, 16))
    assert list(_stages("m").values()).count("production") == 1


# -- aliases ------------------------------------------------------------------------------------------
def test_an_alias_points_at_one_version_and_can_move(chachaml_store: Store) -> None:
    run_id = _trained([1])
    for _ in range(2):
        chachaml.register_model("m", artifact="model.pkl", run_id=run_id)
    assert chachaml.set_alias("m", "champion", 1).aliases == ("champion",)
    moved = chachaml.set_alias("m", "champion", 2)
    assert moved.aliases == ("champion",)
    assert [v.aliases for v in chachaml.model_versions("m")] == [(), ("champion",)]
    assert chachaml.model("m").aliases == {"champion": 2}
    assert chachaml.get_model_version("m", alias="champion").version == 2


def test_alias_to_a_missing_version_raises_and_keeps_the_alias(chachaml_store: Store) -> None:
    run_id = _trained([1])
    chachaml.register_model("m", artifact="model.pkl", run_id=run_id)
    chachaml.set_alias("m", "champion", 1)
    with pytest.raises(ModelNotFoundError, match="no version 5"):
        chachaml.set_alias("m", "champion", 5)
    with pytest.raises(ModelNotFoundError, match="no model named 'other'"):
        chachaml.set_alias("other", "champion", 1)
    assert chachaml.model("m").aliases == {"champion": 1}


def test_deleting_an_alias(chachaml_store: Store) -> None:
    run_id = _trained([1])
    chachaml.register_model("m", artifact="model.pkl", run_id=run_id)
    chachaml.set_alias("m", "champion", 1)
    assert chachaml.delete_alias("m", "champion") is True
    assert chachaml.delete_alias("m", "champion") is False  # like delete_tag: no error
    with pytest.raises(ModelNotFoundError, match="no alias 'champion'"):
        chachaml.load_model("m", alias="champion")
    with pytest.raises(ModelNotFoundError):
        chachaml.delete_alias("nope", "champion")


# -- loading --------------------------------------------------------------------------------------------
def test_load_model_by_stage_version_and_alias(chachaml_store: Store) -> None:
    runs = [_trained([i]) for i in range(4)]
    for run_id in runs:
        chachaml.register_model("m", artifact="model.pkl", run_id=run_id)
    chachaml.promote("m", 1, "production")
    chachaml.promote("m", 2, "staging")
    chachaml.promote("m", 3, "staging")
    chachaml.set_alias("m", "shadow", 4)
    assert chachaml.load_model("m") == {"w": [0]}  # default: the production version
    assert chachaml.load_model("m", stage="staging") == {"w": [2]}  # the highest staging version
    assert chachaml.load_model("m", version=2) == {"w": [1]}
    assert chachaml.load_model("m", alias="shadow") == {"w": [3]}
    chachaml.promote("m", 4, "production")
    assert chachaml.load_model("m", version=1) == {"w": [0]}  # archived versions stay loadable
    assert chachaml.load_model("m", stage="archived") == {"w": [0]}


def test_load_model_with_no_match_raises(chachaml_store: Store) -> None:
    with pytest.raises(ModelNotFoundError, match=r"no model named 'm'.*no model is registered"):
        chachaml.load_model("m")
    run_id = _trained([1])
    chachaml.register_model("m", artifact="model.pkl", run_id=run_id, stage="staging")
    with pytest.raises(
        ModelNotFoundError, match=r"no version at stage 'production' \(its versions: v1 staging\)"
    ):
        chachaml.load_model("m")
    with pytest.raises(ModelNotFoundError, match="no version 9"):
        chachaml.load_model("m", version=9)


def test_load_model_reads_the_artifact_with_its_format(chachaml_store: Store) -> None:
    with chachaml.with_run():
        chachaml.log_artifact("coef.npy", np.array([0.5, -1.0]))
        chachaml.register_model("linear", artifact="coef.npy", stage="production")
    np.testing.assert_array_equal(chachaml.load_model("linear"), np.array([0.5, -1.0]))


# -- reading the registry ---------------------------------------------------------------------------------
def test_models_and_model_describe_the_registry(chachaml_store: Store) -> None:
    assert chachaml.models() == []
    run_id = _trained([1])
    chachaml.register_model("b", artifact="model.pkl", run_id=run_id)
    chachaml.register_model("a", artifact="model.pkl", run_id=run_id, stage="production")
    chachaml.register_model("a", artifact="model.pkl", run_id=run_id)
    chachaml.set_model_description("a", "predicts **churn**")
    chachaml.set_model_description("a", "retrained", version=2)
    listed = chachaml.models()
    assert [(m.name, m.latest_version, m.production_version) for m in listed] == [("a", 2, 1), ("b", 1, None)]
    assert listed[0].versions == ()
    a = chachaml.model("a")
    assert isinstance(a, Model)
    assert a.description == "predicts **churn**"
    assert [v.description for v in a.versions] == [None, "retrained"]
    assert repr(a) == "<Model 'a' versions=2 production=v1>"
    assert "retrained" in a._repr_html_()
    assert "<table>" in listed[1]._repr_html_()
    assert a.to_dict()["versions"][1]["description"] == "retrained"
    with pytest.raises(ModelNotFoundError, match="registered models: 'a', 'b'"):
        chachaml.model("c")
    with pytest.raises(ModelNotFoundError, match="no version 3"):
        chachaml.set_model_description("a", "x", version=3)
    with pytest.raises(ModelNotFoundError):
        chachaml.model_versions("c")


def test_model_version_prints_short(chachaml_store: Store) -> None:
    run_id = _trained([1])
    mv = chachaml.register_model("m", artifact="model.pkl", run_id=run_id)
    mv = chachaml.set_alias("m", "best", 1)
    assert repr(mv) == f"<ModelVersion 'm' v1 none aliases=['best'] run={run_id[:8]} artifact='model.pkl'>"
    assert "best" in mv._repr_html_()
    assert mv.to_dict()["aliases"] == ["best"]


def test_history_lists_stage_and_alias_changes_with_who_and_when(
    chachaml_store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_id = _trained([1])
    before = int(time.time() * 1000)
    chachaml.register_model("m", artifact="model.pkl", run_id=run_id, stage="production")
    chachaml.register_model("m", artifact="model.pkl", run_id=run_id)
    monkeypatch.setenv("CHACHAML_USER", "grace")
    chachaml.promote("m", 2, "production")
    chachaml.set_alias("m", "champion", 1)
    chachaml.set_alias("m", "champion", 2)
    chachaml.delete_alias("m", "champion")
    history = chachaml.model_history("m")
    assert [(e.version, e.kind, e.alias, e.from_value, e.to_value, e.who) for e in history] == [
        (1, "register", None, None, "production", "ada"),
        (2, "register", None, None, "none", "ada"),
        (1, "stage", None, "production", "archived", "grace"),
        (2, "stage", None, "none", "production", "grace"),
        (1, "alias", "champion", None, "1", "grace"),
        (2, "alias", "champion", "1", "2", "grace"),
        (2, "alias", "champion", "2", None, "grace"),
    ]
    assert all(isinstance(e, ModelEvent) and e.at >= before for e in history)
    assert "stage none -> production by grace" in repr(history[3])
    assert history[0].to_dict()["kind"] == "register"


def test_diff_versions_compares_the_source_runs(chachaml_store: Store) -> None:
    first = _trained([1], lr=0.1)
    second = _trained([1], lr=0.01)
    chachaml.register_model("m", artifact="model.pkl", run_id=first)
    chachaml.register_model("m", artifact="model.pkl", run_id=second)
    diff = chachaml.diff_versions("m", 1, 2)
    assert diff.run_ids == (first, second)
    assert diff.params.differ == {"lr": [0.1, 0.01]}
    assert diff.metrics.same == {"rmse": 1.0}
    with pytest.raises(ModelNotFoundError):
        chachaml.diff_versions("m", 1, 3)


# -- deleting runs -------------------------------------------------------------------------------------------
def test_a_run_behind_a_registered_version_cannot_be_deleted(chachaml_store: Store) -> None:
    backing = _trained([1])
    free = _trained([2])
    chachaml.register_model("m", artifact="model.pkl", run_id=backing)
    chachaml.register_model("m", artifact="model.pkl", run_id=backing)
    with pytest.raises(ConflictError, match=rf"'m' v1 \(run {backing[:8]}\), 'm' v2"):
        chachaml.delete_run(backing)
    assert chachaml.load_model("m", version=1) == {"w": [1]}  # nothing was deleted
    assert chachaml.get_run(backing).params == {"lr": 0.1}
    chachaml.delete_run(free)
    with pytest.raises(RunNotFoundError):
        chachaml.get_run(free)


def test_deleting_an_experiment_is_refused_when_one_of_its_runs_backs_a_version(
    chachaml_store: Store,
) -> None:
    with chachaml.with_run(experiment="exp"):
        chachaml.log_artifact("model.pkl", 1)
        chachaml.register_model("m", artifact="model.pkl")
    with pytest.raises(ConflictError, match="'m' v1"):
        chachaml.delete_experiment("exp")
    assert chachaml.load_model("m", version=1) == 1


def test_the_registry_guide_runs() -> None:
    """Every ```python block of docs/registry.md, in order, in one namespace (a fresh folder)."""
    import re

    text = (Path(__file__).resolve().parents[1] / "docs" / "registry.md").read_text(encoding="utf-8")
    blocks = re.findall(r"^```python\n(.*?)^```", text, re.MULTILINE | re.DOTALL)
    assert blocks
    namespace: dict[str, Any] = {"__name__": "docs_registry"}
    for number, source in enumerate(blocks, 1):
        exec(compile(source, f"registry.md (python block {number})", "exec"), namespace)
