"""``chachaml mcp`` end to end: the official MCP client starts the real server as a subprocess.

Every test talks to ``python -m chachaml.mcp_server`` over stdio with ``mcp.client.stdio`` and
``ClientSession``, against a real SQLite file filled through the public API. The reading tests
share one read-only server (fixture ``server``); the others start their own.
"""

from __future__ import annotations

import json
import math
import os
import queue
import re
import subprocess
import sys
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import pytest
from anyio.from_thread import BlockingPortal, start_blocking_portal
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client

import chachaml

pytestmark = pytest.mark.slow  # server processes

SERVER = [sys.executable, "-m", "chachaml", "mcp"]  # the real `chachaml mcp` command
READ_TOOLS = [
    "list_runs",
    "get_run",
    "compare_runs",
    "best_run",
    "metric_history",
    "list_experiments",
    "list_models",
    "get_model",
]
DEADLINE_S = 60  # a hung server fails the test instead of hanging the suite


@dataclass
class Store:
    path: Path
    ids: dict[str, str]


def _fill(path: Path) -> Store:
    """A store with two experiments, a child run, a failed run, NaN/inf values and a model."""
    ids: dict[str, str] = {}
    with pytest.MonkeyPatch.context() as mp, chachaml.with_store(path):
        mp.setenv("CHACHAML_USER", "ada")
        with chachaml.with_run("small", experiment="cnn", tags={"team": "vision"}) as run:
            chachaml.log_params({"lr": 0.1, "layers": 2})
            for step in range(1000):
                # a dip at step 500 and a spike at step 700, to survive downsampling
                loss = -5.0 if step == 500 else 50.0 if step == 700 else 1.0 / (step + 1)
                chachaml.log_metric("loss", loss, step=step)
            chachaml.log_metric("acc", 0.8)
            chachaml.log_metric("grad", float("nan"))
            chachaml.log_metric("ratio", float("inf"))
            chachaml.log_artifact("model.pkl", {"w": [1, 2]})
            with chachaml.with_run("fold-0", experiment="cnn") as child:
                chachaml.log_metric("acc", 0.7)
            ids["child"] = child.id
        ids["small"] = run.id
        with chachaml.with_run("big", experiment="cnn", tags={"team": "vision"}) as run:
            chachaml.log_params({"lr": 0.01, "layers": 2})
            chachaml.log_metric("loss", 0.3)
            chachaml.log_metric("acc", 0.9)
        ids["big"] = run.id
        with pytest.raises(RuntimeError), chachaml.with_run("broken", experiment="rnn") as run:
            ids["broken"] = run.id
            chachaml.log_metric("acc", 0.1)
            raise RuntimeError("diverged")
        chachaml.register_model("churn", artifact="model.pkl", run_id=ids["small"])
        chachaml.promote("churn", 1, "production")
    return Store(path, ids)


@pytest.fixture
def store(tmp_path: Path) -> Store:
    """A fresh store for a test that writes or starts its own server."""
    return _fill(tmp_path / "runs.db")


@pytest.fixture(scope="module")
def shared_store(tmp_path_factory: pytest.TempPathFactory) -> Store:
    """One store for the tests that only read through the shared read-only server."""
    return _fill(tmp_path_factory.mktemp("mcp") / "runs.db")


class Server:
    """One ``chachaml mcp`` process with an initialised session, driven from test code."""

    def __init__(self, portal: BlockingPortal, session: ClientSession) -> None:
        self.portal, self.session = portal, session

    def run(self, body: Callable[[ClientSession], Awaitable[Any]]) -> Any:
        async def bounded() -> Any:
            with anyio.fail_after(DEADLINE_S):
                return await body(self.session)

        return self.portal.call(bounded)


