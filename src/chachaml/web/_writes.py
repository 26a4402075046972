"""The write handlers of the JSON API (SPEC 9.2), enough for a remote store to do every write.

Each handler reads a JSON body (``Content-Type: application/json``; an artifact upload is a raw
body instead), checks every field before the first write, and then calls the ``Client``. A
batch (``POST /runs/{id}/batch``) may carry a client-chosen ``batch_id``: a repeat of an applied
batch is answered ``{"applied": false}`` and writes nothing, so a sender can retry after a lost
reply without duplicating points (docs/adr/0014-http-api-and-command-line.md).
"""

from __future__ import annotations

import collections
import math
import mimetypes
import sys
import threading
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from chachaml._values import check_key, metric_value, params_items, step_value, timestamp_value
from chachaml.errors import ChachamlError, InvalidValueError
from chachaml.rules import check_artifact_name, check_tags, started_before
from chachaml.web._http import Request, Response, json_response

__all__ = [
    "BatchLog",
    "archive",
    "create_experiment",
    "create_run",
    "delete_alias",
    "delete_experiment",
    "delete_run",
    "delete_tag",
    "end_run",
    "gc",
    "log_batch",
    "log_dataset",
    "promote",
    "put_artifact",
    "register_model",
    "set_alias",
    "set_model_description",
    "set_note",
    "set_tag",
]

MAX_BATCH_POINTS = 100_000  # metric points in one batch (the JSON body limit also applies)

_MISSING = object()


def _field(body: dict[str, Any], name: str, kinds: tuple[type, ...], default: Any = _MISSING) -> Any:
    """``body[name]`` if it has one of ``kinds`` (``None`` allowed when the default is None)."""
    if name not in body:
        if default is _MISSING:
            raise InvalidValueError(f"the request body needs the field {name!r}")
        return default
    value = body[name]
    if value is None and default is None:
        return None
    bad_bool = isinstance(value, bool) and bool not in kinds
    if bad_bool or not isinstance(value, kinds):
        names = " or ".join(k.__name__.replace("dict", "object").replace("str", "string") for k in kinds)
        raise InvalidValueError(f"field {name!r} must be {names}, got {value!r:.100}")
    if isinstance(value, int) and not isinstance(value, bool) and not -(2**63) <= value < 2**63:
        raise InvalidValueError(f"field {name!r} = {value} does not fit in 64 bits")
    if isinstance(value, float) and not math.isfinite(value):
        raise InvalidValueError(f"field {name!r} must be a finite number, got {value!r}")
    return value


def _only(body: dict[str, Any], allowed: set[str]) -> None:
    extra = sorted(set(body) - allowed)
    if extra:
        raise InvalidValueError(
            f"unknown field(s) {', '.join(map(repr, extra))}; "
            f"this endpoint takes {', '.join(sorted(allowed))}"
        )


_NUMBER_WORDS = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


def _number(value: Any, where: str) -> float:
    """A metric value from JSON: a number or one of the strings "NaN", "Infinity", "-Infinity"."""
    if isinstance(value, str) and value in _NUMBER_WORDS:
        return _NUMBER_WORDS[value]
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidValueError(f'{where} must be a number (or "NaN", "Infinity"), got {value!r:.100}')
    return metric_value(value, where)


class BatchLog:
    """Batch ids already applied, so a client can resend a batch safely (idempotent writes).

    Kept in memory, the newest ``LIMIT`` ids: a spool resends within seconds or minutes.
    One lock per id in flight makes a concurrent repeat wait for the first attempt's outcome.
    """

    LIMIT = 100_000

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._done: collections.OrderedDict[tuple[str, str], None] = collections.OrderedDict()
        self._busy: dict[tuple[str, str], threading.Lock] = {}

    @contextmanager
    def claim(self, key: tuple[str, str]) -> Iterator[Callable[[], bool]]:
        """Hold ``key``; yields ``fresh()`` (False if done before) and records success on exit."""
        with self._lock:
            lock = self._busy.setdefault(key, threading.Lock())
        with lock:
            yield lambda: key not in self._done
            with self._lock:
                self._done[key] = None
                self._done.move_to_end(key)
                while len(self._done) > self.LIMIT:
                    self._done.popitem(last=False)
        with self._lock:
            self._busy.pop(key, None)


