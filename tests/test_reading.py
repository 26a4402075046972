"""Reading runs back through the public API (SPEC section 3 "Reading", section 8 "Reading")."""

from __future__ import annotations

import enum
import getpass
import json
import os
import platform
import socket
import sqlite3
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

import chachaml
from chachaml.errors import InvalidValueError, RunNotFoundError
from chachaml.store.base import Store


class Team(enum.Enum):
    NLP = "nlp"


def make_run(name: str | None = None, **kwargs: Any) -> chachaml.Run:
    with chachaml.with_run(name, **kwargs) as run:
        pass
    return run


# -- get_run ---------------------------------------------------------------------------------------
def test_get_run_by_full_id_and_by_prefix(chachaml_store: Store) -> None:
    run = make_run("r")
    for ref in (run.id, run.id[:12], run.id[:4], run.id.upper()):
        assert chachaml.get_run(ref).id == run.id


def test_get_run_with_an_ambiguous_prefix_names_the_runs_it_matches(chachaml_store: Store) -> None:
    made = [make_run().id for _ in range(17)]  # 17 runs, 16 hex digits: two share a first digit
    digit, _ = Counter(i[0] for i in made).most_common(1)[0]
    with pytest.raises(InvalidValueError) as info:
        chachaml.get_run(digit)
    matching = [i for i in made if i.startswith(digit)]
    assert len(matching) >= 2
    for run_id in matching[:10]:
        assert run_id in str(info.value)


def test_get_run_with_an_unknown_id_raises_run_not_found(chachaml_store: Store) -> None:
    make_run()
    with pytest.raises(RunNotFoundError, match="'nope'") as info:
        chachaml.get_run("nope")
    assert isinstance(info.value, LookupError)
    assert "chachaml.runs()" in str(info.value)


@pytest.mark.parametrize("bad", ["", None, 42, b"abc"], ids=repr)
def test_get_run_with_a_bad_id_raises_invalid_value(chachaml_store: Store, bad: Any) -> None:
    with pytest.raises(InvalidValueError):
        chachaml.get_run(bad)


