"""The JSON API of SPEC 9.2 over real HTTP, against a real ``chachaml ui --port 0`` process."""

from __future__ import annotations

import hashlib
import http.client
import json
import math
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests._webserver import Server

import chachaml
from chachaml.entities import Run

pytestmark = pytest.mark.slow

LOSS = [1.0 / (1 + i) for i in range(1000)]
LOSS[500] = 100.0  # a spike that downsampling must keep
LOSS[700] = -50.0  # and a dip
LOSS[10] = math.nan


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    path = str(tmp_path_factory.mktemp("web") / "api.db")
    with chachaml.with_store(path):
        with chachaml.with_run("alpha", experiment="exp", tags={"team": "nlp"}) as a:
            chachaml.log_params({"lr": 0.1, "opt": "adam"})
            with chachaml.batched():
                for step, v in enumerate(LOSS):
                    chachaml.log_metric("loss", v, step=step)
            for v in (1.0, math.inf, -math.inf, math.nan):
                chachaml.log_metric("weird", v)
            chachaml.log_metric("system/cpu", 12.5)
            chachaml.set_note("# Alpha\n<script>alert(1)</script>")
            chachaml.log_dataset("train.csv", n_rows=10, n_cols=3)
            chachaml.log_artifact("model.txt", "weights")
            chachaml.log_artifact("img/plot.bin", b"\x00\x01" * 5000)
            with chachaml.with_run("beta", experiment="exp") as b:
                chachaml.log_params({"lr": 0.2, "opt": "adam"})
                chachaml.log_metric("loss", 0.5)
        chachaml.register_model("churn", artifact="model.txt", run_id=a.id)
        chachaml.register_model("churn", artifact="model.txt", run_id=a.id)
        chachaml.promote("churn", 1, "production")
        chachaml.set_alias("churn", "champion", 2)
        for i in range(5):
            with chachaml.with_run(f"bulk-{i}", experiment="bulk"):
                chachaml.log_param("i", i)
    return {"path": path, "a": a.id, "b": b.id}


@pytest.fixture(scope="module")
def server(data: dict[str, Any]) -> Iterator[Server]:
    srv = Server(data["path"]).start()
    yield srv
    assert srv.stop() == 0, "Ctrl-C must stop the server cleanly"


# -- reads ------------------------------------------------------------------------------------
def test_the_server_binds_loopback_and_prints_its_url_first(server: Server) -> None:
    assert server.host == "127.0.0.1"
    assert server.first_line == f"chachaml UI at http://127.0.0.1:{server.port}/\n"


@pytest.mark.parametrize("host", ["evil.example", "evil.example:5050", "127.0.0.1.evil.example"])
def test_requests_for_another_host_name_are_refused(server: Server, host: str) -> None:
    # DNS rebinding: a page of another site whose name resolves to 127.0.0.1.
    r = server.request("GET", "/api/v1/runs", headers={"Host": host})
    assert r.status == 403 and r.error["message"]
    for ok in (f"127.0.0.1:{server.port}", f"localhost:{server.port}", "localhost"):
        assert server.request("GET", "/api/v1/experiments", headers={"Host": ok}).status == 200


def test_runs_lists_run_objects_newest_first_with_next_offset_paging(
    server: Server, data: dict[str, Any]
) -> None:
    first = server.request("GET", "/api/v1/runs?experiment=bulk&limit=2")
    assert first.status == 200 and first.headers["content-type"] == "application/json"
    doc = first.json()
    assert [r["name"] for r in doc["runs"]] == ["bulk-4", "bulk-3"]
    assert doc["next_offset"] == 2
    assert set(doc["runs"][0]) == set(Run("x" * 32, "e", "running", 0).to_dict())
    seen = []
    offset: int | None = 0
    while offset is not None:
        page = server.request("GET", f"/api/v1/runs?experiment=bulk&limit=2&offset={offset}").json()
        seen += [r["name"] for r in page["runs"]]
        offset = page["next_offset"]
    assert seen == [f"bulk-{i}" for i in range(4, -1, -1)]


