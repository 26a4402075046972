"""best_run, compare_runs, export_runs, inspect, and deleting and archiving (issue 3)."""

from __future__ import annotations

import csv
import io
import math
import os
import sqlite3
from pathlib import Path
from typing import Any

import pytest

import chachaml
from chachaml.errors import (
    ConflictError,
    ExperimentNotFoundError,
    InvalidValueError,
    QueryError,
    RunNotFoundError,
)
from chachaml.results import Comparison, KeySplit
from chachaml.store.base import Store
from conftest import Clock

DAY_MS = 86_400_000


def run_with(
    name: str,
    curve: list[float] | None = None,
    *,
    key: str = "acc",
    experiment: str = "default",
    params: dict[str, Any] | None = None,
    **kw: Any,
) -> str:
    with chachaml.with_run(name, experiment=experiment, **kw) as run:
        if params:
            chachaml.log_params(params)
        for v in curve or []:
            chachaml.log_metric(key, v)
    return run.id


def sql(db: Path, query: str, *args: Any) -> list[Any]:
    conn = sqlite3.connect(db)
    try:
        return conn.execute(query, args).fetchall()
    finally:
        conn.close()


def set_start_days_ago(db: Path, run_id: str, days: float) -> None:
    """Make a run look old (start_time is data; the clock cannot be rewound for a test)."""
    conn = sqlite3.connect(db)
    try:
        with conn:
            conn.execute(
                "UPDATE runs SET start_time = start_time - ?, end_time = end_time - ? WHERE id = ?",
                (int(days * DAY_MS), int(days * DAY_MS), run_id),
            )
    finally:
        conn.close()


# -- best_run ---------------------------------------------------------------------------------------
def test_best_run_looks_at_every_step_not_only_the_latest(chachaml_store: Store) -> None:
    peak = run_with("peak_then_drop", [0.2, 0.95, 0.4])
    run_with("steady", [0.5, 0.8, 0.9])
    best = chachaml.best_run("acc")
    assert best is not None
    assert (best.id, best.best_value, best.best_step) == (peak, 0.95, 1)
    assert best.metrics["acc"] == 0.4  # still the latest value


def test_best_run_with_mode_min_ranks_by_the_minimum(chachaml_store: Store) -> None:
    run_with("dips", [3.0, 0.1, 2.0], key="loss")
    low = run_with("low", [0.5, 0.2, 0.3], key="loss")
    run_with("lowest_latest", [0.9, 0.25], key="loss")
    best = chachaml.best_run("loss", mode="min")
    assert best is not None and best.name == "dips" and best.best_value == 0.1 and best.best_step == 1
    best_max = chachaml.best_run("loss", mode="max")
    assert best_max is not None and best_max.name == "dips" and best_max.best_value == 3.0
    assert chachaml.best_run("loss", mode="min", where="name != 'dips'").id == low  # type: ignore[union-attr]


def test_best_run_ignores_runs_without_the_metric_and_nans(chachaml_store: Store) -> None:
    run_with("none")
    run_with("other_metric", [5.0], key="loss")
    run_with("only_nan", [float("nan")])
    assert chachaml.best_run("acc") is None
    nan_then = run_with("nan_then_value", [float("nan"), 0.3, float("nan")])
    best = chachaml.best_run("acc")
    assert best is not None and best.id == nan_then and best.best_value == 0.3 and best.best_step == 1


def test_best_run_takes_infinity_and_negative_values(chachaml_store: Store) -> None:
    run_with("neg", [-5.0, -1.0])
    run_with("inf", [1.0, float("inf")])
    best = chachaml.best_run("acc")
    assert best is not None and best.name == "inf" and best.best_value == math.inf
    worst = chachaml.best_run("acc", mode="min")
    assert worst is not None and worst.name == "neg" and worst.best_value == -5.0 and worst.best_step == 0


