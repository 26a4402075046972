"""The tools of ``chachaml mcp``: their JSON schemas, argument checks and handlers (ADR-0012).

Pure Python over a ``Client``, without the ``mcp`` package, so ``chachaml.mcp_server`` stays a
thin protocol layer. Each handler takes the checked arguments and returns ``(result, text)``:
``result`` is the structured JSON of the answer, ``text`` a short line or table for a person.
Tool and argument names are those of the Python verb each tool mirrors (SPEC 11).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from chachaml._downsample import MIN_POINTS
from chachaml.entities import Run
from chachaml.errors import InvalidValueError, NotFoundError
from chachaml.rules import STATUSES

if TYPE_CHECKING:
    from chachaml.client import Client

__all__ = ["TOOLS", "ToolSpec", "check_arguments", "jsonable"]

Handler = Callable[["Client", dict[str, Any]], tuple[dict[str, Any], str]]

LIST_LIMIT = 20  # default page of list_runs: about 20 kB of JSON, kind to a model's context
MAX_LIMIT = 1000  # as GET /api/v1/runs (SPEC 9.2)
HISTORY_POINTS = 200  # default max_points of metric_history
MAX_HISTORY_POINTS = 10_000
TEXT_ROWS = 20  # rows of the short text; the JSON has them all


@dataclass(frozen=True, slots=True)
class ToolSpec:
    """One MCP tool: its name, what it does, its argument schema, and the function behind it."""

    name: str
    title: str
    description: str
    properties: dict[str, dict[str, Any]]
    required: tuple[str, ...]
    handler: Handler
    write: bool = False

    @property
    def schema(self) -> dict[str, Any]:
        """The JSON schema of the arguments (an object; unknown arguments are refused)."""
        return {
            "type": "object",
            "properties": self.properties,
            "required": list(self.required),
            "additionalProperties": False,
        }


# -- arguments ------------------------------------------------------------------------------------
def _type_ok(value: Any, prop: Mapping[str, Any]) -> bool:
    kind = prop["type"]
    if kind == "string":
        return isinstance(value, str)
    if kind == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "array":
        return isinstance(value, list) and all(isinstance(v, str) for v in value)
    raise AssertionError(f"schema type {kind!r} is not handled")  # a mistake in TOOLS below


def check_arguments(spec: ToolSpec, arguments: Mapping[str, Any] | None) -> dict[str, Any]:
    """The arguments of one call, checked against ``spec``'s schema, with ``None`` for omissions.

    An optional argument given as JSON ``null`` counts as omitted (models often send nulls).

    Raises:
        InvalidValueError: an unknown or missing argument, a wrong type, a value out of range;
            the message names the argument and what it accepts.
    """
    given = dict(arguments or {})
    unknown = sorted(set(given) - set(spec.properties))
    if unknown:
        raise InvalidValueError(
            f"{spec.name} got unknown argument(s) {', '.join(unknown)}; "
            f"it takes: {', '.join(spec.properties) or 'no arguments'}"
        )
    out: dict[str, Any] = {}
    for name, prop in spec.properties.items():
        value = given.get(name)
        if value is None:
            if name in spec.required:
                raise InvalidValueError(f"{spec.name} needs the argument {name!r} ({prop['description']})")
            out[name] = prop.get("default")
            continue
        if prop["type"] == "integer" and isinstance(value, float) and value.is_integer():
            value = int(value)  # JSON Schema counts 10.0 as an integer; some clients send it so
        if not _type_ok(value, prop):
            raise InvalidValueError(
                f"{spec.name}: argument {name!r} must be {_kind(prop)}, got {json_repr(value)}"
            )
        if "enum" in prop and value not in prop["enum"]:
            raise InvalidValueError(
                f"{spec.name}: argument {name!r} must be one of {', '.join(prop['enum'])}, got {value!r}"
            )
        low, high = prop.get("minimum"), prop.get("maximum")
        if (low is not None and value < low) or (high is not None and value > high):
            raise InvalidValueError(
                f"{spec.name}: argument {name!r} must be between {low} and {high}, got {value}"
            )
        if isinstance(value, list) and len(value) < prop.get("minItems", 0):
            raise InvalidValueError(
                f"{spec.name}: argument {name!r} needs at least {prop['minItems']} item(s), got none"
            )
        strings = value if isinstance(value, list) else [value]
        if prop.get("items", prop).get("minLength") and "" in strings:
            raise InvalidValueError(f"{spec.name}: argument {name!r} must not be empty")
        out[name] = value
    return out


def _kind(prop: Mapping[str, Any]) -> str:
    return {"string": "a string", "integer": "an integer", "array": "a list of strings"}[prop["type"]]


def json_repr(value: Any) -> str:
    """A short JSON-ish rendering of a bad argument value, for error messages."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