@pytest.fixture(scope="module")
def server(shared_store: Store) -> Iterator[Server]:
    """A read-only server on ``shared_store``, started once for the module (each start costs
    a second or more), so the reading tests share it; a test that needs a fresh process or
    ``--allow-writes`` starts its own with ``talk``."""

    @asynccontextmanager
    async def connected() -> AsyncIterator[ClientSession]:
        params = StdioServerParameters(
            command=SERVER[0], args=[*SERVER[1:], "--store", str(shared_store.path)]
        )
        with shared_store.path.with_name("server-stderr.txt").open("a") as err:
            async with (
                stdio_client(params, errlog=err) as (read, write),
                ClientSession(read, write) as session,
            ):
                with anyio.fail_after(DEADLINE_S):
                    await session.initialize()
                yield session

    with start_blocking_portal() as portal, portal.wrap_async_context_manager(connected()) as session:
        yield Server(portal, session)


def _session(
    args: list[str], errlog: Path, body: Callable[[ClientSession], Awaitable[Any]], env: dict[str, str] | None
) -> Any:
    async def go() -> Any:
        params = StdioServerParameters(command=SERVER[0], args=[*SERVER[1:], *args], env=env)
        with anyio.fail_after(DEADLINE_S), errlog.open("a") as err:
            async with (
                stdio_client(params, errlog=err) as (read, write),
                ClientSession(read, write) as session,
            ):
                await session.initialize()
                return await body(session)

    return anyio.run(go)


def talk(
    store: Store,
    body: Callable[[ClientSession], Awaitable[Any]],
    *,
    writes: bool = False,
    env: dict[str, str] | None = None,
) -> Any:
    """Start ``chachaml mcp`` on ``store``, initialise a session, run ``body`` in it."""
    args = ["--store", str(store.path)] + (["--allow-writes"] if writes else [])
    return _session(args, store.path.with_name("server-stderr.txt"), body, env)


def ok(result: Any) -> dict[str, Any]:
    """The structured content of a successful call, checked against its two text blocks."""
    assert not result.is_error, result.content[0].text
    summary, serialised = result.content
    assert summary.type == serialised.type == "text"
    assert 0 < len(summary.text) < 3000
    assert json.loads(serialised.text) == result.structured_content
    return result.structured_content  # type: ignore[no-any-return]


def error(result: Any) -> dict[str, str]:
    """The ``{"type", "message"}`` of a tool error, checked against its text."""
    assert result.is_error, result.structured_content
    err = result.structured_content["error"]
    assert result.content[0].text == f"{err['type']}: {err['message']}"
    return err  # type: ignore[no-any-return]


async def call(session: ClientSession, tool: str, arguments: dict[str, Any] | None = None) -> Any:
    return await session.call_tool(tool, arguments or {})


# -- listing ----------------------------------------------------------------------------------------
def test_read_only_by_default_lists_the_eight_read_tools_with_closed_json_schemas(
    shared_store: Store, server: Server
) -> None:
    async def body(s: ClientSession) -> Any:
        return (await s.list_tools()).tools, await call(
            s, "set_tag", {"run_id": "x", "key": "k", "value": "v"}
        )

    tools, refused = server.run(body)
    assert [t.name for t in tools] == READ_TOOLS
    for tool in tools:
        assert tool.input_schema["type"] == "object"
        assert tool.input_schema["additionalProperties"] is False
        assert set(tool.input_schema["required"]) <= set(tool.input_schema["properties"])
        assert tool.annotations.read_only_hint is True
        assert tool.description
    props = {t.name: t.input_schema["properties"] for t in tools}
    assert list(props["list_runs"]) == ["experiment", "status", "where", "order_by", "limit", "offset"]
    assert props["list_runs"]["status"]["enum"] == ["running", "completed", "failed", "killed"]
    assert list(props["best_run"]) == ["metric", "mode", "experiment", "where"]
    assert list(props["metric_history"]) == ["run_id", "key", "max_points", "after_step"]
    assert props["compare_runs"]["ids"]["type"] == "array"
    assert "--allow-writes" in error(refused)["message"]