def test_runs_filters_where_order_by_and_status(server: Server) -> None:
    doc = server.request("GET", "/api/v1/runs?where=params.lr%20%3E%200.15").json()
    assert [r["name"] for r in doc["runs"]] == ["beta"]
    doc = server.request("GET", "/api/v1/runs?experiment=bulk&order_by=params.i%20asc&limit=1").json()
    assert doc["runs"][0]["name"] == "bulk-0"
    assert server.request("GET", "/api/v1/runs?status=running").json()["runs"] == []


@pytest.mark.parametrize(
    ("query", "kind"),
    [
        ("where=params.lr%20%3C%3C", "QueryError"),
        ("where=1;DROP%20TABLE%20runs", "QueryError"),
        ("limit=0", "InvalidValueError"),
        ("limit=1001", "InvalidValueError"),
        ("limit=ten", "InvalidValueError"),
        ("offset=-1", "InvalidValueError"),
        ("status=archived", "InvalidValueError"),
        ("include_archived=maybe", "InvalidValueError"),
        ("order_by=params.lr%20sideways", "QueryError"),
    ],
)
def test_bad_run_queries_are_400_with_a_json_error(server: Server, query: str, kind: str) -> None:
    r = server.request("GET", f"/api/v1/runs?{query}")
    assert r.status == 400
    assert r.error["type"] == kind


def test_a_query_error_carries_its_position(server: Server) -> None:
    err = server.request("GET", "/api/v1/runs?where=params.lr%20%3C%3C").error
    assert err["position"] == 11 and "^" in err["message"]


def test_one_run_by_prefix_has_artifacts_and_children(server: Server, data: dict[str, Any]) -> None:
    doc = server.request("GET", f"/api/v1/runs/{data['a'][:8]}").json()
    assert doc["id"] == data["a"] and doc["name"] == "alpha"
    assert doc["children"] == [data["b"]]
    assert sorted(a["name"] for a in doc["artifacts"]) == ["img/plot.bin", "model.txt"]
    assert doc["params"] == {"lr": 0.1, "opt": "adam"}
    assert doc["metrics"]["weird"] == "NaN"
    assert doc["note"].startswith("# Alpha")
    assert doc["datasets"][0]["name"] == "train.csv"


def test_unknown_and_ambiguous_runs(server: Server) -> None:
    r = server.request("GET", "/api/v1/runs/ffffffffffff")
    assert r.status == 404 and r.error["type"] == "RunNotFoundError"


def test_metric_summaries(server: Server, data: dict[str, Any]) -> None:
    doc = server.request("GET", f"/api/v1/runs/{data['a']}/metrics").json()
    assert doc["loss"] == {"last": LOSS[-1], "min": -50.0, "max": 100.0, "count": 1000, "last_step": 999}
    assert doc["weird"]["last"] == "NaN" and doc["weird"]["max"] == "Infinity"
    assert doc["system/cpu"]["count"] == 1


def test_metric_history_with_non_finite_values_as_strings(server: Server, data: dict[str, Any]) -> None:
    r = server.request("GET", f"/api/v1/runs/{data['a']}/metrics/weird")
    assert b"NaN," not in r.body and b": NaN" not in r.body  # strict JSON
    doc = json.loads(r.body, parse_constant=lambda c: pytest.fail(f"bare {c} in JSON"))
    assert [p["value"] for p in doc["points"]] == [1.0, "Infinity", "-Infinity", "NaN"]
    assert doc["key"] == "weird"
    assert set(doc["points"][0]) == {"step", "value", "timestamp"}


def test_metric_history_after_step_is_incremental(server: Server, data: dict[str, Any]) -> None:
    doc = server.request("GET", f"/api/v1/runs/{data['a']}/metrics/loss?after_step=995").json()
    assert [p["step"] for p in doc["points"]] == [996, 997, 998, 999]


