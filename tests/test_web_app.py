"""The WSGI application in-process (fast): static files, pages, downsampling, error mapping."""

from __future__ import annotations

import io
import json
import math
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from wsgiref.util import setup_testing_defaults

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import chachaml
from chachaml.client import Client
from chachaml.web.app import create_app
from chachaml.web.downsample import downsample_indices


def call(
    app: Any,
    method: str,
    path: str,
    query: str = "",
    body: bytes = b"",
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, str], bytes]:
    env: dict[str, Any] = {}
    setup_testing_defaults(env)
    env.update(
        REQUEST_METHOD=method,
        PATH_INFO=path.encode("utf-8").decode("latin-1"),
        QUERY_STRING=query,
        CONTENT_LENGTH=str(len(body)),
        CONTENT_TYPE="application/json",
    )
    env["wsgi.input"] = io.BytesIO(body)
    for k, v in (headers or {}).items():
        env["HTTP_" + k.upper().replace("-", "_")] = v
    seen: dict[str, Any] = {}

    def start_response(status: str, hdrs: list[tuple[str, str]]) -> None:
        seen["status"] = int(status.split()[0])
        seen["headers"] = dict(hdrs)

    data = b"".join(app(env, start_response))
    return seen["status"], seen["headers"], data


@pytest.fixture
def app(tmp_path: Path) -> Iterator[Any]:
    with Client(str(tmp_path / "app.db")) as client:
        yield create_app(client)


@pytest.fixture
def static(app: Any, tmp_path: Path) -> Path:
    root = tmp_path / "static"
    (root / "js").mkdir(parents=True)
    (root / "js" / "chart.js").write_text("export const x = 1;\n")
    (root / "style.css").write_text("body { color: #222 }\n")
    (root / ".hidden").write_text("secret")
    (tmp_path / "outside.txt").write_text("outside")
    app.static_root = root
    return root


def test_static_files_have_their_type_an_etag_and_revalidate(app: Any, static: Path) -> None:
    status, headers, body = call(app, "GET", "/static/js/chart.js")
    assert status == 200 and body == b"export const x = 1;\n"
    assert headers["Content-Type"] == "text/javascript; charset=utf-8"
    assert headers["Cache-Control"] == "no-cache" and headers["ETag"]
    again = call(app, "GET", "/static/js/chart.js", headers={"If-None-Match": headers["ETag"]})
    assert again[0] == 304 and again[2] == b""
    assert call(app, "GET", "/static/style.css")[1]["Content-Type"] == "text/css; charset=utf-8"
    assert call(app, "HEAD", "/static/style.css")[2] == b""


@pytest.mark.parametrize(
    "path",
    [
        "/static/../outside.txt",
        "/static/js/../../outside.txt",
        "/static/.hidden",
        "/static/js",
        "/static/",
        "/static/js\\chart.js",
        "/static/nope.js",
    ],
)
def test_static_paths_never_leave_the_folder(app: Any, static: Path, path: str) -> None:
    status, headers, body = call(app, "GET", path)
    assert status == 404 and headers["Content-Type"].startswith("text/html")
    assert b"outside" not in body.replace(b"outside.txt", b"") and b"secret" not in body


def test_the_package_static_folder_is_served(tmp_path: Path) -> None:
    from importlib import resources

    with Client(str(tmp_path / "x.db")) as client:
        app = create_app(client)
        folder = resources.files("chachaml.web").joinpath("static")
        files = [p for p in folder.iterdir() if p.is_file()] if folder.is_dir() else []
        for f in files[:3]:
            status, _, body = call(app, "GET", f"/static/{f.name}")
            assert status == 200 and body == f.read_bytes()
        assert call(app, "GET", "/static/../web/app.py")[0] == 404


def test_unknown_pages_are_an_html_404_that_escapes_the_path(app: Any) -> None:
    status, headers, body = call(app, "GET", "/<script>alert(1)</script>")
    assert status == 404 and headers["Content-Type"].startswith("text/html")
    assert b"<script>alert" not in body


def test_writes_to_pages_and_static_are_405(app: Any) -> None:
    assert call(app, "POST", "/static/x.js")[0] == 405
    assert call(app, "DELETE", "/")[0] == 405


def test_head_of_an_api_read_has_no_body(app: Any) -> None:
    status, headers, body = call(app, "HEAD", "/api/v1/experiments")
    assert status == 200 and body == b"" and headers["Content-Type"] == "application/json"


