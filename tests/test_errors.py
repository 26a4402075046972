"""Nasty inputs (SPEC section 4): refused with a message that names them, or stored literally;
never a corrupted database, never a loss of what was logged before.

Every test runs against the ``guarded`` fixture: a run with params, metrics, tags and a dataset
logged first. After the test, that data must be intact and ``PRAGMA integrity_check`` clean.
"""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import chachaml
from chachaml.errors import (
    ChachamlError,
    ConflictError,
    InvalidValueError,
    NoActiveRunError,
    RunStateError,
)
from chachaml.store.base import Store

MB10 = 10 * 1024 * 1024


class Guarded:
    """The run logged before the nasty call, and the check that it survived."""

    def __init__(self, store: Store, run: chachaml.Run, db: Path) -> None:
        self.store, self.run, self.db = store, run, db
        self.before = chachaml.get_run(run.id)
        self.history = chachaml.metric_history(run.id, "loss")

    def check(self) -> None:
        now = chachaml.get_run(self.run.id)
        for attr in ("params", "tags", "datasets", "experiment", "name"):
            assert getattr(now, attr) == getattr(self.before, attr), attr
        for key, value in self.before.metrics.items():
            assert now.metrics[key] == value
        assert chachaml.metric_history(self.run.id, "loss")[: len(self.history)] == self.history
        with sqlite3.connect(self.db) as conn:
            assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]


@pytest.fixture
def guarded(chachaml_store: Store, tmp_path: Path) -> Iterator[Guarded]:
    run = chachaml.start_run("guarded", tags={"keep": "me"})
    chachaml.log_params({"lr": 0.1, "opt": {"name": "adam"}})
    for loss in (0.9, 0.5, 0.3):
        chachaml.log_metric("loss", loss)
    chachaml.log_dataset("mnist", n_rows=10)
    g = Guarded(chachaml_store, run, tmp_path / "chachaml.db")
    yield g
    g.check()


def refused(call: Callable[[], Any], *parts: str, error: type[Exception] = InvalidValueError) -> str:
    """Run ``call``, expect ``error``, check the message names each part; return the message."""
    with pytest.raises(error) as info:
        call()
    message = str(info.value)
    for part in parts:
        assert part in message, (part, message)
    assert len(message) < 2000, "messages stay readable even for huge inputs"
    return message


# -- empty and huge --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "call",
    [
        lambda k: chachaml.log_param(k, 1),
        lambda k: chachaml.log_params({k: 1}),
        lambda k: chachaml.log_metric(k, 1.0),
        lambda k: chachaml.log_metrics({"fine": 1.0, k: 1.0}),
        lambda k: chachaml.set_tag(k, "v"),
        lambda k: chachaml.set_tags({k: "v"}),
        lambda k: chachaml.delete_tag(k),
        lambda k: chachaml.log_dataset(k),
        lambda k: chachaml.metric_history(chachaml.current_run().id, k),  # type: ignore[union-attr]
        lambda k: chachaml.create_experiment(k),
        lambda k: chachaml.start_run(experiment=k),
    ],
    ids=[
        "log_param",
        "log_params",
        "log_metric",
        "log_metrics",
        "set_tag",
        "set_tags",
        "delete_tag",
        "log_dataset",
        "metric_history",
        "create_experiment",
        "start_run-experiment",
    ],
)
@pytest.mark.parametrize("key", ["", "k" * MB10], ids=["empty", "10MB"])
def test_empty_and_huge_keys_are_refused_by_name(guarded: Guarded, call: Any, key: str) -> None:
    refused(lambda: call(key), "empty" if not key else "kkkkkkkkkk", "characters" if key else "")
    assert chachaml.current_run().id == guarded.run.id  # type: ignore[union-attr]


def test_huge_values_are_stored_whole(guarded: Guarded) -> None:
    big = "x" * MB10
    chachaml.log_param("big", big)
    chachaml.set_tag("big", big)
    chachaml.set_note(big)
    chachaml.log_param("big", big)  # the same 10 MB again: a no-op
    got = chachaml.get_run(guarded.run.id)
    assert got.params["big"] == big and got.tags["big"] == big and got.note == big
    guarded.before = chachaml.get_run(guarded.run.id)


def test_a_conflict_on_a_huge_param_has_a_short_message(guarded: Guarded) -> None:
    chachaml.log_param("big", "a" * MB10)
    refused(
        lambda: chachaml.log_param("big", "b" * MB10),
        "'big'",
        "aaaa",
        "bbbb",
        "overwrite=True",
        error=ConflictError,
    )
    assert chachaml.get_run(guarded.run.id).params["big"] == "a" * MB10
    guarded.before = chachaml.get_run(guarded.run.id)