def test_a_zoomed_window_is_fetched_alone_and_downsampled(server: Server, data: dict[str, Any]) -> None:
    doc = server.request(
        "GET", f"/api/v1/runs/{data['a']}/metrics/loss?after_step=400&before_step=800"
    ).json()
    assert [p["step"] for p in doc["points"]] == list(range(401, 800))
    small = server.request(
        "GET", f"/api/v1/runs/{data['a']}/metrics/loss?after_step=400&before_step=800&max_points=20"
    ).json()
    steps = [p["step"] for p in small["points"]]
    assert small["count"] == 399 and len(steps) <= 20 and steps[0] == 401 and steps[-1] == 799
    assert 500 in steps and 700 in steps


def test_a_metric_key_with_a_slash(server: Server, data: dict[str, Any]) -> None:
    doc = server.request("GET", f"/api/v1/runs/{data['a']}/metrics/system%2Fcpu").json()
    assert doc["key"] == "system/cpu" and doc["points"][0]["value"] == 12.5


def test_max_points_keeps_first_last_and_the_extremes(server: Server, data: dict[str, Any]) -> None:
    doc = server.request("GET", f"/api/v1/runs/{data['a']}/metrics/loss?max_points=50").json()
    steps = [p["step"] for p in doc["points"]]
    assert len(steps) <= 50 and doc["downsampled"] is True and doc["count"] == 1000
    assert steps[0] == 0 and steps[-1] == 999
    assert 500 in steps and 700 in steps
    assert steps == sorted(steps)


def test_artifact_download_streams_with_etag_and_length(server: Server, data: dict[str, Any]) -> None:
    r = server.request("GET", f"/api/v1/runs/{data['a']}/artifacts/img/plot.bin")
    assert r.status == 200
    assert r.body == b"\x00\x01" * 5000
    sha = hashlib.sha256(r.body).hexdigest()
    assert r.headers["etag"].strip('"') == sha
    assert r.headers["content-length"] == str(len(r.body))
    assert r.headers["x-content-type-options"] == "nosniff"
    again = server.request(
        "GET",
        f"/api/v1/runs/{data['a']}/artifacts/img/plot.bin",
        headers={"If-None-Match": r.headers["etag"]},
    )
    assert again.status == 304 and again.body == b""
    text = server.request("GET", f"/api/v1/runs/{data['a']}/artifacts/model.txt")
    assert text.body == b"weights" and text.headers["content-type"].startswith("text/plain")


@pytest.mark.parametrize(
    "name", ["nope.txt", "..%2F..%2Fapi.db", "../../api.db", "img/../model.txt", "%00", "img"]
)
def test_missing_or_hostile_artifact_names_never_leave_the_run(
    server: Server, data: dict[str, Any], name: str
) -> None:
    r = server.request("GET", f"/api/v1/runs/{data['a']}/artifacts/{name}")
    assert r.status in (400, 404)
    assert r.error["type"] in ("ArtifactNotFoundError", "InvalidValueError", "NotFoundError")