def test_allow_writes_lists_set_tag_and_set_note_and_their_writes_land(store: Store) -> None:
    big = store.ids["big"]

    async def body(s: ClientSession) -> Any:
        tools = (await s.list_tools()).tools
        tagged = ok(await call(s, "set_tag", {"run_id": big[:8], "key": "verdict", "value": "keep"}))
        noted = ok(await call(s, "set_note", {"run_id": big, "note": "# Best so far\nlr=0.01"}))
        refused = [
            error(await call(s, "set_tag", {"run_id": "zz", "key": "k", "value": "v"})),
            error(await call(s, "set_tag", {"run_id": big, "key": "", "value": "v"})),
            error(await call(s, "set_note", {"run_id": big, "note": 3})),
        ]
        return tools, tagged, noted, refused

    tools, tagged, noted, refused = talk(store, body, writes=True)
    assert [e["type"] for e in refused] == ["RunNotFoundError", "InvalidValueError", "InvalidValueError"]
    assert [t.name for t in tools] == [*READ_TOOLS, "set_tag", "set_note"]
    writers = [t for t in tools if t.name in ("set_tag", "set_note")]
    assert [(t.annotations.read_only_hint, t.annotations.destructive_hint) for t in writers] == [
        (False, True),
        (False, True),
    ]
    assert tagged == {"run_id": big, "tags": {"team": "vision", "verdict": "keep"}}
    assert noted == {"run_id": big, "note": "# Best so far\nlr=0.01"}
    with chachaml.with_store(store.path):
        run = chachaml.get_run(big)
    assert run.tags["verdict"] == "keep"
    assert run.note == "# Best so far\nlr=0.01"
    assert run.status == "completed"  # tagging a finished run does not reopen it


# -- reading ----------------------------------------------------------------------------------------
def test_list_runs_applies_each_filter_and_pages(shared_store: Store, server: Server) -> None:
    ids = shared_store.ids

    async def body(s: ClientSession) -> dict[str, Any]:
        return {
            "all": ok(await call(s, "list_runs")),
            "cnn": ok(await call(s, "list_runs", {"experiment": "cnn"})),
            "failed": ok(await call(s, "list_runs", {"status": "failed"})),
            "where": ok(await call(s, "list_runs", {"where": "params.lr < 0.05"})),
            "order": ok(await call(s, "list_runs", {"order_by": "metrics.acc desc", "limit": 2})),
            "page2": ok(
                await call(s, "list_runs", {"order_by": "metrics.acc desc", "limit": 2, "offset": 2})
            ),
            "nulls": ok(await call(s, "list_runs", {"experiment": None, "limit": None})),
        }

    got = server.run(body)
    assert {r["id"] for r in got["all"]["runs"]} == set(ids.values())
    assert got["all"]["runs"][0]["id"] == ids["broken"]  # newest first
    assert got["all"]["count"] == 4 and got["all"]["next_offset"] is None
    assert {r["id"] for r in got["cnn"]["runs"]} == {ids["small"], ids["big"], ids["child"]}
    assert [r["id"] for r in got["failed"]["runs"]] == [ids["broken"]]
    assert got["failed"]["runs"][0]["error"] == {"type": "RuntimeError", "message": "diverged"}
    assert [r["id"] for r in got["where"]["runs"]] == [ids["big"]]
    assert [r["id"] for r in got["order"]["runs"]] == [ids["big"], ids["small"]]
    assert got["order"]["next_offset"] == 2
    assert [r["id"] for r in got["page2"]["runs"]] == [ids["child"], ids["broken"]]
    assert got["page2"]["next_offset"] is None
    assert got["nulls"] == got["all"]  # null means "not given"
    small = next(r for r in got["all"]["runs"] if r["id"] == ids["small"])
    assert small["params"] == {"lr": 0.1, "layers": 2}
    assert small["metrics"] == {"loss": 0.001, "acc": 0.8, "grad": "NaN", "ratio": "Infinity"}
    assert small["tags"] == {"team": "vision"}
    assert "env" not in small  # lists stay small; get_run has everything