def test_best_run_filters_by_experiment_where_status_and_tags(chachaml_store: Store) -> None:
    run_with("a", [0.9], experiment="e1", params={"lr": 0.1})
    b = run_with("b", [0.7], experiment="e2", params={"lr": 0.01}, tags={"team": "nlp"})
    with pytest.raises(ValueError), chachaml.with_run("c", experiment="e2"):
        chachaml.log_metric("acc", 0.8)
        raise ValueError("boom")
    assert chachaml.best_run("acc", experiment="e2").name == "c"  # type: ignore[union-attr]  # any status
    assert chachaml.best_run("acc", experiment="e2", status="completed").id == b  # type: ignore[union-attr]
    assert chachaml.best_run("acc", where="params.lr < 0.05").id == b  # type: ignore[union-attr]
    assert chachaml.best_run("acc", tags={"team": "nlp"}).id == b  # type: ignore[union-attr]
    assert chachaml.best_run("acc", experiment="nope") is None


def test_best_run_ties_go_to_the_first_run_and_its_first_step(chachaml_store: Store) -> None:
    first = run_with("first", [0.5, 0.9, 0.9])
    run_with("second", [0.9])
    best = chachaml.best_run("acc")
    assert best is not None and best.id == first and best.best_step == 1


def test_best_run_skips_archived_runs_unless_asked(chachaml_store: Store) -> None:
    old = run_with("old", [0.99])
    run_with("new", [0.5])
    chachaml.archive_runs(experiment="default")
    assert chachaml.best_run("acc") is None
    assert chachaml.best_run("acc", include_archived=True).id == old  # type: ignore[union-attr]


def test_best_run_sees_points_logged_after_an_earlier_read(chachaml_store: Store) -> None:
    with chachaml.with_run("live") as run:
        chachaml.log_metric("acc", 0.1)
        assert chachaml.best_run("acc").best_value == 0.1  # type: ignore[union-attr]
        chachaml.log_metric("acc", 0.7)
        best = chachaml.best_run("acc")
    assert best is not None and best.id == run.id and best.best_value == 0.7 and best.best_step == 1


def test_only_best_run_sets_best_value_and_best_step(chachaml_store: Store) -> None:
    rid = run_with("r", [0.3])
    assert chachaml.get_run(rid).best_value is None and chachaml.get_run(rid).best_step is None
    assert "best=0.3@0" in repr(chachaml.best_run("acc"))


def test_best_run_validates_its_arguments(chachaml_store: Store) -> None:
    with pytest.raises(InvalidValueError, match="'max' or 'min'"):
        chachaml.best_run("acc", mode="maximum")
    with pytest.raises(InvalidValueError, match="metric key"):
        chachaml.best_run("")
    with pytest.raises(InvalidValueError, match="order_by"):
        chachaml.best_run("acc", order_by="name")
    with pytest.raises(InvalidValueError, match="unexpected arguments"):
        chachaml.best_run("acc", colour="red")
    with pytest.raises(QueryError):
        chachaml.best_run("acc", where="params.lr <")


def test_best_run_on_a_missing_database_is_none_and_creates_nothing(tmp_path: Path) -> None:
    with chachaml.with_store(tmp_path / "absent.db"):
        assert chachaml.best_run("acc") is None
    assert list(tmp_path.iterdir()) == []


# -- compare_runs -------------------------------------------------------------------------------------
def test_compare_runs_splits_params_and_metrics_into_same_differ_partial(chachaml_store: Store) -> None:
    a = run_with("a", [0.5], params={"lr": 0.1, "epochs": 10, "opt": "adam", "seed": 1})
    b = run_with("b", [0.7], params={"lr": 0.01, "epochs": 10, "opt": "adam"})
    c = run_with("c", [0.5], params={"lr": 0.1, "epochs": 10, "opt": "sgd", "extra": True})
    cmp = chachaml.compare_runs([a, b, c])
    assert isinstance(cmp, Comparison)
    assert cmp.run_ids == (a, b, c) and cmp.names == ("a", "b", "c")
    assert cmp.params == KeySplit(
        same={"epochs": 10},
        differ={"lr": [0.1, 0.01, 0.1], "opt": ["adam", "adam", "sgd"]},
        partial={"seed": [1, None, None], "extra": [None, None, True]},
    )
    assert cmp.metrics.differ == {"acc": [0.5, 0.7, 0.5]} and not cmp.metrics.same


def test_compare_runs_keeps_the_order_given_and_accepts_prefixes_runs_and_runlists(
    chachaml_store: Store,
) -> None:
    a = run_with("a", params={"x": 1})
    b = run_with("b", params={"x": 2})
    assert chachaml.compare_runs([b[:10], a]).run_ids == (b, a)
    assert chachaml.compare_runs([chachaml.get_run(a), chachaml.get_run(b)]).params.differ == {"x": [1, 2]}
    assert chachaml.compare_runs(chachaml.runs()).run_ids == (b, a)  # newest first