def test_compare_experiments_models_and_export(server: Server, data: dict[str, Any]) -> None:
    cmp = server.request("GET", f"/api/v1/compare?ids={data['a'][:8]},{data['b']}").json()
    assert cmp["run_ids"] == [data["a"], data["b"]]
    assert cmp["params"]["differ"] == {"lr": [0.1, 0.2]} and cmp["params"]["same"] == {"opt": "adam"}
    assert server.request("GET", "/api/v1/compare").status == 400
    exps = server.request("GET", "/api/v1/experiments").json()["experiments"]
    counts = {e["name"]: e["run_count"] for e in exps}
    assert counts["exp"] == 2 and counts["bulk"] == 5
    models = server.request("GET", "/api/v1/models").json()["models"]
    assert [m["name"] for m in models] == ["churn"]
    model = server.request("GET", "/api/v1/models/churn").json()
    assert [(v["version"], v["stage"], v["aliases"], v["run_id"]) for v in model["versions"]] == [
        (1, "production", [], data["a"]),
        (2, "none", ["champion"], data["a"]),
    ]
    assert model["aliases"] == {"champion": 2}
    kinds = [e["kind"] for e in model["history"]]
    assert kinds == ["register", "register", "stage", "alias"]  # oldest first
    assert server.request("GET", "/api/v1/models/nope").status == 404
    csv_r = server.request("GET", "/api/v1/export?experiment=bulk&format=csv")
    assert csv_r.headers["content-type"].startswith("text/csv")
    header = csv_r.body.decode().splitlines()[0].split(",")
    assert header[0] == "id" and "params.i" in header
    recs = server.request("GET", "/api/v1/export?experiment=bulk").json()
    assert len(recs) == 5 and len(recs[0]["id"]) == 32


def test_pages_have_json_twins(server: Server, data: dict[str, Any]) -> None:
    twin = server.request("GET", f"/runs/{data['a']}.json")
    assert twin.json() == server.request("GET", f"/api/v1/runs/{data['a']}").json()
    assert (
        server.request("GET", "/experiments.json").json()
        == server.request("GET", "/api/v1/experiments").json()
    )
    assert server.request("GET", "/models/churn.json").json()["name"] == "churn"


def test_unknown_paths_and_methods(server: Server) -> None:
    r = server.request("GET", "/api/v1/nothing")
    assert r.status == 404 and r.error["type"] == "NotFoundError"
    r = server.request("DELETE", "/api/v1/experiments")
    assert r.status == 405 and "GET" in r.headers["allow"]
    page = server.request("GET", "/no/such/page")
    assert page.status == 404 and page.headers["content-type"].startswith("text/html")
    assert server.request("GET", "/static/../api.db").status == 404
    assert server.request("GET", "/static/%2e%2e/%2e%2e/api.db").status == 404


def test_openapi_document_describes_every_served_route(server: Server) -> None:
    from chachaml.web.routes import ROUTES

    doc = server.request("GET", "/api/v1/openapi.json").json()
    assert doc["openapi"].startswith("3.1")
    for method, pattern, handler in ROUTES:
        path = pattern.replace(":path}", "}")
        assert doc["paths"][path][method.lower()]["operationId"] == handler
    described = {(m, p) for p, ops in doc["paths"].items() for m in ops}
    assert len(described) == len(ROUTES)


# -- writes -----------------------------------------------------------------------------------
def _new_run(server: Server, **body: Any) -> dict[str, Any]:
    r = server.request("POST", "/api/v1/runs", {"experiment": "writes", **body})
    assert r.status == 201, r.body
    return r.json()  # type: ignore[no-any-return]


def _stored(data: dict[str, Any], run_id: str) -> Any:
    with chachaml.with_store(data["path"]):
        return chachaml.get_run(run_id)


def test_create_log_a_batch_and_end_a_run(server: Server, data: dict[str, Any]) -> None:
    run = _new_run(server, name="w1", tags={"a": "1"})
    assert run["status"] == "running" and run["tags"] == {"a": "1"}
    batch = {
        "batch_id": uuid.uuid4().hex,
        "params": {"lr": 0.01, "layers": [64, 32]},
        "metrics": [
            {"key": "loss", "value": 0.9, "step": 0},
            {"key": "loss", "value": "NaN", "step": 1},
            {"key": "acc", "value": 0.5, "timestamp": 1_700_000_000_000},
        ],
        "tags": {"phase": "train"},
    }
    r = server.request("POST", f"/api/v1/runs/{run['id']}/batch", batch)
    assert r.json() == {"applied": True, "batch_id": batch["batch_id"]}
    again = server.request("POST", f"/api/v1/runs/{run['id']}/batch", batch)
    assert again.json()["applied"] is False  # a resent batch writes nothing twice
    ended = server.request("POST", f"/api/v1/runs/{run['id']}/end", {"status": "failed"})
    assert ended.json()["status"] == "failed"
    stored = _stored(data, run["id"])
    assert stored.params == {"lr": 0.01, "layers": [64, 32]} and stored.tags == {"a": "1", "phase": "train"}
    with chachaml.with_store(data["path"]):
        loss = chachaml.metric_history(run["id"], "loss")
        acc = chachaml.metric_history(run["id"], "acc")
    assert [p.step for p in loss] == [0, 1] and math.isnan(loss[1].value)
    assert acc[0].timestamp == 1_700_000_000_000