def test_get_run_takes_an_id_prefix_and_returns_summaries_artifacts_and_children(
    shared_store: Store, server: Server
) -> None:
    small = shared_store.ids["small"]
    result = server.run(lambda s: call(s, "get_run", {"run_id": small[:6]}))
    run = ok(result)
    assert run["id"] == small and run["name"] == "small" and run["experiment"] == "cnn"
    assert run["metrics"]["grad"] == "NaN" and run["metrics"]["ratio"] == "Infinity"
    assert run["metric_summaries"]["loss"] == {
        "last": 0.001,
        "min": -5.0,
        "max": 50.0,
        "count": 1000,
        "last_step": 999,
    }
    assert [a["name"] for a in run["artifacts"]] == ["model.pkl"]
    assert run["children"] == [shared_store.ids["child"]]
    assert run["env"] and run["datasets"] == [] and run["error"] is None
    assert small[:8] in result.content[0].text and "lr=0.1" in result.content[0].text


def test_compare_runs_splits_params_and_metrics(shared_store: Store, server: Server) -> None:
    ids = shared_store.ids
    got = ok(server.run(lambda s: call(s, "compare_runs", {"ids": [ids["small"][:8], ids["big"]]})))
    assert got["run_ids"] == [ids["small"], ids["big"]]
    assert got["names"] == ["small", "big"]
    assert got["params"] == {"same": {"layers": 2}, "differ": {"lr": [0.1, 0.01]}, "partial": {}}
    assert got["metrics"]["differ"] == {"acc": [0.8, 0.9], "loss": [0.001, 0.3]}
    assert got["metrics"]["partial"] == {"grad": ["NaN", None], "ratio": ["Infinity", None]}


def test_best_run_by_max_min_experiment_and_where(shared_store: Store, server: Server) -> None:
    ids = shared_store.ids

    async def body(s: ClientSession) -> list[dict[str, Any]]:
        return [
            ok(await call(s, "best_run", {"metric": "acc"})),
            ok(await call(s, "best_run", {"metric": "loss", "mode": "min"})),
            ok(await call(s, "best_run", {"metric": "acc", "experiment": "rnn"})),
            ok(await call(s, "best_run", {"metric": "acc", "where": "params.lr > 0.05"})),
            ok(await call(s, "best_run", {"metric": "never_logged"})),
        ]

    best_acc, least_loss, rnn, where, none = server.run(body)
    assert (best_acc["run"]["id"], best_acc["best_value"], best_acc["best_step"]) == (ids["big"], 0.9, 0)
    assert (least_loss["run"]["id"], least_loss["best_value"], least_loss["best_step"]) == (
        ids["small"],
        -5.0,
        500,
    )
    assert rnn["run"]["id"] == ids["broken"]
    assert where["run"]["id"] == ids["small"]
    assert none == {"run": None, "best_value": None, "best_step": None}