def test_compare_runs_tells_true_from_one_and_nan_equals_nan(chachaml_store: Store) -> None:
    a = run_with("a", [math.nan], key="m", params={"flag": True, "n": 1})
    b = run_with("b", [math.nan], key="m", params={"flag": 1, "n": 1.0})
    cmp = chachaml.compare_runs([a, b])
    assert cmp.params.differ == {"flag": [True, 1]}
    assert cmp.params.same == {"n": 1}
    assert list(cmp.metrics.same) == ["m"] and math.isnan(cmp.metrics.same["m"])


def test_compare_runs_of_one_run_has_everything_same(chachaml_store: Store) -> None:
    a = run_with("a", [1.0], params={"x": 1})
    cmp = chachaml.compare_runs([a])
    assert cmp.params.same == {"x": 1} and cmp.metrics.same == {"acc": 1.0}
    assert not cmp.params.differ and not cmp.params.partial


def test_compare_runs_errors(chachaml_store: Store) -> None:
    a = run_with("a")
    with pytest.raises(InvalidValueError, match="at least one"):
        chachaml.compare_runs([])
    with pytest.raises(InvalidValueError, match="list of runs"):
        chachaml.compare_runs(a)  # type: ignore[arg-type]
    with pytest.raises(RunNotFoundError):
        chachaml.compare_runs([a, "f" * 32])
    with pytest.raises(InvalidValueError):
        chachaml.compare_runs([a, 42])


def test_a_comparison_prints_an_aligned_table_with_differences_first(chachaml_store: Store) -> None:
    a = run_with("alpha", [0.5], params={"lr": 0.1, "epochs": 10})
    b = run_with("beta", [0.75], params={"lr": 0.01, "epochs": 10, "seed": 3})
    text = repr(chachaml.compare_runs([a, b]))
    lines = text.splitlines()
    assert lines[0].startswith("Comparison of 2 runs")
    assert "params: 1 differ, 1 partial, 1 same" in lines[0]
    header, rule, *rows = lines[1:]
    assert a[:8] in header and b[:8] in header
    col = header.index(a[:8])
    assert all(len(r) <= len(rule) for r in rows)
    kinds = [r.split()[0] for r in rows if not r.lstrip().startswith("name")]
    assert kinds == ["differ", "partial", "same", "differ"]  # params: lr, seed, epochs; metrics: acc
    lr_row = next(r for r in rows if "params.lr" in r)
    assert lr_row[col:].startswith("0.1 ")
    name_row = next(r for r in rows if r.split()[0] == "name")
    assert name_row[col:].startswith("alpha")


def test_a_comparison_renders_escaped_html(chachaml_store: Store) -> None:
    a = run_with("<script>x</script>", params={"lr": "<b>"})
    html = chachaml.compare_runs([a])._repr_html_()
    assert "<table>" in html and "<script>" not in html and "&lt;script&gt;" in html and "&lt;b&gt;" in html


def test_comparison_to_dict_is_plain_data(chachaml_store: Store) -> None:
    a = run_with("a", params={"x": 1})
    d = chachaml.compare_runs([a]).to_dict()
    assert d == {
        "run_ids": [a],
        "names": ["a"],
        "params": {"same": {"x": 1}, "differ": {}, "partial": {}},
        "metrics": {"same": {}, "differ": {}, "partial": {}},
    }


# -- export -------------------------------------------------------------------------------------------
def test_export_runs_gives_flat_records_whose_prefixed_columns_never_clobber_attributes(
    chachaml_store: Store,
) -> None:
    rid = run_with(
        "real", [0.5], key="status", params={"id": "fake", "name": "fake", "lr": 0.1}, tags={"id": "t"}
    )
    (rec,) = chachaml.export_runs()
    assert rec["id"] == rid and rec["name"] == "real" and rec["status"] == "completed"
    assert rec["params.id"] == "fake" and rec["params.name"] == "fake" and rec["params.lr"] == 0.1
    assert rec["metrics.status"] == 0.5 and rec["tags.id"] == "t"
    assert list(rec)[:9] == [
        "id",
        "name",
        "experiment",
        "status",
        "start_time",
        "end_time",
        "duration",
        "parent_id",
        "created_by",
    ]