def test_resume_a_run(server: Server) -> None:
    run = _new_run(server)
    server.request("POST", f"/api/v1/runs/{run['id']}/end", {})
    resumed = server.request("POST", "/api/v1/runs", {"run_id": run["id"]})
    assert resumed.status == 201 and resumed.json()["status"] == "running"


def test_a_bad_point_at_the_end_of_a_batch_writes_nothing(server: Server, data: dict[str, Any]) -> None:
    run = _new_run(server)
    bad = {
        "params": {"lr": 0.1},
        "metrics": [{"key": "loss", "value": 1.0}, {"key": "loss", "value": "1.0"}],
        "tags": {"x": "y"},
    }
    r = server.request("POST", f"/api/v1/runs/{run['id']}/batch", bad)
    assert r.status == 400 and r.error["type"] == "InvalidValueError"
    stored = _stored(data, run["id"])
    assert stored.params == {} and stored.metrics == {} and stored.tags == {}


@pytest.mark.parametrize(
    "body",
    [
        {"metrics": [{"key": "", "value": 1}]},
        {"metrics": [{"key": "a", "value": True}]},
        {"metrics": [{"key": "a", "value": 1, "step": "one"}]},
        {"metrics": [{"key": "a", "value": 1, "step": 1.5}]},
        {"metrics": [{"key": "a\x00b", "value": 1}]},
        {"metrics": "loss=1"},
        {"params": {"": 1}},
        {"params": [1, 2]},
        {"tags": {"t": {"nested": 1}}},
        {"unknown": 1},
        {"batch_id": ""},
        {"overwrite": "yes"},
    ],
)
def test_invalid_batches_are_400_and_change_nothing(
    server: Server, data: dict[str, Any], body: dict[str, Any]
) -> None:
    run = _new_run(server)
    r = server.request("POST", f"/api/v1/runs/{run['id']}/batch", {"params": {"keep": 1}, **body})
    assert r.status == 400, r.body
    assert r.error["type"] == "InvalidValueError"
    stored = _stored(data, run["id"])
    assert stored.params == {} and stored.metrics == {}


def test_conflicts_and_run_state_are_409(server: Server, data: dict[str, Any]) -> None:
    run = _new_run(server)
    server.request("POST", f"/api/v1/runs/{run['id']}/batch", {"params": {"lr": 0.1}})
    r = server.request("POST", f"/api/v1/runs/{run['id']}/batch", {"params": {"lr": 0.2}})
    assert r.status == 409 and r.error["type"] == "ConflictError"
    ok = server.request("POST", f"/api/v1/runs/{run['id']}/batch", {"params": {"lr": 0.2}, "overwrite": True})
    assert ok.status == 200
    server.request("POST", f"/api/v1/runs/{run['id']}/end", {})
    late = server.request("POST", f"/api/v1/runs/{run['id']}/batch", {"metrics": [{"key": "m", "value": 1}]})
    assert late.status == 409 and late.error["type"] == "RunStateError"
    assert _stored(data, run["id"]).metrics == {}


