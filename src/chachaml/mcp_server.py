"""``chachaml mcp``: the Model Context Protocol server over stdio (SPEC section 11, ADR-0012).

An MCP-capable assistant (Claude Desktop, Claude Code, VS Code, ...) starts this as a subprocess
and calls its tools to read runs, compare them and find the best one::

    chachaml mcp --store runs.db                 # read-only tools
    chachaml mcp --store runs.db --allow-writes  # also set_tag and set_note
    python -m chachaml.mcp_server --store runs.db

Every tool goes through one ``Client`` (never ContextVars or store internals). Each tool takes
the keyword names of the Python verb it mirrors, checks its arguments against its JSON schema
(``chachaml.mcp_tools``), and answers with structured JSON plus a short text. Any failure -- a
bad argument, an unknown run, a malformed ``where=`` -- is a tool error (``isError``), never a
crash: the server keeps serving. The official ``mcp`` SDK is imported lazily (extra ``mcp``).
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import sys
import traceback
from typing import TYPE_CHECKING, Any

from chachaml._optional import require
from chachaml.errors import ChachamlError, InvalidValueError, error_to_dict
from chachaml.mcp_tools import TOOLS, ToolSpec, check_arguments, jsonable

if TYPE_CHECKING:
    from mcp.server.lowlevel import Server
    from mcp.types import CallToolResult

    from chachaml.client import Client

__all__ = ["build_server", "main", "serve"]

SERVER_NAME = "chachaml"
INSTRUCTIONS = (
    "chachaml experiment tracking. Start with list_experiments or list_runs; run ids may be "
    "shortened to a unique prefix (like git). list_runs, best_run and get_run show params and "
    "latest metrics; metric_history returns a downsampled curve. where= takes chachaml's query "
    'language, e.g. "params.lr < 0.01 and metrics.val_acc.max > 0.9".'
)


def _call(spec: ToolSpec, client: Client, arguments: dict[str, Any] | None) -> tuple[dict[str, Any], str]:
    """Check the arguments and run one tool (in a worker thread: the store calls block)."""
    args = check_arguments(spec, arguments)
    result, text = spec.handler(client, args)
    return jsonable(result), text


def _error_result(exc: BaseException) -> CallToolResult:
    """A tool error: ``isError`` with the error's type and message, as text and as JSON.

    A ``ChachamlError`` travels in its wire form (``error_to_dict``: type, message and its wire
    attributes, e.g. a ``QueryError``'s position); anything else is a bug of ours, reported as
    one without its internals.
    """
    import mcp.types as types

    if isinstance(exc, ChachamlError):
        error = jsonable(error_to_dict(exc))
    else:
        error = {
            "type": type(exc).__name__,
            "message": f"internal error in the chachaml MCP server ({type(exc).__name__}: {exc}); "
            "please report it",
        }
    payload = {"error": error}
    return types.CallToolResult(
        content=[types.TextContent(type="text", text=f"{error['type']}: {error['message']}")],
        structured_content=payload,
        is_error=True,
    )


def build_server(client: Client, *, allow_writes: bool = False) -> Server[Any]:
    """The MCP ``Server`` exposing chachaml's tools over ``client``.

    Args:
        client: the store to serve; the caller owns it (and closes it).
        allow_writes: also expose the write tools (``set_tag``, ``set_note``). Without it they
            are not listed, and calling one is a tool error that names the flag.

    Returns:
        A low-level ``mcp`` server, ready for ``server.run(read, write, options)``.

    Raises:
        MissingDependencyError: the ``mcp`` package is not installed (extra ``mcp``).
    """
    require("mcp", "mcp")
    import anyio.to_thread
    import mcp.types as types
    from mcp.server.lowlevel import Server

    from chachaml import __version__

    available = {s.name: s for s in TOOLS if allow_writes or not s.write}
    listed = [
        types.Tool(
            name=s.name,
            title=s.title,
            description=s.description,
            input_schema=s.schema,
            annotations=types.ToolAnnotations(
                title=s.title,
                read_only_hint=not s.write,
                destructive_hint=s.write,  # set_tag and set_note replace what was there
                idempotent_hint=True,
                open_world_hint=False,
            ),
        )
        for s in available.values()
    ]

    async def on_list_tools(ctx: Any, params: Any) -> types.ListToolsResult:
        return types.ListToolsResult(tools=listed)

    async def on_call_tool(ctx: Any, params: types.CallToolRequestParams) -> types.CallToolResult:
        spec = available.get(params.name)
        if spec is None:
            hint = (
                "; it is a write tool: start the server with --allow-writes to enable it"
                if any(s.name == params.name and s.write for s in TOOLS)
                else f"; the tools are: {', '.join(available)}"
            )
            return _error_result(InvalidValueError(f"unknown tool {params.name!r}{hint}"))
        try:
            result, text = await anyio.to_thread.run_sync(
                functools.partial(_call, spec, client, params.arguments)
            )
        except ChachamlError as exc:
            return _error_result(exc)
        except Exception as exc:  # a bug must not take the server down: report it, keep serving
            traceback.print_exc(file=sys.stderr)
            return _error_result(exc)
        # A short text first (what a person reads), then the same JSON as structuredContent
        # serialised, for clients that only pass text content to the model (ADR-0012).
        return types.CallToolResult(
            content=[
                types.TextContent(type="text", text=text),
                types.TextContent(type="text", text=json.dumps(result, separators=(",", ":"))),
            ],
            structured_content=result,
            is_error=False,
        )

    return Server(
        SERVER_NAME,
        version=__version__,
        title="chachaml experiment tracking",
        instructions=INSTRUCTIONS + ("" if allow_writes else " The server is read-only."),
        on_list_tools=on_list_tools,
        on_call_tool=on_call_tool,
    )


def _check_target(target: Any) -> None:
    """Refuse a SQLite path that does not exist: the server only reads (SPEC 9.1)."""
    from chachaml.store import is_store, store_path

    if is_store(target):
        return
    path = store_path(target)
    if path is not None and not os.path.exists(path):
        raise InvalidValueError(
            f"no chachaml store at {path}: pass --store PATH of an existing store "
            "(or set CHACHAML_STORE); the MCP server never creates one"
        )


def serve(target: Any, *, allow_writes: bool = False) -> None:
    """Serve the MCP tools over stdin/stdout until stdin closes.

    Args:
        target: any store target the ``Client`` accepts (a path, a URI, a ``Store``).
        allow_writes: also expose ``set_tag`` and ``set_note``.

    Raises:
        MissingDependencyError: the ``mcp`` package is not installed (extra ``mcp``).
        InvalidValueError: ``target`` is a SQLite file that does not exist.
    """
    _check_target(target)  # first: a wrong path is the likelier mistake, and it is quick to report
    require("mcp", "mcp")
    import anyio
    from mcp.server.stdio import stdio_server

    from chachaml.client import Client

    with Client(target) as client:
        server = build_server(client, allow_writes=allow_writes)

        async def run() -> None:
            async with stdio_server() as (read, write):
                await server.run(read, write, server.create_initialization_options())

        anyio.run(run)


def main(argv: list[str] | None = None) -> int:
    """``chachaml mcp [--allow-writes] [--store TARGET]``; returns the exit code.

    Exit codes: 0 when stdin closes, 1 on a ``ChachamlError`` (message on stderr), 2 on a
    usage error (from argparse).
    """
    parser = argparse.ArgumentParser(
        prog="chachaml mcp",
        description="Serve chachaml's runs to an MCP-capable assistant over stdio (read-only by default).",
    )
    parser.add_argument(
        "--store",
        metavar="TARGET",
        default=None,
        help="the store: a SQLite path or a URI (default: $CHACHAML_STORE, else ./chachaml.db)",
    )
    parser.add_argument(
        "--allow-writes", action="store_true", help="also expose the write tools set_tag and set_note"
    )
    args = parser.parse_args(argv)
    target = args.store or os.environ.get("CHACHAML_STORE") or "chachaml.db"
    try:
        serve(target, allow_writes=args.allow_writes)
    except ChachamlError as exc:
        print(f"chachaml mcp: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
