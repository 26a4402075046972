"""Fuzz the JSON API from its own OpenAPI document (schemathesis) over real HTTP.

Every operation of ``/api/v1/openapi.json`` gets generated requests, valid and invalid, against
a real ``chachaml ui`` process. Whatever comes in: never a 5xx, and every error is the JSON body
of SPEC 9.2. Half of the generated run ids are swapped for a real run's id (or a prefix) so the
handlers behind the lookup are reached too. The number of examples is bounded so this stays well
under a minute.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Iterator
from typing import Any

import pytest
from tests._webserver import Server

import chachaml

schemathesis = pytest.importorskip("schemathesis")
from hypothesis import HealthCheck, settings  # noqa: E402
from schemathesis.checks import not_a_server_error, response_schema_conformance  # noqa: E402

pytestmark = pytest.mark.slow

EXAMPLES = 15  # per operation (31 operations): about 20 s


@pytest.fixture(scope="module")
def fuzz_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, dict[str, str]]]:
    path = str(tmp_path_factory.mktemp("fuzz") / "fuzz.db")
    with chachaml.with_store(path):
        with chachaml.with_run("finished", experiment="fz") as done:
            chachaml.log_params({"lr": 0.1})
            chachaml.log_metric("loss", 0.5)
            chachaml.log_artifact("model.txt", "w")
        chachaml.register_model("m", artifact="model.txt", run_id=done.id)
    srv = Server(path).start()
    # A running run for the writes: started over the API, so it belongs to the server process.
    live = srv.request("POST", "/api/v1/runs", {"name": "live", "experiment": "fz"}).json()
    yield srv, {"finished": done.id, "live": live["id"]}
    assert srv.stop() == 0
    with chachaml.with_store(path):
        assert chachaml.get_run(done.id).params == {"lr": 0.1}  # fuzzing never changed a logged param


def _document() -> dict[str, Any]:
    from chachaml.web.openapi import document

    return document()


# The document the server serves (test_served_document_is_the_fuzzed_one checks they are equal).
# Only the generation phase: bounded by max_examples (the coverage phase is not, and takes minutes).
_CONFIG = schemathesis.config.SchemathesisConfig.from_dict(
    {"phases": {"coverage": {"enabled": False}, "stateful": {"enabled": False}}}
)
schema = schemathesis.openapi.from_dict(_document(), config=_CONFIG)


def _real_ids(case: Any, ids: dict[str, str]) -> None:
    params = case.path_parameters or {}
    if "run_id" in params:
        pick = zlib.crc32(str(params["run_id"]).encode()) % 4
        if pick == 0:
            params["run_id"] = ids["live"]
        elif pick == 1:
            params["run_id"] = ids["finished"][:8]
    if params.get("name") is not None and zlib.crc32(str(params["name"]).encode()) % 3 == 0:
        params["name"] = "m"


@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_no_input_gives_a_5xx_and_every_error_is_json(
    case: Any, fuzz_server: tuple[Server, dict[str, str]]
) -> None:
    srv, ids = fuzz_server
    _real_ids(case, ids)
    response = case.call(base_url=f"http://{srv.host}:{srv.port}")
    case.validate_response(response, checks=[not_a_server_error, response_schema_conformance])
    if response.status_code >= 400:
        assert response.headers.get("Content-Type", [""])[0].startswith("application/json") or (
            response.headers.get("content-type", [""])[0].startswith("application/json")
        ), response.headers
        body = json.loads(response.content)
        assert set(body) == {"error"}
        assert isinstance(body["error"]["type"], str) and body["error"]["message"]


def test_the_document_loads_and_covers_every_route() -> None:
    from chachaml.web.routes import ROUTES

    operations = [op for op in schema.get_all_operations()]
    assert len(operations) == len(ROUTES)


def test_served_document_is_the_fuzzed_one(fuzz_server: tuple[Server, dict[str, str]]) -> None:
    srv, _ = fuzz_server
    assert srv.request("GET", "/api/v1/openapi.json").json() == _document()