def test_tags_notes_and_datasets_also_on_finished_runs(server: Server, data: dict[str, Any]) -> None:
    run = _new_run(server)
    server.request("POST", f"/api/v1/runs/{run['id']}/end", {})
    rid = run["id"]
    assert server.request("PUT", f"/api/v1/runs/{rid}/tags/stage", {"value": "done"}).status == 200
    assert server.request("PUT", f"/api/v1/runs/{rid}/tags/gone", {"value": 1}).status == 200
    assert server.request("DELETE", f"/api/v1/runs/{rid}/tags/gone").status == 200
    assert server.request("PUT", f"/api/v1/runs/{rid}/note", {"note": "**ok**"}).status == 200
    stored = _stored(data, rid)
    assert stored.tags == {"stage": "done"} and stored.note == "**ok**"
    running = _new_run(server)
    ds = server.request(
        "POST", f"/api/v1/runs/{running['id']}/datasets", {"name": "val.csv", "role": "val", "n_rows": 5}
    )
    assert ds.status == 201 and ds.json()["role"] == "val"
    assert _stored(data, running["id"]).datasets[0].n_rows == 5


def test_artifact_upload_streams_and_round_trips(
    server: Server, data: dict[str, Any], tmp_path: Path
) -> None:
    run = _new_run(server)
    blob = bytes(range(256)) * 12_000  # 3 MB, more than one read buffer
    url = f"/api/v1/runs/{run['id']}/artifacts/data/blob.bin"
    r = server.request("PUT", url, raw=blob, headers={"Content-Type": "application/octet-stream"})
    assert r.status == 201, r.body
    assert r.json()["sha256"] == hashlib.sha256(blob).hexdigest() and r.json()["size"] == len(blob)
    assert server.request("GET", url).body == blob
    same = server.request("PUT", url, raw=blob, headers={"Content-Type": "application/octet-stream"})
    assert same.status == 201  # identical bytes again: a no-op
    other = server.request("PUT", url, raw=b"other", headers={"Content-Type": "application/octet-stream"})
    assert other.status == 409 and other.error["type"] == "ConflictError"
    js = server.request(
        "PUT",
        f"/api/v1/runs/{run['id']}/artifacts/cfg.json?format=json",
        raw=b'{"a": 1}',
        headers={"Content-Type": "application/json"},
    )
    assert js.status == 201
    with chachaml.with_store(data["path"]):
        assert chachaml.load_artifact(run["id"], "cfg.json") == {"a": 1}
        assert chachaml.load_artifact(run["id"], "data/blob.bin") == blob


@pytest.mark.parametrize("name", ["..%2Fescape.txt", "a/../../escape.txt", "%2Fabs.txt", "a%5Cb.txt"])
def test_uploads_cannot_escape_the_run_folder(server: Server, data: dict[str, Any], name: str) -> None:
    run = _new_run(server)
    r = server.request(
        "PUT",
        f"/api/v1/runs/{run['id']}/artifacts/{name}",
        raw=b"x",
        headers={"Content-Type": "application/octet-stream"},
    )
    assert r.status in (400, 404), r.body
    root = Path(data["path"]).parent
    assert not list(root.rglob("escape.txt")) and not list(root.rglob("abs.txt"))


def test_uploads_refuse_form_types_and_missing_lengths(server: Server) -> None:
    run = _new_run(server)
    r = server.request(
        "PUT", f"/api/v1/runs/{run['id']}/artifacts/x.txt", raw=b"x", headers={"Content-Type": "text/plain"}
    )
    assert r.status == 415


