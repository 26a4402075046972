"""The handlers of the JSON API under ``/api/v1`` (SPEC 9.2): reads, then writes.

Each handler takes the application (``app.client`` is the ``Client``) and the ``Request`` and
returns a ``Response``. Handlers only go through the ``Client`` (STYLE.md: the web layer is
thin). Writes check every field of the body before the first call that writes, so a bad value
in a batch writes none of it. ``docs/api.md`` has a curl example per write.
"""

from __future__ import annotations

import csv
import io
from typing import Any

from chachaml.entities import Run
from chachaml.errors import ArtifactNotFoundError, InvalidValueError
from chachaml.web._http import Request, Response, chunks, json_response
from chachaml.web._writes import (
    BatchLog,
    archive,
    create_experiment,
    create_run,
    delete_alias,
    delete_experiment,
    delete_run,
    delete_tag,
    end_run,
    gc,
    log_batch,
    log_dataset,
    promote,
    put_artifact,
    register_model,
    set_alias,
    set_model_description,
    set_note,
    set_tag,
)

MAX_LIMIT = 1000
DEFAULT_LIMIT = 100
MAX_POINTS = 100_000  # the most points one history response may be asked to hold after downsampling


# -- helpers ----------------------------------------------------------------------------------
def run_object(run: Run) -> dict[str, Any]:
    """A run as the API shows it: the keys of ``Run.to_dict()``."""
    return run.to_dict()


def _run_filters(req: Request) -> dict[str, Any]:
    return {
        "experiment": req.text("experiment"),
        "status": req.text("status"),
        "name": req.text("name"),
        "parent_id": req.text("parent_id"),
        "created_by": req.text("created_by"),
        "where": req.text("where"),
        "order_by": req.text("order_by"),
        "include_archived": req.boolean("include_archived"),
    }


# -- reads ------------------------------------------------------------------------------------
def openapi(app: Any, req: Request) -> Response:
    """``GET /api/v1/openapi.json``: the OpenAPI 3.1 document."""
    from chachaml.web.openapi import document

    return json_response(document())


def list_runs(app: Any, req: Request) -> Response:
    """``GET /api/v1/runs``: one page of runs and the offset of the next (None at the end)."""
    limit = req.integer("limit", DEFAULT_LIMIT, low=1, high=MAX_LIMIT)
    offset = req.integer("offset", 0)
    assert limit is not None and offset is not None
    found = app.client.runs(**_run_filters(req), limit=limit + 1, offset=offset)  # one extra: more?
    more = len(found) > limit
    return json_response(
        {"runs": [run_object(r) for r in found[:limit]], "next_offset": offset + limit if more else None}
    )


def get_run(app: Any, req: Request) -> Response:
    """``GET /api/v1/runs/{id}``: a run object plus ``artifacts`` and ``children`` (ids)."""
    c = app.client
    run = c.get_run(req.params["run_id"])
    body = run_object(run)
    body["artifacts"] = [a.to_dict() for a in c.list_artifacts(run.id)]
    body["children"] = [r.id for r in c.runs(parent_id=run.id, include_archived=True)]
    return json_response(body)


def metric_summaries(app: Any, req: Request) -> Response:
    """``GET /api/v1/runs/{id}/metrics``: last, min, max, count, last_step per key."""
    return json_response(app.client.metric_summaries(req.params["run_id"]))


def metric_history(app: Any, req: Request) -> Response:
    """``GET /api/v1/runs/{id}/metrics/{key}``: the points between ``after_step`` and
    ``before_step`` (both exclusive, both optional), downsampled to ``max_points``."""
    after = req.integer("after_step", None, low=-(2**63))
    before = req.integer("before_step", None, low=-(2**63))
    max_points = req.integer("max_points", None, low=2, high=MAX_POINTS)
    key = req.params["key"]
    points, total = app.client.metric_window(
        req.params["run_id"], key, after_step=after, before_step=before, max_points=max_points
    )
    return json_response(
        {
            "key": key,
            "points": [{"step": p.step, "value": p.value, "timestamp": p.timestamp} for p in points],
            "count": total,
            "downsampled": len(points) < total,
        }
    )


def list_artifacts(app: Any, req: Request) -> Response:
    """``GET /api/v1/runs/{id}/artifacts``: the artifacts' metadata."""
    return json_response(
        {"artifacts": [a.to_dict() for a in app.client.list_artifacts(req.params["run_id"])]}
    )