def test_export_runs_takes_the_filters_of_runs(chachaml_store: Store) -> None:
    run_with("a", [0.1], experiment="e1")
    run_with("b", [0.9], experiment="e1")
    run_with("c", [0.5], experiment="e2")
    assert [r["name"] for r in chachaml.export_runs("e1")] == ["b", "a"]
    assert [r["name"] for r in chachaml.export_runs(where="metrics.acc > 0.2", order_by="metrics.acc")] == [
        "c",
        "b",
    ]
    assert [r["name"] for r in chachaml.export_runs(order_by="name", limit=1, offset=1)] == ["b"]
    assert chachaml.export_runs(experiment="e2") == chachaml.runs("e2").to_records()


def test_csv_export_holds_mixed_types_and_missing_values(chachaml_store: Store, tmp_path: Path) -> None:
    run_with("a", [0.5], params={"lr": 0.1, "opt": "adam"})
    run_with("b", params={"lr": "auto", "layers": [1, 2]})
    found = chachaml.runs()
    path = tmp_path / "runs.csv"
    found.to_csv(path)
    rows = list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8"))))
    assert [r["name"] for r in rows] == ["b", "a"] and rows[0]["params.lr"] == "auto"
    assert rows[0]["metrics.acc"] == "" and rows[1]["metrics.acc"] == "0.5"


@pytest.mark.parametrize("library", ["pandas", "polars"])
def test_dataframe_exports_hold_mixed_types_and_missing_values(chachaml_store: Store, library: str) -> None:
    pytest.importorskip(library)  # optional extras: chachaml[pandas], chachaml[polars]
    run_with("a", [0.5], params={"lr": 0.1, "opt": "adam"})
    run_with("b", params={"lr": "auto", "layers": [1, 2]})
    found = chachaml.runs()
    frame = found.to_pandas() if library == "pandas" else found.to_polars()
    assert list(frame["name"]) == ["b", "a"]
    assert {"params.layers", "params.opt", "metrics.acc"} <= set(frame.columns)
    assert len(frame) == 2


# -- delete ---------------------------------------------------------------------------------------------
RUN_TABLES = ["params", "tags", "metrics", "metric_summary", "datasets", "artifacts"]


def rows_of(db: Path, run_id: str) -> dict[str, int]:
    counts = {t: sql(db, f"SELECT count(*) FROM {t} WHERE run_id = ?", run_id)[0][0] for t in RUN_TABLES}
    counts["runs"] = sql(db, "SELECT count(*) FROM runs WHERE id = ?", run_id)[0][0]
    return counts


def full_run(name: str, **kw: Any) -> str:
    with chachaml.with_run(name, tags={"t": "1"}, **kw) as run:
        chachaml.log_params({"lr": 0.1})
        chachaml.log_metrics({"acc": 0.5, "loss": 1.0})
        chachaml.log_dataset("train", n_rows=10, n_cols=2)
        chachaml.log_artifact("model.json", {"w": [1, 2]})
        chachaml.set_note("a note")
    return run.id


def test_delete_run_removes_every_row_and_the_artifact_folder(chachaml_store: Store, tmp_path: Path) -> None:
    db = tmp_path / "chachaml.db"
    gone = full_run("gone")
    kept = full_run("kept")
    folder = Path(chachaml_store.artifact_root) / gone  # type: ignore[arg-type]
    (folder / "extra").mkdir(parents=True, exist_ok=True)
    (folder / "extra" / "by-hand.txt").write_text("left by a user")
    chachaml.runs()  # a read folds the metric summaries in, so every table holds rows of `gone`
    assert all(n > 0 for n in rows_of(db, gone).values())
    chachaml.delete_run(gone)
    assert rows_of(db, gone) == dict.fromkeys([*RUN_TABLES, "runs"], 0)
    assert not folder.exists()
    assert all(n > 0 for n in rows_of(db, kept).values())
    assert (Path(chachaml_store.artifact_root) / kept).is_dir()  # type: ignore[arg-type]
    assert chachaml.load_artifact(kept, "model.json") == {"w": [1, 2]}
    with pytest.raises(RunNotFoundError):
        chachaml.get_run(gone)
    assert chachaml.runs().ids == [kept]


