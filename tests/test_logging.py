"""Logging semantics through the public API (SPEC section 3 "Logging", section 8 "Values and keys")."""

from __future__ import annotations

import datetime as dt
import enum
import fractions
import math
import sqlite3
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import chachaml
from chachaml.errors import (
    ConflictError,
    InvalidValueError,
    NoActiveRunError,
    RunStateError,
)
from chachaml.store.base import Store


class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


class Level(enum.IntEnum):
    LOW = 1


class Weird:
    def __str__(self) -> str:
        return "weird-thing"


class Floaty:
    def __float__(self) -> float:
        return 0.25


def db(store: Store) -> sqlite3.Connection:
    path = getattr(store, "path", None)
    assert path, "these tests read the SQLite file directly"
    return sqlite3.connect(path)


def count_soon(conn: sqlite3.Connection, expected: int, timeout: float = 5.0) -> int:
    """The number of metric rows another connection sees, once it is ``expected`` or after
    ``timeout`` seconds: the metric journal (docs/adr/0023) reaches SQLite in the background."""
    deadline = time.monotonic() + timeout
    while True:
        n = int(conn.execute("SELECT count(*) FROM metrics").fetchone()[0])
        if n == expected or time.monotonic() > deadline:
            return n
        time.sleep(0.01)


def steps(run_id: str, key: str) -> list[tuple[int, float]]:
    return [(m.step, m.value) for m in chachaml.metric_history(run_id, key)]


# -- params ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "value",
    [3, -7, 2**70, 0.1, 1e-300, True, False, None, "adam", "", [1, 2.5, "x", None, True], []],
    ids=repr,
)
def test_params_keep_their_json_type(chachaml_store: Store, value: Any) -> None:
    with chachaml.with_run() as run:
        chachaml.log_param("p", value)
    got = chachaml.get_run(run.id).params["p"]
    assert got == value and type(got) is type(value)


def test_nested_dict_params_are_flattened_with_dots(chachaml_store: Store) -> None:
    with chachaml.with_run() as run:
        chachaml.log_params({"optimizer": {"name": "adam", "lr": 0.01, "betas": {"b1": 0.9}}, "epochs": 3})
        chachaml.log_param("model", {"depth": 4, "act": "relu"})
    assert chachaml.get_run(run.id).params == {
        "optimizer.name": "adam",
        "optimizer.lr": 0.01,
        "optimizer.betas.b1": 0.9,
        "epochs": 3,
        "model.depth": 4,
        "model.act": "relu",
    }


def test_flattening_that_produces_the_same_key_twice_is_refused(chachaml_store: Store) -> None:
    with chachaml.with_run() as run, pytest.raises(InvalidValueError, match=r"a\.b"):
        chachaml.log_params({"a.b": 1, "a": {"b": 2}})
    assert chachaml.get_run(run.id).params == {}


def test_numpy_scalars_paths_enums_and_tuples_are_normalised(chachaml_store: Store) -> None:
    with chachaml.with_run() as run:
        chachaml.log_params(
            {
                "i": np.int64(3),
                "f": np.float32(0.5),
                "b": np.bool_(True),
                "path": Path("/data/train.csv"),
                "color": Color.RED,
                "level": Level.LOW,
                "shape": (28, 28),
            }
        )
    params = chachaml.get_run(run.id).params
    assert params == {
        "i": 3,
        "f": 0.5,
        "b": True,
        "path": "/data/train.csv",
        "color": "red",
        "level": 1,
        "shape": [28, 28],
    }
    assert type(params["i"]) is int and type(params["f"]) is float and type(params["b"]) is bool


def test_other_objects_are_stored_as_their_str(chachaml_store: Store) -> None:
    with chachaml.with_run() as run:
        chachaml.log_params({"obj": Weird(), "in_list": [Weird()], "dt": dt.date(2024, 1, 2)})
    assert chachaml.get_run(run.id).params == {
        "obj": "weird-thing",
        "in_list": ["weird-thing"],
        "dt": "2024-01-02",
    }


def test_relogging_the_same_param_value_is_a_no_op(chachaml_store: Store) -> None:
    with chachaml.with_run() as run:
        for _ in range(2):  # a re-run notebook cell
            chachaml.log_param("lr", 0.1)
            chachaml.log_params({"opt": {"name": "adam"}, "layers": [64, 32]})
    assert chachaml.get_run(run.id).params == {"lr": 0.1, "opt.name": "adam", "layers": [64, 32]}