def test_a_batch_conflict_writes_nothing_of_the_batch(app: Any) -> None:
    run = json.loads(call(app, "POST", "/api/v1/runs", body=b'{"name": "r"}')[2])
    first = json.dumps({"params": {"lr": 0.1}}).encode()
    assert call(app, "POST", f"/api/v1/runs/{run['id']}/batch", body=first)[0] == 200
    clash = json.dumps(
        {"params": {"lr": 0.5, "new": 1}, "metrics": [{"key": "loss", "value": 1}], "tags": {"t": "x"}}
    ).encode()
    status, _, body = call(app, "POST", f"/api/v1/runs/{run['id']}/batch", body=clash)
    assert status == 409 and json.loads(body)["error"]["type"] == "ConflictError"
    stored = app.client.get_run(run["id"])
    assert stored.params == {"lr": 0.1} and stored.metrics == {} and stored.tags == {}


def test_a_failed_batch_can_be_sent_again_with_the_same_id(app: Any) -> None:
    run = json.loads(call(app, "POST", "/api/v1/runs", body=b"{}")[2])
    url = f"/api/v1/runs/{run['id']}/batch"
    call(app, "POST", url, body=b'{"params": {"lr": 1}}')
    bad = b'{"batch_id": "b-1", "params": {"lr": 2}, "metrics": [{"key": "m", "value": 1}]}'
    assert call(app, "POST", url, body=bad)[0] == 409
    good = (
        b'{"batch_id": "b-1", "params": {"lr": 2}, "metrics": [{"key": "m", "value": 1}], "overwrite": true}'
    )
    assert json.loads(call(app, "POST", url, body=good)[2])["applied"] is True
    assert json.loads(call(app, "POST", url, body=good)[2])["applied"] is False
    assert len(app.client.metric_history(run["id"], "m")) == 1


# -- downsampling ---------------------------------------------------------------------------------
def test_short_histories_are_returned_whole() -> None:
    assert downsample_indices([1.0, 2.0, 3.0], 10) == [0, 1, 2]


def test_one_million_points_keep_the_spikes() -> None:
    rng = random.Random(7)
    values = [rng.random() for _ in range(1_000_000)]
    values[123_457] = 50.0
    values[876_543] = -50.0
    keep = downsample_indices(values, 1000)
    assert len(keep) <= 1000 and keep[0] == 0 and keep[-1] == 999_999
    assert 123_457 in keep and 876_543 in keep and keep == sorted(set(keep))


def test_nan_is_never_an_extreme_and_a_nan_bucket_keeps_one_point() -> None:
    values = [1.0] * 10 + [math.nan] * 10 + [2.0] * 10
    values[5] = 9.0
    keep = downsample_indices(values, 8)
    assert 5 in keep
    assert any(math.isnan(values[i]) for i in keep)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.floats(allow_nan=True, allow_infinity=True), min_size=0, max_size=300),
    st.integers(min_value=2, max_value=60),
)
def test_downsampling_invariants(values: list[float], max_points: int) -> None:
    keep = downsample_indices(values, max_points)
    assert len(keep) <= max(max_points, 0) or len(values) <= max_points
    assert keep == sorted(set(keep)) and all(0 <= i < len(values) for i in keep)
    if len(values) <= max_points:
        assert keep == list(range(len(values)))
        return
    assert keep[0] == 0 and keep[-1] == len(values) - 1
    finite = [v for v in values[1:-1] if v == v]
    if finite and max_points >= 4:
        kept = [values[i] for i in keep]
        assert max(finite) in kept and min(finite) in kept  # the global extremes always survive


def test_infinities_of_both_signs_keep_their_extremes() -> None:
    # Found by hypothesis: math.fsum raised on +inf + -inf.
    values = [0.0, math.inf, 1.0, -math.inf, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0]
    keep = downsample_indices(values, 4)
    assert values[keep[1]] == -math.inf or values[keep[2]] == -math.inf
    assert math.inf in [values[i] for i in keep]


def test_max_points_below_two_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 2"):
        downsample_indices([1.0, 2.0, 3.0], 1)


def test_the_api_refuses_max_points_below_two(app: Any) -> None:
    with chachaml.with_store(app.client.store), chachaml.with_run("r") as run:
        chachaml.log_metric("m", 1.0)
    status, _, body = call(app, "GET", f"/api/v1/runs/{run.id}/metrics/m", "max_points=1")
    assert status == 400 and "max_points" in json.loads(body)["error"]["message"]