def test_delete_run_removes_a_folder_made_by_hand_for_a_run_without_artifacts(
    chachaml_store: Store,
) -> None:
    rid = run_with("r")
    folder = Path(chachaml_store.artifact_root) / rid  # type: ignore[arg-type]
    folder.mkdir(parents=True)
    (folder / "file.bin").write_bytes(b"\0" * 10)
    chachaml.delete_run(rid)
    assert not folder.exists() and folder.parent.is_dir()


def test_delete_run_keeps_children_with_no_parent(chachaml_store: Store) -> None:
    with (
        chachaml.with_run("parent") as parent,
        chachaml.with_run("child") as child,
        chachaml.with_run("grandchild") as grandchild,
    ):
        pass
    chachaml.delete_run(parent.id)
    assert chachaml.get_run(child.id).parent_id is None
    assert chachaml.get_run(grandchild.id).parent_id == child.id
    assert sorted(r.name for r in chachaml.runs()) == ["child", "grandchild"]


def test_delete_run_accepts_a_run_or_a_prefix_and_refuses_unknown_ids(chachaml_store: Store) -> None:
    a = run_with("a")
    b = run_with("b")
    chachaml.delete_run(chachaml.get_run(a))
    chachaml.delete_run(b[:12])
    assert len(chachaml.runs(include_archived=True)) == 0
    with pytest.raises(RunNotFoundError, match="cannot delete"):
        chachaml.delete_run("0" * 32)
    with pytest.raises(RunNotFoundError):
        chachaml.delete_run(a)  # already gone
    with pytest.raises(InvalidValueError):
        chachaml.delete_run(None)


def test_a_run_behind_a_model_version_cannot_be_deleted_and_nothing_changes(
    chachaml_store: Store, tmp_path: Path
) -> None:
    rid = full_run("model-run")
    chachaml.register_model("clf", artifact="model.json", run_id=rid)
    before = rows_of(tmp_path / "chachaml.db", rid)
    with pytest.raises(ConflictError, match="clf"):
        chachaml.delete_run(rid)
    with pytest.raises(ConflictError):
        chachaml.delete_experiment("default")
    assert rows_of(tmp_path / "chachaml.db", rid) == before
    assert chachaml.load_artifact(rid, "model.json") == {"w": [1, 2]}


def test_deleting_the_newest_metric_rows_does_not_hide_later_points_from_summaries(
    chachaml_store: Store,
) -> None:
    """Rowids of deleted rows are handed out again below the fold watermark (issue 3)."""
    with chachaml.with_run("keeps") as keeps:
        chachaml.log_metric("m", 1.0)
    newest = run_with("newest", [5.0, 6.0, 7.0, 8.0], key="m")
    assert chachaml.get_run(newest).metrics == {"m": 8.0}  # a read folds up to its highest rowid
    chachaml.delete_run(newest)
    chachaml.start_run(run_id=keeps.id)  # resume: the new points reuse the deleted rowids
    chachaml.log_metric("m", 2.0)
    chachaml.log_metric("m", 3.0)
    chachaml.end_run()
    run = chachaml.get_run(keeps.id)
    assert run.metrics == {"m": 3.0}
    assert [r.name for r in chachaml.runs(where="metrics.m.count = 3 and metrics.m.max = 3")] == ["keeps"]
    best = chachaml.best_run("m")
    assert best is not None and best.best_value == 3.0 and best.best_step == 2


def test_deleting_a_run_with_unfolded_points_keeps_other_summaries_right(chachaml_store: Store) -> None:
    with chachaml.with_run("a") as a:
        chachaml.log_metric("m", 1.0)
        with chachaml.with_run("b") as b:
            chachaml.log_metric("m", 9.0)
        chachaml.log_metric("m", 2.0)
    chachaml.delete_run(b.id)  # nothing was read yet: the points were never folded
    assert chachaml.get_run(a.id).metrics == {"m": 2.0}
    assert [r.name for r in chachaml.runs(where="metrics.m.max = 2 and metrics.m.count = 2")] == ["a"]


