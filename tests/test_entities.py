"""Entities print usefully, export flat records, and escape what they render as HTML."""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

import chachaml
from chachaml import Dataset, Experiment, Metric, Run, RunList
from chachaml.store.base import Store

T0 = 1_700_000_000_000


def run_(i: int = 0, **kw: object) -> Run:
    fields: dict[str, object] = {
        "id": f"{i:02d}" + "ab" * 15,
        "experiment": "exp",
        "status": "completed",
        "start_time": T0 + i,
        "end_time": T0 + i + 1500,
        "name": f"run{i}",
    }
    fields.update(kw)
    return Run(**fields)  # type: ignore[arg-type]


# -- reprs -----------------------------------------------------------------------------------------
def test_run_repr_is_short_and_says_id_name_status_experiment_and_sizes() -> None:
    run = run_(
        name="baseline",
        params={f"p{i}": i for i in range(200)},
        metrics={"loss": 0.5},
        error={"type": "ValueError", "message": "x" * 10_000, "traceback": "..."},
    )
    text = repr(run)
    assert len(text) < 150
    for part in (run.id[:8], "'baseline'", "completed", "'exp'", "params=200", "metrics=1", "ValueError"):
        assert part in text
    assert run.id not in text  # the short id is enough


def test_metric_dataset_and_experiment_reprs_are_short_and_informative() -> None:
    assert repr(Metric("loss", 0.25, 3, T0)) == "Metric('loss', 0.25, step=3)"
    assert (
        repr(Dataset("mnist", role="test", n_rows=10, n_cols=784))
        == "Dataset('mnist', role='test', n_rows=10, n_cols=784)"
    )
    assert repr(Dataset("mnist")) == "Dataset('mnist', role='train')"
    assert repr(Dataset("big", n_rows=10000)) == "Dataset('big', role='train', n_rows=10000)"
    assert repr(Experiment("vision", run_count=4)) == "<Experiment 'vision' runs=4>"


def test_entities_are_frozen() -> None:
    for entity, attr in (
        (run_(), "status"),
        (Metric("m", 1.0, 0, T0), "value"),
        (Dataset("d"), "name"),
        (Experiment("e"), "run_count"),
    ):
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(entity, attr, "changed")


# -- to_dict ---------------------------------------------------------------------------------------
def test_run_to_dict_has_everything_and_is_json_friendly() -> None:
    run = run_(
        params={"lr": 0.1, "layers": [64]},
        metrics={"loss": math.nan},
        tags={"t": "v"},
        note="n",
        env={"python": "3.11"},
        datasets=[Dataset("d", n_rows=3, created=T0)],
    )
    d = run.to_dict()
    assert d["id"] == run.id and d["duration"] == 1500 and d["params"] == {"lr": 0.1, "layers": [64]}
    assert d["datasets"] == [Dataset("d", n_rows=3, created=T0).to_dict()]
    assert d["tags"] == {"t": "v"} and d["note"] == "n" and d["env"] == {"python": "3.11"}
    assert {"best_value", "best_step", "archived", "error", "parent_id", "created_by"} <= set(d)
    json.dumps(d)  # plain values only (NaN allowed, as Python's json writes it)
    d["params"]["lr"] = 99
    assert run.params["lr"] == 0.1  # a copy, not the run's own dict


def test_metric_dataset_experiment_to_dict() -> None:
    assert Metric("m", 1.5, 2, T0).to_dict() == {"key": "m", "value": 1.5, "step": 2, "timestamp": T0}
    assert Dataset("d", role="val", digest="x").to_dict()["role"] == "val"
    assert Experiment("e", description="about", run_count=2).to_dict() == {
        "name": "e",
        "description": "about",
        "owner": None,
        "created": None,
        "run_count": 2,
    }


# -- HTML ------------------------------------------------------------------------------------------
EVIL = "<script>alert('x')</script>"


def test_run_html_escapes_names_params_and_tags() -> None:
    run = run_(
        name=EVIL,
        experiment="<b>exp</b>",
        params={"<i>k": EVIL},
        tags={"t": "<img src=x>"},
        metrics={"acc": 0.5},
        error={"type": "E", "message": EVIL, "traceback": ""},
    )
    html = run._repr_html_()
    assert "<script>" not in html and "<img" not in html and "<b>" not in html and "<i>" not in html
    assert "&lt;script&gt;" in html and "&lt;img src=x&gt;" in html
    assert "<table>" in html and "acc" in html


def test_runlist_html_is_a_table_with_a_count_and_escapes_cells() -> None:
    html = RunList([run_(0, name=EVIL, params={"p": EVIL}), run_(1)])._repr_html_()
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "<table>" in html and "2 runs" in html and html.count("<tr>") == 3


# -- RunList ---------------------------------------------------------------------------------------
def test_runlist_is_an_immutable_sequence_of_runs() -> None:
    runs = RunList([run_(i) for i in range(5)])
    assert len(runs) == 5 and runs[0].id == run_(0).id and runs[-1].id == run_(4).id
    assert isinstance(runs[1:3], RunList) and runs[1:3].ids == [run_(1).id, run_(2).id]
    assert [r.id for r in runs] == runs.ids
    assert runs == RunList([run_(i) for i in range(5)])
    assert run_(2) in runs


