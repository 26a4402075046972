"""The ``chachaml`` command line (SPEC 9.1): look at runs and tidy a store from a shell.

    chachaml runs --where "metrics.acc > 0.9" --order-by "metrics.acc desc"
    chachaml show 3f2a9c1b
    chachaml ui

Every command takes ``--store TARGET`` (else ``$CHACHAML_STORE``, else ``./chachaml.db``) and goes
through a ``chachaml.client.Client`` only. A command that only reads never creates a database.
Exit codes: 0 success, 1 a ``ChachamlError`` (its message on stderr, no traceback), 2 a usage
error. ``--json`` prints one JSON document and nothing else on stdout.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

from chachaml import _display
from chachaml._cli_text import cell, short_ids, table
from chachaml.errors import ChachamlError, InvalidValueError, NotFoundError

__all__ = ["main"]

_STATUSES = ("running", "completed", "failed", "killed")
_STAGES = ("none", "staging", "production", "archived")


def _target(args: argparse.Namespace) -> str:
    return getattr(args, "store", None) or os.environ.get("CHACHAML_STORE") or "chachaml.db"


def _client(args: argparse.Namespace, *, must_exist: bool = True) -> Any:
    from chachaml.client import Client
    from chachaml.store import store_path

    target = _target(args)
    path = store_path(target)
    if must_exist and path is not None and not os.path.exists(path):
        raise NotFoundError(
            f"no chachaml store at {path}; pass --store PATH (or set CHACHAML_STORE) "
            "to name the database your runs are in"
        )
    return Client(target)


def _print_json(value: Any) -> None:
    from chachaml.web._http import dumps

    sys.stdout.write(dumps(value).decode("utf-8") + "\n")


# -- reads ------------------------------------------------------------------------------------
def _run_filters(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "experiment": args.experiment,
        "status": args.status,
        "name": args.name,
        "where": args.where,
        "order_by": args.order_by,
        "limit": args.limit,
        "include_archived": args.all,
    }


def cmd_runs(args: argparse.Namespace) -> int:
    """``chachaml runs``: the runs table, or ``--json`` / ``--csv``."""
    with _client(args) as c:
        found = c.runs(**_run_filters(args))
    if args.json:
        _print_json([r.to_dict() for r in found])
        return 0
    if args.csv:
        from chachaml.web.api import records_csv

        sys.stdout.write(records_csv(found.to_records()))
        return 0
    if not found:
        print("no runs match", file=sys.stderr)
        return 0
    ids = short_ids(r.id for r in found)
    metrics = list(dict.fromkeys(k for r in found for k in sorted(r.metrics)))[:3]
    headers = ["id", "name", "experiment", "status", "started", "duration", *metrics]
    rows = [
        [
            ids[r.id],
            r.name,
            r.experiment,
            r.status + ("*" if r.archived else ""),
            _when(r.start_time),
            _display.fmt_duration(r.duration),
            *(r.metrics.get(k) for k in metrics),
        ]
        for r in found
    ]
    print(table(headers, rows, shrink=(1, 2), keep=6), flush=True)
    print(f"{len(found)} run{'s' if len(found) != 1 else ''}", file=sys.stderr)
    return 0


def show_object(c: Any, ref: str) -> dict[str, Any]:
    """What ``show --json`` prints: the run object, its artifacts, children and metric summaries."""
    run = c.get_run(ref)
    body: dict[str, Any] = run.to_dict()
    body["artifacts"] = [a.to_dict() for a in c.list_artifacts(run.id)]
    body["children"] = [r.id for r in c.runs(parent_id=run.id, include_archived=True)]
    body["metric_summaries"] = c.metric_summaries(run.id)
    return body


def _when(ms: int | None) -> str:
    return _display.fmt_time(ms)[:16]  # minutes are enough in a table


def _section(title: str, rows: Sequence[Sequence[Any]], headers: Sequence[str]) -> None:
    if rows:
        print(f"\n{title} ({len(rows)})")
        print(table(headers, rows, shrink=(len(headers) - 1, 0)))


def cmd_show(args: argparse.Namespace) -> int:
    """``chachaml show RUN``: everything about one run."""
    with _client(args) as c:
        body = show_object(c, args.run)
    if args.json:
        _print_json(body)
        return 0
    head = [
        ("run", body["id"]),
        ("name", body["name"]),
        ("experiment", body["experiment"]),
        ("status", body["status"] + (" (archived)" if body["archived"] else "")),
        ("started", _display.fmt_time(body["start_time"])),
        ("ended", _display.fmt_time(body["end_time"])),
        ("duration", _display.fmt_duration(body["duration"])),
        ("parent", body["parent_id"]),
        ("created by", body["created_by"]),
    ]
    for k, v in head:
        if v not in (None, ""):
            print(f"{k:<11} {cell(v)}")
    if body["error"]:
        print(f"{'error':<11} {cell(body['error'].get('type'))}: {cell(body['error'].get('message'))}")
    _section("params", [[k, v] for k, v in sorted(body["params"].items())], ["key", "value"])
    sums = body["metric_summaries"]
    _section(
        "metrics",
        [[k, s["last"], s["min"], s["max"], s["count"], s["last_step"]] for k, s in sums.items()],
        ["key", "last", "min", "max", "count", "step"],
    )
    _section("tags", [[k, v] for k, v in sorted(body["tags"].items())], ["key", "value"])
    if body["note"]:
        print("\nnote")
        for line in body["note"].splitlines():
            print("  " + cell(line))
    _section(
        "datasets",
        [[d["name"], d["role"], d["n_rows"], d["n_cols"], d["source"]] for d in body["datasets"]],
        ["name", "role", "rows", "cols", "source"],
    )
    _section(
        "artifacts",
        [[a["name"], a["size"], a["format"], a["content_type"]] for a in body["artifacts"]],
        ["name", "bytes", "format", "type"],
    )
    if body["children"]:
        print(f"\nchildren ({len(body['children'])})")
        for cid in body["children"]:
            print("  " + cid)
    if body["error"] and body["error"].get("traceback"):
        print("\ntraceback")
        print(body["error"]["traceback"].rstrip())
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    """``chachaml compare RUN RUN...``: params and metrics side by side."""
    with _client(args) as c:
        cmp = c.compare_runs(args.runs)
    if args.json:
        _print_json(cmp.to_dict())
        return 0
    ids = short_ids(cmp.run_ids)
    rows: list[list[Any]] = []
    for section, split in (("params", cmp.params), ("metrics", cmp.metrics)):
        for kind, values in (("differ", split.differ), ("partial", split.partial)):
            rows.extend([kind, f"{section}.{k}", *v] for k, v in values.items())
        rows.extend(["same", f"{section}.{k}", *([v] * len(ids))] for k, v in split.same.items())
    if any(cmp.names):
        rows.insert(0, ["", "name", *cmp.names])
    print(table(["", "key", *ids.values()], rows, shrink=(1,)))
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    """``chachaml export``: ``export_runs`` as CSV or JSON, to stdout or ``-o PATH``."""
    with _client(args) as c:
        records = c.export_runs(**_run_filters(args))
    if args.format == "json":
        from chachaml.web._http import dumps

        text = dumps(records).decode("utf-8") + "\n"
    else:
        from chachaml.web.api import records_csv

        text = records_csv(records)
    if args.output in (None, "-"):
        sys.stdout.write(text)
    else:
        try:
            with open(args.output, "w", encoding="utf-8", newline="") as fh:
                fh.write(text)
        except OSError as exc:
            raise InvalidValueError(f"cannot write {args.output!r}: {exc.strerror or exc}") from exc
        print(f"wrote {len(records)} runs to {args.output}", file=sys.stderr)
    return 0


def cmd_experiments(args: argparse.Namespace) -> int:
    """``chachaml experiments``: the experiments with their run counts."""
    with _client(args) as c:
        exps = c.experiments()
    if args.json:
        _print_json([e.to_dict() for e in exps])
        return 0
    rows = [[e.name, e.run_count, e.owner, _when(e.created), e.description] for e in exps]
    print(table(["name", "runs", "owner", "created", "description"], rows, shrink=(4, 0, 2)))
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    """``chachaml models [NAME]``: the models, or one model's versions, stages and aliases."""
    with _client(args) as c:
        if args.name is None:
            models = c.models()
            if args.json:
                _print_json([m.to_dict() for m in models])
                return 0
            rows = [
                [
                    m.name,
                    m.latest_version,
                    m.production_version,
                    ", ".join(f"{a}=v{v}" for a, v in sorted(m.aliases.items())),
                    _when(m.updated),
                ]
                for m in models
            ]
            print(table(["name", "versions", "production", "aliases", "updated"], rows, shrink=(3, 0)))
            return 0
        model = c.model(args.name)
        versions = c.model_versions(args.name)
        history = c.model_history(args.name)
    if args.json:
        body = model.to_dict()
        body["versions"] = [v.to_dict() for v in versions]
        body["history"] = [e.to_dict() for e in history]
        _print_json(body)
        return 0
    print(f"model {model.name}" + (f": {cell(model.description)}" if model.description else ""))
    ids = short_ids(v.run_id for v in versions)
    rows = [
        [
            f"v{v.version}",
            v.stage,
            ", ".join(v.aliases),
            ids.get(v.run_id),
            v.artifact,
            _display.fmt_time(v.created)[:16],
        ]
        for v in versions
    ]
    print(table(["version", "stage", "aliases", "run", "artifact", "created"], rows, shrink=(4, 2)))
    return 0


