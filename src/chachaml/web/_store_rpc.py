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
bytes go through ``PUT /api/v1/store/artifact/{run_id}/{name}`` (streamed raw body; with
``restore=true`` and the source's ``sha256``/``size``/``created`` in the query it is
``restore_artifact``) and the plain API's ``GET /api/v1/runs/{id}/artifacts/{name}``.

The copy primitives keep what they are given (``created_by`` of a run, ``who`` of a registry
event): they copy records another store made, so they are writes a ``read`` token cannot make.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator
from dataclasses import asdict, replace
from typing import Any

from chachaml._process import Owner
from chachaml._values import check_key, decode_param
from chachaml.automation_entities import Alert, Pipeline
from chachaml.client import Client
from chachaml.entities import Artifact, Dataset, Metric, Model, ModelEvent, ModelVersion, Run
from chachaml.errors import ChachamlError, InvalidValueError, error_to_dict
from chachaml.rules import check_artifact_name, check_tags
from chachaml.store.base import AlertPoint, NewRun, RunFilter
from chachaml.web._http import HttpError, Request, Response
from chachaml.web._writes import _check_alerts

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


def F(value: Any, name: str) -> float:
    """A number (int or float, never a bool), as a float."""
    return float(_is((int, float))(value, name))


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


def _ids_(value: Any, name: str) -> list[str] | None:
    return None if value is None else _ids(value, name)


def _list_of(check: Callable[[Any, str], Any]) -> Callable[[Any, str], list[Any]]:
    def checked(value: Any, name: str) -> list[Any]:
        return [check(v, f"{name}[{i}]") for i, v in enumerate(_is(list)(value, name))]

    return checked


def _record(cls: Any, fields: dict[str, Callable[[Any, str], Any]]) -> Callable[[Any, str], Any]:
    """A checker reading an entity from its ``to_dict()``: each listed field type-checked (a
    missing one is None, so a required one is refused), the rest left to ``from_dict``. A
    nested entity's checker gives it back as a dict (``_checked``): ``from_dict`` builds it."""

    def check(value: Any, name: str) -> Any:
        d = dict(_is(dict)(value, name))
        for field, check_field in fields.items():
            d[field] = check_field(d.get(field), f"{name}.{field}")
        return cls.from_dict(d)

    return check


def _checked(check: Callable[[Any, str], Any]) -> Callable[[Any, str], Any]:
    return lambda value, name: check(value, name).to_dict()


def _intmap(value: Any, name: str) -> dict[str, int]:
    return {S(k, f"{name} key"): N(v, f"{name}[{k!r}]") for k, v in (D_(value, name) or {}).items()}


def _points(value: Any, name: str) -> list[Metric]:
    """``[[key, value, step, ts], ...]`` of ``restore_run``: as ``_metrics``, every step given."""
    out = []
    for key, v, step, ts in _metrics(value, name):
        if step is None:
            raise InvalidValueError(f"{name}: a copied metric point needs its step ({key!r})")
        out.append(Metric(key, v, step, ts))
    return out


_run = _record(Run, {
    "id": S, "experiment": S, "status": S, "start_time": N, "name": S_, "end_time": N_,
    "parent_id": S_, "created_by": S_, "params": D_, "tags": _strmap, "note": S_,
    "error": _strmap, "env": D_, "datasets": _list_of(_checked(_dataset)),
    "archived": lambda v, n: False if v is None else B(v, n),
})  # fmt: skip
_version = _record(ModelVersion, {
    "model": S, "version": N, "run_id": S, "artifact": S, "stage": S, "description": S_,
    "created": N_, "created_by": S_, "aliases": lambda v, n: _ids(v or [], n),
})  # fmt: skip
_model = _record(Model, {
    "name": S, "description": S_, "created": N_, "updated": N_, "latest_version": N_,
    "production_version": N_, "aliases": _intmap, "versions": _list_of(_checked(_version)),
})  # fmt: skip
_event = _record(ModelEvent, {
    "model": S, "version": N_, "kind": S, "from_value": S_, "to_value": S_, "who": S_, "at": N,
    "alias": S_,
})  # fmt: skip
_alert = _record(Alert, {
    "name": S, "metric": S, "op": S, "threshold": F, "experiment": S_, "webhook": S_,
    "created": N, "updated": N, "version": N,
})  # fmt: skip


def _step(value: Any, name: str) -> dict[str, Any]:
    d = _is(dict)(value, name)
    return {"name": S(d.get("name"), f"{name}.name"), "status": S(d.get("status"), f"{name}.status"),
            "run_id": S_(d.get("run_id"), f"{name}.run_id")}  # fmt: skip


_pipeline = _record(Pipeline, {
    "id": S, "name": S, "status": S, "steps": _list_of(_step), "created": N, "updated": N,
})  # fmt: skip


