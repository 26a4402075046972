"""Property tests: what goes in comes back out, and bad keys are refused by name.

Every example round-trips through a real SQLite file (the ``chachaml_store`` fixture, one store
per test function, one run per example).
"""

from __future__ import annotations

import json
import math
import struct
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import chachaml
from chachaml._values import MAX_KEY_LEN
from chachaml.errors import InvalidValueError
from chachaml.store.base import Store

SETTINGS = settings(
    deadline=None,  # a commit on a busy CI disk is not a bug
    max_examples=75,
    suppress_health_check=[HealthCheck.function_scoped_fixture],  # examples share the store, not runs
)

# A JSON value as a param keeps it: scalars and lists (dicts are flattened, tested below).
json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30)
)
json_values = st.recursive(json_scalars, lambda inner: st.lists(inner, max_size=4), max_leaves=12)

valid_keys = st.text(st.characters(blacklist_categories=("Cc", "Cs")), min_size=1, max_size=MAX_KEY_LEN)
plain_keys = st.text("abcdefghij_", min_size=1, max_size=6)
nested = st.recursive(
    json_scalars, lambda inner: st.dictionaries(plain_keys, inner, max_size=3), max_leaves=12
)


def exact(value: Any) -> str:
    """A text that differs whenever type or value differ (1 vs 1.0 vs True, 0.0 vs -0.0)."""
    return json.dumps(value, sort_keys=True)


def flat(prefix: str, value: Any) -> Iterator[tuple[str, Any]]:
    """The reference flattening: nested dicts joined with dots, an empty dict kept as a value."""
    if isinstance(value, dict) and value:
        for k, v in value.items():
            yield from flat(f"{prefix}.{k}" if prefix else k, v)
    else:
        yield prefix, value


def bits(x: float) -> bytes:
    return struct.pack("<d", x)


# -- params ----------------------------------------------------------------------------------------
@SETTINGS
@given(value=json_values)
def test_param_values_round_trip_with_their_json_type(chachaml_store: Store, value: Any) -> None:
    with chachaml.with_run() as run:
        chachaml.log_param("p", value)
        chachaml.log_param("p", value)  # re-logging the same value is a no-op
    assert exact(chachaml.get_run(run.id).params["p"]) == exact(value)


@SETTINGS
@given(params=st.dictionaries(plain_keys, nested, min_size=1, max_size=4))
def test_nested_params_flatten_with_dots_and_round_trip(
    chachaml_store: Store, params: dict[str, Any]
) -> None:
    with chachaml.with_run() as run:
        chachaml.log_params(params)
    expected = dict(kv for k, v in params.items() for kv in flat(k, v))
    got = chachaml.get_run(run.id).params
    assert {k: exact(v) for k, v in got.items()} == {k: exact(v) for k, v in expected.items()}


@SETTINGS
@given(value=st.floats(allow_nan=False, allow_infinity=False))
def test_float_params_round_trip_bit_exactly(chachaml_store: Store, value: float) -> None:
    with chachaml.with_run() as run:
        chachaml.log_param("f", value)
    assert bits(chachaml.get_run(run.id).params["f"]) == bits(value)


# -- metrics ---------------------------------------------------------------------------------------
def same_metric(got: float, sent: float) -> bool:
    """Bit-exact, except: every NaN reads back as NaN, and -0.0 reads back as 0.0.

    SQLite stores a REAL -0.0 as the integer 0 (its record format keeps integral reals as
    integers), so the sign of zero is lost; -0.0 == 0.0 holds and no ML metric depends on it.
    """
    if math.isnan(sent):
        return math.isnan(got)
    if sent == 0.0:
        return got == 0.0
    return bits(got) == bits(sent)