def _pipeline_progress(p: Any) -> tuple[str, str]:
    """``"done/total"`` and the step to look at: the failed or killed one, else the running one."""
    done = sum(s.status == "completed" for s in p.steps)
    current = next((s for s in p.steps if s.status in ("failed", "killed")), None)
    current = current or next((s for s in p.steps if s.status == "running"), None)
    return f"{done}/{len(p.steps)}", "" if current is None else f"{current.name} ({current.status})"


def cmd_pipelines(args: argparse.Namespace) -> int:
    """``chachaml pipelines [ID]``: the pipelines, newest first, or one pipeline's steps."""
    with _client(args) as c:
        if args.pipeline is None:
            found = c.pipelines(name=args.name, limit=args.limit)
        else:
            one = c.get_pipeline(args.pipeline)
    if args.pipeline is None:
        if args.json:
            _print_json([p.to_dict() for p in found])
            return 0
        ids = short_ids(p.id for p in found)
        rows = [[ids.get(p.id), p.name, p.status, *_pipeline_progress(p), _when(p.created)] for p in found]
        print(table(["id", "name", "status", "steps", "current", "started"], rows, shrink=(1, 4)))
        return 0
    if args.json:
        _print_json(one.to_dict())
        return 0
    done, _ = _pipeline_progress(one)
    started = _when(one.created)
    print(f"pipeline {cell(one.name)} ({one.id}): {one.status}, {done} steps done, started {started}")
    rows = [[i, s.name, s.status, s.run_id or ""] for i, s in enumerate(one.steps, 1)]
    print(table(["#", "step", "status", "run"], rows, shrink=(1,)))
    return 0