def test_delete_experiment_deletes_its_runs_and_frees_the_name(chachaml_store: Store, tmp_path: Path) -> None:
    chachaml.create_experiment("exp", description="first life")
    r1 = full_run("r1", experiment="exp")
    r2 = run_with("r2", [0.1], experiment="exp")
    other = run_with("other", [0.2], experiment="elsewhere")
    assert chachaml.delete_experiment("exp") == 2
    assert "exp" not in [e.name for e in chachaml.experiments()]
    for rid in (r1, r2):
        assert rows_of(tmp_path / "chachaml.db", rid) == dict.fromkeys([*RUN_TABLES, "runs"], 0)
    assert not (Path(chachaml_store.artifact_root) / r1).exists()  # type: ignore[arg-type]
    assert chachaml.runs().ids == [other]
    reborn = chachaml.create_experiment("exp", description="second life")
    assert reborn.description == "second life" and reborn.run_count == 0
    run_with("new", experiment="exp")
    assert next(e for e in chachaml.experiments() if e.name == "exp").run_count == 1


def test_delete_experiment_keeps_children_living_in_other_experiments(chachaml_store: Store) -> None:
    with (
        chachaml.with_run("parent", experiment="doomed") as parent,
        chachaml.with_run("child", experiment="safe") as child,
    ):
        pass
    assert chachaml.delete_experiment("doomed") == 1
    assert chachaml.get_run(child.id).parent_id is None
    with pytest.raises(RunNotFoundError):
        chachaml.get_run(parent.id)


def test_delete_experiment_of_an_unknown_name_raises(chachaml_store: Store) -> None:
    with pytest.raises(ExperimentNotFoundError, match="nope"):
        chachaml.delete_experiment("nope")
    chachaml.create_experiment("empty")
    assert chachaml.delete_experiment("empty") == 0
    with pytest.raises(ExperimentNotFoundError):
        chachaml.delete_experiment("empty")
    assert isinstance(ExperimentNotFoundError("x"), LookupError)


def test_experiments_lists_experiments_that_exist_only_through_runs(chachaml_store: Store) -> None:
    run_with("r", experiment="implicit")
    run_with("r2", experiment="implicit")
    chachaml.create_experiment("explicit", description="d")
    exps = {e.name: e for e in chachaml.experiments()}
    assert exps["implicit"].run_count == 2 and exps["explicit"].run_count == 0


# -- archive ---------------------------------------------------------------------------------------------
def test_archive_runs_hides_old_finished_runs_and_unarchive_brings_them_back(
    chachaml_store: Store, tmp_path: Path
) -> None:
    db = tmp_path / "chachaml.db"
    old = run_with("old", [0.1])
    old_other = run_with("old_other", experiment="other")
    recent = run_with("recent")
    for rid in (old, old_other):
        set_start_days_ago(db, rid, 40)
    assert chachaml.archive_runs(older_than_days=30, experiment="default") == 1
    assert chachaml.runs().ids == [recent, old_other]
    assert chachaml.archive_runs(older_than_days=30) == 1  # old_other; old is archived already
    assert chachaml.runs().ids == [recent]
    assert set(chachaml.runs(include_archived=True).ids) == {old, old_other, recent}
    archived = chachaml.get_run(old)
    assert archived.archived and archived.metrics == {"acc": 0.1}
    assert chachaml.metric_history(old, "acc")[0].value == 0.1
    assert chachaml.unarchive_runs(experiment="other") == 1
    assert chachaml.runs().ids == [recent, old_other]
    assert chachaml.unarchive_runs() == 1
    assert chachaml.unarchive_runs() == 0
    assert not chachaml.get_run(old).archived


def test_archive_runs_never_archives_running_runs(chachaml_store: Store) -> None:
    done = run_with("done")
    live = chachaml.start_run("live")
    assert chachaml.archive_runs() == 1
    assert chachaml.runs().ids == [live.id]
    chachaml.end_run()
    assert chachaml.archive_runs(older_than_days=0) == 1
    assert chachaml.runs().ids == []
    assert set(chachaml.runs(include_archived=True).ids) == {done, live.id}


def test_archive_runs_older_than_zero_days_includes_runs_started_this_millisecond(
    chachaml_store: Store, clock: Clock
) -> None:
    # The clock is frozen: the run starts in the very millisecond archive_runs takes as "now".
    done = run_with("same-ms")
    assert chachaml.archive_runs(older_than_days=0) == 1
    assert chachaml.runs().ids == []
    assert chachaml.unarchive_runs(older_than_days=0) == 1
    assert chachaml.runs().ids == [done]


