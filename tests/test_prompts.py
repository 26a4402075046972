"""Run status at the end of interactive sessions (issue 7): real ``python -i`` and IPython via pexpect.

What is survived at a prompt (an exception, Ctrl-C, a caught ``SystemExit``) must not decide how
the session's open runs end; an exit requested at the prompt does.
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

START = "import sys, chachaml; chachaml.use_store('runs.db'); run = chachaml.start_run('session')"


class Repl:
    """A ``python -i`` session in a pty; ``run`` types one statement and waits for the next prompt."""

    PROMPT = re.compile(r">>> ")

    def __init__(self, cwd: Path, *args: str) -> None:
        env = dict(os.environ, TERM="dumb", PYTHON_BASIC_REPL="1")
        env.pop("PYTHONSTARTUP", None)
        env.pop("CHACHAML_STORE", None)
        self.child = pexpect.spawn(
            sys.executable, ["-q", "-i", *args], cwd=str(cwd), env=env, encoding="utf-8", timeout=60
        )
        self.child.expect(self.PROMPT)

    def run(self, source: str) -> str:
        lines = source.strip("\n").splitlines()
        for line in lines:
            self.child.sendline(line)
        if len(lines) > 1:
            self.child.sendline("")  # a blank line ends a compound statement
        self.child.expect(self.PROMPT)
        return str(self.child.before)

    def end(self, how: str = "eof") -> int:
        """Leave the session (Ctrl-D, or a statement that exits); return its exit status."""
        if how == "eof":
            self.child.sendeof()
        else:
            self.child.sendline(how)
        self.child.expect(pexpect.EOF)
        self.child.close()
        return int(self.child.exitstatus)


@pytest.fixture
def repl(tmp_path: Path) -> Iterator[Repl]:
    session = Repl(tmp_path)
    yield session
    if session.child.isalive():
        session.child.terminate(force=True)


def session_run(tmp_path: Path) -> chachaml.Run:
    with chachaml.with_store(tmp_path / "runs.db"):
        (run,) = chachaml.runs()
        return run


def test_an_exception_typed_at_the_prompt_and_recovered_from_does_not_fail_the_run(
    repl: Repl, tmp_path: Path
) -> None:
    repl.run(START)
    assert "ZeroDivisionError" in repl.run("1 / 0")
    repl.run("chachaml.log_metric('loss', 0.5)")
    assert repl.end() == 0
    run = session_run(tmp_path)
    assert (run.status, run.error, run.metrics) == ("completed", None, {"loss": 0.5})


def test_ctrl_c_at_an_idle_prompt_does_not_kill_the_run(repl: Repl, tmp_path: Path) -> None:
    repl.run(START)
    repl.child.sendintr()
    repl.child.expect("KeyboardInterrupt")
    repl.child.expect(Repl.PROMPT)
    assert repl.end() == 0
    assert (session_run(tmp_path).status, session_run(tmp_path).error) == ("completed", None)


def test_a_system_exit_caught_at_the_prompt_does_not_fail_the_run(repl: Repl, tmp_path: Path) -> None:
    repl.run(START)
    out = repl.run("try:\n    sys.exit(2)\nexcept SystemExit as exc:\n    print('caught', exc.code)")
    assert "caught 2" in out
    assert repl.end() == 0
    assert (session_run(tmp_path).status, session_run(tmp_path).error) == ("completed", None)


@pytest.mark.parametrize(("call", "status"), [("sys.exit(3)", 3), ("exit(4)", 4)])
def test_an_exit_requested_at_the_prompt_with_failure_fails_the_run(
    repl: Repl, tmp_path: Path, call: str, status: int
) -> None:
    repl.run(START)
    repl.run("1 / 0")  # survived: does not change the outcome either way
    assert repl.end(call) == status
    run = session_run(tmp_path)
    assert run.status == "failed"
    assert run.error is not None and run.error["type"] == "SystemExit"


@pytest.mark.parametrize("ending", ["raise ValueError('in the script')", "sys.exit(3)"])
def test_python_dash_i_script_that_fails_then_a_clean_session_end_completes(
    tmp_path: Path, ending: str
) -> None:
    script = tmp_path / "train.py"
    script.write_text(f"{START}\n{ending}\n")
    session = Repl(tmp_path, str(script))  # -i: the script's error leaves us at the prompt
    try:
        assert "chachaml" in session.run("print(chachaml.__name__)")
        assert session.end() == 0
    finally:
        if session.child.isalive():
            session.child.terminate(force=True)
    assert (session_run(tmp_path).status, session_run(tmp_path).error) == ("completed", None)


def test_ipython_argparse_in_a_cell_and_an_error_in_a_cell_then_exit_completes(tmp_path: Path) -> None:
    ipython = Path(sys.executable).with_name("ipython")
    if not ipython.exists():
        pytest.skip(f"no ipython next to {sys.executable}")
    env = dict(os.environ, IPYTHONDIR=str(tmp_path / ".ipython"), TERM="dumb")
    env.pop("CHACHAML_STORE", None)
    child = pexpect.spawn(
        str(ipython),
        ["--simple-prompt", "--no-banner", "--colors=NoColor", "--HistoryManager.enabled=False"],
        cwd=str(tmp_path),
        env=env,
        encoding="utf-8",
        timeout=60,
    )
    prompt = re.compile(r"In \[\d+\]: ")
    try:
        child.expect(prompt)
        for line in (
            START,
            "import argparse; p = argparse.ArgumentParser(); p.add_argument('--n', type=int)",
            "p.parse_args(['--n', 'many'])",  # argparse calls sys.exit(2); IPython shows it
            "1 / 0",
            "chachaml.log_metric('after', 1.0)",
        ):
            child.sendline(line)
            child.expect(prompt)
        child.sendline("exit")
        child.expect(pexpect.EOF)
        child.close()
        assert child.exitstatus == 0
    finally:
        if child.isalive():
            child.terminate(force=True)
    run = session_run(tmp_path)
    assert (run.status, run.error, run.metrics) == ("completed", None, {"after": 1.0})