# -- writes -----------------------------------------------------------------------------------
def _version(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise InvalidValueError(f"VERSION must be a number such as 1 or 2, got {text!r}") from None


def cmd_promote(args: argparse.Namespace) -> int:
    """``chachaml promote NAME VERSION STAGE``."""
    with _client(args) as c:
        mv = c.promote(args.name, _version(args.version), args.stage)
    if args.json:
        _print_json(mv.to_dict())
    else:
        print(f"{mv.model} v{mv.version} is now {mv.stage}")
    return 0


def cmd_alias(args: argparse.Namespace) -> int:
    """``chachaml alias NAME ALIAS VERSION``."""
    with _client(args) as c:
        mv = c.set_alias(args.name, args.alias, _version(args.version))
    if args.json:
        _print_json(mv.to_dict())
    else:
        print(f"{mv.model}@{args.alias} -> v{mv.version}")
    return 0


def _confirm(question: str) -> bool:
    try:
        answer = input(f"{question} [y/N] ")
    except EOFError:
        return False
    return answer.strip().lower() in ("y", "yes")


def cmd_delete(args: argparse.Namespace) -> int:
    """``chachaml delete RUN...``: asks on a terminal, refuses without ``--yes`` otherwise."""
    with _client(args) as c:
        runs = [c.get_run(ref) for ref in args.runs]  # every id resolves before anything is deleted
        if not args.yes:
            if not sys.stdin.isatty():
                raise InvalidValueError(
                    f"refusing to delete {len(runs)} run(s) without --yes: stdin is not a terminal"
                )
            names = ", ".join(r.id[:8] + (f" ({r.name})" if r.name else "") for r in runs)
            if not _confirm(f"delete {len(runs)} run(s) for good: {names}?"):
                print("nothing deleted", file=sys.stderr)
                return 1
        for r in runs:
            c.delete_run(r.id)
    if args.json:
        _print_json({"deleted": [r.id for r in runs]})
    else:
        print(f"deleted {len(runs)} run{'s' if len(runs) != 1 else ''}")
    return 0


def cmd_archive(args: argparse.Namespace) -> int:
    """``chachaml archive --older-than-days N``."""
    with _client(args) as c:
        from chachaml.web._writes import check_days

        n = c.archive_runs(older_than_days=check_days(args.older_than_days), experiment=args.experiment)
    if args.json:
        _print_json({"archived": n})
    else:
        print(f"archived {n} run{'s' if n != 1 else ''}")
    return 0


def cmd_gc(args: argparse.Namespace) -> int:
    """``chachaml gc [--dry-run]``: remove artifact files no run references."""
    with _client(args) as c:
        report = c.gc_artifacts(dry_run=args.dry_run)
    if args.json:
        _print_json(report.to_dict())
        return 0
    verb = "would remove" if report.dry_run else "removed"
    print(f"{verb} {len(report.removed)} file(s), {report.freed_bytes} bytes")
    for path in report.removed:
        print("  " + path)
    if report.missing:
        print(f"{len(report.missing)} artifact(s) have lost their file:")
        for path in report.missing:
            print("  " + path)
    return 0


def cmd_ui(args: argparse.Namespace) -> int:
    """``chachaml ui``: serve the web UI and the API until Ctrl-C."""
    from chachaml.web.app import create_app
    from chachaml.web.serve import serve

    client = _client(args, must_exist=False)
    try:
        app = create_app(client, read_only=args.read_only)
        serve(app, host=args.host, port=args.port, open_browser=not args.no_browser, verbose=args.verbose)
    except OSError as exc:  # the port is taken, the address is not this machine's, ...
        raise InvalidValueError(
            f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}; "
            "choose another --port (--port 0 takes a free one) or --host"
        ) from exc
    finally:
        client.close()
    return 0