# -- results --------------------------------------------------------------------------------------
def jsonable(value: Any) -> Any:
    """``value`` as strict JSON data: NaN and infinities become ``"NaN"``, ``"Infinity"``,
    ``"-Infinity"`` (as in the HTTP API, SPEC 9.2), tuples become lists, other objects ``str``."""
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "Infinity" if value > 0 else "-Infinity"
        return value
    if value is None or isinstance(value, str | int | bool):
        return value
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return str(value)


def _num(value: Any) -> str:
    return f"{value:.6g}" if isinstance(value, float) else str(value)


def _run_brief(run: Run) -> dict[str, Any]:
    """A run for lists: attributes, params, latest metrics and tags; no env, datasets or note
    (``get_run`` has everything), and an error without its traceback."""
    d = run.to_dict()
    for key in ("env", "datasets", "note", "best_value", "best_step"):
        d.pop(key)
    if run.error:
        d["error"] = {k: v for k, v in run.error.items() if k != "traceback"}
    return d


def _run_line(run: Run) -> str:
    metrics = " ".join(f"{k}={_num(v)}" for k, v in sorted(run.metrics.items())[:6])
    name = f" {run.name!r}" if run.name else ""
    return f"{run.id[:8]}{name} [{run.experiment}] {run.status} {metrics}".rstrip()


def _lines(header: str, rows: list[str], total: int | None = None) -> str:
    """``header`` then at most ``TEXT_ROWS`` rows; ``total`` counts rows not rendered."""
    total = len(rows) if total is None else total
    more = [f"... and {total - TEXT_ROWS} more (see the JSON)"] if total > TEXT_ROWS else []
    return "\n".join([header, *rows[:TEXT_ROWS], *more])


# -- handlers -------------------------------------------------------------------------------------
def _list_runs(c: Client, a: dict[str, Any]) -> tuple[dict[str, Any], str]:
    limit, offset = a["limit"], a["offset"]
    # One more than asked tells whether another page exists without counting every match.
    found = c.runs(
        experiment=a["experiment"],
        status=a["status"],
        where=a["where"],
        order_by=a["order_by"],
        limit=limit + 1,
        offset=offset,
    )
    page = list(found)[:limit]
    next_offset = offset + limit if len(found) > limit else None
    result = {"runs": [_run_brief(r) for r in page], "count": len(page), "next_offset": next_offset}
    more = f"; more from offset {next_offset}" if next_offset is not None else ""
    text = _lines(f"{len(page)} run(s){more}", [_run_line(r) for r in page[:TEXT_ROWS]], len(page))
    return result, text


def _get_run(c: Client, a: dict[str, Any]) -> tuple[dict[str, Any], str]:
    run = c.get_run(a["run_id"])
    result = run.to_dict()
    result["metric_summaries"] = c.metric_summaries(run.id)
    result["artifacts"] = [art.to_dict() for art in c.list_artifacts(run.id)]
    result["children"] = c.runs(parent_id=run.id, include_archived=True).ids
    params = ", ".join(f"{k}={_num(v)}" for k, v in sorted(run.params.items())[:10])
    text = _run_line(run) + (f"\nparams: {params}" if params else "")
    if run.error:
        text += f"\nerror: {run.error.get('type')}: {run.error.get('message')}"
    return result, text


def _compare_runs(c: Client, a: dict[str, Any]) -> tuple[dict[str, Any], str]:
    comparison = c.compare_runs(a["ids"])
    result = comparison.to_dict()
    differ = sorted(comparison.params.differ) + sorted(comparison.metrics.differ)
    text = f"{len(comparison.run_ids)} runs; differing: {', '.join(differ) or 'nothing'}"
    return result, text