# -- runs -------------------------------------------------------------------------------------
def create_run(app: Any, req: Request) -> Response:
    """``POST /runs``: start a run (``run_id`` resumes an existing one, as ``start_run``)."""
    body = req.json()
    _only(body, {"name", "experiment", "tags", "parent_id", "run_id"})
    run = app.client.start_run(
        _field(body, "name", (str,), None),
        experiment=_field(body, "experiment", (str,), None),
        tags=_tags(_field(body, "tags", (dict,), None)),
        parent_id=_field(body, "parent_id", (str,), None),
        run_id=_field(body, "run_id", (str,), None),
    )
    return json_response(run.to_dict(), 201)


def end_run(app: Any, req: Request) -> Response:
    """``POST /runs/{id}/end``: end a run with ``status`` (default ``completed``)."""
    body = req.json()
    _only(body, {"status"})
    status = _field(body, "status", (str,), "completed")
    c = app.client
    run = c.get_run(req.params["run_id"])
    c.end_run(run.id, status)
    return json_response(c.get_run(run.id).to_dict())


def delete_run(app: Any, req: Request) -> Response:
    """``DELETE /runs/{id}``: delete a run and all it logged, for good."""
    c = app.client
    run = c.get_run(req.params["run_id"])
    c.delete_run(run.id)
    return json_response({"deleted": run.id})


def _tags(tags: dict[str, Any] | None) -> dict[str, str] | None:
    if tags is None:
        return None
    out = {}
    for k, v in tags.items():
        if isinstance(v, dict | list):
            raise InvalidValueError(f"tag {k!r} must be a string (or a number), got {v!r:.100}")
        out[check_key(k, "tag key")] = v
    return out


def _points(raw: list[Any]) -> list[tuple[str, float, int | None, int | None]]:
    if len(raw) > MAX_BATCH_POINTS:
        raise InvalidValueError(f"a batch holds at most {MAX_BATCH_POINTS} points, got {len(raw)}")
    out = []
    for i, p in enumerate(raw):
        where = f"metrics[{i}]"
        if not isinstance(p, dict):
            raise InvalidValueError(f"{where} must be an object with key, value, step, timestamp")
        _only(p, {"key", "value", "step", "timestamp"})
        key = check_key(_field(p, "key", (str,)), "metric key")
        value = _number(p.get("value"), f"{where}.value")
        step = p.get("step")
        ts = p.get("timestamp")
        out.append(
            (
                key,
                value,
                None if step is None else step_value(step),
                None if ts is None else timestamp_value(ts),
            )
        )
    return out


def log_batch(app: Any, req: Request) -> Response:
    """``POST /runs/{id}/batch``: params, metric points and tags, all checked before any write."""
    body = req.json()
    _only(body, {"batch_id", "params", "metrics", "tags", "overwrite"})
    batch_id = _field(body, "batch_id", (str,), None)
    params = _field(body, "params", (dict,), None)
    points = _points(_field(body, "metrics", (list,), None) or [])
    tags = _tags(_field(body, "tags", (dict,), None))
    overwrite = _field(body, "overwrite", (bool,), False)
    if params:
        params_items(params)  # a bad key or value is a 400 before the run is even looked up
    c = app.client
    run = c.get_run(req.params["run_id"])
    if batch_id is None:
        _apply(c, run.id, params, points, tags, overwrite)
        _check_alerts(c, run.id, points)
        return json_response({"applied": True, "batch_id": None})
    if not 0 < len(batch_id) <= 200:
        raise InvalidValueError("batch_id must be 1 to 200 characters, e.g. a uuid4 hex")
    with app.batches.claim((run.id, batch_id)) as fresh:
        applied = fresh()
        if applied:
            _apply(c, run.id, params, points, tags, overwrite)
    if applied:
        _check_alerts(c, run.id, points)
    return json_response({"applied": applied, "batch_id": batch_id})


def _check_alerts(c: Any, run_id: str, points: list[Any]) -> None:
    """Fire the alerts the batch's points cross (SPEC 11: a server checks as points arrive).

    Only the batch's run is checked, and webhooks are not waited for (``wait=0``), so a batch
    costs a few queries more, never a webhook's latency. The points are stored by now: a failed
    check is logged here and the batch still succeeds, else a client would retry a stored batch.
    """
    if not points:
        return
    try:
        if c.store.alerts():  # none defined (the usual case): the batch costs one small read
            c.check_alerts(run_ids=[run_id], wait=0)
    except ChachamlError:
        traceback.print_exc(file=sys.stderr)


