"""The OpenAPI 3.1 document of the JSON API, served at ``/api/v1/openapi.json``.

It is built from the application's own route table (``chachaml.web.routes.ROUTES``), so every
served endpoint is described and nothing is described that is not served; the parameters and
bodies below are the ones the handlers check. ``tests/test_web_fuzz.py`` fuzzes the API from
this document.
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["document"]

_STR = {"type": "string"}
_INT = {"type": "integer"}
_BOOL = {"type": "boolean"}
_NUM_OR_WORD = {"oneOf": [{"type": "number"}, {"type": "string", "enum": ["NaN", "Infinity", "-Infinity"]}]}
_NULLABLE_STR = {"type": ["string", "null"]}
_OBJ = {"type": "object"}
_STATUS = {"type": "string", "enum": ["running", "completed", "failed", "killed"]}
_FINAL = {"type": "string", "enum": ["completed", "failed", "killed"]}
_STAGE = {"type": "string", "enum": ["none", "staging", "production", "archived"]}


def _q(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "schema": schema, "description": description}


_RUN_FILTERS = [
    _q("experiment", _STR, "only runs of this experiment"),
    _q("status", _STATUS, "only runs with this status"),
    _q("name", _STR, "only runs with this name"),
    _q("parent_id", _STR, "only children of this run"),
    _q("created_by", _STR, "only runs created by this user"),
    _q("where", _STR, "a query, e.g. params.lr < 0.1 and metrics.acc.max > 0.9 (docs/query.md)"),
    _q("order_by", _STR, "e.g. metrics.acc desc (default: newest first)"),
    _q("include_archived", _BOOL, "also list archived runs"),
]
_PAGING = [
    _q("limit", {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100}, "page size"),
    _q("offset", {"type": "integer", "minimum": 0, "default": 0}, "runs to skip"),
]

# handler name -> (summary, query parameters, JSON body schema or "raw", success status)
_OPS: dict[str, tuple[str, list[dict[str, Any]], Any, int]] = {
    "openapi": ("This document", [], None, 200),
    "list_runs": ("Runs matching the filters, newest first, one page", _RUN_FILTERS + _PAGING, None, 200),
    "get_run": ("One run (an id prefix works) with its artifacts and children", [], None, 200),
    "metric_summaries": ("Each metric's last, min, max, count and last_step", [], None, 200),
    "metric_history": (
        "The points of one metric, optionally after a step and downsampled",
        [
            _q("after_step", _INT, "only points with a higher step (incremental fetch)"),
            _q("before_step", _INT, "only points with a lower step (a zoomed window)"),
            _q(
                "max_points",
                {"type": "integer", "minimum": 2, "maximum": 100000},
                "reduce to at most this many points, keeping the first, the last and each bucket's "
                "min and max",
            ),
        ],
        None,
        200,
    ),
    "list_artifacts": ("The artifacts of a run", [], None, 200),
    "get_artifact": (
        "The bytes of an artifact, streamed (ETag is its sha256)",
        [_q("download", _BOOL, "send as an attachment")],
        None,
        200,
    ),
    "compare": (
        "Params and metrics of runs side by side",
        [_q("ids", _STR, "comma-separated run ids")],
        None,
        200,
    ),
    "list_experiments": ("All experiments with their run counts", [], None, 200),
    "list_models": ("All registered models", [], None, 200),
    "get_model": ("A model with its versions, aliases and history", [], None, 200),
    "export": (
        "Flat records of matching runs as JSON or CSV",
        [*_RUN_FILTERS, _q("format", {"type": "string", "enum": ["json", "csv"]}, "json (default) or csv")],
        None,
        200,
    ),
    "create_run": (
        "Start a run (run_id resumes an existing one)",
        [],
        {
            "name": _NULLABLE_STR,
            "experiment": _NULLABLE_STR,
            "tags": {"type": ["object", "null"]},
            "parent_id": _NULLABLE_STR,
            "run_id": _NULLABLE_STR,
        },
        201,
    ),
    "end_run": (
        "End a run",
        [],
        {"status": {"type": "string", "enum": ["completed", "failed", "killed"]}},
        200,
    ),
    "delete_run": ("Delete a run and all it logged", [], None, 200),
    "log_batch": (
        "Params, metric points and tags in one call; a repeated batch_id is ignored",
        [],
        {
            "batch_id": {"type": ["string", "null"], "maxLength": 200},
            "params": {"type": ["object", "null"]},
            "metrics": {
                "type": ["array", "null"],
                "items": {
                    "type": "object",
                    "required": ["key", "value"],
                    "properties": {
                        "key": _STR,
                        "value": _NUM_OR_WORD,
                        "step": {"type": ["integer", "null"]},
                        "timestamp": {"type": ["integer", "null"]},
                    },
                },
            },
            "tags": {"type": ["object", "null"]},
            "overwrite": _BOOL,
        },
        200,
    ),
    "set_tag": ("Set a tag", [], {"value": {"type": ["string", "number", "boolean"]}}, 200),
    "delete_tag": ("Remove a tag", [], None, 200),
    "set_note": ("Set the run's note (markdown)", [], {"note": _STR}, 200),
    "log_dataset": (
        "Record a dataset the run used",
        [],
        {
            "name": _STR,
            "role": _STR,
            "source": _NULLABLE_STR,
            "n_rows": {"type": ["integer", "null"], "minimum": 0},
            "n_cols": {"type": ["integer", "null"], "minimum": 0},
            "features": {"type": ["array", "null"], "items": _STR},
            "digest": _NULLABLE_STR,
        },
        201,
    ),
    "put_artifact": (
        "Upload an artifact as a raw body (streamed)",
        [
            _q("format", {"type": "string", "enum": ["bytes", "text", "json", "pickle", "npy", "table"]}, ""),
            _q("overwrite", _BOOL, "replace other bytes stored under this name"),
        ],
        "raw",
        201,
    ),
    "create_experiment": (
        "Create an experiment (or update its description)",
        [],
        {"name": _STR, "description": _NULLABLE_STR, "owner": _NULLABLE_STR},
        201,
    ),
    "delete_experiment": ("Delete an experiment and all its runs", [], None, 200),
    "archive": (
        "Archive (or unarchive) finished runs",
        [],
        {
            "older_than_days": {"type": ["number", "null"], "minimum": 0},
            "experiment": _NULLABLE_STR,
            "archived": _BOOL,
        },
        200,
    ),
    "gc": ("Remove orphan artifact files", [], {"dry_run": _BOOL}, 200),
    "set_model_description": ("Set a model's description", [], {"description": _NULLABLE_STR}, 200),
    "register_model": (
        "Register an artifact of a run as the next version of a model",
        [],
        {"run_id": _STR, "artifact": _STR, "stage": _STAGE, "description": _NULLABLE_STR},
        201,
    ),
    "promote": ("Move a version to a stage", [], {"stage": _STAGE}, 200),
    "set_alias": ("Point an alias at a version", [], {"version": {"type": "integer", "minimum": 1}}, 200),
    "delete_alias": ("Remove an alias", [], None, 200),
}

_REQUIRED = {
    "log_dataset": ["name"],
    "set_note": ["note"],
    "set_tag": ["value"],
    "create_experiment": ["name"],
    "register_model": ["run_id", "artifact"],
    "promote": ["stage"],
    "set_alias": ["version"],
}

_ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["type", "message"],
            "properties": {"type": _STR, "message": _STR, "position": _INT},
        }
    },
}


_ERROR_REF = {"$ref": "#/components/schemas/Error"}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _obj(required: list[str], **props: Any) -> dict[str, Any]:
    return {"type": "object", "required": required, "properties": props}


_NUMBER = {"type": ["number", "string"]}  # "NaN", "Infinity", "-Infinity" as strings
_NULL_INT = {"type": ["integer", "null"]}
_NULL_NUMBER = {"type": ["number", "string", "null"]}
_SCHEMAS: dict[str, Any] = {
    "Error": _ERROR,
    "Run": _obj(
        ["id", "experiment", "status", "start_time", "params", "metrics", "tags"],
        id=_STR,
        experiment=_STR,
        name=_NULLABLE_STR,
        status=_STATUS,
        start_time=_INT,
        end_time=_NULL_INT,
        duration=_NULL_INT,
        parent_id=_NULLABLE_STR,
        created_by=_NULLABLE_STR,
        params=_OBJ,
        metrics={"type": "object", "additionalProperties": _NUMBER},
        tags={"type": "object", "additionalProperties": _STR},
        note=_NULLABLE_STR,
        error={"type": ["object", "null"]},
        env=_OBJ,
        datasets={"type": "array", "items": _OBJ},
        archived=_BOOL,
    ),
    "Artifact": _obj(
        ["run_id", "name", "size", "sha256", "content_type", "format"],
        run_id=_STR,
        name=_STR,
        size=_INT,
        sha256=_STR,
        content_type=_STR,
        format=_STR,
        created=_INT,
    ),
    "Experiment": _obj(["name", "run_count"], name=_STR, description=_NULLABLE_STR, run_count=_INT),
    "ModelVersion": _obj(
        ["model", "version", "run_id", "artifact", "stage", "aliases"],
        model=_STR,
        version=_INT,
        run_id=_STR,
        artifact=_STR,
        stage=_STAGE,
        aliases={"type": "array", "items": _STR},
    ),
    "Model": _obj(["name", "aliases"], name=_STR, latest_version=_NULL_INT, aliases=_OBJ),
}
_RUN_DETAIL = {
    "allOf": [
        _ref("Run"),
        _obj(
            ["artifacts", "children"],
            artifacts={"type": "array", "items": _ref("Artifact")},
            children={"type": "array", "items": _STR},
        ),
    ]
}
_SUMMARY = _obj(
    ["last", "min", "max", "count", "last_step"],
    last=_NULL_NUMBER,
    min=_NULL_NUMBER,
    max=_NULL_NUMBER,
    count=_INT,
    last_step=_NULL_INT,
)
_SPLIT = _obj(["same", "differ", "partial"], same=_OBJ, differ=_OBJ, partial=_OBJ)
# handler -> the JSON schema of its success response (others: any JSON).
_RESPONSES: dict[str, Any] = {
    "list_runs": _obj(
        ["runs", "next_offset"], runs={"type": "array", "items": _ref("Run")}, next_offset=_NULL_INT
    ),
    "get_run": _RUN_DETAIL,
    "create_run": _ref("Run"),
    "end_run": _ref("Run"),
    "metric_summaries": {"type": "object", "additionalProperties": _SUMMARY},
    "metric_history": _obj(
        ["key", "points", "count", "downsampled"],
        key=_STR,
        points={
            "type": "array",
            "items": _obj(["step", "value", "timestamp"], step=_INT, value=_NUMBER, timestamp=_INT),
        },
        count=_INT,
        downsampled=_BOOL,
    ),
    "list_artifacts": _obj(["artifacts"], artifacts={"type": "array", "items": _ref("Artifact")}),
    "put_artifact": _ref("Artifact"),
    "compare": _obj(
        ["run_ids", "params", "metrics"],
        run_ids={"type": "array", "items": _STR},
        params=_SPLIT,
        metrics=_SPLIT,
    ),
    "list_experiments": _obj(["experiments"], experiments={"type": "array", "items": _ref("Experiment")}),
    "create_experiment": _ref("Experiment"),
    "list_models": _obj(["models"], models={"type": "array", "items": _ref("Model")}),
    "get_model": {
        "allOf": [
            _ref("Model"),
            _obj(
                ["versions", "history"],
                versions={"type": "array", "items": _ref("ModelVersion")},
                history={"type": "array", "items": _OBJ},
            ),
        ]
    },
    "register_model": _ref("ModelVersion"),
    "promote": _ref("ModelVersion"),
    "set_alias": _ref("ModelVersion"),
    "log_batch": _obj(["applied", "batch_id"], applied=_BOOL, batch_id=_NULLABLE_STR),
}


def _success(handler: str) -> dict[str, Any]:
    if handler == "get_artifact":
        return {"description": "the artifact's bytes", "content": {"*/*": {"schema": {"type": "string"}}}}
    if handler == "export":
        return {
            "description": "flat records",
            "content": {"application/json": {"schema": {"type": "array"}}, "text/csv": {"schema": _STR}},
        }
    schema = _RESPONSES.get(handler, {})
    return {"description": "success", "content": {"application/json": {"schema": schema}}}


def _operation(method: str, path: str, handler: str) -> dict[str, Any]:
    summary, query, body, ok = _OPS[handler]
    params = [
        {"name": name, "in": "path", "required": True, "schema": _STR}
        for name in re.findall(r"\{([^}:]+)(?::path)?\}", path)
    ]
    errors = {
        str(s): {
            "description": d,
            "content": {"application/json": {"schema": _ERROR_REF}},
        }
        for s, d in (
            (400, "invalid value or query"),
            (404, "not found"),
            (409, "conflict or run state"),
            (413, "too large"),
            (415, "not JSON"),
        )
    }
    op: dict[str, Any] = {
        "operationId": handler,
        "summary": summary,
        "parameters": params + query,
        "responses": {str(ok): _success(handler), **errors},
    }
    if body == "raw":
        op["requestBody"] = {
            "required": True,
            "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
        }
    elif body is not None:
        schema: dict[str, Any] = {"type": "object", "properties": body, "additionalProperties": False}
        if handler in _REQUIRED:
            schema["required"] = _REQUIRED[handler]
        op["requestBody"] = {"required": True, "content": {"application/json": {"schema": schema}}}
    if method == "get" and handler == "get_artifact":
        op["responses"]["304"] = {"description": "not modified (If-None-Match matched the ETag)"}
    return op


def document() -> dict[str, Any]:
    """The OpenAPI 3.1 document of every route the application serves."""
    from chachaml import __version__
    from chachaml.web.routes import ROUTES

    paths: dict[str, dict[str, Any]] = {}
    for method, pattern, handler in ROUTES:
        path = re.sub(r"\{([^}:]+):path\}", r"{\1}", pattern)
        paths.setdefault(path, {})[method.lower()] = _operation(method.lower(), pattern, handler)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "chachaml API",
            "version": __version__,
            "description": "The JSON API of chachaml (SPEC 9.2). NaN and infinities are the strings "
            '"NaN", "Infinity", "-Infinity". Errors are {"error": {"type", "message"}}.',
        },
        "servers": [{"url": "/"}],
        "paths": paths,
        "components": {"schemas": _SCHEMAS},
    }