def test_metric_history_is_downsampled_keeping_first_last_and_extremes(
    shared_store: Store, server: Server
) -> None:
    small = shared_store.ids["small"]

    async def body(s: ClientSession) -> list[Any]:
        return [
            ok(await call(s, "metric_history", {"run_id": small[:8], "key": "loss", "max_points": 20})),
            ok(await call(s, "metric_history", {"run_id": small, "key": "loss"})),
            ok(await call(s, "metric_history", {"run_id": small, "key": "loss", "max_points": 5000})),
            ok(await call(s, "metric_history", {"run_id": small, "key": "grad"})),
            ok(await call(s, "metric_history", {"run_id": small, "key": "loss", "after_step": 997})),
            ok(await call(s, "metric_history", {"run_id": small, "key": "loss", "after_step": 999})),
            ok(await call(s, "metric_history", {"run_id": small, "key": "loss", "max_points": 3.0})),
        ]

    short, default, full, nan, tail, none_after, as_float = server.run(body)
    steps = [p["step"] for p in short["points"]]
    assert short["run_id"] == small and short["key"] == "loss"
    assert short["total_points"] == 1000 and short["downsampled"] is True
    assert len(steps) <= 20 and steps == sorted(steps)
    assert steps[0] == 0 and steps[-1] == 999
    assert {500, 700} <= set(steps)  # the dip and the spike survive
    assert set(short["points"][0]) == {"step", "value", "timestamp"}
    assert 100 < len(default["points"]) <= 200
    assert full["downsampled"] is False and [p["step"] for p in full["points"]] == list(range(1000))
    assert nan["points"][0]["value"] == "NaN"
    assert [p["step"] for p in tail["points"]] == [998, 999] and tail["total_points"] == 2
    assert none_after["points"] == [] and none_after["total_points"] == 0
    # 3.0 is the integer 3: room for one point between the ends, which keeps the largest (the spike)
    assert [p["step"] for p in as_float["points"]] == [0, 700, 999]


def test_experiments_and_models(shared_store: Store, server: Server) -> None:
    async def body(s: ClientSession) -> list[Any]:
        return [
            ok(await call(s, "list_experiments")),
            ok(await call(s, "list_models")),
            ok(await call(s, "get_model", {"name": "churn"})),
        ]

    experiments, models, churn = server.run(body)
    counts = {e["name"]: e["run_count"] for e in experiments["experiments"]}
    assert counts == {"cnn": 3, "rnn": 1}
    assert [(m["name"], m["latest_version"], m["production_version"]) for m in models["models"]] == [
        ("churn", 1, 1)
    ]
    assert churn["name"] == "churn"
    assert [(v["version"], v["stage"], v["run_id"]) for v in churn["versions"]] == [
        (1, "production", shared_store.ids["small"])
    ]


# -- errors -----------------------------------------------------------------------------------------
def test_bad_arguments_unknown_runs_and_malformed_queries_are_tool_errors(
    shared_store: Store, server: Server
) -> None:
    cases: list[tuple[str, dict[str, Any], str, str]] = [
        ("get_run", {}, "InvalidValueError", "'run_id'"),
        ("get_run", {"run_id": 42}, "InvalidValueError", "must be a string"),
        ("get_run", {"run_id": ""}, "InvalidValueError", "must not be empty"),
        ("get_run", {"run_id": "f" * 32}, "RunNotFoundError", "f" * 32),
        ("get_run", {"run_id": "zz"}, "RunNotFoundError", "'zz'"),
        ("get_run", {"run_id": "x", "verbose": True}, "InvalidValueError", "verbose"),
        ("list_runs", {"where": "params.lr <"}, "QueryError", "params.lr <"),
        ("list_runs", {"where": "drop table runs"}, "QueryError", "drop"),
        ("list_runs", {"order_by": "nonsense field"}, "QueryError", "nonsense"),
        ("list_runs", {"status": "done"}, "InvalidValueError", "running, completed, failed, killed"),
        ("list_runs", {"limit": 0}, "InvalidValueError", "'limit'"),
        ("list_runs", {"limit": "10"}, "InvalidValueError", "an integer"),
        ("list_runs", {"limit": 2.5}, "InvalidValueError", "an integer"),
        ("list_runs", {"limit": True}, "InvalidValueError", "an integer"),
        ("compare_runs", {"ids": []}, "InvalidValueError", "at least 1"),
        ("compare_runs", {"ids": "abc"}, "InvalidValueError", "a list of strings"),
        ("compare_runs", {"ids": ["zz"]}, "RunNotFoundError", "'zz'"),
        ("best_run", {"metric": "acc", "mode": "avg"}, "InvalidValueError", "max, min"),
        ("metric_history", {"run_id": "zz", "key": "loss"}, "RunNotFoundError", "'zz'"),
        ("metric_history", {"run_id": "REPLACE", "key": "nope"}, "NotFoundError", "acc, grad, loss"),
        ("metric_history", {"run_id": "REPLACE", "key": "loss", "max_points": 1}, "InvalidValueError", "2"),
        ("get_model", {"name": "nope"}, "ModelNotFoundError", "nope"),
        ("no_such_tool", {}, "InvalidValueError", "list_runs"),
    ]
    small = shared_store.ids["small"]

    async def body(s: ClientSession) -> tuple[list[Any], list[str]]:
        results = []
        for tool, arguments, _, _ in cases:
            args = {k: (small if v == "REPLACE" else v) for k, v in arguments.items()}
            results.append(await call(s, tool, args))
        still_there = [t.name for t in (await s.list_tools()).tools]
        return results, still_there

    results, still_there = server.run(body)
    for (tool, arguments, kind, needle), result in zip(cases, results, strict=True):
        err = error(result)
        assert err["type"] == kind, (tool, arguments, err)
        assert needle in err["message"], (tool, arguments, err)
    malformed = error(results[[c[1] for c in cases].index({"where": "params.lr <"})])
    assert malformed["position"] == len("params.lr <")  # a QueryError's wire attributes travel too
    assert still_there == READ_TOOLS
    with chachaml.with_store(shared_store.path):
        assert len(chachaml.runs()) == 4  # nothing written by the bad calls