def test_archive_runs_with_a_recent_cutoff_leaves_recent_runs(chachaml_store: Store) -> None:
    run_with("r")
    assert chachaml.archive_runs(older_than_days=1) == 0
    assert chachaml.archive_runs(older_than_days=0.5, experiment="nothing-here") == 0


@pytest.mark.parametrize("bad", [-1, "30", True, float("nan")])
def test_archive_runs_validates_older_than_days(chachaml_store: Store, bad: Any) -> None:
    with pytest.raises(InvalidValueError, match="older_than_days"):
        chachaml.archive_runs(older_than_days=bad)
    with pytest.raises(InvalidValueError, match="older_than_days"):
        chachaml.unarchive_runs(older_than_days=bad)


# -- inspect and printing --------------------------------------------------------------------------------
def test_inspect_prints_a_run_fully(chachaml_store: Store, capsys: pytest.CaptureFixture[str]) -> None:
    with chachaml.with_run("parent") as parent:
        chachaml.log_params({"lr": 0.1, "opt": {"name": "adam"}})
        chachaml.log_metric("acc", 0.5)
        chachaml.log_metric("acc", 0.75)
        chachaml.set_tags({"team": "nlp"})
        chachaml.set_note("# Findings\nline two")
        chachaml.log_dataset("train", n_rows=100, n_cols=5, source="s3://x")
        chachaml.log_artifact("plots/curve.json", [1, 2, 3])
        with chachaml.with_run("kid"):
            pass
    chachaml.inspect_run(parent.id[:8])
    out = capsys.readouterr().out
    for fragment in [
        f"Run {parent.id} 'parent'",
        "completed",
        "params (2)",
        "  lr        0.1",
        "  opt.name  adam",
        "metrics (latest) (1)",
        "acc  0.75",
        "tags (1)",
        "team  nlp",
        "note",
        "  # Findings",
        "  line two",
        "datasets (1)",
        "train  role=train  100x5  source=s3://x",
        "artifacts (1)",
        "plots/curve.json",
        "children (1)",
        "kid  completed",
    ]:
        assert fragment in out, fragment


def test_inspect_shows_errors_and_writes_to_a_given_file(chachaml_store: Store) -> None:
    with pytest.raises(KeyError), chachaml.with_run("bad") as bad:
        raise KeyError("missing")
    buf = io.StringIO()
    chachaml.inspect_run(chachaml.get_run(bad.id), file=buf)
    assert "failed" in buf.getvalue() and "KeyError: 'missing'" in buf.getvalue()
    with pytest.raises(RunNotFoundError):
        chachaml.inspect_run("0" * 32)


def test_printing_a_runlist_shows_a_table_with_params_and_latest_metrics(chachaml_store: Store) -> None:
    run_with("a", [0.5], params={"lr": 0.1})
    run_with("b", [0.75], params={"lr": 0.01})
    text = repr(chachaml.runs())
    assert text.startswith("RunList(2 runs)")
    assert "params.lr" in text and "metrics.acc" in text and "0.75" in text


def test_every_verb_works_on_an_in_memory_store() -> None:
    with chachaml.with_store(":memory:"):
        a = run_with("a", [0.1, 0.9])
        b = run_with("b", [0.5])
        assert chachaml.best_run("acc").id == a  # type: ignore[union-attr]
        assert chachaml.compare_runs([a, b]).metrics.differ == {"acc": [0.9, 0.5]}
        assert chachaml.archive_runs() == 2 and chachaml.unarchive_runs() == 2
        chachaml.delete_run(a)
        assert chachaml.delete_experiment("default") == 1
        assert chachaml.runs().ids == []
    assert not os.path.exists("chachaml.db")


def test_deleting_the_current_run_ends_it_cleanly(chachaml_store: Store) -> None:
    with chachaml.with_run("inside") as inside:
        chachaml.delete_run(inside.id)
        with pytest.raises(RunNotFoundError, match="deleted"):
            chachaml.log_metric("m", 1.0)
    run = chachaml.start_run("imperative")
    chachaml.delete_run(run.id)
    assert chachaml.end_run() is None
    assert chachaml.current_run() is None
    assert chachaml.runs().ids == []