def _point(value: Any, name: str) -> AlertPoint:
    d = _is(dict)(value, name)
    extra = sorted(set(d) - {"run_id", "experiment", "step", "value", "timestamp"})
    if extra:
        raise InvalidValueError(f"{name} has unknown field(s) {extra}")
    return AlertPoint(run_id=S(d.get("run_id"), f"{name}.run_id"),
                      experiment=S(d.get("experiment"), f"{name}.experiment"),
                      step=N(d.get("step"), f"{name}.step"),
                      value=F(d.get("value"), f"{name}.value"),
                      timestamp=N(d.get("timestamp"), f"{name}.timestamp"))  # fmt: skip


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
    "metric_window": {"run_id": S, "key": S, "after_step": N_, "before_step": N_, "max_points": N_},
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
    "restore_run": {"run": _run, "metrics": _points},
    "restore_model": {"model": _model, "history": _list_of(_event)},
    "put_alert": {"name": S, "metric": S, "op": S, "threshold": F, "experiment": S_, "webhook": S_,
                  "now": N},
    "get_alert": {"name": S},
    "alerts": {},
    "delete_alert": {"name": S},
    "alert_candidates": {"alert": _alert, "run_ids": _ids_},
    "add_alert_events": {"alert": _alert, "points": _list_of(_point), "now": N},
    "set_alert_delivery": {"event_id": N, "delivery": S, "attempts": N, "error": S_},
    "alert_history": {"name": S},
    "put_pipeline": {"pipeline": _pipeline},
    "get_pipeline": {"pipeline_id": S},
    "pipelines": {"name": S_, "limit": N_},
}  # fmt: skip
#: the methods added with the automation and copy roles: every argument must be sent (a missing
#: one is checked as None, so only an optional one may be left out).
_ALL_ARGS = {"restore_run", "restore_model", "put_alert", "get_alert", "delete_alert",
             "alert_candidates", "add_alert_events", "set_alert_delivery", "alert_history",
             "put_pipeline", "get_pipeline", "pipelines"}  # fmt: skip
_POSITIONAL = {"create_run", "get_run", "find_runs", "metric_summaries", "list_artifacts", "get_model",
               "model_versions", "model_history", "delete_run", "delete_experiment", "restore_run",
               "restore_model", "alert_candidates", "add_alert_events", "set_alert_delivery",
               "put_pipeline", "get_pipeline"}  # fmt: skip
_WHO = {"register_model", "promote", "set_alias", "delete_alias"}
_READS = {"get_run", "find_runs", "metric_history", "metric_window", "metric_summaries", "experiments",
          "best_run", "get_artifact", "list_artifacts", "get_model_version", "get_model", "models",
          "model_versions", "model_history", "get_alert", "alerts", "alert_candidates",
          "alert_history", "get_pipeline", "pipelines"}  # fmt: skip


def _plain(value: Any) -> Any:
    if hasattr(value, "to_dict"):
        return value.to_dict()
    if isinstance(value, AlertPoint):  # a plain record of the contract, without to_dict
        return asdict(value)
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


def handle(
    store: Any, req: Request, who: str | None, status_of: Callable[[Any], int], *, check_alerts: bool = True
) -> Response:
    """Answer one ``/api/v1/store/...`` request against ``store`` (see the module docstring).

    With ``check_alerts``, a ``log_batch`` that brings metric points is followed by a check of the
    alerts for its run, as the public batch endpoint does (SPEC 11).
    """
    try:
        method = req.path[len(PREFIX) :]
        if method.startswith("artifact/"):
            return _put_artifact(store, req, method[len("artifact/") :])
        if method == "restore_run" and req.method == "PUT":
            return _restore_streamed(store, req)
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
        args = {name: check(raw.get(name), name) for name, check in spec.items()
                if name in raw or method in _ALL_ARGS}  # fmt: skip
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
        if check_alerts and method == "log_batch" and args["metrics"] and result is not False:
            # SPEC 11: the server checks alerts as points arrive, from remote stores too
            # (a resent batch, result False, was checked when it was first applied).
            _check_alerts(Client(store), args["run_id"], list(args["metrics"]))
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
    if req.boolean("restore"):  # a copy (chachaml migrate): the metadata as the source had it
        sha256 = req.text("sha256")
        size = req.integer("size", None, low=0)
        if sha256 is None or size is None or created is None:
            raise InvalidValueError("restoring an artifact needs sha256=, size= and created= in the query")
        given = Artifact(run_id, name, size, sha256, req.text("content_type") or "application/octet-stream",
                         req.text("format") or "bytes", created)  # fmt: skip
        return _reply({"result": store.restore_artifact(given, req.stream()).to_dict()}, 201)
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


_LINE = 16 * 1024 * 1024  # the longest line of a streamed restore_run body (a cut one is not JSON)


def _restore_streamed(store: Any, req: Request) -> Response:
    """``PUT /api/v1/store/restore_run``: a copied run whose points are streamed, so a run of any
    length fits (the JSON endpoint's body is limited to 16 MiB, about 400,000 points).

    The body is JSON lines: first ``{"run": {...}}``, then each line a list of
    ``[key, value, step, timestamp]`` points. The points go to ``store.restore_run`` as they are
    read (never the whole run in memory), which writes the run in ONE transaction: a body that is
    cut short or holds a bad line leaves the run absent, and a run already there answers false.
    """
    body = req.stream()
    try:
        try:
            head = json.loads(body.readline(_LINE))
        except ValueError:
            head = None
        if not isinstance(head, dict) or set(head) != {"run"}:
            raise InvalidValueError('the first line of a restore_run body must be {"run": {...}}')
        run = _run(head["run"], "run")

        def points() -> Iterator[Metric]:
            n = 1
            while line := body.readline(_LINE):
                n += 1
                if not line.strip():
                    continue
                try:
                    chunk = json.loads(line)
                except ValueError:
                    raise InvalidValueError(
                        f"line {n} of the restore_run body is not JSON; send one list of points a line"
                    ) from None
                yield from _points(chunk, f"line {n}")

        return _reply({"result": store.restore_run(run, points())})
    finally:
        with contextlib.suppress(ChachamlError, OSError):  # a run already there reads no points
            while body.read(1 << 20):
                pass
