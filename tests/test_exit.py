"""How a process that exits ends its open runs (SPEC sections 3 and 8), with real interpreters.

Each test writes a small script into ``tmp_path``, runs it with the test's Python, then reads the
database it left behind. Scripts print ``<label> <run id>`` lines so the test knows which run is
which.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import chachaml
from chachaml.entities import Run

pytestmark = pytest.mark.slow

TIMEOUT_S = 120.0


def _run_script(tmp_path: Path, source: str) -> tuple[subprocess.CompletedProcess[str], dict[str, str]]:
    """Run ``source`` (gets the database path as argv[1]); return the process and its labelled ids."""
    script = tmp_path / "script.py"
    script.write_text(textwrap.dedent(source))
    proc = subprocess.run(
        [sys.executable, str(script), str(tmp_path / "runs.db")],
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        cwd=tmp_path,
        check=False,
    )
    ids: dict[str, str] = {}
    for line in proc.stdout.splitlines():
        label, _, value = line.partition(" ")
        ids[label] = value
    return proc, ids


def _runs(tmp_path: Path, ids: dict[str, str], *labels: str) -> list[Run]:
    with chachaml.with_store(tmp_path / "runs.db"):
        return [chachaml.get_run(ids[label]) for label in labels]


def test_falling_off_the_end_of_a_script_completes_its_open_run(tmp_path: Path) -> None:
    proc, ids = _run_script(
        tmp_path,
        """
        import sys, chachaml
        chachaml.use_store(sys.argv[1])
        run = chachaml.start_run("script")
        chachaml.log_metric("loss", 0.25)
        print("run", run.id)
        """,
    )
    assert proc.returncode == 0, proc.stderr
    (run,) = _runs(tmp_path, ids, "run")
    assert run.status == "completed"
    assert run.error is None
    assert run.end_time is not None
    assert run.metrics == {"loss": 0.25}


def test_an_uncaught_exception_fails_the_run_and_still_prints_the_users_traceback(tmp_path: Path) -> None:
    proc, ids = _run_script(
        tmp_path,
        """
        import sys, chachaml

        def users_hook(et, ev, tb):
            print("USERS HOOK SAW", et.__name__, file=sys.stderr)
            sys.__excepthook__(et, ev, tb)

        sys.excepthook = users_hook  # installed before chachaml's: it must still run
        chachaml.use_store(sys.argv[1])
        run = chachaml.start_run("script")
        print("run", run.id, flush=True)

        def train():
            raise ValueError("the loss went to the moon")

        train()
        """,
    )
    assert proc.returncode == 1
    assert "USERS HOOK SAW ValueError" in proc.stderr
    assert "Traceback (most recent call last)" in proc.stderr
    assert 'in train\n    raise ValueError("the loss went to the moon")' in proc.stderr
    assert "ValueError: the loss went to the moon" in proc.stderr
    (run,) = _runs(tmp_path, ids, "run")
    assert run.status == "failed"
    assert run.error is not None
    assert run.error["type"] == "ValueError"
    assert run.error["message"] == "the loss went to the moon"
    assert "in train" in run.error["traceback"]


def test_the_default_excepthook_still_prints_the_traceback(tmp_path: Path) -> None:
    proc, ids = _run_script(
        tmp_path,
        """
        import sys, chachaml
        chachaml.use_store(sys.argv[1])
        run = chachaml.start_run("script")
        print("run", run.id, flush=True)
        {}["missing-key"]
        """,
    )
    assert proc.returncode == 1
    assert "Traceback (most recent call last)" in proc.stderr
    assert "KeyError: 'missing-key'" in proc.stderr
    (run,) = _runs(tmp_path, ids, "run")
    assert run.status == "failed"
    assert run.error is not None and run.error["type"] == "KeyError"


@pytest.mark.parametrize(("code", "returncode", "status"), [("0", 0, "completed"), ("None", 0, "completed")])
def test_sys_exit_with_success_completes_the_open_run(
    tmp_path: Path, code: str, returncode: int, status: str
) -> None:
    proc, ids = _run_script(
        tmp_path,
        f"""
        import sys, chachaml
        chachaml.use_store(sys.argv[1])
        run = chachaml.start_run("script")
        print("run", run.id, flush=True)
        sys.exit({code})
        print("not reached", "x")
        """,
    )
    assert proc.returncode == returncode, proc.stderr
    assert "not" not in ids
    (run,) = _runs(tmp_path, ids, "run")
    assert run.status == status
    assert run.error is None


@pytest.mark.parametrize(("code", "returncode"), [("1", 1), ("3", 3), ("'fatal: no data'", 1)])
def test_sys_exit_with_failure_fails_the_open_run(tmp_path: Path, code: str, returncode: int) -> None:
    proc, ids = _run_script(
        tmp_path,
        f"""
        import sys, chachaml
        chachaml.use_store(sys.argv[1])
        run = chachaml.start_run("script")
        print("run", run.id, flush=True)
        sys.exit({code})
        """,
    )
    assert proc.returncode == returncode
    (run,) = _runs(tmp_path, ids, "run")
    assert run.status == "failed"
    assert run.error is not None and run.error["type"] == "SystemExit"
    assert code.strip("'") in run.error["message"]


def test_keyboard_interrupt_escaping_the_script_marks_the_run_killed(tmp_path: Path) -> None:
    proc, ids = _run_script(
        tmp_path,
        """
        import sys, chachaml
        chachaml.use_store(sys.argv[1])
        run = chachaml.start_run("script")
        print("run", run.id, flush=True)
        raise KeyboardInterrupt
        """,
    )
    # Python re-raises SIGINT on itself after finalising, so the parent sees a SIGINT death.
    assert proc.returncode == -signal.SIGINT, proc.stderr
    assert "KeyboardInterrupt" in proc.stderr
    (run,) = _runs(tmp_path, ids, "run")
    assert run.status == "killed"
    assert run.error is not None and run.error["type"] == "KeyboardInterrupt"


def test_runs_left_open_in_nested_layers_and_in_a_daemon_thread_are_all_ended_at_exit(
    tmp_path: Path,
) -> None:
    proc, ids = _run_script(
        tmp_path,
        """
        import sys, threading, chachaml
        chachaml.use_store(sys.argv[1])
        outer = chachaml.start_run("outer")
        inner = chachaml.start_run("inner")            # process stack, child of outer
        block = chachaml.with_run("block")
        in_block = block.__enter__()                     # a with_run never exited
        nested = chachaml.start_run("nested")          # pushed inside the block's scope
        for label, run in [("outer", outer), ("inner", inner), ("block", in_block), ("nested", nested)]:
            print(label, run.id, flush=True)

        ready = threading.Event()

        def daemon():
            with chachaml.with_run("daemon") as run:
                side = chachaml.start_run("daemon_child")
                print("daemon", run.id, flush=True)
                print("daemon_child", side.id, flush=True)
                ready.set()
                threading.Event().wait()                 # never returns: the thread is cut at exit

        threading.Thread(target=chachaml.bind(daemon), daemon=True).start()
        assert ready.wait(60)
        """,
    )
    assert proc.returncode == 0, proc.stderr
    labels = ("outer", "inner", "block", "nested", "daemon", "daemon_child")
    runs = _runs(tmp_path, ids, *labels)
    assert {label: r.status for label, r in zip(labels, runs, strict=True)} == dict.fromkeys(
        labels, "completed"
    )
    by_label = dict(zip(labels, runs, strict=True))
    assert by_label["inner"].parent_id == by_label["outer"].id
    assert by_label["nested"].parent_id == by_label["block"].id
    assert by_label["daemon"].parent_id == by_label["nested"].id
    assert by_label["daemon_child"].parent_id == by_label["daemon"].id


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_that_exits_normally_does_not_end_its_parents_runs(tmp_path: Path) -> None:
    proc, ids = _run_script(
        tmp_path,
        """
        import os, sys, sqlite3, chachaml
        db = sys.argv[1]
        chachaml.use_store(db)
        parent = chachaml.start_run("parent")
        scoped = chachaml.with_run("scoped")
        scoped_run = scoped.__enter__()
        chachaml.log_metric("before_fork", 1.0)
        print("parent", parent.id, flush=True)
        print("scoped", scoped_run.id, flush=True)

        pid = os.fork()
        if pid == 0:
            chachaml.log_metric("from_child", 2.0)   # the child may log to the inherited run
            own = chachaml.start_run("child_own")
            print("child_own", own.id, flush=True)
            sys.exit(0)                              # a normal exit: atexit runs in the child

        _, wait_status = os.waitpid(pid, 0)
        print("child_exit", os.waitstatus_to_exitcode(wait_status), flush=True)
        conn = sqlite3.connect(db)
        rows = dict(conn.execute("SELECT name, status FROM runs").fetchall())
        conn.close()
        print("after_child", rows["parent"] + "," + rows["scoped"] + "," + rows["child_own"], flush=True)
        chachaml.log_metric("after_fork", 3.0)        # still running: the parent can log
        scoped.__exit__(None, None, None)
        chachaml.end_run()
        print("ended", chachaml.last_run(name="parent").status, flush=True)
        """,
    )
    assert proc.returncode == 0, proc.stderr
    assert ids["child_exit"] == "0"
    assert ids["after_child"] == "running,running,completed"
    assert ids["ended"] == "completed"
    parent, scoped, child_own = _runs(tmp_path, ids, "parent", "scoped", "child_own")
    assert parent.status == "completed"
    assert scoped.status == "completed"
    assert scoped.metrics == {"before_fork": 1.0, "from_child": 2.0, "after_fork": 3.0}
    assert child_own.status == "completed"
    assert child_own.parent_id == scoped.id


def test_starting_runs_installs_no_signal_handlers(tmp_path: Path) -> None:
    proc, ids = _run_script(
        tmp_path,
        """
        import signal, sys

        def handlers():
            out = {}
            for sig in signal.valid_signals():
                try:
                    out[int(sig)] = signal.getsignal(sig)
                except (OSError, ValueError):
                    pass
            return out

        before = handlers()
        import chachaml
        chachaml.use_store(sys.argv[1])
        chachaml.start_run("script")
        chachaml.log_metric("loss", 1.0)
        with chachaml.with_run("block"), chachaml.batched():
            chachaml.log_metric("loss", 2.0)
        after = handlers()
        changed = sorted(s for s in before if before[s] is not after.get(s))
        print("checked", len(before))
        print("changed", changed)
        print("sigint_default", signal.getsignal(signal.SIGINT) is signal.default_int_handler)
        """,
    )
    assert proc.returncode == 0, proc.stderr
    assert int(ids["checked"]) > 20
    assert ids["changed"] == "[]"
    assert ids["sigint_default"] == "True"


# -- issue 7: only what actually ends the process decides the status --------------------------------
MONITORED = sys.version_info >= (3, 12)  # sys.monitoring sees a bare `raise SystemExit` (ADR-0006)
needs_monitoring = pytest.mark.skipif(
    not MONITORED, reason="Python 3.11 cannot see a bare `raise SystemExit(n)` escaping (ADR-0006)"
)

_START = """
import sys, chachaml
chachaml.use_store(sys.argv[1])
run = chachaml.start_run("script")
print("run", run.id, flush=True)
"""


@pytest.mark.parametrize(
    "tail",
    [
        # argparse inside try: it calls sys.exit(2), the script catches it and carries on
        """
        import argparse
        parser = argparse.ArgumentParser()
        parser.add_argument("--epochs", type=int)
        try:
            parser.parse_args(["--epochs", "many"])
        except SystemExit:
            print("caught", "yes", flush=True)
        """,
        "try:\n    exit(3)\nexcept SystemExit:\n    pass\n",
        "try:\n    quit('fatal')\nexcept SystemExit:\n    pass\n",
        "try:\n    raise SystemExit(4)\nexcept SystemExit:\n    pass\n",
        # an exception shown with sys.excepthook (as some frameworks report errors) and survived
        "try:\n    1 / 0\nexcept ZeroDivisionError:\n    sys.excepthook(*sys.exc_info())\n",
        # a KeyboardInterrupt handled by the script
        "try:\n    raise KeyboardInterrupt\nexcept KeyboardInterrupt:\n    pass\n",
    ],
    ids=["argparse", "exit", "quit", "raise", "excepthook", "ctrl-c"],
)
def test_a_caught_exit_or_exception_does_not_fail_a_script_that_then_ends_cleanly(
    tmp_path: Path, tail: str
) -> None:
    proc, ids = _run_script(tmp_path, _START + textwrap.dedent(tail) + "\nprint('end', 'reached')\n")
    assert proc.returncode == 0, proc.stderr
    assert ids["end"] == "reached"
    (run,) = _runs(tmp_path, ids, "run")
    assert (run.status, run.error) == ("completed", None)


def test_a_caught_sys_exit_inside_a_function_then_success_completes(tmp_path: Path) -> None:
    proc, ids = _run_script(
        tmp_path,
        _START
        + textwrap.dedent(
            """
            def parse():
                try:
                    sys.exit(2)
                except SystemExit:
                    return "defaults"

            def main():
                parse()
                return 0

            sys.exit(main())
            """
        ),
    )
    assert proc.returncode == 0, proc.stderr
    (run,) = _runs(tmp_path, ids, "run")
    assert (run.status, run.error) == ("completed", None)


def test_a_caught_sys_exit_then_an_uncaught_error_fails_with_that_error(tmp_path: Path) -> None:
    proc, ids = _run_script(
        tmp_path,
        _START + "try:\n    sys.exit(0)\nexcept SystemExit:\n    pass\nraise ValueError('late')\n",
    )
    assert proc.returncode == 1
    (run,) = _runs(tmp_path, ids, "run")
    assert run.status == "failed"
    assert run.error is not None and (run.error["type"], run.error["message"]) == ("ValueError", "late")


@pytest.mark.parametrize(("call", "returncode"), [("exit(3)", 3), ("quit('fatal: no data')", 1)])
def test_the_builtin_exit_with_failure_fails_the_open_run(tmp_path: Path, call: str, returncode: int) -> None:
    proc, ids = _run_script(tmp_path, _START + f"def main():\n    {call}\nmain()\n")
    assert proc.returncode == returncode, proc.stderr
    (run,) = _runs(tmp_path, ids, "run")
    assert run.status == "failed"
    assert run.error is not None and run.error["type"] == "SystemExit"


@pytest.mark.parametrize(
    ("tail", "returncode", "message"),
    [
        ("raise SystemExit(3)\n", 3, "3"),
        ("raise SystemExit('fatal: no data')\n", 1, "fatal: no data"),
        ("def main():\n    return 2\n\nraise SystemExit(main())\n", 2, "2"),
        ("def main():\n    raise SystemExit(5)\n\nmain()\n", 5, "5"),
    ],
    ids=["top-level", "message", "main-idiom", "in-function"],
)
@needs_monitoring
def test_a_bare_raise_system_exit_with_failure_fails_the_open_run(
    tmp_path: Path, tail: str, returncode: int, message: str
) -> None:
    proc, ids = _run_script(tmp_path, _START + tail)
    assert proc.returncode == returncode, proc.stderr
    (run,) = _runs(tmp_path, ids, "run")
    assert run.status == "failed"
    assert run.error is not None and run.error["type"] == "SystemExit"
    assert message in run.error["message"]


@needs_monitoring
def test_raise_system_exit_zero_after_a_caught_failure_completes(tmp_path: Path) -> None:
    proc, ids = _run_script(
        tmp_path,
        _START
        + "def main():\n    try:\n        sys.exit(2)\n    except SystemExit:\n        pass\n"
        + "    raise SystemExit(0)\n\nmain()\n",
    )
    assert proc.returncode == 0, proc.stderr
    (run,) = _runs(tmp_path, ids, "run")
    assert (run.status, run.error) == ("completed", None)


def test_system_exit_in_a_worker_thread_does_not_fail_the_process_runs(tmp_path: Path) -> None:
    proc, ids = _run_script(
        tmp_path,
        _START + "import threading\nt = threading.Thread(target=sys.exit, args=(3,))\nt.start()\nt.join()\n",
    )
    assert proc.returncode == 0, proc.stderr
    (run,) = _runs(tmp_path, ids, "run")
    assert (run.status, run.error) == ("completed", None)


def test_a_module_run_with_dash_m_that_exits_non_zero_fails_the_open_run(tmp_path: Path) -> None:
    (tmp_path / "trainmod.py").write_text(
        textwrap.dedent(_START) + "def main():\n    sys.exit(4)\n\nif __name__ == '__main__':\n    main()\n"
    )
    proc = subprocess.run(
        [sys.executable, "-m", "trainmod", str(tmp_path / "runs.db")],
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        cwd=tmp_path,
        check=False,
    )
    assert proc.returncode == 4, proc.stderr
    ids = dict(line.split(" ", 1) for line in proc.stdout.splitlines())
    (run,) = _runs(tmp_path, ids, "run")
    assert run.status == "failed"


@pytest.mark.parametrize("code", ["0.0", "'0'", "[]"])
def test_sys_exit_with_a_zero_like_code_that_is_not_an_int_fails_as_python_exits_1(
    tmp_path: Path, code: str
) -> None:
    proc, ids = _run_script(tmp_path, _START + f"sys.exit({code})\n")
    assert proc.returncode == 1  # CPython prints a non-int code and exits with status 1
    (run,) = _runs(tmp_path, ids, "run")
    assert run.status == "failed"