def _best_run(c: Client, a: dict[str, Any]) -> tuple[dict[str, Any], str]:
    run = c.best_run(a["metric"], experiment=a["experiment"], mode=a["mode"], where=a["where"])
    if run is None:
        return (
            {"run": None, "best_value": None, "best_step": None},
            f"no run logged a number for {a['metric']!r}",
        )
    result = {"run": _run_brief(run), "best_value": run.best_value, "best_step": run.best_step}
    text = f"best {a['metric']} ({a['mode']}) = {_num(run.best_value)} at step {run.best_step}: "
    text += _run_line(run)
    return result, text


def _metric_history(c: Client, a: dict[str, Any]) -> tuple[dict[str, Any], str]:
    run = c.get_run(a["run_id"])
    if a["key"] not in run.metrics:
        raise NotFoundError(
            f"run {run.id[:8]} has no metric {a['key']!r}; its metrics are: "
            f"{', '.join(sorted(run.metrics)) or 'none yet'}"
        )
    kept, total = c.metric_window(run.id, a["key"], after_step=a["after_step"], max_points=a["max_points"])
    result = {
        "run_id": run.id,
        "key": a["key"],
        "total_points": total,
        "downsampled": len(kept) < total,
        "points": [{"step": p.step, "value": p.value, "timestamp": p.timestamp} for p in kept],
    }
    if not kept:
        return result, f"{a['key']} of {run.id[:8]}: no points after step {a['after_step']}"
    first, last = kept[0], kept[-1]  # the window's first and last points always survive
    shown = f", {len(kept)} shown" if len(kept) < total else ""
    text = (
        f"{a['key']} of {run.id[:8]}: {total} points{shown}; step {first.step}: "
        f"{_num(first.value)} -> step {last.step}: {_num(last.value)}"
    )
    return result, text


def _list_experiments(c: Client, a: dict[str, Any]) -> tuple[dict[str, Any], str]:
    found = c.experiments()
    rows = [f"{e.name}: {e.run_count} run(s)" for e in found]
    return {"experiments": [e.to_dict() for e in found]}, _lines(f"{len(found)} experiment(s)", rows)


def _list_models(c: Client, a: dict[str, Any]) -> tuple[dict[str, Any], str]:
    found = c.models()
    rows = [
        f"{m.name}: {m.latest_version or 0} version(s)"
        + (f", production v{m.production_version}" if m.production_version else "")
        for m in found
    ]
    return {"models": [m.to_dict() for m in found]}, _lines(f"{len(found)} model(s)", rows)


def _get_model(c: Client, a: dict[str, Any]) -> tuple[dict[str, Any], str]:
    model = c.model(a["name"])
    rows = [
        f"v{v.version} {v.stage} run {v.run_id[:8]} artifact {v.artifact!r}"
        + (f" aliases {', '.join(v.aliases)}" if v.aliases else "")
        for v in model.versions
    ]
    return model.to_dict(), _lines(f"model {model.name!r}: {len(model.versions)} version(s)", rows)


def _set_tag(c: Client, a: dict[str, Any]) -> tuple[dict[str, Any], str]:
    run = c.get_run(a["run_id"])
    c.set_tag(a["key"], a["value"], run=run.id)
    tags = c.get_run(run.id).tags
    return {"run_id": run.id, "tags": tags}, f"tag {a['key']}={a['value']!r} set on {run.id[:8]}"


def _set_note(c: Client, a: dict[str, Any]) -> tuple[dict[str, Any], str]:
    run = c.get_run(a["run_id"])
    c.set_note(a["note"], run=run.id)
    return {"run_id": run.id, "note": a["note"]}, f"note of {run.id[:8]} replaced ({len(a['note'])} chars)"


# -- the tools --------------------------------------------------------------------------------------
def _s(description: str, **extra: Any) -> dict[str, Any]:
    return {"type": "string", "description": description, **extra}


_RUN_ID = _s("a run id, or a unique prefix of one (like git), e.g. '3fa2b9c1'", minLength=1)
_WHERE = _s(
    "a query, e.g. \"params.lr < 0.01 and metrics.val_acc.max > 0.9 and tags.team = 'nlp'\" "
    "(fields: params.x, metrics.x with .min/.max/.last/.count, tags.x, status, name, "
    "experiment, start_time, duration; and/or/not, = != < <= > >= in like, is null)"
)
_EXPERIMENT = _s("only runs of this experiment")