def test_relogging_a_param_with_another_value_raises_conflict_naming_key_values_and_fix(
    chachaml_store: Store,
) -> None:
    with chachaml.with_run() as run:
        chachaml.log_param("learning_rate", 0.001)
        with pytest.raises(ConflictError) as info:
            chachaml.log_param("learning_rate", 0.002)
    message = str(info.value)
    for part in ("learning_rate", "0.001", "0.002", "overwrite=True"):
        assert part in message
    assert chachaml.get_run(run.id).params == {"learning_rate": 0.001}


@pytest.mark.parametrize(
    ("first", "second"),
    [(1, True), (0, False), (1, "1"), (None, "None"), ([1], [True]), ("a", ["a"])],
    ids=repr,
)
def test_a_param_relogged_with_a_value_of_another_type_is_a_conflict(
    chachaml_store: Store, first: Any, second: Any
) -> None:
    with chachaml.with_run() as run:
        chachaml.log_param("p", first)
        with pytest.raises(ConflictError):
            chachaml.log_param("p", second)
    got = chachaml.get_run(run.id).params["p"]
    assert got == first and type(got) is type(first)


def test_overwrite_true_replaces_a_param(chachaml_store: Store) -> None:
    with chachaml.with_run() as run:
        chachaml.log_param("lr", 0.1)
        chachaml.log_param("lr", 0.2, overwrite=True)
        chachaml.log_params({"lr": "auto", "new": 1}, overwrite=True)
    assert chachaml.get_run(run.id).params == {"lr": "auto", "new": 1}


def test_log_params_is_all_or_nothing(chachaml_store: Store) -> None:
    with chachaml.with_run() as run:
        chachaml.log_param("lr", 0.1)
        with pytest.raises(ConflictError):
            chachaml.log_params({"a": 1, "lr": 0.2, "b": 2})
        with pytest.raises(InvalidValueError):
            chachaml.log_params({"c": 1, "bad\nkey": 2})
    assert chachaml.get_run(run.id).params == {"lr": 0.1}


# -- metric values ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (3, 3.0),
        (-2, -2.0),
        (0.125, 0.125),
        (np.float32(0.5), 0.5),
        (np.float64(1.25), 1.25),
        (np.int64(7), 7.0),
        (np.array(2.5), 2.5),
        (Floaty(), 0.25),
        (Decimal("1.5"), 1.5),
        (fractions.Fraction(3, 4), 0.75),
    ],
    ids=lambda v: type(v).__name__,
)
def test_metric_accepts_real_numbers(chachaml_store: Store, value: Any, expected: float) -> None:
    with chachaml.with_run() as run:
        chachaml.log_metric("m", value)
    (point,) = chachaml.metric_history(run.id, "m")
    assert point.value == expected and type(point.value) is float


@pytest.mark.parametrize(
    "value",
    ["0.5", "", True, False, np.bool_(True), None, b"1", [1.0], (1.0,), {"v": 1.0}, 1 + 2j, object()],
    ids=repr,
)
def test_metric_rejects_values_that_are_not_real_numbers(chachaml_store: Store, value: Any) -> None:
    with chachaml.with_run() as run:
        chachaml.log_metric("m", 1.0)
        with pytest.raises(InvalidValueError) as info:
            chachaml.log_metric("m", value)
        with pytest.raises(InvalidValueError):
            chachaml.log_metrics({"m": value})
    assert "'m'" in str(info.value)
    assert steps(run.id, "m") == [(0, 1.0)]


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf], ids=repr)
def test_nan_and_infinities_are_stored_and_read_back(chachaml_store: Store, value: float) -> None:
    with chachaml.with_run() as run:
        chachaml.log_metric("m", value)
        chachaml.log_metric("np", np.float32(value))
    for key in ("m", "np"):
        (point,) = chachaml.metric_history(run.id, key)
        latest = chachaml.get_run(run.id).metrics[key]
        listed = chachaml.runs()[0].metrics[key]
        for got in (point.value, latest, listed):
            assert (math.isnan(got) and math.isnan(value)) or got == value


def test_nan_is_distinguishable_from_missing_in_plain_sql(chachaml_store: Store) -> None:
    with chachaml.with_run() as run:
        chachaml.log_metric("loss", math.nan)
        chachaml.log_metric("loss", 0.5)
    rows = (
        db(chachaml_store)
        .execute(
            "SELECT step, value, is_nan FROM metrics WHERE run_id = ? AND key = 'loss' ORDER BY step",
            (run.id,),
        )
        .fetchall()
    )
    assert rows == [(0, None, 1), (1, 0.5, 0)]


