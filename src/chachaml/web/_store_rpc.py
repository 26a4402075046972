"""The store contract over HTTP: ``POST /api/v1/store/{method}`` (the remote store's endpoint).

The JSON API of SPEC 9.2 is shaped for people and the UI; the remote store
(``chachaml.store.remote``) needs the store contract itself, method by method, so that the
``Client`` and the module verbs work unchanged over a server with the same semantics the
conformance suite checks (ADR-0020). Each call is one store call:

* request: ``{"args": {<keyword arguments of the store method>}}`` as JSON; numbers may be the
  tokens ``NaN``, ``Infinity``, ``-Infinity`` (Python's ``json``), so metric values round-trip;
* response: ``{"result": <plain value>}``, entities as their ``to_dict()``;
* errors: ``{"error": error_to_dict(exc)}`` with the status of SPEC 9.2.

Every argument is type-checked here before the store is called (a bad one is a 400 that
changes nothing). ``created_by`` of a new run and ``who`` of a registry change are the caller
the server authenticated (``environ["chachaml.user"]``), whatever the body claims. Artifact
bytes go through ``PUT /api/v1/store/artifact/{run_id}/{name}`` (streamed raw body) and the
plain API's ``GET /api/v1/runs/{id}/artifacts/{name}``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from chachaml._process import Owner
from chachaml._values import check_key, decode_param
from chachaml.entities import Dataset
from chachaml.errors import ChachamlError, InvalidValueError, error_to_dict
from chachaml.rules import check_artifact_name, check_tags
from chachaml.store.base import NewRun, RunFilter
from chachaml.web._http import HttpError, Request, Response

__all__ = ["METHODS", "handle"]

PREFIX = "/api/v1/store/"


def _is(kind: type | tuple[type, ...], optional: bool = False) -> Callable[[Any, str], Any]:
    def check(value: Any, name: str) -> Any:
        if value is None and optional:
            return None
        if isinstance(value, bool) and bool not in (kind if isinstance(kind, tuple) else (kind,)):
            raise InvalidValueError(f"argument {name!r} has the wrong type: {value!r:.80}")
        if not isinstance(value, kind):
            raise InvalidValueError(f"argument {name!r} has the wrong type: {value!r:.80}")
        return value

    return check


S, S_, N, N_, B = _is(str), _is(str, True), _is(int), _is(int, True), _is(bool)
D_ = _is(dict, True)


def _owner(value: Any, name: str) -> Owner:
    d = _is(dict)(value, name)
    return Owner(host=S(d.get("host"), "owner.host"), pid=N(d.get("pid"), "owner.pid"),
                 proc_start=S(d.get("proc_start"), "owner.proc_start"))  # fmt: skip


def _strmap(value: Any, name: str) -> dict[str, str] | None:
    d = D_(value, name)
    if d is None:
        return None
    out: dict[str, str] = {}
    for k, v in d.items():
        out[check_key(k, f"{name} key")] = S(v, f"{name}[{k!r}]")
    return out


def _params(value: Any, name: str) -> dict[str, str] | None:
    d = _strmap(value, name)
    for v in (d or {}).values():
        try:
            decode_param(v)
        except ValueError:
            raise InvalidValueError(f"param value {v!r:.80} is not JSON text") from None
    return d


def _metrics(value: Any, name: str) -> list[tuple[str, float, int | None, int]]:
    """``[[key, value, step|null, ts], ...]`` checked point by point: the ingest hot path, so
    plain ``type`` tests (a bool is not an int here) and each distinct key checked once."""
    out = []
    keys: dict[str, str] = {}
    for p in _is(list)(value, name):
        if type(p) is not list or len(p) != 4:
            raise InvalidValueError(f"{name} holds [key, value, step, timestamp] lists, got {p!r:.80}")
        k, v, s, t = p
        tv = type(v)
        if tv is not float and tv is not int:
            raise InvalidValueError(f"metric value {v!r:.80} is not a number")
        if (s is not None and type(s) is not int) or type(t) is not int:
            raise InvalidValueError(f"step {s!r:.40} and timestamp {t!r:.40} must be integers")
        key = keys.get(k) if type(k) is str else None
        if key is None:
            key = keys[k] = check_key(S(k, "metric key"), "metric key")
        out.append((key, float(v), s, t))
    return out


def _new_run(value: Any, name: str) -> NewRun:
    d = _is(dict)(value, name)
    return NewRun(
        id=S(d.get("id"), "id"),
        experiment=check_key(S(d.get("experiment"), "experiment"), "experiment name"),
        start_time=N(d.get("start_time"), "start_time"),
        owner=_owner(d.get("owner"), "owner"),
        name=S_(d.get("name"), "name"),
        parent_id=S_(d.get("parent_id"), "parent_id"),
        created_by=S_(d.get("created_by"), "created_by"),
        tags=check_tags(_strmap(d.get("tags"), "tags") or {}),
        env=D_(d.get("env"), "env") or {},
    )


def _filter(value: Any, name: str) -> RunFilter:
    d = _is(dict)(value, name)
    return RunFilter(
        experiment=S_(d.get("experiment"), "experiment"),
        status=S_(d.get("status"), "status"),
        name=S_(d.get("name"), "name"),
        parent_id=S_(d.get("parent_id"), "parent_id"),
        created_by=S_(d.get("created_by"), "created_by"),
        tags=_strmap(d.get("tags"), "tags"),
        where=S_(d.get("where"), "where"),
        order_by=S_(d.get("order_by"), "order_by"),
        limit=N_(d.get("limit"), "limit"),
        offset=N(d.get("offset", 0), "offset"),
        include_archived=B(d.get("include_archived", False), "include_archived"),
    )


def _dataset(value: Any, name: str) -> Dataset:
    return Dataset.from_dict(_is(dict)(value, name))


def _ids(value: Any, name: str) -> list[str]:
    return [S(v, name) for v in _is(list)(value, name)]


#: method -> {argument: checker}; "who" arguments are filled in from the authenticated caller.
METHODS: dict[str, dict[str, Callable[[Any, str], Any]]] = {
    "create_run": {"new": _new_run},
    "resume_run": {"run_id": S, "owner": _owner, "now": N},
    "end_run": {"run_id": S, "status": S, "end_time": N, "error": D_},
    "heartbeat": {"run_ids": _ids, "now": N},
    "log_batch": {"run_id": S, "params": _params, "metrics": _metrics, "tags": _strmap,
                  "overwrite": B, "batch_id": S_},
    "delete_tag": {"run_id": S, "key": S},
    "set_note": {"run_id": S, "note": S},
    "log_dataset": {"run_id": S, "dataset": _dataset},
    "create_experiment": {"name": S, "description": S_, "owner": S_, "now": N},
    "get_run": {"run_id": S},
    "find_runs": {"flt": _filter},
    "metric_history": {"run_id": S, "key": S, "after_step": N_},
    "metric_summaries": {"run_id": S},
    "experiments": {},
    "best_run": {"flt": _filter, "key": S, "mode": S},
    "delete_run": {"run_id": S},
    "delete_experiment": {"name": S},
    "archive_runs": {"archived": B, "experiment": S_, "started_before": N_},
    "get_artifact": {"run_id": S, "name": S},
    "list_artifacts": {"run_id": S},
    "register_model": {"name": S, "run_id": S, "artifact": S, "stage": S, "description": S_,
                       "who": S_, "now": N},
    "promote": {"name": S, "version": N, "stage": S, "who": S_, "now": N},
    "set_alias": {"name": S, "alias": S, "version": N, "who": S_, "now": N},
    "delete_alias": {"name": S, "alias": S, "who": S_, "now": N},
    "set_model_description": {"name": S, "description": S_, "version": N_, "now": N},
    "get_model_version": {"name": S, "version": N_, "stage": S_, "alias": S_},
    "get_model": {"name": S},
    "models": {},
    "model_versions": {"name": S},
    "model_history": {"name": S},
}  # fmt: skip
_POSITIONAL = {"create_run", "get_run", "find_runs", "metric_summaries", "list_artifacts", "get_model",
               "model_versions", "model_history", "delete_run", "delete_experiment"}  # fmt: skip
_WHO = {"register_model", "promote", "set_alias", "delete_alias"}
_READS = {"get_run", "find_runs", "metric_history", "metric_summaries", "experiments", "best_run",
          "get_artifact", "list_artifacts", "get_model_version", "get_model", "models",
          "model_versions", "model_history"}  # fmt: skip


def _plain(value: Any) -> Any:
    if hasattr(value, "to_dict"):
        return value.to_dict()
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _reply(value: Any, status: int = 200) -> Response:
    body = json.dumps(value, ensure_ascii=False, default=str).encode("utf-8")  # NaN tokens kept
    return Response(body, status=status, content_type="application/json")


def _body(req: Request) -> dict[str, Any]:
    body = req.json()  # 415 unless JSON, 413 over 16 MiB; NaN / Infinity tokens are read
    args = body.get("args", {})
    if set(body) - {"args"} or not isinstance(args, dict):
        raise InvalidValueError('the body must be {"args": {...}}')
    return args


def is_read(path: str) -> bool:
    """Whether a ``/api/v1/store/...`` call only reads (a ``read`` token may make it)."""
    return path[len(PREFIX) :] in _READS


def handle(store: Any, req: Request, who: str | None, status_of: Callable[[Any], int]) -> Response:
    """Answer one ``/api/v1/store/...`` request against ``store`` (see the module docstring)."""
    try:
        method = req.path[len(PREFIX) :]
        if method.startswith("artifact/"):
            return _put_artifact(store, req, method[len("artifact/") :])
        spec = METHODS.get(method)
        if spec is None:
            raise HttpError(404, f"no store method {method!r}; known: {', '.join(sorted(METHODS))}",
                            type="NotFoundError")  # fmt: skip
        if req.method != "POST":
            raise HttpError(405, f"call {PREFIX}{method} with POST")
        raw = _body(req)
        extra = sorted(set(raw) - set(spec))
        if extra:
            raise InvalidValueError(f"{method} takes no argument(s) {', '.join(map(repr, extra))}")
        args = {name: check(raw.get(name), name) for name, check in spec.items() if name in raw}
        if method == "create_run" and who is not None:
            args["new"] = replace(args["new"], created_by=who)
        if method in _WHO and who is not None:
            args["who"] = who
        if method == "log_batch":
            args.setdefault("metrics", ())
            if not args.get("batch_id"):
                args.pop("batch_id", None)
        fn = getattr(store, method)
        result = fn(*args.values()) if method in _POSITIONAL else fn(**args)
        return _reply({"result": _plain(result)})
    except ChachamlError as exc:
        return _reply({"error": error_to_dict(exc)}, status_of(exc))
    except OverflowError as exc:
        return _reply(
            {"error": {"type": "InvalidValueError", "message": f"a number is too large: {exc}"}}, 400
        )


def _put_artifact(store: Any, req: Request, rest: str) -> Response:
    if req.method != "PUT":
        raise HttpError(405, "upload an artifact with PUT")
    run_id, _, name = rest.partition("/")
    name = check_artifact_name(name)
    created = req.integer("created", None, low=0)
    art = store.log_artifact(
        run_id,
        name,
        req.stream(),
        format=req.text("format") or "bytes",
        content_type=req.text("content_type") or "application/octet-stream",
        created=created if created is not None else 0,
        overwrite=req.boolean("overwrite"),
    )
    return _reply({"result": art.to_dict()}, 201)