def _apply(
    c: Any,
    run_id: str,
    params: dict[str, Any] | None,
    points: list[tuple[str, float, int | None, int | None]],
    tags: dict[str, Any] | None,
    overwrite: bool,
) -> None:
    """One transaction for the whole batch: the Store contract's one write primitive.

    The values are normalised by the same helpers the ``Client`` uses (``params_items``,
    ``check_tags``), so a batch stores exactly what ``log_params`` / ``log_metric`` /
    ``set_tags`` would; unlike three calls, a conflict or a finished run writes none of it.
    """
    from chachaml import _process

    now = _process.now_ms()
    metrics = [(k, v, step, now if ts is None else ts) for k, v, step, ts in points]
    c.store.log_batch(
        run_id,
        params=params_items(params) if params else None,
        metrics=metrics,
        tags=check_tags(tags) if tags else None,
        overwrite=overwrite,
    )


def set_tag(app: Any, req: Request) -> Response:
    """``PUT /runs/{id}/tags/{key}`` with ``{"value": ...}`` (finished runs too)."""
    body = req.json()
    _only(body, {"value"})
    value = _field(body, "value", (str, int, float, bool))
    app.client.set_tag(req.params["key"], value, run=req.params["run_id"])
    return json_response({"key": req.params["key"], "value": str(value)})


def delete_tag(app: Any, req: Request) -> Response:
    """``DELETE /runs/{id}/tags/{key}`` (no error if the tag is not set)."""
    app.client.delete_tag(req.params["key"], run=req.params["run_id"])
    return json_response({"deleted": req.params["key"]})


def set_note(app: Any, req: Request) -> Response:
    """``PUT /runs/{id}/note`` with ``{"note": "markdown"}``."""
    body = req.json()
    _only(body, {"note"})
    note = _field(body, "note", (str,))
    app.client.set_note(note, run=req.params["run_id"])
    return json_response({"note": note})


def log_dataset(app: Any, req: Request) -> Response:
    """``POST /runs/{id}/datasets``: record a dataset the run used."""
    body = req.json()
    _only(body, {"name", "role", "source", "n_rows", "n_cols", "features", "digest"})
    features = _field(body, "features", (list,), None)
    if features is not None and not all(isinstance(f, str) for f in features):
        raise InvalidValueError("field 'features' must be a list of column names (strings)")
    ds = app.client.log_dataset(
        _field(body, "name", (str,)),
        run=req.params["run_id"],
        role=_field(body, "role", (str,), "train"),
        source=_field(body, "source", (str,), None),
        n_rows=_field(body, "n_rows", (int,), None),
        n_cols=_field(body, "n_cols", (int,), None),
        features=features,
        digest=_field(body, "digest", (str,), None),
    )
    return json_response(ds.to_dict(), 201)


def put_artifact(app: Any, req: Request) -> Response:
    """``PUT /runs/{id}/artifacts/{name}``: the raw body, streamed into the store.

    ``?format=`` labels how ``load_artifact`` decodes it (default ``bytes``); ``?overwrite=true``
    replaces other bytes. The body is never decoded here (a pickle is never unpickled).
    """
    from chachaml import _process
    from chachaml.formats import FORMATS

    name = check_artifact_name(req.params["name"])
    fmt = req.text("format") or "bytes"
    if fmt not in FORMATS:
        raise InvalidValueError(f"unknown artifact format {fmt!r}; use one of {', '.join(sorted(FORMATS))}")
    overwrite = req.boolean("overwrite")
    ctype = (req.header("Content-Type") or "").strip()
    base = ctype.split(";")[0].strip().lower()
    if base in ("application/x-www-form-urlencoded", "multipart/form-data", "text/plain"):
        from chachaml.web._http import HttpError

        # These three are what a form of another site can send without asking (CSRF).
        raise HttpError(
            415, f"an upload is a raw body; send Content-Type: application/octet-stream (got {base!r})"
        )
    if base in ("", "application/octet-stream"):
        guessed = mimetypes.guess_type(name, strict=False)[0]
        ctype = guessed or FORMATS[fmt].content_type
    c = app.client
    run = c.get_run(req.params["run_id"])
    stream = req.stream()
    # The Store contract's streamed write: the Client's log_artifact would re-encode the bytes.
    art = c.store.log_artifact(
        run.id, name, stream, format=fmt, content_type=ctype, created=_process.now_ms(), overwrite=overwrite
    )
    return json_response(art.to_dict(), 201)