# -- steps -----------------------------------------------------------------------------------------
def test_steps_count_from_zero_per_key_and_per_run(chachaml_store: Store) -> None:
    with chachaml.with_run() as a:
        for v in (3.0, 2.0, 1.0):
            chachaml.log_metric("loss", v)
        chachaml.log_metric("acc", 0.5)
    with chachaml.with_run() as b:
        chachaml.log_metric("loss", 9.0)
    assert steps(a.id, "loss") == [(0, 3.0), (1, 2.0), (2, 1.0)]
    assert steps(a.id, "acc") == [(0, 0.5)]
    assert steps(b.id, "loss") == [(0, 9.0)]


def test_explicit_steps_are_kept_and_implicit_ones_continue_after_the_highest(chachaml_store: Store) -> None:
    with chachaml.with_run() as run:
        chachaml.log_metric("loss", 1.0, step=10)
        chachaml.log_metric("loss", 2.0, step=np.int64(4))
        chachaml.log_metric("loss", 3.0)
        chachaml.log_metric("loss", 4.0, 0)
        chachaml.log_metric("loss", 5.0)
    assert steps(run.id, "loss") == [(0, 4.0), (4, 2.0), (10, 1.0), (11, 3.0), (12, 5.0)]


@pytest.mark.parametrize("step", [1.0, "1", True, None.__class__], ids=repr)
def test_a_step_that_is_not_an_int_is_refused(chachaml_store: Store, step: Any) -> None:
    with chachaml.with_run() as run, pytest.raises(InvalidValueError, match="step"):
        chachaml.log_metric("m", 1.0, step=step)
    assert steps(run.id, "m") == []


def test_latest_value_is_the_one_at_the_highest_step(chachaml_store: Store) -> None:
    with chachaml.with_run() as run:
        chachaml.log_metric("acc", 0.9, step=5)
        chachaml.log_metric("acc", 0.1, step=2)
        assert chachaml.current_run().metrics == {"acc": 0.9}  # type: ignore[union-attr]
        chachaml.log_metric("acc", 0.2, step=3)
    assert chachaml.get_run(run.id).metrics == {"acc": 0.9}


def test_latest_value_on_a_tied_step_is_the_one_logged_last(chachaml_store: Store) -> None:
    with chachaml.with_run() as run:
        chachaml.log_metric("acc", 0.1, step=1)
        chachaml.log_metric("acc", 0.2, step=1)
        assert chachaml.get_run(run.id).metrics == {"acc": 0.2}
        chachaml.log_metric("acc", 0.3, step=1)
    assert chachaml.get_run(run.id).metrics == {"acc": 0.3}


# -- timestamps ------------------------------------------------------------------------------------
def test_timestamps_are_integer_milliseconds_of_the_log_call(chachaml_store: Store) -> None:
    before = time.time_ns() // 1_000_000
    with chachaml.with_run() as run:
        chachaml.log_metric("m", 1.0)
    after = time.time_ns() // 1_000_000
    (point,) = chachaml.metric_history(run.id, "m")
    assert type(point.timestamp) is int
    assert before <= point.timestamp <= after
    (stored,) = db(chachaml_store).execute("SELECT typeof(timestamp) FROM metrics").fetchall()
    assert stored == ("integer",)


def test_timestamp_override_takes_milliseconds_or_a_datetime(chachaml_store: Store) -> None:
    when = dt.datetime(2024, 3, 1, 12, 0, 0, 250_000, tzinfo=dt.UTC)
    with chachaml.with_run() as run:
        chachaml.log_metric("m", 1.0, timestamp=1_700_000_000_123)
        chachaml.log_metric("m", 2.0, timestamp=when)
        chachaml.log_metrics({"a": 1.0, "b": 2.0}, timestamp=when)
    assert [p.timestamp for p in chachaml.metric_history(run.id, "m")] == [
        1_700_000_000_123,
        1_709_294_400_250,
    ]
    assert chachaml.metric_history(run.id, "b")[0].timestamp == 1_709_294_400_250


@pytest.mark.parametrize("ts", ["yesterday", True, math.nan, [1]], ids=repr)
def test_a_timestamp_that_is_not_a_time_is_refused(chachaml_store: Store, ts: Any) -> None:
    with chachaml.with_run() as run, pytest.raises(InvalidValueError, match="timestamp"):
        chachaml.log_metric("m", 1.0, timestamp=ts)
    assert steps(run.id, "m") == []


