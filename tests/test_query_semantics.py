"""``runs(where=..., order_by=..., limit=..., offset=...)`` against real SQLite stores (SPEC section 8)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import chachaml
from chachaml.errors import QueryError
from chachaml.store.base import Store
from conftest import Clock


def make_run(
    name: str,
    *,
    params: dict[str, Any] | None = None,
    metrics: dict[str, Any] | None = None,
    tags: dict[str, str] | None = None,
    experiment: str = "default",
    end: bool = True,
) -> str:
    """A run with these params, metric curves (a list is one point per step) and tags."""
    run = chachaml.start_run(name, experiment=experiment, tags=tags)
    if params:
        chachaml.log_params(params)
    for key, curve in (metrics or {}).items():
        for value in curve if isinstance(curve, list) else [curve]:
            chachaml.log_metric(key, value)
    if end:
        chachaml.end_run()
    return run.id


@pytest.fixture
def zoo(chachaml_store: Store) -> Iterator[Store]:
    """Runs with every kind of value the semantics care about (names say what is special)."""
    make_run(
        "num_small",
        params={"lr": 0.05, "epochs": 10, "opt": "adam", "flag": True},
        metrics={"acc": [0.1, 0.9, 0.5], "loss": [2.0, 1.0]},
        tags={"team": "nlp"},
    )
    make_run(
        "num_big",
        params={"lr": 0.5, "epochs": 20, "opt": "SGD", "flag": False},
        metrics={"acc": [0.6, 0.7], "loss": [3.0]},
        tags={"team": "cv"},
    )
    make_run(
        "text_lr",
        params={"lr": "0.1", "opt": "Adam", "flag": 1},
        metrics={"acc": [0.2], "loss": [float("nan")]},
    )
    make_run(
        "null_lr",
        params={"lr": None, "optimizer": {"lr": 0.001, "name": "adamw"}},
        metrics={"loss": [float("inf")]},
        tags={"team": "Équipe"},
    )
    make_run("bare")
    yield chachaml_store


def names(where: str | None = None, **kw: Any) -> list[str]:
    return sorted(r.name for r in chachaml.runs(where=where, **kw))


def ordered(order_by: str, **kw: Any) -> list[str]:
    return [r.name for r in chachaml.runs(order_by=order_by, **kw)]


# -- typed params ---------------------------------------------------------------------------------------
def test_params_compare_as_numbers_not_as_text(zoo: Store) -> None:
    assert names("params.lr < 0.1") == ["num_small"]  # "0.05" < "0.1" as text too, but 0.5 is not
    assert names("params.lr > 0.1") == ["num_big"]  # text would rank "0.5" > "0.1" and "0.05" < it
    assert names("params.epochs >= 10 and params.epochs < 20") == ["num_small"]
    assert names("params.lr >= 0.05") == ["num_big", "num_small"]


def test_a_quoted_number_matches_only_a_string_param(zoo: Store) -> None:
    assert names("params.lr = '0.1'") == ["text_lr"]
    assert names("params.lr = 0.1") == []
    assert names("params.lr = 0.5") == ["num_big"]
    assert names("params.lr = '0.5'") == []


def test_ints_and_floats_are_the_same_numbers(zoo: Store) -> None:
    assert names("params.epochs = 10.0") == ["num_small"]
    assert names("params.epochs in (20.0, 30)") == ["num_big"]


def test_booleans_are_not_numbers(zoo: Store) -> None:
    assert names("params.flag = true") == ["num_small"]
    assert names("params.flag = false") == ["num_big"]
    assert names("params.flag = 1") == ["text_lr"]
    assert names("params.flag != true") == ["num_big", "text_lr"]


def test_a_missing_key_matches_neither_equal_nor_not_equal_nor_not_equal_negated(zoo: Store) -> None:
    assert names("params.epochs = 10") == ["num_small"]
    assert names("params.epochs != 10") == ["num_big"]
    assert names("not params.epochs = 10") == ["num_big"]
    assert names("params.epochs is null") == ["bare", "null_lr", "text_lr"]
    assert names("params.epochs is not null") == ["num_big", "num_small"]


def test_a_value_of_another_type_is_unequal_but_not_ordered(zoo: Store) -> None:
    assert names("params.lr != 0.05") == ["num_big", "text_lr"]  # '0.1' is not the number 0.05
    assert names("params.lr < 1") == ["num_big", "num_small"]  # '0.1' is neither < nor >= 1
    assert names("not params.lr < 1") == []
    assert names("params.lr != '0.1'") == ["num_big", "num_small"]


def test_a_json_null_param_is_null_and_matches_no_comparison(zoo: Store) -> None:
    assert names("params.lr is null") == ["bare", "null_lr"]
    assert names("params.lr is not null") == ["num_big", "num_small", "text_lr"]
    assert "null_lr" not in names("params.lr != 1")


def test_nested_params_are_dotted_keys(zoo: Store) -> None:
    assert names("params.optimizer.lr < 0.01") == ["null_lr"]
    assert names("params.`optimizer.lr` = 0.001") == ["null_lr"]
    assert names("params.optimizer.name like 'ADAM%'") == ["null_lr"]


def test_in_and_not_in_over_params_of_mixed_types(zoo: Store) -> None:
    assert names("params.opt in ('adam', 'SGD')") == ["num_big", "num_small"]
    assert names("params.lr in (0.5, '0.1')") == ["num_big", "text_lr"]
    assert names("params.lr not in (0.5, '0.1')") == ["num_small"]


def test_like_is_case_insensitive_also_beyond_ascii(zoo: Store) -> None:
    assert names("params.opt like 'adam'") == ["num_small", "text_lr"]
    assert names("params.opt like 'a%'") == ["num_small", "text_lr"]
    assert names("params.opt not like 'a%'") == ["num_big"]
    assert names("tags.team like 'équipe'") == ["null_lr"]
    assert names("tags.team like 'ÉQUIPE'") == ["null_lr"]
    assert names("params.lr like '0.%'") == ["text_lr"]  # like compares text: numbers never match


def test_like_wildcards_and_escapes(chachaml_store: Store) -> None:
    make_run("50%_off")
    make_run("500 off")
    make_run("5_0 off")
    assert names("name like '50%'") == sorted(["500 off", "50%_off"])
    assert names("name like '50\\%%'") == ["50%_off"]
    assert names("name like '5_0%'") == ["500 off", "5_0 off"]
    assert names("name like '5\\_0%'") == ["5_0 off"]


# -- metrics --------------------------------------------------------------------------------------------
def test_metrics_latest_and_aggregates(zoo: Store) -> None:
    assert names("metrics.acc > 0.55") == ["num_big"]  # latest: 0.5 and 0.7
    assert names("metrics.acc.last > 0.55") == ["num_big"]
    assert names("metrics.acc.max > 0.8") == ["num_small"]
    assert names("metrics.acc.min < 0.15") == ["num_small"]
    assert names("metrics.acc.count = 3") == ["num_small"]
    assert names("metrics.acc.count >= 1") == ["num_big", "num_small", "text_lr"]


def test_latest_is_the_value_at_the_highest_step_whatever_the_logging_order(chachaml_store: Store) -> None:
    with chachaml.with_run("r"):
        chachaml.log_metric("m", 1.0, step=5)
        chachaml.log_metric("m", 9.0, step=2)
    assert names("metrics.m = 1") == ["r"]
    assert names("metrics.m.max = 9") == ["r"]


def test_nan_is_a_value_not_a_missing_metric(zoo: Store) -> None:
    assert "text_lr" not in names("metrics.loss is null")
    assert names("metrics.loss is null") == ["bare"]
    assert "text_lr" in names("metrics.loss is not null")
    assert "text_lr" not in names("metrics.loss > -1e308")
    assert "text_lr" not in names("metrics.loss < 1e308")
    assert "text_lr" not in names("metrics.loss != 1")


def test_infinity_is_a_number(zoo: Store) -> None:
    assert names("metrics.loss > 1e308") == ["null_lr"]
    assert names("metrics.loss.max > 1e308") == ["null_lr"]


def test_a_metric_key_ending_in_an_aggregate_word_needs_backticks(chachaml_store: Store) -> None:
    with chachaml.with_run("r"):
        chachaml.log_metric("acc.max", 5.0)
        chachaml.log_metric("acc", 1.0)
    assert names("metrics.`acc.max` = 5") == ["r"]
    assert names("metrics.acc.max = 5") == []
    assert names("metrics.acc.max = 1") == ["r"]


def test_metric_keys_with_slashes_and_dashes_need_no_quotes(chachaml_store: Store) -> None:
    with chachaml.with_run("r"):
        chachaml.log_metrics({"train/loss": 0.5, "val-loss": 0.7})
    assert names("metrics.train/loss < 0.6 and metrics.val-loss > 0.6") == ["r"]


# -- tags and attributes --------------------------------------------------------------------------------
def test_tags_equal_missing_and_in(zoo: Store) -> None:
    assert names("tags.team = 'nlp'") == ["num_small"]
    assert names("tags.team != 'nlp'") == ["null_lr", "num_big"]
    assert names("tags.team is null") == ["bare", "text_lr"]
    assert names("tags.team in ('nlp', 'cv')") == ["num_big", "num_small"]


def test_attributes_bare_and_prefixed(chachaml_store: Store, clock: Clock) -> None:
    # start_time comparisons below need each run to start in its own millisecond; on a fast
    # machine several runs start in the same one (it failed about once in ten), so the clock ticks.
    clock.step = 1
    parent = make_run("parent", experiment="e1", end=False)
    child = make_run("child", experiment="e2")
    chachaml.end_run()
    with pytest.raises(ZeroDivisionError), chachaml.with_run("broken", experiment="e2"):
        1 / 0  # noqa: B018
    open_run = chachaml.start_run("open")
    assert names("experiment = 'e2'") == ["broken", "child"]
    assert names("attributes.experiment = 'e2' and status = 'failed'") == ["broken"]
    assert names("status in ('completed', 'failed')") == ["broken", "child", "parent"]
    assert names("parent_id = '" + parent + "'") == ["child"]
    assert names("parent_id is not null") == ["child"]
    assert names("id = '" + child + "'") == ["child"]
    assert names(f"id like '{child[:6]}%'") == ["child"]
    assert names("end_time is null") == ["open"]
    assert names("duration >= 0") == ["broken", "child", "parent"]
    assert names("attributes.duration is null") == ["open"]
    assert names("created_by = '" + chachaml.current_user() + "'") == ["broken", "child", "open", "parent"]
    run = chachaml.get_run(open_run.id)
    assert names(f"start_time >= {run.start_time}") == ["open"]
    assert names(f"start_time < {run.start_time} and name like 'p%'") == ["parent"]


def test_boolean_logic_and_parentheses(zoo: Store) -> None:
    assert names("params.opt = 'adam' or params.opt = 'SGD'") == ["num_big", "num_small"]
    assert names("(params.opt = 'adam' or params.opt = 'SGD') and metrics.acc.max > 0.8") == ["num_small"]
    assert names("params.opt = 'adam' or params.opt = 'SGD' and metrics.acc.max > 0.8") == ["num_small"]
    assert names("not (params.opt = 'adam' or params.opt = 'SGD')") == ["text_lr"]  # = is case-sensitive
    # SQL's three-valued logic: text_lr has no tag team, so the `or` is unknown, and so is its `not`
    assert names("not (params.opt = 'adam' or tags.team = 'cv')") == []


def test_where_combines_with_the_other_filters(zoo: Store) -> None:
    assert names("metrics.acc.max > 0", tags={"team": "nlp"}) == ["num_small"]
    assert names("metrics.acc.max > 0", status="completed", name="num_big") == ["num_big"]
    assert names("metrics.acc.max > 0", experiment="other") == []


def test_search_runs_is_runs_with_where(zoo: Store) -> None:
    assert chachaml.search_runs("params.lr < 1") == chachaml.runs(where="params.lr < 1")
    assert chachaml.last_run(where="params.lr < 1").name == "num_big"  # newest first


def test_a_blank_where_or_order_by_is_no_filter(zoo: Store) -> None:
    assert len(chachaml.runs(where="")) == len(chachaml.runs(where="  \n")) == 5
    assert chachaml.runs(order_by=" ").ids == chachaml.runs().ids


def test_archived_runs_are_searched_only_when_asked(zoo: Store) -> None:
    chachaml.archive_runs()
    assert names("params.lr < 1") == []
    assert names("params.lr < 1", include_archived=True) == ["num_big", "num_small"]


def test_a_malformed_query_raises_even_when_the_database_does_not_exist(tmp_path: Path) -> None:
    with chachaml.with_store(tmp_path / "none.db"):
        assert list(chachaml.runs(where="params.lr < 1")) == []
        with pytest.raises(QueryError):
            chachaml.runs(where="params.lr <")
        with pytest.raises(QueryError):
            chachaml.runs(order_by="params.lr sideways")
        assert chachaml.best_run("acc", where="params.lr < 1") is None
        with pytest.raises(QueryError):
            chachaml.best_run("acc", where="params.lr <")
    assert not (tmp_path / "none.db").exists()


def test_where_and_order_by_must_be_strings(zoo: Store) -> None:
    with pytest.raises(QueryError, match="where= must be a str"):
        chachaml.runs(where=1)  # type: ignore[arg-type]
    with pytest.raises(QueryError, match="order_by= must be a str"):
        chachaml.runs(order_by=["a"])  # type: ignore[arg-type]


# -- order_by and paging ---------------------------------------------------------------------------------
def test_order_by_metric_puts_nulls_and_nans_last_in_both_directions(zoo: Store) -> None:
    # loss latest: num_small 1.0, num_big 3.0, text_lr NaN, null_lr inf, bare none
    assert ordered("metrics.loss desc")[:3] == ["null_lr", "num_big", "num_small"]
    assert ordered("metrics.loss asc")[:3] == ["num_small", "num_big", "null_lr"]
    assert set(ordered("metrics.loss desc")[3:]) == set(ordered("metrics.loss")[3:]) == {"text_lr", "bare"}


def test_order_by_aggregates_params_tags_and_attributes(zoo: Store) -> None:
    assert ordered("metrics.acc.max desc")[:3] == ["num_small", "num_big", "text_lr"]
    assert ordered("metrics.acc.min")[:3] == ["num_small", "text_lr", "num_big"]
    assert ordered("params.epochs desc")[:2] == ["num_big", "num_small"]
    assert ordered("params.epochs")[:2] == ["num_small", "num_big"]
    assert ordered("tags.team")[:3] == ["num_big", "num_small", "null_lr"]  # cv < nlp < Équipe
    assert ordered("name") == ["bare", "null_lr", "num_big", "num_small", "text_lr"]
    assert ordered("attributes.name desc") == ["text_lr", "num_small", "num_big", "null_lr", "bare"]


def test_order_by_several_keys_and_ties_fall_back_to_newest_first(chachaml_store: Store) -> None:
    for name, group, score in [("a", 1, 5), ("b", 1, 7), ("c", 2, 7), ("d", 2, 7)]:
        make_run(name, params={"group": group}, metrics={"score": score})
    assert ordered("metrics.score desc, params.group asc") == ["b", "d", "c", "a"]
    assert ordered("params.group desc, metrics.score") == ["d", "c", "a", "b"]


def test_limit_and_offset_page_through_all_runs_in_order(chachaml_store: Store) -> None:
    for i in range(23):
        make_run(f"r{i:02d}", metrics={"score": (i * 7) % 23})
    full = ordered("metrics.score desc")
    pages = [
        [r.name for r in chachaml.runs(order_by="metrics.score desc", limit=5, offset=o)]
        for o in range(0, 25, 5)
    ]
    assert [n for page in pages for n in page] == full
    assert [len(p) for p in pages] == [5, 5, 5, 5, 3]
    assert [r.name for r in chachaml.runs(offset=20)] == [r.name for r in chachaml.runs()][20:]
    assert list(chachaml.runs(limit=0)) == []


def test_a_where_query_does_not_leave_the_store_read_only(zoo: Store, tmp_path: Path) -> None:
    assert names("params.lr < 1")
    with chachaml.with_run("after"):
        chachaml.log_param("x", 1)
        chachaml.log_metric("m", 1.0)
    assert names("params.x = 1 and metrics.m = 1") == ["after"]


def test_plain_sql_sees_the_same_typed_values(zoo: Store, tmp_path: Path) -> None:
    """The doc claim: params are JSON text, and json_extract gives typed values to any SQL tool."""
    conn = sqlite3.connect(tmp_path / "chachaml.db")
    try:
        rows = conn.execute(
            "SELECT r.name FROM runs r JOIN params p ON p.run_id = r.id "
            "WHERE p.key = 'lr' AND json_type(p.value) IN ('integer', 'real') "
            "AND json_extract(p.value, '$') < 0.1"
        ).fetchall()
    finally:
        conn.close()
    assert rows == [("num_small",)]