def test_runlist_repr_shows_the_count_and_a_table() -> None:
    runs = RunList([run_(0, params={"lr": 0.1}, metrics={"acc": 0.75}), run_(1, status="failed")])
    text = repr(runs)
    lines = text.splitlines()
    assert lines[0] == "RunList(2 runs)"
    for header in ("id", "name", "status", "params.lr", "metrics.acc"):
        assert header in lines[1]
    assert set(lines[2]) <= {"-", " "}
    assert run_(0).id[:8] in lines[3] and "0.75" in lines[3] and "failed" in lines[4]
    assert repr(RunList([run_()])).startswith("RunList(1 run)\n")
    assert repr(RunList()) == "RunList(0 runs)"


def test_runlist_repr_truncates_long_lists_and_says_how_many_more() -> None:
    runs = RunList([run_(i) for i in range(57)])
    lines = repr(runs).splitlines()
    assert lines[0] == "RunList(57 runs)"
    assert lines[-1] == "... 37 more"
    assert len(lines) == 2 + 20 + 1 + 1  # header, rule, 20 rows, "more"
    assert run_(19).id[:8] in repr(runs) and run_(20).id[:8] not in repr(runs)


# -- records and exports ---------------------------------------------------------------------------
def test_to_records_prefixes_params_metrics_and_tags_without_clobbering_attributes() -> None:
    run = run_(
        status="failed",
        params={"status": "ok", "id": 7, "lr": 0.1},
        metrics={"name": 1.0, "acc": 0.5},
        tags={"experiment": "x"},
    )
    (rec,) = RunList([run]).to_records()
    assert rec["status"] == "failed" and rec["id"] == run.id and rec["name"] == "run0"
    assert rec["experiment"] == "exp" and rec["duration"] == 1500
    assert rec["params.status"] == "ok" and rec["params.id"] == 7 and rec["params.lr"] == 0.1
    assert rec["metrics.name"] == 1.0 and rec["metrics.acc"] == 0.5 and rec["tags.experiment"] == "x"
    assert all(not isinstance(v, dict) for v in rec.values())  # flat


def test_to_csv_writes_a_header_and_one_row_per_run(tmp_path: Path) -> None:
    runs = RunList([run_(0, params={"lr": 0.1}), run_(1, metrics={"acc": 0.5}, name='ünï,"quoted"')])
    out = tmp_path / "runs.csv"
    runs.to_csv(out)
    with out.open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["id"] for r in rows] == runs.ids
    assert rows[0]["params.lr"] == "0.1" and rows[0]["metrics.acc"] == ""
    assert rows[1]["metrics.acc"] == "0.5" and rows[1]["name"] == 'ünï,"quoted"'
    assert list(rows[0])[:4] == ["id", "name", "experiment", "status"]


def test_to_pandas_has_one_row_per_run_and_flat_columns() -> None:
    import pandas as pd

    df = RunList([run_(0, params={"lr": 0.1, "status": "p"}), run_(1, metrics={"acc": 0.5})]).to_pandas()
    assert isinstance(df, pd.DataFrame) and len(df) == 2
    assert {"id", "status", "params.lr", "params.status", "metrics.acc"} <= set(df.columns)
    assert df["status"].tolist() == ["completed", "completed"]
    assert df["params.lr"].iloc[0] == 0.1 and math.isnan(df["metrics.acc"].iloc[0])
    assert list(RunList().to_pandas().columns)[:2] == ["id", "name"]


def test_to_polars_has_one_row_per_run_and_tolerates_mixed_types() -> None:
    import polars as pl

    runs = [run_(i, params={"p": i}) for i in range(120)]  # more than polars' 100-row type sniffing
    runs.append(run_(120, params={"p": "text", "mixed": [1, "a"]}, metrics={"acc": 0.5}))
    df = RunList(runs).to_polars()
    assert isinstance(df, pl.DataFrame) and df.height == 121
    assert {"id", "params.p", "params.mixed", "metrics.acc"} <= set(df.columns)
    assert df["id"].to_list() == [r.id for r in runs]
    assert df["metrics.acc"].to_list()[-1] == 0.5


@pytest.mark.slow
@pytest.mark.parametrize("package", ["pandas", "polars"])
def test_exports_name_the_extra_to_install_when_the_package_is_missing(package: str) -> None:
    code = f"""
import sys
sys.modules[{package!r}] = None  # what an uninstalled package looks like to import
from chachaml import RunList, MissingDependencyError
try:
    RunList().to_{package}()
except MissingDependencyError as exc:
    assert isinstance(exc, ImportError)
    print(exc)
else:
    raise SystemExit("no error")
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert f"pip install 'chachaml[{package}]'" in out.stdout


# -- entities from a real store --------------------------------------------------------------------
def test_runs_from_the_store_print_and_export(chachaml_store: Store) -> None:
    with chachaml.with_run("<b>bold</b>") as run:
        chachaml.log_param("status", "param-status")
        chachaml.log_metric("acc", 0.5)
    runs = chachaml.runs()
    assert "RunList(1 run)" in repr(runs) and "acc" in repr(runs)
    assert "&lt;b&gt;bold&lt;/b&gt;" in runs._repr_html_()
    (rec,) = runs.to_records()
    assert (rec["status"], rec["params.status"], rec["metrics.acc"]) == ("completed", "param-status", 0.5)
    assert rec["id"] == run.id
