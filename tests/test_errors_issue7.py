"""Issue 7, "wrong or missing errors": each call a new user tried either works (where the issue
says accept) or raises a ``ChachamlError`` naming the bad value and the fix."""

from __future__ import annotations

from typing import Any

import pytest

import chachaml
from chachaml import InvalidValueError, NoActiveRunError, QueryError, RunNotFoundError


@pytest.fixture
def store() -> Any:
    return chachaml.use_store("runs.db")


def test_a_store_path_with_a_nul_character_is_refused_by_name() -> None:
    with pytest.raises(InvalidValueError, match=r"'x\.db\\x00y'.*NUL.*remove it"):
        chachaml.use_store("x.db\x00y")
    with pytest.raises(InvalidValueError, match="NUL"), chachaml.with_store("a\x00.db"):
        pass


def test_compare_runs_of_none_says_what_to_pass(store: object) -> None:
    with pytest.raises(InvalidValueError, match=r"got NoneType None; pass e\.g\. compare_runs\(\[a, b\]\)"):
        chachaml.compare_runs(None)  # type: ignore[arg-type]


def test_runs_parent_id_accepts_a_run_and_an_id_prefix(store: object) -> None:
    parent = chachaml.start_run("parent")
    child = chachaml.start_run("child")
    chachaml.end_run()
    chachaml.end_run()
    chachaml.start_run("other", parent_id=None)
    chachaml.end_run()
    assert chachaml.runs(parent_id=parent).ids == [child.id]
    assert chachaml.runs(parent_id=parent.id[:6]).ids == [child.id]
    assert chachaml.runs(parent_id=parent.id).ids == [child.id]
    assert chachaml.last_run(parent_id=parent).id == child.id  # type: ignore[union-attr]
    assert chachaml.best_run("m", parent_id=parent) is None  # the filter resolves, no StoreError


def test_runs_parent_id_prefix_matching_no_run_raises_instead_of_an_empty_list(store: object) -> None:
    with chachaml.with_run():
        pass
    with pytest.raises(RunNotFoundError, match="'ffffff'"):
        chachaml.runs(parent_id="ffffff")
    with pytest.raises(InvalidValueError, match=r"parent_id= must be a Run or a run id.*got int 5"):
        chachaml.runs(parent_id=5)  # type: ignore[arg-type]


@pytest.mark.parametrize("field", ["experiment", "name", "created_by"])
def test_runs_text_filters_of_another_type_are_refused_not_silently_empty(store: object, field: str) -> None:
    with chachaml.with_run("5", experiment="5"):
        pass
    with pytest.raises(InvalidValueError, match=rf"{field}= filters by text, got int 5; pass a str"):
        chachaml.runs(**{field: 5})


def test_get_run_and_start_run_accept_a_run_wherever_run_accepts_one(store: object) -> None:
    parent = chachaml.start_run("parent")
    assert chachaml.get_run(parent).id == parent.id
    child = chachaml.start_run("child", parent_id=parent)
    assert child.parent_id == parent.id
    chachaml.end_run()
    chachaml.end_run()
    resumed = chachaml.start_run(run_id=parent)
    assert resumed.id == parent.id and resumed.status == "running"
    chachaml.end_run()
    with pytest.raises(InvalidValueError, match=r"got int 7; pass the Run itself or run\.id"):
        chachaml.get_run(7)  # type: ignore[arg-type]


def test_register_model_without_a_run_names_its_own_run_id_argument(store: object) -> None:
    with pytest.raises(NoActiveRunError) as info:
        chachaml.register_model("churn", artifact="model.pkl")
    assert "run_id=<a Run or run id>" in str(info.value)
    assert "pass run=" not in str(info.value)


def test_a_numpy_integer_timestamp_is_accepted_like_a_numpy_step(store: object) -> None:
    np = pytest.importorskip("numpy")
    with chachaml.with_run() as run:
        chachaml.log_metric("loss", 0.5, step=np.int64(3), timestamp=np.int64(1_700_000_000_000))
        chachaml.log_metrics({"acc": 0.9}, timestamp=np.int32(1_700_000_000))
    (point,) = chachaml.metric_history(run.id, "loss")
    assert (point.step, point.timestamp) == (3, 1_700_000_000_000)
    assert type(point.timestamp) is int
    assert chachaml.metric_history(run.id, "acc")[0].timestamp == 1_700_000_000


