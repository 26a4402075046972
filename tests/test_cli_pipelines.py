"""``chachaml pipelines`` (SPEC 11: "a CLI listing"), run as real subprocesses."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from tests.test_cli import cli

import chachaml

pytestmark = pytest.mark.slow


def _boom(_: Any) -> Any:
    raise ValueError("bad fold")


@pytest.fixture
def store(tmp_path: Path) -> dict[str, Any]:
    path = tmp_path / "runs.db"
    with chachaml.with_store(str(path)):
        chachaml.run_pipeline("prep", [("load", lambda _: 1), ("clean", lambda x: x + 1)])
        with pytest.raises(ValueError, match="bad fold"):
            chachaml.run_pipeline("train", [("load", lambda _: 1), ("fit", _boom), ("report", lambda x: x)])
        order = [p.id for p in chachaml.pipelines()]
        by_name = {p.name: p for p in chachaml.pipelines()}
    return {"path": path, "cwd": tmp_path, "order": order, "by_name": by_name}


def _run(store: dict[str, Any], *args: str) -> Any:
    return cli("pipelines", "--store", str(store["path"]), *args, cwd=store["cwd"])


def test_the_list_is_newest_first_with_progress_and_the_failed_step(store: dict[str, Any]) -> None:
    r = _run(store)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].split() == ["id", "name", "status", "steps", "current", "started"]
    rows = lines[2:]
    assert len(rows) == 2 and all(len(line) <= 80 for line in lines)
    names = [store["by_name"]["prep"].id, store["by_name"]["train"].id]
    assert [next(n for n in names if row.startswith(n[:8])) for row in rows] == store["order"]
    train = next(row for row in rows if " train " in row)
    assert "failed" in train and "1/3" in train and "fit (failed)" in train
    prep = next(row for row in rows if " prep " in row)
    assert "completed" in prep and "2/2" in prep


def test_json_lists_pipeline_objects_and_name_and_limit_filter(store: dict[str, Any]) -> None:
    r = _run(store, "--json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert [p["id"] for p in doc] == store["order"]
    assert doc == [chachaml.Client(str(store["path"])).get_pipeline(i).to_dict() for i in store["order"]]
    only = json.loads(_run(store, "--name", "prep", "--json").stdout)
    assert [p["name"] for p in only] == ["prep"]
    first = json.loads(_run(store, "--limit", "1", "--json").stdout)
    assert [p["id"] for p in first] == store["order"][:1]


def test_one_pipeline_shows_its_steps_in_order_with_status_and_run(store: dict[str, Any]) -> None:
    train = store["by_name"]["train"]
    r = _run(store, train.id[:8])
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[0].startswith(f"pipeline train ({train.id}): failed, 1/3 steps done")
    rows = [line.split() for line in r.stdout.splitlines()[3:]]
    assert [row[:3] for row in rows] == [
        ["1", "load", "completed"],
        ["2", "fit", "failed"],
        ["3", "report", "skipped"],
    ]
    assert rows[0][3] == train.steps[0].run_id and rows[1][3] == train.steps[1].run_id
    assert len(rows[2]) == 3  # a skipped step never ran: no run
    doc = json.loads(_run(store, train.id[:8], "--json").stdout)
    assert doc == train.to_dict()
    assert [s["status"] for s in doc["steps"]] == ["completed", "failed", "skipped"]


def test_an_unknown_pipeline_is_an_error_naming_it(store: dict[str, Any]) -> None:
    r = _run(store, "feedbeef")
    assert r.returncode == 1
    assert "feedbeef" in r.stderr and "Traceback" not in r.stderr
    bad = _run(store, "--limit", "-3")
    assert bad.returncode == 1 and "-3" in bad.stderr and "Traceback" not in bad.stderr