# -- unicode ---------------------------------------------------------------------------------------
UNICODE = [
    "🚀 loss 🔥",
    "👨‍👩‍👧",  # zero-width-joiner sequence
    "שלום עולם",  # right-to-left
    "مرحبا\u200f!",  # RTL mark (a format character, not a control character)
    "e\u0301\u0302",  # combining accents
    "日本語のキー",
    "\U0010fffd",
]


@pytest.mark.parametrize("text", UNICODE, ids=repr)
def test_unicode_keys_and_values_round_trip_exactly(guarded: Guarded, text: str) -> None:
    chachaml.log_param(text, text)
    chachaml.log_metric(text, 1.5)
    chachaml.set_tag(text, text)
    with chachaml.with_run(text, experiment=text) as child:
        chachaml.set_note(text)
        chachaml.log_dataset(text, source=text)
    got = chachaml.get_run(guarded.run.id)
    assert got.params[text] == text and got.metrics[text] == 1.5 and got.tags[text] == text
    kid = chachaml.get_run(child.id)
    assert (kid.name, kid.experiment, kid.note) == (text, text, text)
    assert (kid.datasets[0].name, kid.datasets[0].source) == (text, text)
    assert chachaml.runs(experiment=text, name=text).ids == [child.id]
    guarded.before = got


def test_unicode_keys_are_not_normalised(guarded: Guarded) -> None:
    chachaml.log_param("caf\u00e9", "composed")
    chachaml.log_param("cafe\u0301", "decomposed")
    assert {k: v for k, v in chachaml.get_run(guarded.run.id).params.items() if k.startswith("caf")} == {
        "caf\u00e9": "composed",
        "cafe\u0301": "decomposed",
    }
    guarded.before = chachaml.get_run(guarded.run.id)


@pytest.mark.parametrize(
    "call",
    [
        lambda: chachaml.log_param("bad\ud800key", 1),
        lambda: chachaml.log_metric("bad\ud800key", 1.0),
        lambda: chachaml.set_tag("bad\ud800key", "v"),
        lambda: chachaml.log_param("k", "bad\ud800value"),
        lambda: chachaml.log_params({"ok": 1, "k": ["bad\ud800value"]}),
        lambda: chachaml.set_tag("k", "bad\ud800value"),
        lambda: chachaml.set_note("bad\ud800value"),
        lambda: chachaml.start_run("bad\ud800value"),
        lambda: chachaml.log_dataset("d", source="bad\ud800value"),
        lambda: chachaml.get_run("bad\ud800value"),
        lambda: chachaml.runs(name="bad\ud800value"),
    ],
    ids=[
        "param-key",
        "metric-key",
        "tag-key",
        "param-value",
        "params-list",
        "tag-value",
        "note",
        "run-name",
        "dataset-source",
        "get_run",
        "runs",
    ],
)
def test_a_lone_surrogate_is_refused_as_invalid_text(guarded: Guarded, call: Any) -> None:
    refused(call, "surrogate", "\\ud800")
    assert chachaml.current_run().id == guarded.run.id  # type: ignore[union-attr]
    assert len(chachaml.runs()) == 1


def test_nul_and_control_characters_in_values_are_stored_literally(guarded: Guarded) -> None:
    text = "a\x00b\nc\td\x7f"
    chachaml.log_param("ctl", text)
    chachaml.set_tag("ctl", text)
    chachaml.set_note(text)
    got = chachaml.get_run(guarded.run.id)
    assert (got.params["ctl"], got.tags["ctl"], got.note) == (text, text, text)
    guarded.before = got


# -- paths and SQL in names ------------------------------------------------------------------------
SQLISH = [
    "x'); DROP TABLE runs; --",
    '" OR 1=1 --',
    "%' OR '1'='1",
    "metrics; DELETE FROM metrics",
    "_%",
]


@pytest.mark.parametrize("text", [*SQLISH, "../../etc/passwd", "..\\..\\windows", "/abs/path"], ids=repr)
def test_sql_and_path_looking_strings_are_stored_literally(
    guarded: Guarded, tmp_path: Path, text: str
) -> None:
    listing = sorted(p.name for p in tmp_path.iterdir())
    chachaml.log_param(text, text)
    chachaml.log_metric(text, 2.0)
    chachaml.set_tag(text, text)
    with chachaml.with_run(text, experiment=text, tags={text: text}) as other:
        chachaml.log_dataset(text)
    got = guarded.before = chachaml.get_run(guarded.run.id)
    assert got.params[text] == text and got.metrics[text] == 2.0 and got.tags[text] == text
    assert [m.value for m in chachaml.metric_history(guarded.run.id, text)] == [2.0]
    assert chachaml.runs(experiment=text).ids == [other.id]
    assert chachaml.runs(name=text).ids == [other.id]
    assert chachaml.runs(tags={text: text}).ids == [other.id, guarded.run.id]
    assert chachaml.runs(name=text + "x").ids == []
    assert {e.name for e in chachaml.experiments()} == {"default", text}
    assert chachaml.get_run(other.id).datasets[0].name == text
    assert sorted(p.name for p in tmp_path.iterdir()) == listing  # no file appeared anywhere


