"""chachaml in the IPython terminal shell, driven through a pty with pexpect.

One input per REPL step, like a person typing. IPython runs an input with top-level ``await`` in a
copy of the context, so a run started there must live on the process-level stack to be current in
the next input. Outcomes are checked inside the shell (printed markers) and in the store file.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import chachaml

pexpect = pytest.importorskip("pexpect")

pytestmark = pytest.mark.slow

IPYTHON = Path(sys.executable).with_name("ipython")
PROMPT = re.compile(r"In \[\d+\]: ")


class Shell:
    """An IPython terminal session; ``run`` types one input and returns what it printed."""

    def __init__(self, cwd: Path) -> None:
        env = dict(os.environ, IPYTHONDIR=str(cwd / ".ipython"), TERM="dumb")
        env.pop("CHACHAML_STORE", None)
        self.child = pexpect.spawn(
            str(IPYTHON),
            ["--simple-prompt", "--no-banner", "--colors=NoColor", "--HistoryManager.enabled=False"],
            cwd=str(cwd),
            env=env,
            encoding="utf-8",
            timeout=60,
            dimensions=(50, 250),
        )
        self.child.expect(PROMPT)

    def run(self, source: str) -> str:
        lines = source.strip("\n").splitlines()
        for line in lines:
            self.child.sendline(line)
        if len(lines) > 1:
            self.child.sendline("")  # a blank line ends a multi-line input at the simple prompt
        self.child.expect(PROMPT)
        return str(self.child.before)

    def ok(self, source: str) -> str:
        out = self.run(source)
        assert "Traceback" not in out and "Error" not in out, out
        return out

    def exit(self) -> None:
        self.child.sendline("exit")
        self.child.expect(pexpect.EOF)
        self.child.close()
        assert self.child.exitstatus == 0, self.child.before


@pytest.fixture
def shell(tmp_path: Path) -> Iterator[Shell]:
    if not IPYTHON.exists():
        pytest.skip(f"no ipython next to {sys.executable}")
    s = Shell(tmp_path)
    yield s
    if s.child.isalive():
        s.child.terminate(force=True)


def by_name(db: Path) -> dict[str, chachaml.Run]:
    with chachaml.with_store(db):
        return {r.name or "": r for r in chachaml.runs()}


def points(db: Path, run_id: str, key: str) -> list[tuple[int, float]]:
    with chachaml.with_store(db):
        return [(m.step, m.value) for m in chachaml.metric_history(run_id, key)]


def test_runs_started_logged_and_ended_across_ipython_inputs_including_await(
    shell: Shell, tmp_path: Path
) -> None:
    shell.ok("import asyncio, chachaml")
    shell.ok('store = chachaml.use_store("ip.db")')
    shell.ok('run = chachaml.start_run("repl")')
    shell.ok('chachaml.log_param("lr", 0.1)')
    shell.ok('chachaml.log_metric("loss", 0.5)')
    shell.ok('await asyncio.sleep(0); chachaml.log_metric("loss", 0.4)')
    assert "CUR True" in shell.ok('print("CUR", chachaml.current_run().id == run.id)')
    shell.ok('await asyncio.sleep(0); child = chachaml.start_run("child")')
    assert "CHILD True True" in shell.ok(
        'print("CHILD", chachaml.current_run().id == child.id, child.parent_id == run.id)'
    )
    shell.ok(
        """
with chachaml.with_run("block") as block:
    chachaml.log_metric("acc", 1.0)
"""
    )
    assert "ENDCHILD True" in shell.ok(
        "await asyncio.sleep(0); chachaml.end_run(); "
        'print("ENDCHILD", chachaml.get_run(child.id).status == "completed")'
    )
    assert "ENDREPL True None" in shell.ok(
        "chachaml.end_run(); "
        'print("ENDREPL", chachaml.get_run(run.id).status == "completed", chachaml.current_run())'
    )
    shell.exit()

    runs = by_name(tmp_path / "ip.db")
    assert set(runs) == {"repl", "child", "block"}
    repl = runs["repl"]
    assert (repl.status, repl.parent_id, repl.params) == ("completed", None, {"lr": 0.1})
    assert points(tmp_path / "ip.db", repl.id, "loss") == [(0, 0.5), (1, 0.4)]
    assert (runs["child"].status, runs["child"].parent_id) == ("completed", repl.id)
    # the with_run block nested under the run current at that input: the child
    assert (runs["block"].status, runs["block"].parent_id) == ("completed", runs["child"].id)
    assert (runs["block"].metrics, runs["child"].metrics) == ({"acc": 1.0}, {})


def test_exception_in_with_run_in_an_input_fails_it_and_the_shell_goes_on(
    shell: Shell, tmp_path: Path
) -> None:
    shell.ok("import chachaml")
    shell.ok('chachaml.use_store("ip.db")')
    shell.ok('outer = chachaml.start_run("outer")')
    out = shell.run(
        """
with chachaml.with_run("bad"):
    raise ValueError("bad batch")
"""
    )
    assert "ValueError" in out and "bad batch" in out
    assert "STILL True" in shell.ok('print("STILL", chachaml.current_run().id == outer.id)')
    shell.ok('chachaml.log_metric("after", 1.0)')
    shell.exit()

    runs = by_name(tmp_path / "ip.db")
    assert runs["bad"].status == "failed"
    assert runs["bad"].parent_id == runs["outer"].id
    assert runs["bad"].error is not None and runs["bad"].error["message"] == "bad batch"
    assert runs["outer"].metrics == {"after": 1.0}
    # left open when the shell exited normally: ended as completed at interpreter exit
    assert runs["outer"].status == "completed"
