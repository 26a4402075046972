"""The ``chachaml_store`` fixture, as a user's test suite sees it (pytester, a separate pytest run).

The plugin is found through the installed ``pytest11`` entry point: the generated test files do not
import it. Tests inside one generated file run in order and share one process, so leaks between
tests would show.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import chachaml

pytestmark = pytest.mark.slow

HELPERS = """
import json
from pathlib import Path

import chachaml

RECORD = Path("record.json")  # in the pytester directory: the cwd of this run


def record(**facts):
    data = json.loads(RECORD.read_text()) if RECORD.exists() else {}
    data.update(facts)
    RECORD.write_text(json.dumps(data))


def recorded():
    return json.loads(RECORD.read_text())
"""

LEAKS = (
    HELPERS
    + """

def test_fixture_store_is_current_and_lives_in_tmp_path(chachaml_store, tmp_path):
    assert chachaml.current_store() is chachaml_store
    assert str(tmp_path) in chachaml_store.uri


def test_logs_runs_and_leaves_one_open(chachaml_store):
    with chachaml.with_run("done") as done:
        chachaml.log_metric("m", 1.0)
    left = chachaml.start_run("left-open")
    chachaml.log_param("p", 1)
    assert chachaml.current_run().id == left.id
    assert len(chachaml.runs()) == 2
    record(first_store=chachaml_store.uri, done=done.id, left_open=left.id)


def test_next_test_with_the_fixture_sees_none_of_those_runs_and_no_active_run(chachaml_store):
    assert chachaml.current_run() is None
    assert len(chachaml.runs()) == 0
    assert chachaml_store.uri != recorded()["first_store"]


def test_next_test_without_the_fixture_has_no_active_run():
    assert chachaml.current_run() is None
    assert recorded()["first_store"] != chachaml.current_store().uri


def test_use_store_inside_a_test_rebinds_only_that_test(chachaml_store, tmp_path):
    other = chachaml.use_store(tmp_path / "other.db")
    assert chachaml.current_store() is other
    run = chachaml.start_run("in-other")
    chachaml.log_metric("m", 1.0)
    record(other_store=other.uri, in_other=run.id)


def test_use_store_did_not_leak_into_the_next_fixture_test(chachaml_store):
    assert chachaml.current_store() is chachaml_store
    assert chachaml.current_run() is None
    assert len(chachaml.runs()) == 0


def test_use_store_did_not_leak_into_the_process_default():
    store = chachaml.current_store()
    assert store.uri != recorded()["other_store"]
    assert store.uri.endswith("/chachaml.db")
    assert chachaml.current_run() is None


def test_log_without_a_run_under_the_fixture_raises_and_creates_nothing(chachaml_store):
    try:
        chachaml.log_metric("m", 1.0)
    except chachaml.NoActiveRunError:
        pass
    else:
        raise AssertionError("log_metric without a run did not raise")
"""
)


def test_chachaml_store_fixture_isolates_every_test_and_creates_no_default_db(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(test_user_suite=LEAKS)
    result = pytester.runpytest_subprocess("-W", "error", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=8)

    assert not (pytester.path / "chachaml.db").exists()
    assert list(pytester.path.glob("*.db")) == []
    facts = json.loads((pytester.path / "record.json").read_text())
    # the fixture's with_store block ended the run the test left open, in the test's own store
    with chachaml.with_store(facts["first_store"]):
        assert chachaml.get_run(facts["left_open"]).status == "completed"
        assert chachaml.get_run(facts["left_open"]).params == {"p": 1}
        assert chachaml.get_run(facts["done"]).metrics == {"m": 1.0}
    # a run started after use_store() inside the test was ended too, in that store
    with chachaml.with_store(facts["other_store"]):
        assert chachaml.get_run(facts["in_other"]).status == "completed"


def test_fixture_is_offered_by_the_installed_plugin(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest_subprocess("--fixtures", "-p", "no:cacheprovider")
    result.stdout.fnmatch_lines(["*chachaml_store*"])


def test_a_failing_test_under_the_fixture_fails_its_open_run_and_the_next_test_is_clean(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        test_failing=HELPERS
        + """

def test_breaks_with_a_run_open(chachaml_store):
    run = chachaml.start_run("breaks")
    record(store=chachaml_store.uri, run=run.id)
    raise RuntimeError("model diverged")


def test_after_the_failure_nothing_is_current(chachaml_store):
    assert chachaml.current_run() is None
    assert len(chachaml.runs()) == 0
"""
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, failed=1)
    facts = json.loads((pytester.path / "record.json").read_text())
    with chachaml.with_store(facts["store"]):
        run = chachaml.get_run(facts["run"])
    # Not left running. pytest catches the test's exception before fixture teardown, so today the
    # fixture's block exits normally and ends it `completed` (SPEC section 8); `failed` would be
    # an improvement, not a leak.
    assert run.status in ("completed", "failed")
    assert run.end_time is not None
    assert not (pytester.path / "chachaml.db").exists()


def test_plugin_works_in_process_too(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
import chachaml

def test_one(chachaml_store):
    chachaml.start_run("x")

def test_two(chachaml_store):
    assert chachaml.current_run() is None
"""
    )
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)
    assert not Path(pytester.path / "chachaml.db").exists()


def test_the_fixture_runs_a_suite_on_another_backend_by_env_var(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """CHACHAML_TEST_STORE=':memory:' gives each test a fresh in-memory store (issue 8: feature
    tests run per backend through the fixture)."""
    monkeypatch.setenv("CHACHAML_TEST_STORE", ":memory:")
    pytester.makepyfile(
        """
import chachaml

def test_one(chachaml_store):
    assert chachaml_store.uri == "sqlite:///:memory:"
    with chachaml.with_run("x"):
        chachaml.log_metric("m", 1.0)
    assert chachaml.last_run().metrics == {"m": 1.0}

def test_two_is_fresh(chachaml_store):
    assert chachaml_store.uri == "sqlite:///:memory:"
    assert len(chachaml.runs()) == 0
"""
    )
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)
    assert list(pytester.path.rglob("*.db")) == []