def cmd_mcp(args: argparse.Namespace) -> int:
    """``chachaml mcp``: serve this store to an MCP-capable assistant over stdio until stdin closes."""
    from chachaml.mcp_server import serve

    serve(_target(args), allow_writes=args.allow_writes)  # a ChachamlError -> exit 1 in main()
    return 0


def cmd_migrate(args: argparse.Namespace) -> int:
    """``chachaml migrate SOURCE DEST``: see ``chachaml.migrate``."""
    from chachaml.migrate import run

    return run(args)


# -- parser -----------------------------------------------------------------------------------
def _parser() -> argparse.ArgumentParser:
    from chachaml import __version__

    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--store",
        metavar="TARGET",
        default=argparse.SUPPRESS,
        help="database file or URI (default: $CHACHAML_STORE, else ./chachaml.db)",
    )
    parser = argparse.ArgumentParser(
        prog="chachaml", description="Look at and tidy chachaml runs.", parents=[common]
    )
    parser.add_argument("--version", action="version", version=f"chachaml {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def add(name: str, fn: Callable[[argparse.Namespace], int], help: str, json: bool = True) -> Any:
        p = sub.add_parser(name, help=help, description=help, parents=[common])
        p.set_defaults(fn=fn)
        if json:
            p.add_argument("--json", action="store_true", help="print one JSON document")
        return p

    def filters(p: argparse.ArgumentParser) -> None:
        p.add_argument("--experiment", "-e", help="only runs of this experiment")
        p.add_argument("--status", choices=_STATUSES, help="only runs with this status")
        p.add_argument("--name", help="only runs with this name")
        p.add_argument("--where", "-w", help='a query, e.g. "params.lr < 0.1 and metrics.acc > 0.9"')
        p.add_argument("--order-by", help='e.g. "metrics.acc desc" (default: newest first)')
        p.add_argument("--limit", "-n", type=int, help="at most this many runs")
        p.add_argument("--all", action="store_true", help="include archived runs")

    p = add("runs", cmd_runs, "list runs, newest first", json=False)
    filters(p)
    fmt = p.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true", help="a JSON list of run objects")
    fmt.add_argument("--csv", action="store_true", help="flat records (params.<key>, metrics.<key>) as CSV")
    p = add("show", cmd_show, "everything about one run")
    p.add_argument("run", metavar="RUN", help="a run id or a unique prefix")
    p = add("compare", cmd_compare, "params and metrics of runs side by side")
    p.add_argument("runs", metavar="RUN", nargs="+", help="run ids or unique prefixes")
    p = add("export", cmd_export, "export runs as CSV or JSON", json=False)
    filters(p)
    p.add_argument("--format", choices=("csv", "json"), default="csv", help="csv (default) or json")
    p.add_argument("-o", "--output", metavar="PATH", help="write to this file (default: stdout)")
    add("experiments", cmd_experiments, "list experiments")
    p = add("models", cmd_models, "list registered models, or one model's versions")
    p.add_argument("name", metavar="NAME", nargs="?", help="a model name")
    p = add("pipelines", cmd_pipelines, "list pipelines, newest first, or one pipeline's steps")
    p.add_argument("pipeline", metavar="ID", nargs="?", help="a pipeline id or a unique prefix")
    p.add_argument("--name", help="only pipelines with this name")
    p.add_argument("--limit", "-n", type=int, help="at most this many pipelines")
    p = add("promote", cmd_promote, "move a model version to a stage")
    p.add_argument("name", metavar="NAME")
    p.add_argument("version", metavar="VERSION")
    p.add_argument("stage", metavar="STAGE", choices=_STAGES)
    p = add("alias", cmd_alias, "point a model alias at a version")
    p.add_argument("name", metavar="NAME")
    p.add_argument("alias", metavar="ALIAS")
    p.add_argument("version", metavar="VERSION")
    p = add("delete", cmd_delete, "delete runs for good (asks first unless --yes)")
    p.add_argument("runs", metavar="RUN", nargs="+")
    p.add_argument("--yes", "-y", action="store_true", help="do not ask")
    p = add("archive", cmd_archive, "hide old finished runs from default listings")
    p.add_argument("--older-than-days", type=float, required=True, metavar="N")
    p.add_argument("--experiment", "-e")
    p = add("gc", cmd_gc, "remove artifact files no run references")
    p.add_argument("--dry-run", action="store_true", help="only report what would be removed")
    p = add("ui", cmd_ui, "the local web UI over this store", json=False)
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=5050, help="port (default 5050; 0 takes a free one)")
    p.add_argument("--no-browser", action="store_true", help="do not open a browser")
    p.add_argument("--read-only", action="store_true", help="refuse every write")
    p.add_argument("--verbose", "-v", action="store_true", help="log every request")
    p = add("mcp", cmd_mcp, "serve this store to an MCP-capable assistant over stdio (read-only)", json=False)
    p.add_argument("--allow-writes", action="store_true", help="also expose set_tag and set_note")
    p = add("migrate", cmd_migrate, "copy runs, artifacts and models from one store to another", json=False)
    from chachaml.migrate import add_arguments as migrate_arguments

    migrate_arguments(p)
    from chachaml._cli_team import add_commands

    add_commands(add)  # server, sync
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code (the console script exits with it)."""
    args = _parser().parse_args(argv)
    try:
        code: int = args.fn(args)
        sys.stdout.flush()
    except ChachamlError as exc:
        print(f"chachaml: error: {exc}", file=sys.stderr)
        return 1
    except BrokenPipeError:  # `chachaml runs | head`: the reader left; not an error
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except KeyboardInterrupt:
        return 130
    return code


def _entry() -> None:
    """The console script: ``sys.exit(main())``."""
    sys.exit(main())
