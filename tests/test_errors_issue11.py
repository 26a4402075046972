"""Small correctness fixes found while finishing issue 11: each user-facing call gives a
``ChachamlError`` naming the bad value and the fix, the same on every backend and over HTTP."""

from __future__ import annotations

import http.client
import json
import math
import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests._postgres import fresh_database
from tests._teamserver import InProcessServer

import chachaml
from chachaml import InvalidValueError
from chachaml.client import Client


# -- archive_runs(older_than_days=...) ----------------------------------------------------------
@pytest.mark.parametrize("days", [10**20, 1e300, math.inf, 1_000_000.5])
def test_a_huge_older_than_days_is_an_invalid_value_naming_the_range_not_an_overflow(days: float) -> None:
    chachaml.use_store("runs.db")
    chachaml.with_run("kept")(lambda: None)()
    for verb in (chachaml.archive_runs, chachaml.unarchive_runs):
        with pytest.raises(
            InvalidValueError, match=rf"between 0 and 1,000,000 days, got {re.escape(repr(days))}.*e\.g\. 30"
        ):
            verb(older_than_days=days)
    assert chachaml.archive_runs(older_than_days=1_000_000) == 0, "the largest accepted age"
    assert len(chachaml.runs()) == 1


# -- NUL in stored text ---------------------------------------------------------------------------
# SQLite keeps NUL as it is (tests/test_errors.py: values are stored literally); PostgreSQL text
# cannot hold it, so a PostgreSQL store refuses it by field, directly or behind a team server.
@pytest.fixture(params=["postgres", "remote-over-postgres"])
def pg_target(request: pytest.FixtureRequest) -> Iterator[str]:
    with fresh_database() as url:
        if request.param == "postgres":
            yield url
            return
        server = InProcessServer(url)
        try:
            yield server.url
        finally:
            server.close()


NUL_CALLS: list[tuple[str, Any, str]] = [
    ("start_run name", lambda c, r: c.start_run("a\x00b"), r"run name 'a\\x00b'"),
    ("start_run tags", lambda c, r: c.start_run("ok", tags={"k": "v\x00"}), r"the value of tag 'k' 'v\\x00'"),
    ("set_tag", lambda c, r: c.set_tag("k", "v\x00w", run=r), r"the value of tag 'k' 'v\\x00w'"),
    ("set_tags", lambda c, r: c.set_tags({"a": "1", "k": "\x00"}, run=r), r"the value of tag 'k'"),
    ("set_note", lambda c, r: c.set_note("# note\x00", run=r), r"the note '# note\\x00'"),
]


@pytest.mark.parametrize(("label", "call", "names"), NUL_CALLS, ids=[c[0] for c in NUL_CALLS])
def test_nul_in_a_name_tag_or_note_is_an_invalid_value_naming_the_field_on_postgresql(
    pg_target: str, label: str, call: Any, names: str
) -> None:
    with Client(pg_target) as client:
        run = client.start_run("base", tags={"a": "0"})
        with pytest.raises(
            InvalidValueError, match=names + r".*NUL character \(\\x00\) at position \d+.*remove it"
        ):
            call(client, run.id)
        (only,) = client.runs()
        assert (only.id, only.tags, only.note) == (run.id, {"a": "0"}, None), "nothing was written"
        client.end_run(run.id)


def test_copying_a_sqlite_run_with_nul_to_postgresql_names_the_run_and_field(tmp_path: Path) -> None:
    from chachaml.migrate import migrate

    with Client(tmp_path / "src.db") as client:
        run = client.start_run("fine", tags={"k": "v\x00"})
        client.end_run(run.id)
    with fresh_database() as url, pytest.raises(InvalidValueError, match=rf"tag 'k' of run {run.id}.*NUL"):
        migrate(str(tmp_path / "src.db"), url)


def test_an_exception_whose_text_holds_nul_still_fails_its_run_on_postgresql() -> None:
    with fresh_database() as url, chachaml.with_store(url):
        with pytest.raises(ValueError, match="bad\x00byte"), chachaml.with_run("boom") as run:
            raise ValueError("bad\x00byte")
        failed = chachaml.get_run(run.id)
        assert failed.status == "failed" and failed.error is not None
        assert failed.error["message"] == "bad\\x00byte", "shown escaped: the record is for people"


def test_nul_text_stored_in_sqlite_by_an_earlier_version_still_reads_back_unchanged(tmp_path: Path) -> None:
    db = tmp_path / "old.db"
    with Client(db) as client:
        run = client.start_run("plain")
        client.end_run(run.id)
    # What chachaml before this change wrote for start_run("a\x00b", tags={"k": "v\x00"}) and
    # set_note("n\x00"): the same TEXT, written here with the sqlite3 module.
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE runs SET name = ?, note = ? WHERE id = ?", ("a\x00b", "n\x00", run.id))
        conn.execute("INSERT INTO tags (run_id, key, value) VALUES (?, ?, ?)", (run.id, "k", "v\x00"))
    with Client(db) as client:
        back = client.get_run(run.id)
        assert (back.name, back.note, back.tags) == ("a\x00b", "n\x00", {"k": "v\x00"})
        assert [r.id for r in client.runs(tags={"k": "v\x00"})] == [run.id]
        client.set_tag("other", "fine", run=run.id)  # the run stays writable
        assert client.get_run(run.id).tags == {"k": "v\x00", "other": "fine"}


def _http(url: str, method: str, path: str, body: Any) -> tuple[int, dict[str, Any]]:
    host, port = url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=60)
    try:
        conn.request(method, path, body=json.dumps(body), headers={"Content-Type": "application/json"})
        resp = conn.getresponse()
        return resp.status, json.loads(resp.read())
    finally:
        conn.close()


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_over_http_nul_is_stored_on_sqlite_and_a_json_400_naming_the_field_on_postgresql(
    tmp_path: Path, backend: str
) -> None:
    with fresh_database() if backend == "postgres" else _nothing(str(tmp_path / "s.db")) as store_target:
        server = InProcessServer(store_target)
        try:
            with Client(server.url) as client:
                run = client.start_run("base")
            calls = [
                ("PUT", f"/api/v1/runs/{run.id}/note", {"note": "x\x00"}, "the note"),
                ("PUT", f"/api/v1/runs/{run.id}/tags/k", {"value": "x\x00"}, "the value of tag 'k'"),
                ("POST", "/api/v1/store/set_note", {"args": {"run_id": run.id, "note": "y\x00"}}, "the note"),
                (
                    "POST",
                    "/api/v1/store/log_batch",
                    {"args": {"run_id": run.id, "params": None, "metrics": [], "tags": {"j": "\x00"}}},
                    "the value of tag 'j'",
                ),
            ]
            for method, path, body, field in calls:
                status, reply = _http(server.url, method, path, body)
                if backend == "sqlite":
                    assert status == 200, (path, status, reply)
                    continue
                assert status == 400, (path, status, reply)
                text = json.dumps(reply)
                assert "InvalidValueError" in text and field in text and "NUL" in text, (path, reply)
            with Client(server.url) as client:
                back = client.get_run(run.id)
                if backend == "sqlite":
                    assert (back.note, back.tags) == ("y\x00", {"k": "x\x00", "j": "\x00"})
                else:
                    assert (back.note, back.tags) == (None, {})
        finally:
            server.close()


class _nothing:
    def __init__(self, value: str) -> None:
        self.value = value

    def __enter__(self) -> str:
        return self.value

    def __exit__(self, *exc: object) -> None:
        return None