def test_like_wildcards_in_filters_match_only_themselves(guarded: Guarded) -> None:
    with chachaml.with_run("a_c"):
        pass
    assert chachaml.runs(name="abc").ids == []
    assert chachaml.runs(name="a%").ids == []
    assert len(chachaml.runs(name="a_c")) == 1


# -- NaN and friends as params ---------------------------------------------------------------------
def test_nan_and_infinite_params_are_stored_as_text_and_relogging_them_is_a_no_op(guarded: Guarded) -> None:
    values = {"nan": math.nan, "inf": math.inf, "ninf": -math.inf, "in_list": [1.0, math.nan]}
    chachaml.log_params(values)
    chachaml.log_params(values)  # NaN != NaN, yet the same param again must not conflict
    got = chachaml.get_run(guarded.run.id).params
    assert (got["nan"], got["inf"], got["ninf"], got["in_list"]) == ("nan", "inf", "-inf", [1.0, "nan"])
    guarded.before = chachaml.get_run(guarded.run.id)


# -- a closed store --------------------------------------------------------------------------------
def test_a_closed_store_raises_run_state_error_naming_the_fix(tmp_path: Path) -> None:
    path = tmp_path / "closed.db"
    with chachaml.with_store(path) as store, chachaml.with_run() as run:
        chachaml.log_metric("loss", 0.5)
    assert store.closed
    with chachaml.with_store(store):  # a Store object: used as is, still closed
        for call in (
            lambda: chachaml.start_run(),
            lambda: chachaml.log_metric("loss", 0.4, run=run.id),
            lambda: chachaml.get_run(run.id),
            lambda: chachaml.runs(),
        ):
            refused(call, "closed", "use_store(", str(path), error=RunStateError)
    with chachaml.with_store(path):  # reopening works and nothing was lost
        assert [m.value for m in chachaml.metric_history(run.id, "loss")] == [0.5]
        with sqlite3.connect(path) as conn:
            assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]


def test_logging_to_a_run_whose_store_was_closed_raises_run_state_error(tmp_path: Path) -> None:
    store = chachaml.use_store(tmp_path / "p.db")
    run = chachaml.start_run()
    chachaml.log_metric("loss", 0.5)
    store.close()
    refused(lambda: chachaml.log_metric("loss", 0.4), "closed", "use_store(", error=RunStateError)
    refused(lambda: chachaml.log_param("lr", 0.1), "closed", error=RunStateError)
    refused(lambda: chachaml.end_run(), "closed", error=RunStateError)
    reopened = chachaml.use_store(tmp_path / "p.db")
    assert reopened is not store and not reopened.closed
    assert [m.value for m in chachaml.metric_history(run.id, "loss")] == [0.5]


def test_a_closed_in_memory_store_says_its_data_is_gone() -> None:
    store = chachaml.use_store(":memory:")
    store.close()
    refused(lambda: chachaml.runs(), "closed", "use_store(':memory:')", error=RunStateError)


# -- wrong types everywhere ------------------------------------------------------------------------
class NotANumber:
    def __float__(self) -> float:
        raise ValueError("nope")