# -- experiments and data lifecycle -------------------------------------------------------------
def create_experiment(app: Any, req: Request) -> Response:
    """``POST /experiments`` with ``name`` (and ``description``, ``owner``)."""
    body = req.json()
    _only(body, {"name", "description", "owner"})
    exp = app.client.create_experiment(
        _field(body, "name", (str,)),
        description=_field(body, "description", (str,), None),
        owner=_field(body, "owner", (str,), None),
    )
    return json_response(exp.to_dict(), 201)


def delete_experiment(app: Any, req: Request) -> Response:
    """``DELETE /experiments/{name}``: the experiment and all its runs."""
    n = app.client.delete_experiment(req.params["name"])
    return json_response({"deleted": req.params["name"], "runs": n})


def archive(app: Any, req: Request) -> Response:
    """``POST /archive`` with ``older_than_days``, ``experiment``, ``archived`` (false: unarchive)."""
    body = req.json()
    _only(body, {"older_than_days", "experiment", "archived"})
    days = check_days(_field(body, "older_than_days", (int, float), None))
    experiment = _field(body, "experiment", (str,), None)
    if _field(body, "archived", (bool,), True):
        n = app.client.archive_runs(older_than_days=days, experiment=experiment)
    else:
        n = app.client.unarchive_runs(older_than_days=days, experiment=experiment)
    return json_response({"changed": n})


def check_days(days: float | None) -> float | None:
    """``older_than_days`` if it is a sensible number of days (0 to ``MAX_DAYS``)."""
    started_before(days, 0)  # the same rule as the Python verbs: raises naming the range
    return days


def gc(app: Any, req: Request) -> Response:
    """``POST /gc`` with ``dry_run``: remove orphan artifact files."""
    body = req.json()
    _only(body, {"dry_run"})
    return json_response(app.client.gc_artifacts(dry_run=_field(body, "dry_run", (bool,), False)).to_dict())


# -- registry ---------------------------------------------------------------------------------
def _version(raw: str) -> int:
    try:
        v = int(raw, 10)
    except ValueError:
        raise InvalidValueError(f"model version {raw!r} is not a number such as 1 or 2") from None
    if v < 1:
        raise InvalidValueError(f"model version {v} must be 1 or more")
    return v


def register_model(app: Any, req: Request) -> Response:
    """``POST /models/{name}/versions`` with ``run_id``, ``artifact``, ``stage``, ``description``."""
    body = req.json()
    _only(body, {"run_id", "artifact", "stage", "description"})
    mv = app.client.register_model(
        req.params["name"],
        artifact=_field(body, "artifact", (str,)),
        run_id=_field(body, "run_id", (str,)),
        stage=_field(body, "stage", (str,), "none"),
        description=_field(body, "description", (str,), None),
    )
    return json_response(mv.to_dict(), 201)


def promote(app: Any, req: Request) -> Response:
    """``PUT /models/{name}/versions/{version}/stage`` with ``{"stage": ...}``."""
    body = req.json()
    _only(body, {"stage"})
    version = _version(req.params["version"])
    mv = app.client.promote(req.params["name"], version, _field(body, "stage", (str,)))
    return json_response(mv.to_dict())


def set_alias(app: Any, req: Request) -> Response:
    """``PUT /models/{name}/aliases/{alias}`` with ``{"version": n}``."""
    body = req.json()
    _only(body, {"version"})
    version = _field(body, "version", (int,))
    mv = app.client.set_alias(req.params["name"], req.params["alias"], version)
    return json_response(mv.to_dict())


def delete_alias(app: Any, req: Request) -> Response:
    """``DELETE /models/{name}/aliases/{alias}``."""
    deleted = app.client.delete_alias(req.params["name"], req.params["alias"])
    return json_response({"deleted": bool(deleted)})


def set_model_description(app: Any, req: Request) -> Response:
    """``PUT /models/{name}/description`` with ``{"description": "markdown" | null}``."""
    body = req.json()
    _only(body, {"description"})
    app.client.set_model_description(req.params["name"], _field(body, "description", (str,), None))
    return json_response(app.client.model(req.params["name"]).to_dict())