# -- log_metrics -----------------------------------------------------------------------------------
def test_log_metrics_logs_every_key_at_the_given_step(chachaml_store: Store) -> None:
    with chachaml.with_run() as run:
        chachaml.log_metrics({"loss": 0.5, "acc": 0.7}, step=5)
        for epoch in range(3):
            chachaml.log_metrics({"train": 1.0 / (epoch + 1), "val": 2.0 / (epoch + 1)})
    assert steps(run.id, "loss") == [(5, 0.5)] and steps(run.id, "acc") == [(5, 0.7)]
    assert [s for s, _ in steps(run.id, "train")] == [0, 1, 2]
    assert [s for s, _ in steps(run.id, "val")] == [0, 1, 2]
    points = chachaml.metric_history(run.id, "train") + chachaml.metric_history(run.id, "val")
    assert len({p.timestamp for p in points if p.step == 1}) == 1  # one call, one timestamp


def test_log_metrics_is_all_or_nothing(chachaml_store: Store) -> None:
    with chachaml.with_run() as run:
        with pytest.raises(InvalidValueError, match="'bad'"):
            chachaml.log_metrics({"good": 1.0, "bad": "x"})
        with pytest.raises(InvalidValueError):
            chachaml.log_metrics([("good", 1.0)])  # type: ignore[arg-type]
    assert chachaml.get_run(run.id).metrics == {}


# -- tags, notes, datasets -------------------------------------------------------------------------
def test_tags_are_mutable_strings(chachaml_store: Store) -> None:
    with chachaml.with_run(tags={"init": 1}) as run:
        chachaml.set_tag("stage", "dev")
        chachaml.set_tag("stage", "prod")
        chachaml.set_tag("gpus", 4)
        chachaml.set_tag("color", Color.BLUE)
        chachaml.set_tags({"a": None, "b": 0.5, "init": "again"})
        chachaml.delete_tag("a")
        chachaml.delete_tag("never-set")
    assert chachaml.get_run(run.id).tags == {
        "init": "again",
        "stage": "prod",
        "gpus": "4",
        "color": "blue",
        "b": "0.5",
    }


def test_tags_and_notes_can_be_set_on_a_finished_run_with_run(chachaml_store: Store) -> None:
    with chachaml.with_run() as run:
        chachaml.set_tag("stage", "dev")
    chachaml.set_tag("reviewed", "yes", run=run)
    chachaml.set_tags({"stage": "prod"}, run=run.id)
    chachaml.delete_tag("reviewed", run=run.id[:8])
    chachaml.set_note("**Good** run", run=run)
    got = chachaml.get_run(run.id)
    assert (got.status, got.tags, got.note) == ("completed", {"stage": "prod"}, "**Good** run")


def test_set_note_replaces_the_note_and_wants_text(chachaml_store: Store) -> None:
    with chachaml.with_run() as run:
        chachaml.set_note("first")
        chachaml.set_note("# second\n\n- with *markdown*")
        with pytest.raises(InvalidValueError, match="str"):
            chachaml.set_note(42)  # type: ignore[arg-type]
    assert chachaml.get_run(run.id).note == "# second\n\n- with *markdown*"


def test_log_dataset_is_returned_by_get_run_and_runs(chachaml_store: Store) -> None:
    with chachaml.with_run() as run:
        made = chachaml.log_dataset(
            "mnist",
            role="train",
            source=Path("/data/mnist"),
            n_rows=60000,
            n_cols=784,
            features=["px0", "px1"],
            digest="sha256:abc",
        )
        chachaml.log_dataset("mnist", role="test", n_rows=10000)
    got = chachaml.get_run(run.id).datasets
    assert got[0] == made
    assert (made.name, made.role, made.source, made.n_rows, made.n_cols, made.features, made.digest) == (
        "mnist",
        "train",
        "/data/mnist",
        60000,
        784,
        ["px0", "px1"],
        "sha256:abc",
    )
    assert type(made.created) is int
    assert [(d.role, d.n_rows) for d in got] == [("train", 60000), ("test", 10000)]
    assert chachaml.runs()[0].datasets == got


@pytest.mark.parametrize(
    "kwargs", [{"n_rows": -1}, {"n_cols": 1.5}, {"n_rows": True}, {"role": ""}], ids=repr
)
def test_log_dataset_refuses_bad_shapes_and_roles(chachaml_store: Store, kwargs: dict[str, Any]) -> None:
    with chachaml.with_run() as run, pytest.raises(InvalidValueError):
        chachaml.log_dataset("d", **kwargs)
    assert chachaml.get_run(run.id).datasets == []


# -- batched() and flush() -------------------------------------------------------------------------
def test_batched_points_are_not_visible_to_another_connection_until_the_block_exits(
    chachaml_store: Store,
) -> None:
    with chachaml.with_run() as run:
        chachaml.log_metric("loss", 1.0)  # the file and the run exist; step 0 journaled
        other = db(chachaml_store)
        with chachaml.batched():
            for i in range(100):
                chachaml.log_metric("loss", float(i))
            assert count_soon(other, 1) == 1  # the journaled point, not the 100 buffered ones
        assert count_soon(other, 101) == 101
    assert [s for s, _ in steps(run.id, "loss")] == list(range(101))