def test_a_malformed_json_rpc_line_does_not_kill_the_server(store: Store) -> None:
    proc = subprocess.Popen(
        [*SERVER, "--store", str(store.path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in proc.stdout], daemon=True).start()  # type: ignore[union-attr]

    def send(message: str) -> None:
        proc.stdin.write(message + "\n")  # type: ignore[union-attr]
        proc.stdin.flush()  # type: ignore[union-attr]

    received: dict[Any, dict[str, Any]] = {}

    def reply(request_id: int) -> dict[str, Any]:
        """The answer to ``request_id``; answers may come in any order (calls run concurrently)."""
        while request_id not in received:
            message = json.loads(lines.get(timeout=DEADLINE_S))
            received[message.get("id")] = message
        return received[request_id]

    try:
        init = {
            "protocolVersion": "2025-06-18",
            "capabilities": {},
            "clientInfo": {"name": "t", "version": "1"},
        }
        send(json.dumps({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": init}))
        assert reply(1)["result"]["serverInfo"]["name"] == "chachaml"
        send(json.dumps({"jsonrpc": "2.0", "method": "notifications/initialized"}))
        send("{this is not json")
        send('{"hello": 1}')
        send("[]")
        send(json.dumps({"jsonrpc": "2.0", "id": 5, "method": "tools/call", "params": {"name": 7}}))
        bad_args = {"name": "get_run", "arguments": [1, 2]}
        send(json.dumps({"jsonrpc": "2.0", "id": 6, "method": "tools/call", "params": bad_args}))
        send(json.dumps({"jsonrpc": "2.0", "id": 2, "method": "no/such/method"}))
        send(json.dumps({"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {"name": "get_run"}}))
        call_args = {"name": "get_run", "arguments": {"run_id": store.ids["big"]}}
        send(json.dumps({"jsonrpc": "2.0", "id": 4, "method": "tools/call", "params": call_args}))
        assert "error" in reply(2)
        assert "error" in reply(5) and "error" in reply(6)  # invalid params: a JSON-RPC error
        assert reply(3)["result"]["isError"] is True
        assert reply(4)["result"]["structuredContent"]["name"] == "big"
        assert proc.poll() is None
    finally:
        proc.stdin.close()  # type: ignore[union-attr]
        assert proc.wait(timeout=DEADLINE_S) == 0  # stdin closed: a clean exit
        proc.stdout.close()  # type: ignore[union-attr]
        proc.stderr.close()  # type: ignore[union-attr]


# -- the command --------------------------------------------------------------------------------------
def test_a_missing_store_file_exits_1_naming_the_path_and_creates_nothing(tmp_path: Path) -> None:
    missing = tmp_path / "nope.db"
    proc = subprocess.run(
        [*SERVER, "--store", str(missing)], capture_output=True, text=True, timeout=DEADLINE_S, check=False
    )
    assert proc.returncode == 1
    assert str(missing) in proc.stderr and "--store" in proc.stderr
    assert "Traceback" not in proc.stderr and proc.stdout == ""
    assert not missing.exists()


def test_the_store_comes_from_chachaml_store_as_a_sqlite_uri_when_store_is_not_given(store: Store) -> None:
    env = {"CHACHAML_STORE": f"sqlite:///{store.path}"}  # an absolute path: four slashes
    body = lambda s: call(s, "get_run", {"run_id": store.ids["big"]})  # noqa: E731
    got = ok(_session([], store.path.with_name("stderr.txt"), body, env))
    assert got["name"] == "big"


def test_concurrent_calls_on_one_session_all_answer(shared_store: Store, server: Server) -> None:
    ids = list(shared_store.ids.values())

    async def body(s: ClientSession) -> list[Any]:
        results: list[Any] = [None] * 12
        async with anyio.create_task_group() as tg:
            for i in range(12):

                async def one(i: int = i) -> None:
                    results[i] = await call(s, "get_run", {"run_id": ids[i % len(ids)]})

                tg.start_soon(one)
        return results

    results = server.run(body)
    assert [ok(r)["id"] for r in results] == [ids[i % len(ids)] for i in range(12)]


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    proc = subprocess.run(
        [*SERVER, "--bogus"], capture_output=True, text=True, timeout=DEADLINE_S, check=False
    )
    assert proc.returncode == 2
    assert "--bogus" in proc.stderr


def test_without_the_mcp_package_the_error_names_the_extra(store: Store) -> None:
    code = (
        "import sys; sys.modules['mcp'] = None\n"  # as if the package were not installed
        "from chachaml.mcp_server import main\n"
        f"sys.exit(main(['--store', {str(store.path)!r}]))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=DEADLINE_S)
    assert proc.returncode == 1
    assert "pip install 'chachaml[mcp]'" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_non_finite_values_are_strings_in_structured_results() -> None:
    from chachaml.mcp_tools import jsonable

    value = {"a": [math.nan, math.inf, -math.inf, 1.5], "b": (1, None, True), "c": Path("x")}
    assert jsonable(value) == {"a": ["NaN", "Infinity", "-Infinity", 1.5], "b": [1, None, True], "c": "x"}
    json.dumps(jsonable(value), allow_nan=False)


def test_the_latency_benchmark_runs_and_prints_every_figure(tmp_path: Path) -> None:
    script = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_mcp.py"
    proc = subprocess.run(
        [sys.executable, str(script), "--quick", "--cache-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    for label in ("list_runs (default page of 20)", "get_run (an 8-character prefix)", "metric_history"):
        line = next(line for line in proc.stdout.splitlines() if line.startswith(label))
        assert re.search(r"\d+\.\d\d ms\s+\d+\.\d\d ms\s+\d+\.\d\d ms\s+-?\d+\.\d\d ms.*info$", line), line


def test_it_serves_a_remote_store_through_a_tracking_server(store: Store, tmp_path: Path) -> None:
    # SPEC 11: the MCP server works against any store target, a tracking server's URL included.
    from tests._teamserver import InProcessServer

    server = InProcessServer(str(store.path))
    try:
        env = {**os.environ, "XDG_STATE_HOME": str(tmp_path / "state")}

        async def body(s: ClientSession) -> Any:
            return await call(s, "get_run", {"run_id": store.ids["big"]}), await call(s, "list_runs", {})

        got, listed = _session(["--store", server.url], tmp_path / "stderr.txt", body, env)
        assert ok(got)["name"] == "big"
        assert store.ids["big"] in {run["id"] for run in ok(listed)["runs"]}
    finally:
        server.close()
