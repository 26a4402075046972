"""docs/api.md's curl examples run against a real server, and every write endpoint has one.

The examples are read from the page's ```bash blocks and sent with http.client (the test does not
need curl itself): ``-X``, ``-H``, ``-d`` and ``--data-binary @file`` are all they use.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import pytest
from tests._webserver import Server

import chachaml

pytestmark = pytest.mark.slow

PAGE = Path(__file__).resolve().parent.parent / "docs" / "api.md"
_BLOCK = re.compile(r"^```bash\n(.*?)^```", re.MULTILINE | re.DOTALL)


def commands() -> list[str]:
    text = PAGE.read_text(encoding="utf-8")
    out = []
    for block in _BLOCK.findall(text):
        # One curl per block (its quoted JSON may span lines), maybe after a printf line.
        block = block.replace("\\\n", " ").strip()
        if block.startswith("printf "):
            first, _, block = block.partition("\n")
            out.append(first)
        out.append(block.strip())
    return out


def parse_curl(command: str, *, read_files: bool = True) -> dict[str, Any]:
    args = shlex.split(command)
    assert args[0] == "curl", command
    req: dict[str, Any] = {"method": None, "headers": {}, "body": None, "url": None}
    i = 1
    while i < len(args):
        a = args[i]
        if a == "-s":
            pass
        elif a == "-X":
            i += 1
            req["method"] = args[i]
        elif a == "-H":
            i += 1
            k, _, v = args[i].partition(":")
            req["headers"][k.strip()] = v.strip()
        elif a == "-d":
            i += 1
            req["body"] = args[i].encode()
        elif a == "--data-binary":
            i += 1
            assert args[i].startswith("@")
            req["body"] = Path(args[i][1:]).read_bytes() if read_files else b""
        else:
            assert not a.startswith("-"), f"the docs use a curl option this test does not know: {a}"
            req["url"] = a
        i += 1
    req["method"] = req["method"] or ("POST" if req["body"] is not None else "GET")
    return req


def test_every_write_endpoint_has_a_curl_example() -> None:
    from chachaml.web.app import _compile
    from chachaml.web.routes import ROUTES

    examples = [
        parse_curl(
            c.replace("$URL", "http://h").replace("$RUN", "r").replace("$OLD_RUN", "o"), read_files=False
        )
        for c in commands()
        if c.startswith("curl")
    ]
    for method, pattern, handler in ROUTES:
        if method == "GET":
            continue
        rx = _compile(pattern)
        found = [e for e in examples if e["method"] == method and rx.match(e["url"].removeprefix("http://h"))]
        assert found, f"docs/api.md has no curl example for {method} {pattern} ({handler})"


def test_the_curl_examples_work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    db = str(tmp_path / "docs.db")
    with chachaml.with_store(db), chachaml.with_run("old") as old:
        pass
    srv = Server(db).start()
    try:
        base = f"http://{srv.host}:{srv.port}"
        run = srv.request("POST", "/api/v1/runs", {"name": "docs"}).json()
        variables = {"$URL": base, "$RUN": run["id"], "$OLD_RUN": old.id}
        monkeypatch.chdir(tmp_path)
        for command in commands():
            for name, value in variables.items():
                command = command.replace(name, value)
            if command.startswith("printf "):
                text, _, target = command.removeprefix("printf ").partition(" > ")
                Path(target).write_text(shlex.split(text)[0])
                continue
            req = parse_curl(command)
            reply = srv.request(
                req["method"], req["url"].removeprefix(base), raw=req["body"], headers=req["headers"]
            )
            assert 200 <= reply.status < 300, (command, reply.status, reply.body[:500])
    finally:
        assert srv.stop() == 0
    with chachaml.with_store(db):
        done = chachaml.get_run(run["id"])
        assert done.status == "completed" and done.params["lr"] == 0.01
        assert chachaml.model("digits").production_version == 1
        with pytest.raises(chachaml.RunNotFoundError):
            chachaml.get_run(old.id)
