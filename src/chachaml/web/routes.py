"""The route table of the JSON API: one place, read by the application and the OpenAPI document."""

from __future__ import annotations

__all__ = ["ROUTES"]

# (method, pattern, handler name in chachaml.web.api). ``{name}`` matches one path segment,
# ``{name:path}`` the rest of the path (artifact names contain ``/``).
ROUTES: list[tuple[str, str, str]] = [
    ("GET", "/api/v1/openapi.json", "openapi"),
    ("GET", "/api/v1/runs", "list_runs"),
    ("POST", "/api/v1/runs", "create_run"),
    ("GET", "/api/v1/runs/{run_id}", "get_run"),
    ("DELETE", "/api/v1/runs/{run_id}", "delete_run"),
    ("POST", "/api/v1/runs/{run_id}/end", "end_run"),
    ("POST", "/api/v1/runs/{run_id}/batch", "log_batch"),
    ("PUT", "/api/v1/runs/{run_id}/tags/{key:path}", "set_tag"),
    ("DELETE", "/api/v1/runs/{run_id}/tags/{key:path}", "delete_tag"),
    ("PUT", "/api/v1/runs/{run_id}/note", "set_note"),
    ("POST", "/api/v1/runs/{run_id}/datasets", "log_dataset"),
    ("GET", "/api/v1/runs/{run_id}/metrics", "metric_summaries"),
    ("GET", "/api/v1/runs/{run_id}/metrics/{key:path}", "metric_history"),
    ("GET", "/api/v1/runs/{run_id}/artifacts", "list_artifacts"),
    ("GET", "/api/v1/runs/{run_id}/artifacts/{name:path}", "get_artifact"),
    ("PUT", "/api/v1/runs/{run_id}/artifacts/{name:path}", "put_artifact"),
    ("GET", "/api/v1/compare", "compare"),
    ("GET", "/api/v1/experiments", "list_experiments"),
    ("POST", "/api/v1/experiments", "create_experiment"),
    ("DELETE", "/api/v1/experiments/{name}", "delete_experiment"),
    ("GET", "/api/v1/export", "export"),
    ("POST", "/api/v1/archive", "archive"),
    ("POST", "/api/v1/gc", "gc"),
    ("GET", "/api/v1/models", "list_models"),
    ("GET", "/api/v1/models/{name}", "get_model"),
    ("PUT", "/api/v1/models/{name}/description", "set_model_description"),
    ("POST", "/api/v1/models/{name}/versions", "register_model"),
    ("PUT", "/api/v1/models/{name}/versions/{version}/stage", "promote"),
    ("PUT", "/api/v1/models/{name}/aliases/{alias}", "set_alias"),
    ("DELETE", "/api/v1/models/{name}/aliases/{alias}", "delete_alias"),
]