def test_registry_writes(server: Server, data: dict[str, Any]) -> None:
    run = _new_run(server)
    server.request(
        "PUT",
        f"/api/v1/runs/{run['id']}/artifacts/m.bin",
        raw=b"m",
        headers={"Content-Type": "application/octet-stream"},
    )
    reg = server.request(
        "POST", "/api/v1/models/apimodel/versions", {"run_id": run["id"], "artifact": "m.bin"}
    )
    assert reg.status == 201 and reg.json()["version"] == 1
    missing = server.request(
        "POST", "/api/v1/models/apimodel/versions", {"run_id": run["id"], "artifact": "no.bin"}
    )
    assert missing.status == 404 and missing.error["type"] == "ArtifactNotFoundError"
    assert (
        server.request("PUT", "/api/v1/models/apimodel/versions/1/stage", {"stage": "production"}).json()[
            "stage"
        ]
        == "production"
    )
    assert (
        server.request("PUT", "/api/v1/models/apimodel/versions/9/stage", {"stage": "staging"}).status == 404
    )
    assert server.request("PUT", "/api/v1/models/apimodel/versions/1/stage", {"stage": "live"}).status == 400
    assert server.request("PUT", "/api/v1/models/apimodel/aliases/best", {"version": 1}).json()[
        "aliases"
    ] == ["best"]
    assert server.request("DELETE", "/api/v1/models/apimodel/aliases/best").json() == {"deleted": True}
    desc = server.request("PUT", "/api/v1/models/apimodel/description", {"description": "churn v2"})
    assert desc.json()["description"] == "churn v2"
    with chachaml.with_store(data["path"]):
        assert chachaml.model("apimodel").production_version == 1


def test_experiments_archive_gc_and_delete(server: Server, data: dict[str, Any]) -> None:
    exp = server.request("POST", "/api/v1/experiments", {"name": "doomed", "description": "tmp"})
    assert exp.status == 201 and exp.json()["description"] == "tmp"
    run = server.request("POST", "/api/v1/runs", {"experiment": "doomed"}).json()
    server.request("POST", f"/api/v1/runs/{run['id']}/end", {})
    arch = server.request("POST", "/api/v1/archive", {"older_than_days": 0, "experiment": "doomed"})
    assert arch.json() == {"changed": 1}
    assert server.request("GET", "/api/v1/runs?experiment=doomed").json()["runs"] == []
    assert server.request("POST", "/api/v1/gc", {"dry_run": True}).json()["dry_run"] is True
    gone = server.request("DELETE", "/api/v1/experiments/doomed")
    assert gone.json() == {"deleted": "doomed", "runs": 1}
    other = _new_run(server)
    assert server.request("DELETE", f"/api/v1/runs/{other['id']}").status == 200
    assert server.request("GET", f"/api/v1/runs/{other['id']}").status == 404


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/v1/archive", {"older_than_days": 1.09e16}),  # found by the fuzzer: was a 500
        ("/api/v1/archive", {"older_than_days": -1}),
        ("/api/v1/models/churn/aliases/x", {"version": 2**70}),
        ("/api/v1/experiments", {"name": "x", "owner": 5}),
    ],
)
def test_out_of_range_numbers_are_400(server: Server, path: str, body: dict[str, Any]) -> None:
    method = "PUT" if "/aliases/" in path else "POST"
    r = server.request(method, path, body)
    assert r.status == 400, r.body
    assert r.error["type"] == "InvalidValueError"


def test_non_json_bodies_are_415_and_huge_ones_413(server: Server) -> None:
    run = _new_run(server)
    r = server.request(
        "POST", f"/api/v1/runs/{run['id']}/batch", raw=b"params=1", headers={"Content-Type": "text/plain"}
    )
    assert r.status == 415 and r.error["message"]
    # The server answers 413 from the headers alone, without reading (or storing) the body.
    conn = http.client.HTTPConnection(server.host, server.port, timeout=60)
    conn.putrequest("POST", f"/api/v1/runs/{run['id']}/batch")
    conn.putheader("Content-Type", "application/json")
    conn.putheader("Content-Length", str(17 * 1024 * 1024))
    conn.endheaders()
    resp = conn.getresponse()
    assert resp.status == 413 and json.loads(resp.read())["error"]["type"] == "InvalidValueError"
    conn.close()
    r = server.request(
        "POST",
        f"/api/v1/runs/{run['id']}/batch",
        raw=b"{not json",
        headers={"Content-Type": "application/json"},
    )
    assert r.status == 400
    r = server.request(
        "POST", f"/api/v1/runs/{run['id']}/batch", raw=b"[1, 2]", headers={"Content-Type": "application/json"}
    )
    assert r.status == 400