# -- runs() ----------------------------------------------------------------------------------------
@pytest.fixture
def population(chachaml_store: Store, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Five runs over two experiments, two users, a parent/child pair, tags and statuses.

    Start order: a, b, c (child of b, started inside it), d (failed), e.
    """
    monkeypatch.setenv("CHACHAML_USER", "alice")
    a = make_run("a", experiment="exp1", tags={"team": "nlp", "gpu": 1})
    with chachaml.with_run("b", experiment="exp1", tags={"team": "nlp"}) as b:
        c = make_run("c", experiment="exp1")  # child of b
    monkeypatch.setenv("CHACHAML_USER", "bob")
    with pytest.raises(RuntimeError), chachaml.with_run("a", experiment="exp2") as d:
        raise RuntimeError("boom")
    e = make_run("e", experiment="exp2", tags={"team": "cv"})
    return {"a": a.id, "b": b.id, "c": c.id, "d": d.id, "e": e.id}


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({}, "e d c b a"),
        ({"experiment": "exp1"}, "c b a"),
        ({"experiment": "missing"}, ""),
        ({"status": "failed"}, "d"),
        ({"status": "completed"}, "e c b a"),
        ({"name": "a"}, "d a"),
        ({"created_by": "bob"}, "e d"),
        ({"tags": {"team": "nlp"}}, "b a"),
        ({"tags": {"team": Team.NLP}}, "b a"),
        ({"tags": {"team": "nlp", "gpu": 1}}, "a"),
        ({"experiment": "exp2", "created_by": "bob", "status": "completed"}, "e"),
        ({"limit": 2}, "e d"),
        ({"limit": 2, "offset": 2}, "c b"),
        ({"offset": 4}, "a"),
        ({"limit": 0}, ""),
    ],
    ids=repr,
)
def test_runs_filters(population: dict[str, str], kwargs: dict[str, Any], expected: str) -> None:
    got = chachaml.runs(**kwargs)
    assert isinstance(got, chachaml.RunList)
    assert got.ids == [population[n] for n in expected.split()]


def test_runs_experiment_is_the_first_positional_argument(population: dict[str, str]) -> None:
    assert chachaml.runs("exp2").ids == [population["e"], population["d"]]


def test_runs_by_parent_id_lists_the_children(population: dict[str, str]) -> None:
    assert chachaml.runs(parent_id=population["b"]).ids == [population["c"]]
    assert chachaml.get_run(population["c"]).parent_id == population["b"]


def test_archived_runs_are_hidden_unless_asked_for(population: dict[str, str], chachaml_store: Store) -> None:
    with sqlite3.connect(chachaml_store.path) as conn:  # type: ignore[attr-defined]
        conn.execute("UPDATE runs SET archived = 1 WHERE id = ?", (population["a"],))
    assert population["a"] not in chachaml.runs().ids
    assert chachaml.runs(include_archived=True).ids[-1] == population["a"]
    assert chachaml.get_run(population["a"]).archived is True  # still readable by id


@pytest.mark.parametrize(
    "kwargs",
    [{"status": "done"}, {"limit": -1}, {"limit": 1.5}, {"limit": True}, {"offset": -1}, {"tags": ["x"]}],
    ids=repr,
)
def test_runs_refuses_bad_arguments(chachaml_store: Store, kwargs: dict[str, Any]) -> None:
    with pytest.raises(InvalidValueError):
        chachaml.runs(**kwargs)


def test_runs_returns_all_matching_runs_newest_first_without_a_limit(chachaml_store: Store) -> None:
    made = [make_run(f"r{i}").id for i in range(30)]
    assert chachaml.runs().ids == made[::-1]


# -- last_run --------------------------------------------------------------------------------------
def test_last_run_is_the_most_recently_started_matching_run(population: dict[str, str]) -> None:
    assert chachaml.last_run().id == population["e"]  # type: ignore[union-attr]
    assert chachaml.last_run("exp1").id == population["c"]  # type: ignore[union-attr]
    assert chachaml.last_run(status="failed").id == population["d"]  # type: ignore[union-attr]
    assert chachaml.last_run("missing") is None


def test_last_run_on_an_empty_store_is_none(chachaml_store: Store) -> None:
    assert chachaml.last_run() is None


# -- metric_history --------------------------------------------------------------------------------
def test_metric_history_by_id_or_prefix_in_step_order(chachaml_store: Store) -> None:
    with chachaml.with_run() as run:
        chachaml.log_metric("loss", 0.3, step=2)
        chachaml.log_metric("loss", 0.9, step=0)
        chachaml.log_metric("loss", 0.5, step=1)
    for ref in (run.id, run.id[:6]):
        points = chachaml.metric_history(ref, "loss")
        assert [(p.key, p.step, p.value) for p in points] == [
            ("loss", 0, 0.9),
            ("loss", 1, 0.5),
            ("loss", 2, 0.3),
        ]
    assert all(isinstance(p, chachaml.Metric) for p in points)


def test_metric_history_of_a_key_never_logged_is_empty(chachaml_store: Store) -> None:
    run = make_run()
    assert chachaml.metric_history(run.id, "never") == []


def test_metric_history_of_an_unknown_run_raises_run_not_found(chachaml_store: Store) -> None:
    make_run()
    with pytest.raises(RunNotFoundError):
        chachaml.metric_history("f" * 32, "loss")
    with pytest.raises(RunNotFoundError):
        chachaml.metric_history("zz", "loss")


@pytest.mark.parametrize(
    ("run_id", "key"), [(None, "loss"), (42, "loss"), ("", "loss"), ("ab", ""), ("ab", 3)]
)
def test_metric_history_with_bad_arguments_raises_invalid_value(
    chachaml_store: Store, run_id: Any, key: Any
) -> None:
    with pytest.raises(InvalidValueError):
        chachaml.metric_history(run_id, key)


# -- experiments -----------------------------------------------------------------------------------
def test_experiments_lists_every_experiment_with_its_run_count(population: dict[str, str]) -> None:
    got = chachaml.experiments()
    assert [(e.name, e.run_count) for e in got] == [("exp1", 3), ("exp2", 2)]
    assert all(isinstance(e, chachaml.Experiment) and isinstance(e.created, int) for e in got)


def test_create_experiment_records_description_and_owner(
    chachaml_store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CHACHAML_USER", "carol")
    made = chachaml.create_experiment("vision", description="resnet sweep")
    assert (made.name, made.description, made.owner, made.run_count) == ("vision", "resnet sweep", "carol", 0)
    other = chachaml.create_experiment("audio", owner="dave")
    assert other.owner == "dave"
    make_run(experiment="vision")
    assert {e.name: e.run_count for e in chachaml.experiments()} == {"vision": 1, "audio": 0}
    with pytest.raises(InvalidValueError):
        chachaml.create_experiment("")


# -- who and where ---------------------------------------------------------------------------------
def test_current_user_is_chachaml_user_then_the_os_user(monkeypatch: pytest.MonkeyPatch) -> None:
    assert chachaml.current_user() == getpass.getuser()
    monkeypatch.setenv("CHACHAML_USER", "ci-bot")
    assert chachaml.current_user() == "ci-bot"


def test_runs_record_the_current_user_as_creator(
    chachaml_store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CHACHAML_USER", "erin")
    assert make_run().created_by == "erin"
    assert chachaml.runs(created_by="erin")[0].created_by == "erin"


def test_env_records_python_platform_and_host(chachaml_store: Store) -> None:
    env = chachaml.get_run(make_run().id).env
    assert env["python"] == platform.python_version()
    assert env["platform"] == platform.platform()
    assert env["host"] == socket.gethostname()


_ENV_SCRIPT = """
import json, chachaml
chachaml.use_store("runs.db")
with chachaml.with_run() as run:
    pass
print(json.dumps(chachaml.get_run(run.id).env))
"""


def _env_in(cwd: Path) -> dict[str, Any]:
    """The env a run records when a fresh process (env is cached per process) runs in ``cwd``."""
    out = subprocess.run(
        [sys.executable, "-c", _ENV_SCRIPT], cwd=cwd, capture_output=True, text=True, check=True, timeout=60
    )
    return json.loads(out.stdout)  # type: ignore[no-any-return]


def _git(cwd: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    ).stdout.strip()


@pytest.mark.slow
def test_env_records_the_git_commit_when_run_inside_a_repository(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q")
    (repo / "train.py").write_text("print('hi')\n")
    _git(repo, "add", "train.py")
    _git(repo, "commit", "-q", "-m", "first")
    head = _git(repo, "rev-parse", "HEAD")
    env = _env_in(repo)
    assert env["git_commit"] == head
    assert env["git_dirty"] is False
    (repo / "train.py").write_text("print('changed')\n")
    assert _env_in(repo)["git_dirty"] is True


@pytest.mark.slow
def test_env_has_no_git_commit_outside_a_repository(tmp_path: Path) -> None:
    inside = subprocess.run(["git", "rev-parse"], cwd=tmp_path, capture_output=True, check=False)
    if inside.returncode == 0:
        pytest.skip("tmp_path is inside a git repository on this machine")
    env = _env_in(tmp_path)
    assert "git_commit" not in env
    assert env["python"] == platform.python_version()


# -- reads never create the default database -------------------------------------------------------
def test_reads_on_the_default_store_create_no_file(tmp_path: Path) -> None:
    assert chachaml.runs().ids == []
    assert chachaml.last_run() is None
    assert chachaml.experiments() == []
    with pytest.raises(RunNotFoundError):
        chachaml.get_run("abc")
    with pytest.raises(RunNotFoundError):
        chachaml.metric_history("abc", "loss")
    assert os.listdir(tmp_path) == []