def test_a_numpy_bool_timestamp_is_still_refused(store: object) -> None:
    np = pytest.importorskip("numpy")
    with chachaml.with_run(), pytest.raises(InvalidValueError, match="timestamp must be integer"):
        chachaml.log_metric("loss", 0.5, timestamp=np.bool_(True))


def test_to_polars_copes_with_params_of_mixed_types_like_pandas(store: object) -> None:
    pl = pytest.importorskip("polars")
    values = [1, "x", [1, 2], True, None, 2.5, [1, "a"]]
    for i, v in enumerate(values):
        with chachaml.with_run(str(i)):
            chachaml.log_params({"p": v, "n": 3, "l": [1, 2]})
    df = chachaml.runs().to_polars()
    assert df.height == len(values)
    assert df["params.p"].dtype == pl.String  # mixed: everything as text, nothing lost
    by_run = dict(zip(df["name"].to_list(), df["params.p"].to_list(), strict=True))
    assert [by_run[str(i)] for i in range(len(values))] == [
        "1",
        "x",
        "[1, 2]",
        "true",
        None,
        "2.5",
        '[1, "a"]',
    ]
    assert df["params.n"].dtype == pl.Int64  # one kind keeps its natural type
    assert df["params.l"].to_list() == [[1, 2]] * len(values)


def test_where_with_an_integer_beyond_64_bits_matches_exactly(store: object) -> None:
    seed = 2**100  # SeedSequence().entropy is 128-bit
    for v in (seed, seed + 1, -seed, 5, "x"):
        with chachaml.with_run(str(v)):
            chachaml.log_param("seed", v)

    def names(where: str) -> list[str | None]:
        return sorted(r.name for r in chachaml.runs(where=where))  # type: ignore[type-var]

    assert names(f"params.seed = {seed}") == [str(seed)]  # not seed + 1, as a float compare would
    assert names(f"params.seed = {seed + 1}") == [str(seed + 1)]
    assert names(f"params.seed = -{seed}") == [str(-seed)]
    assert names(f"params.seed != {seed}") == sorted([str(seed + 1), str(-seed), "5", "x"])
    assert names(f"params.seed in ({seed + 1}, 5)") == sorted([str(seed + 1), "5"])


@pytest.mark.parametrize(
    "query", ["params.seed > {big}", "metrics.loss = {big}", "start_time < {big}", "params.seed <= -{big}"]
)
def test_where_refuses_inexact_comparisons_with_wide_integers_naming_the_literal(
    store: object, query: str
) -> None:
    big = 2**100 + 1
    with chachaml.with_run():
        chachaml.log_param("seed", big)
    with pytest.raises(QueryError, match=rf"the integer -?{big} does not fit in 64 bits.*as a float"):
        chachaml.runs(where=query.format(big=big))


def test_step_none_after_the_largest_step_is_refused_not_stored_as_a_float(store: object) -> None:
    last = 2**63 - 1
    with chachaml.with_run() as run:
        chachaml.log_metric("k", 1.0, step=last)
        with pytest.raises(InvalidValueError, match=rf"'k'.*already has step {last}.*explicit step="):
            chachaml.log_metric("k", 2.0)
        with pytest.raises(InvalidValueError, match="already has step"):
            chachaml.log_metrics({"k": 2.0, "other": 1.0})  # all or nothing: 'other' is not written
        with chachaml.batched():
            chachaml.log_metric("b", 1.0, step=last)
            chachaml.log_metric("b", 2.0)
            with pytest.raises(InvalidValueError, match=r"'b'.*already has step"):
                chachaml.flush()
        chachaml.log_metric("k", 3.0, step=0)  # the run is still usable
    history = chachaml.metric_history(run.id, "k")
    assert [(p.step, p.value) for p in history] == [(0, 3.0), (last, 1.0)]
    assert all(type(p.step) is int for p in history)
    assert chachaml.metric_history(run.id, "other") == []


def test_step_none_overflow_in_a_big_batch_is_refused(store: object) -> None:
    last = 2**63 - 1
    with chachaml.with_run() as run:
        points = [{"k": float(i)} for i in range(100)]
        with pytest.raises(InvalidValueError, match="already has step"), chachaml.batched():
            chachaml.log_metric("k", 0.0, step=last)
            for p in points:
                chachaml.log_metrics(p)
    assert chachaml.metric_history(run.id, "k") == []  # the batch was all or nothing