def test_a_write_from_another_origin_is_refused(server: Server, data: dict[str, Any]) -> None:
    run = _new_run(server)
    r = server.request(
        "PUT",
        f"/api/v1/runs/{run['id']}/tags/x",
        {"value": "evil"},
        headers={"Origin": "http://evil.example"},
    )
    assert r.status == 403
    assert _stored(data, run["id"]).tags == {}


HOSTILE = [
    "/api/v1/runs?where=" + "params.x%20%3D%201%20and%20" * 2000 + "true",
    "/api/v1/runs?where=%27%3B%20DROP%20TABLE%20runs%3B%20--",
    "/api/v1/runs?name=" + "%F0%9F%A7%AA" * 5000,
    "/api/v1/runs?experiment=%00",
    "/api/v1/runs/%00",
    "/api/v1/runs/" + "a" * 5000,
    "/api/v1/runs/%E2%80%AE/metrics/%F0%9F%98%80",
    "/api/v1/runs?order_by=name%3B%20DELETE%20FROM%20runs",
    "/api/v1/compare?ids=" + ",".join(["x"] * 2000),
    "/api/v1/runs?limit=99999999999999999999999",
    "/api/v1/runs/abc/metrics/loss?max_points=1",
    "/api/v1/runs/abc/metrics/loss?after_step=NaN",
    "/api/v1/models/%2e%2e",
    "/api/v1/export?format=xml",
]


@pytest.mark.parametrize("path", HOSTILE)
def test_hostile_reads_never_give_a_500(server: Server, path: str) -> None:
    r = server.request("GET", path)
    assert r.status < 500, (r.status, r.body[:300])
    if r.status >= 400:
        assert r.error["message"]
    else:
        assert "runs" in r.json()  # only the odd-but-valid listings succeed


def test_hostile_input_changed_nothing(server: Server, data: dict[str, Any]) -> None:
    with chachaml.with_store(data["path"]):
        assert len(chachaml.runs(experiment="bulk")) == 5


def test_a_read_only_server_refuses_every_write(data: dict[str, Any]) -> None:
    srv = Server(data["path"], extra=["--read-only"]).start()
    try:
        r = srv.request("POST", "/api/v1/runs", {"name": "nope"})
        assert r.status == 403 and r.error["message"]
        assert srv.request("DELETE", f"/api/v1/runs/{data['b']}").status == 403
        assert srv.request("GET", "/api/v1/runs?limit=1").status == 200
    finally:
        assert srv.stop() == 0
    with chachaml.with_store(data["path"]):
        assert chachaml.runs(name="nope") == chachaml.runs(name="nope")[:0]


def test_concurrent_readers_and_writers_get_no_errors_and_lose_nothing(
    server: Server, data: dict[str, Any]
) -> None:
    import threading

    runs = [_new_run(server, name=f"conc-{i}") for i in range(6)]
    failures: list[Any] = []

    def write(run_id: str) -> None:
        for b in range(15):
            points = [{"key": "x", "value": float(b * 10 + i), "step": b * 10 + i} for i in range(10)]
            r = server.request(
                "POST", f"/api/v1/runs/{run_id}/batch", {"batch_id": f"{run_id}-{b}", "metrics": points}
            )
            if r.status != 200:
                failures.append((r.status, r.body[:200]))

    def read() -> None:
        for _ in range(15):
            r = server.request("GET", "/api/v1/runs?limit=50")
            if r.status != 200:
                failures.append((r.status, r.body[:200]))

    threads = [threading.Thread(target=write, args=(r["id"],)) for r in runs]
    threads += [threading.Thread(target=read) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert failures == []
    for r in runs:
        history = server.request("GET", f"/api/v1/runs/{r['id']}/metrics/x").json()
        assert [p["step"] for p in history["points"]] == list(range(150))