def get_artifact(app: Any, req: Request) -> Response:
    """``GET /api/v1/runs/{id}/artifacts/{name}``: the bytes, streamed, ETag = sha256."""
    c = app.client
    name = req.params["name"]
    run = c.get_run(req.params["run_id"])
    art = next((a for a in c.list_artifacts(run.id) if a.name == name), None)
    if art is None:
        raise ArtifactNotFoundError(
            f"run {run.id[:8]} has no artifact {name!r}; list them at /api/v1/runs/{run.id}/artifacts"
        )
    etag = f'"{art.sha256}"'
    headers = {
        "ETag": etag,
        "Cache-Control": "no-cache",
        "X-Content-Type-Options": "nosniff",
        # Logged bytes are never run as part of the UI's origin (an HTML or SVG artifact).
        "Content-Security-Policy": "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; sandbox",
    }
    if req.boolean("download"):
        from urllib.parse import quote

        headers["Content-Disposition"] = f"attachment; filename*=UTF-8''{quote(name.rsplit('/', 1)[-1])}"
    if req.header("If-None-Match") == etag:
        return Response(b"", status=304, headers=headers)
    resp = Response(chunks(c.open_artifact(run.id, name)), content_type=art.content_type, headers=headers)
    resp.headers["Content-Length"] = str(art.size)
    return resp


def compare(app: Any, req: Request) -> Response:
    """``GET /api/v1/compare?ids=a,b``: ``compare_runs``."""
    ids = [i.strip() for i in (req.text("ids") or "").split(",") if i.strip()]
    if not ids:
        raise InvalidValueError("compare needs run ids: /api/v1/compare?ids=<id>,<id>")
    if len(ids) > MAX_LIMIT:
        raise InvalidValueError(f"compare takes at most {MAX_LIMIT} runs, got {len(ids)}")
    return json_response(app.client.compare_runs(ids).to_dict())


def list_experiments(app: Any, req: Request) -> Response:
    """``GET /api/v1/experiments``."""
    return json_response({"experiments": [e.to_dict() for e in app.client.experiments()]})


def list_models(app: Any, req: Request) -> Response:
    """``GET /api/v1/models``."""
    return json_response({"models": [m.to_dict() for m in app.client.models()]})


def get_model(app: Any, req: Request) -> Response:
    """``GET /api/v1/models/{name}``: the model with its versions and history."""
    c = app.client
    name = req.params["name"]
    model = c.model(name)
    body = model.to_dict()
    body["versions"] = [v.to_dict() for v in c.model_versions(name)]
    body["history"] = [e.to_dict() for e in c.model_history(name)]
    return json_response(body)


def list_pipelines(app: Any, req: Request) -> Response:
    """``GET /api/v1/pipelines``: pipelines, newest first (``?name``, ``?limit``)."""
    limit = req.integer("limit", DEFAULT_LIMIT, low=1, high=MAX_LIMIT)
    found = app.client.pipelines(name=req.text("name"), limit=limit)
    return json_response({"pipelines": [p.to_dict() for p in found]})


def get_pipeline(app: Any, req: Request) -> Response:
    """``GET /api/v1/pipelines/{id}``: one pipeline (an id prefix works) with its steps."""
    return json_response(app.client.get_pipeline(req.params["pipeline_id"]).to_dict())


def list_alerts(app: Any, req: Request) -> Response:
    """``GET /api/v1/alerts``: every alert, by name, with its ``condition`` as text."""
    return json_response({"alerts": [{**a.to_dict(), "condition": a.condition} for a in app.client.alerts()]})


def alert_history(app: Any, req: Request) -> Response:
    """``GET /api/v1/alerts/{name}/history``: the alert's events, oldest first (``?limit``: the
    newest that many)."""
    limit = req.integer("limit", None, low=1, high=MAX_LIMIT)
    events = app.client.alert_history(req.params["name"])
    if limit is not None:
        events = events[-limit:]
    return json_response({"alert": req.params["name"], "events": [e.to_dict() for e in events]})


def export(app: Any, req: Request) -> Response:
    """``GET /api/v1/export``: ``export_runs`` as JSON (default) or CSV."""
    fmt = req.text("format") or "json"
    if fmt not in ("json", "csv"):
        raise InvalidValueError(f"format={fmt!r} is not json or csv")
    limit = req.integer("limit", None, low=0)
    offset = req.integer("offset", 0)
    records = app.client.export_runs(**_run_filters(req), limit=limit, offset=offset)
    if fmt == "json":
        return json_response(records)
    return Response(records_csv(records).encode("utf-8"), content_type="text/csv; charset=utf-8")


def records_csv(records: list[dict[str, Any]]) -> str:
    """Flat records as CSV text: a header row with every column, in first-seen order."""
    columns = list(dict.fromkeys(k for r in records for k in r))
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(records)
    return out.getvalue()


__all__ = [
    "BatchLog",
    "alert_history",
    "archive",
    "compare",
    "create_experiment",
    "create_run",
    "delete_alias",
    "delete_experiment",
    "delete_run",
    "delete_tag",
    "end_run",
    "export",
    "gc",
    "get_artifact",
    "get_model",
    "get_pipeline",
    "get_run",
    "list_alerts",
    "list_artifacts",
    "list_experiments",
    "list_models",
    "list_pipelines",
    "list_runs",
    "log_batch",
    "log_dataset",
    "metric_history",
    "metric_summaries",
    "openapi",
    "promote",
    "put_artifact",
    "register_model",
    "run_object",
    "set_alias",
    "set_model_description",
    "set_note",
    "set_tag",
]