@SETTINGS
@given(values=st.lists(st.floats(), min_size=1, max_size=8))
def test_metric_floats_round_trip_bit_exactly_including_nan_and_inf(
    chachaml_store: Store, values: list[float]
) -> None:
    with chachaml.with_run() as run:
        for v in values:
            chachaml.log_metric("m", v)  # the autocommit fast path
        chachaml.log_metrics({"a": values[0], "b": values[-1]})  # one transaction
        with chachaml.batched():
            for v in values:
                chachaml.log_metric("batched", v)
    for key in ("m", "batched"):
        history = chachaml.metric_history(run.id, key)
        assert [p.step for p in history] == list(range(len(values)))
        assert all(same_metric(p.value, v) for p, v in zip(history, values, strict=True))
    latest = chachaml.get_run(run.id).metrics
    assert same_metric(latest["m"], values[-1]) and same_metric(latest["batched"], values[-1])
    assert same_metric(latest["a"], values[0]) and same_metric(latest["b"], values[-1])


def test_negative_zero_reads_back_as_zero(chachaml_store: Store) -> None:
    with chachaml.with_run() as run:
        chachaml.log_metric("m", -0.0)
    assert chachaml.metric_history(run.id, "m")[0].value == 0.0


# -- keys ------------------------------------------------------------------------------------------
@SETTINGS
@given(key=valid_keys)
def test_valid_keys_are_accepted_everywhere(chachaml_store: Store, key: str) -> None:
    with chachaml.with_run() as run:
        chachaml.log_param(key, 1)
        chachaml.log_metric(key, 1.0)
        chachaml.set_tag(key, "v")
    got = chachaml.get_run(run.id)
    assert got.params == {key: 1} and got.metrics == {key: 1.0} and got.tags == {key: "v"}
    assert [p.value for p in chachaml.metric_history(run.id, key)] == [1.0]


control_chars = st.characters(min_codepoint=0, max_codepoint=0x1F) | st.characters(
    min_codepoint=0x7F, max_codepoint=0x9F
)


@st.composite
def keys_with_a_control_character(draw: st.DrawFn) -> str:
    key = draw(st.text("abc.xyz", max_size=20))
    at = draw(st.integers(0, len(key)))
    return key[:at] + draw(control_chars) + key[at:]


bad_keys = (
    keys_with_a_control_character()
    | st.just("")
    | st.text("k", min_size=MAX_KEY_LEN + 1, max_size=MAX_KEY_LEN + 300)
    | st.integers()
    | st.none()
    | st.binary(min_size=1, max_size=5)
    | st.floats()
    | st.tuples(st.text(max_size=3))
)


def calls(key: Any) -> list[Any]:
    found = [
        lambda: chachaml.log_param(key, 1),
        lambda: chachaml.log_metric(key, 1.0),
        lambda: chachaml.log_metrics({"ok": 1.0, key: 1.0}),
        lambda: chachaml.set_tag(key, "v"),
        lambda: chachaml.set_tags({"ok": "v", key: "v"}),
        lambda: chachaml.delete_tag(key),
    ]
    if isinstance(key, str):  # log_params keys of nested dicts may be ints (str() applies); str only
        found.append(lambda: chachaml.log_params({"ok": 1, "nested": {"x": 1}, key: 1}))
    return found


@SETTINGS
@given(key=bad_keys)
def test_bad_keys_are_refused_naming_the_bad_key(chachaml_store: Store, key: Any) -> None:
    with chachaml.with_run() as run:
        for call in calls(key):
            with pytest.raises(InvalidValueError) as info:
                call()
            message = str(info.value)
            if key == "":
                assert "empty" in message
            else:
                assert repr(key)[:60] in message
    got = chachaml.get_run(run.id)
    assert (got.params, got.metrics, got.tags) == ({}, {}, {})


@pytest.mark.parametrize("key", [1, None, b"k", 1.5, ("a",), ["a"]], ids=repr)
def test_non_str_keys_are_refused_with_their_type(chachaml_store: Store, key: Any) -> None:
    with chachaml.with_run():
        for call in (
            lambda: chachaml.log_param(key, 1),
            lambda: chachaml.log_metric(key, 1.0),
            lambda: chachaml.set_tag(key, "v"),
        ):
            with pytest.raises(InvalidValueError, match=type(key).__name__):
                call()