TOOLS: tuple[ToolSpec, ...] = (
    ToolSpec(
        "list_runs",
        "List runs",
        "Runs matching the filters, newest first (or by order_by), with params, latest metrics "
        "and tags. Pages with limit/offset; next_offset is set when more runs match.",
        {
            "experiment": _EXPERIMENT,
            "status": _s("only runs with this status", enum=list(STATUSES)),
            "where": _WHERE,
            "order_by": _s("sort field and direction, e.g. 'metrics.val_acc desc' or 'start_time asc'"),
            "limit": {
                "type": "integer",
                "description": f"the most runs to return (default {LIST_LIMIT})",
                "minimum": 1,
                "maximum": MAX_LIMIT,
                "default": LIST_LIMIT,
            },
            "offset": {
                "type": "integer",
                "description": "skip this many matching runs (paging)",
                "minimum": 0,
                "default": 0,
            },
        },
        (),
        _list_runs,
    ),
    ToolSpec(
        "get_run",
        "Get one run",
        "Everything about one run: params, latest metrics with min/max/count per key, tags, note, "
        "datasets, environment, error, artifacts and child runs.",
        {"run_id": _RUN_ID},
        ("run_id",),
        _get_run,
    ),
    ToolSpec(
        "compare_runs",
        "Compare runs",
        "Params and latest metrics of several runs side by side: per key, the shared value "
        "(same), the differing values (differ) or values some runs lack (partial), aligned "
        "with run_ids.",
        {
            "ids": {
                "type": "array",
                "items": _RUN_ID,
                "minItems": 1,
                "description": "the runs (ids or unique prefixes), in column order",
            }
        },
        ("ids",),
        _compare_runs,
    ),
    ToolSpec(
        "best_run",
        "Best run by a metric",
        "The run holding the best value of a metric at any step, with best_value and best_step.",
        {
            "metric": _s("the metric key, e.g. 'val_acc'", minLength=1),
            "mode": _s("'max' (default) or 'min' (for a loss)", enum=["max", "min"], default="max"),
            "experiment": _EXPERIMENT,
            "where": _WHERE,
        },
        ("metric",),
        _best_run,
    ),
    ToolSpec(
        "metric_history",
        "Metric history",
        "The points (step, value, timestamp) of one metric of one run, in step order. A long "
        "history is downsampled to max_points keeping the first and last points and each "
        "bucket's min and max, so spikes and dips survive; total_points counts them all.",
        {
            "run_id": _RUN_ID,
            "key": _s("the metric key, e.g. 'loss'", minLength=1),
            "max_points": {
                "type": "integer",
                "description": f"the most points to return (default {HISTORY_POINTS})",
                "minimum": MIN_POINTS,
                "maximum": MAX_HISTORY_POINTS,
                "default": HISTORY_POINTS,
            },
            "after_step": {
                "type": "integer",
                "description": "only the points with a higher step (to follow a running run)",
            },
        },
        ("run_id", "key"),
        _metric_history,
    ),
    ToolSpec(
        "list_experiments",
        "List experiments",
        "Every experiment with its description, owner and run count.",
        {},
        (),
        _list_experiments,
    ),
    ToolSpec(
        "list_models",
        "List registered models",
        "Every registered model with its latest version, production version and aliases.",
        {},
        (),
        _list_models,
    ),
    ToolSpec(
        "get_model",
        "Get a registered model",
        "One registered model with all its versions (stage, aliases, source run, artifact).",
        {"name": _s("the model name", minLength=1)},
        ("name",),
        _get_model,
    ),
    ToolSpec(
        "set_tag",
        "Set a tag on a run",
        "Set (or replace) a string tag on a run, finished runs included.",
        {"run_id": _RUN_ID, "key": _s("the tag key", minLength=1), "value": _s("the tag value")},
        ("run_id", "key", "value"),
        _set_tag,
        write=True,
    ),
    ToolSpec(
        "set_note",
        "Set a run's note",
        "Replace the markdown note of a run, finished runs included.",
        {"run_id": _RUN_ID, "note": _s("the note, in markdown")},
        ("run_id", "note"),
        _set_note,
        write=True,
    ),
)