def test_flush_writes_what_batched_has_buffered(chachaml_store: Store) -> None:
    with chachaml.with_run() as run:
        chachaml.flush()  # outside batched(): nothing to do
        other = db(chachaml_store)
        with chachaml.batched():
            chachaml.log_metrics({"a": 1.0, "b": 2.0})
            chachaml.flush()  # also writes the journal into SQLite: visible at once
            assert other.execute("SELECT count(*) FROM metrics").fetchone() == (2,)
            chachaml.log_metric("a", 3.0)
            assert other.execute("SELECT count(*) FROM metrics").fetchone() == (2,)
        assert count_soon(other, 3) == 3
    assert steps(run.id, "a") == [(0, 1.0), (1, 3.0)]


def test_batched_implicit_steps_continue_from_existing_points(chachaml_store: Store) -> None:
    with chachaml.with_run() as run:
        chachaml.log_metric("loss", 1.0)
        chachaml.log_metric("loss", 2.0, step=9)
        with chachaml.batched():
            chachaml.log_metric("loss", 3.0)
            chachaml.log_metric("loss", 4.0, step=20)
            chachaml.log_metric("loss", 5.0)
            chachaml.log_metric("fresh", 6.0)
        chachaml.log_metric("loss", 7.0)
    assert steps(run.id, "loss") == [(0, 1.0), (9, 2.0), (10, 3.0), (20, 4.0), (21, 5.0), (22, 7.0)]
    assert steps(run.id, "fresh") == [(0, 6.0)]


def test_a_run_ended_inside_batched_gets_its_points_first(chachaml_store: Store) -> None:
    with chachaml.batched():
        with chachaml.with_run() as run:
            chachaml.log_metric("loss", 0.5)
            chachaml.log_metric("loss", 0.25)
        assert chachaml.get_run(run.id).status == "completed"
        assert steps(run.id, "loss") == [(0, 0.5), (1, 0.25)]


def test_batched_still_validates_values_when_they_are_logged(chachaml_store: Store) -> None:
    with chachaml.with_run() as run:
        with chachaml.batched():
            chachaml.log_metric("m", 1.0)
            with pytest.raises(InvalidValueError):
                chachaml.log_metric("m", "x")
        assert steps(run.id, "m") == [(0, 1.0)]


# -- finished runs and no run ----------------------------------------------------------------------
def test_logging_into_a_finished_run_with_run_raises_run_state_error_and_loses_nothing(
    chachaml_store: Store,
) -> None:
    with chachaml.with_run() as run:
        chachaml.log_param("lr", 0.1)
        chachaml.log_metric("loss", 0.5)
        chachaml.log_dataset("d")
    before = chachaml.get_run(run.id)
    for call in (
        lambda: chachaml.log_param("lr2", 0.2, run=run),
        lambda: chachaml.log_params({"x": 1}, run=run.id),
        lambda: chachaml.log_metric("loss", 0.4, run=run),
        lambda: chachaml.log_metrics({"loss": 0.4, "acc": 1.0}, run=run),
        lambda: chachaml.log_dataset("d2", run=run),
    ):
        with pytest.raises(RunStateError) as info:
            call()
        assert run.id[:8] in str(info.value) and "completed" in str(info.value)
    after = chachaml.get_run(run.id)
    assert (after.params, after.metrics, after.datasets) == (before.params, before.metrics, before.datasets)
    assert steps(run.id, "loss") == [(0, 0.5)]


def test_batched_points_for_a_finished_run_raise_run_state_error_and_other_runs_keep_theirs(
    chachaml_store: Store,
) -> None:
    with chachaml.with_run() as done:
        pass
    with chachaml.with_run() as live:
        with pytest.raises(RunStateError), chachaml.batched():
            chachaml.log_metric("m", 1.0)
            chachaml.log_metric("m", 2.0, run=done)
        assert steps(live.id, "m") == [(0, 1.0)]
    assert steps(done.id, "m") == []


def test_logging_with_no_current_run_says_what_to_call(chachaml_store: Store) -> None:
    for call in (
        lambda: chachaml.log_param("a", 1),
        lambda: chachaml.log_metric("m", 1.0),
        lambda: chachaml.set_tag("t", "v"),
    ):
        with pytest.raises(NoActiveRunError, match="start_run"):
            call()
    assert chachaml.runs() == chachaml.RunList()