WRONG = [
    ("log_param-key", lambda: chachaml.log_param(1, 1), "int"),  # type: ignore[arg-type]
    ("log_params-list", lambda: chachaml.log_params([("a", 1)]), "mapping"),  # type: ignore[arg-type]
    ("log_params-str", lambda: chachaml.log_params("a=1"), "mapping"),  # type: ignore[arg-type]
    ("log_metric-str", lambda: chachaml.log_metric("m", "0.5"), "'0.5'"),
    ("log_metric-None", lambda: chachaml.log_metric("m", None), "None"),
    ("log_metric-bool", lambda: chachaml.log_metric("m", True), "True"),
    ("log_metric-list", lambda: chachaml.log_metric("m", [0.5]), "[0.5]"),
    ("log_metric-dict", lambda: chachaml.log_metric("m", {"a": 1}), "{'a': 1}"),
    ("log_metric-float-raises", lambda: chachaml.log_metric("m", NotANumber()), "NotANumber"),
    ("log_metric-huge-int", lambda: chachaml.log_metric("m", 10**400), "too large"),
    ("log_metric-step-str", lambda: chachaml.log_metric("m", 1.0, step="3"), "'3'"),  # type: ignore[arg-type]
    ("log_metric-step-float", lambda: chachaml.log_metric("m", 1.0, step=1.5), "1.5"),  # type: ignore[arg-type]
    ("log_metric-step-huge", lambda: chachaml.log_metric("m", 1.0, step=2**64), "64 bits"),
    ("log_metric-timestamp-str", lambda: chachaml.log_metric("m", 1.0, timestamp="now"), "'now'"),
    ("log_metric-timestamp-huge", lambda: chachaml.log_metric("m", 1.0, timestamp=2**70), "64 bits"),
    ("log_metric-timestamp-inf", lambda: chachaml.log_metric("m", 1.0, timestamp=math.inf), "inf"),
    ("log_metric-run-int", lambda: chachaml.log_metric("m", 1.0, run=42), "42"),
    ("log_metrics-list", lambda: chachaml.log_metrics([1.0]), "mapping"),  # type: ignore[arg-type]
    ("log_metrics-step", lambda: chachaml.log_metrics({"m": 1.0}, step="x"), "'x'"),  # type: ignore[arg-type]
    ("set_tags-list", lambda: chachaml.set_tags(["a"]), "mapping"),  # type: ignore[arg-type]
    ("set_tag-key", lambda: chachaml.set_tag(None, "v"), "None"),  # type: ignore[arg-type]
    ("set_note-int", lambda: chachaml.set_note(5), "int"),  # type: ignore[arg-type]
    ("log_dataset-rows", lambda: chachaml.log_dataset("d", n_rows="10"), "'10'"),  # type: ignore[arg-type]
    ("log_dataset-features", lambda: chachaml.log_dataset("d", features=5), "5"),  # type: ignore[arg-type]
    ("log_dataset-features-str", lambda: chachaml.log_dataset("d", features="abc"), "'abc'"),  # type: ignore[arg-type]
    ("start_run-name", lambda: chachaml.start_run(123), "123"),  # type: ignore[arg-type]
    # experiment=None is the default (SPEC 3: inherit, set_experiment, env); a wrong type is refused
    ("start_run-experiment", lambda: chachaml.start_run(experiment=3.25), "3.25"),  # type: ignore[arg-type]
    ("start_run-tags", lambda: chachaml.start_run(tags=["a"]), "['a']"),  # type: ignore[arg-type]
    ("end_run-status", lambda: chachaml.end_run("done"), "'done'"),
    ("use_store-int", lambda: chachaml.use_store(123), "123"),
    ("use_store-scheme", lambda: chachaml.use_store("ftp://x/y"), "ftp"),
    ("get_run-int", lambda: chachaml.get_run(123), "123"),  # type: ignore[arg-type]
    ("runs-status", lambda: chachaml.runs(status="done"), "'done'"),
    ("runs-limit", lambda: chachaml.runs(limit="5"), "'5'"),  # type: ignore[arg-type]
    ("runs-tags", lambda: chachaml.runs(tags="a"), "'a'"),  # type: ignore[arg-type]
    ("metric_history-id", lambda: chachaml.metric_history(None, "loss"), "None"),  # type: ignore[arg-type]
]


@pytest.mark.parametrize(("call", "named"), [(c, n) for _, c, n in WRONG], ids=[i for i, _, _ in WRONG])
def test_wrong_types_raise_invalid_value_naming_the_value(guarded: Guarded, call: Any, named: str) -> None:
    refused(call, named)
    assert chachaml.current_run().id == guarded.run.id  # type: ignore[union-attr]
    assert len(chachaml.runs()) == 1  # no half-made run either


def test_every_refusal_is_a_chachaml_error_and_a_value_error(guarded: Guarded) -> None:
    for _, call, _ in WRONG:
        with pytest.raises(ChachamlError) as info:
            call()
        assert isinstance(info.value, ValueError)


def test_bad_calls_in_a_row_leave_the_run_usable(guarded: Guarded) -> None:
    for _, call, _ in WRONG:
        with pytest.raises(InvalidValueError):
            call()
    chachaml.log_metric("loss", 0.1)
    assert [m.step for m in chachaml.metric_history(guarded.run.id, "loss")] == [0, 1, 2, 3]
    guarded.before = chachaml.get_run(guarded.run.id)


def test_no_active_run_is_its_own_error_and_changes_nothing(chachaml_store: Store) -> None:
    refused(lambda: chachaml.log_metric("m", 1.0), "start_run", error=NoActiveRunError)
    assert chachaml.runs().ids == []
