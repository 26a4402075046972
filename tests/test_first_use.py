"""First use (issue 12; docs/adr/0028-first-use-imports.md): what a first ``log_metric`` loads,
and that every verb whose modules now load on first use still works in a fresh interpreter.

Each check runs in a new ``python`` process: in this one, other tests have imported everything.
"""

from __future__ import annotations

import importlib.util
import json
import os
import platform
import signal
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest


def _python(code: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHACHAML")}
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


# Modules a first use_store + start_run + log_metric does not need, and no longer loads.
NOT_LOADED_BY_A_FIRST_LOG = [
    "chachaml.automation_entities",
    "chachaml._automation_rules",
    "chachaml._registry_entities",
    "chachaml.results",
    "chachaml.formats",
    "chachaml._png",
    "chachaml._downsample",
    "chachaml.store._files",
    "chachaml.store._artifact_files",
    "shutil",
    "bz2",
    "lzma",
    "uuid",
    "platform",
    "pathlib",
    "urllib.parse",
]
if importlib.util.find_spec("_sha256") or importlib.util.find_spec("_sha2"):  # CPython's own SHA-256
    NOT_LOADED_BY_A_FIRST_LOG.append("hashlib")
if not sys.platform.startswith("linux"):  # elsewhere platform_text asks platform.platform()
    NOT_LOADED_BY_A_FIRST_LOG.remove("platform")


def test_a_first_log_loads_none_of_the_modules_it_does_not_need(tmp_path: Path) -> None:
    out = _python(
        f"""
        import sys, chachaml
        chachaml.use_store({str(tmp_path / "a.db")!r})
        chachaml.start_run()
        chachaml.log_metric("x", 1.0)
        print(sorted(m for m in {NOT_LOADED_BY_A_FIRST_LOG!r} if m in sys.modules))
        """,
        tmp_path,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]", out.stdout
    # The process ended cleanly, so the run is completed and its point is in the file.
    with sqlite3.connect(tmp_path / "a.db") as conn:
        assert conn.execute("SELECT status FROM runs").fetchall() == [("completed",)]
        assert conn.execute("SELECT key, value FROM metrics").fetchall() == [("x", 1.0)]


# Each block uses the verbs of one area whose modules load on first use, in a fresh interpreter,
# and prints what it got back; the test compares that with what the verbs must return.
AREAS = {
    "artifacts": """
        run = chachaml.start_run()
        a = chachaml.log_artifact("cfg", {"lr": 0.1})
        src = os.path.join(os.path.dirname(db), "f.bin")
        open(src, "wb").write(b"abc")
        f = chachaml.log_file(src)
        t = chachaml.log_table("tbl", [{"a": 1}, {"a": 2}])
        chachaml.end_run()
        result = [type(a).__name__, a.format, chachaml.load_artifact(run.id, "cfg"),
                  chachaml.load_artifact(run.id, "f.bin").decode(), chachaml.load_artifact(run.id, "tbl"),
                  sorted(x.name for x in chachaml.list_artifacts(run.id)), f.size, t.format]
        """,
    "gc": """
        run = chachaml.start_run(); chachaml.log_artifact("cfg", {"lr": 0.1}); chachaml.end_run()
        r = chachaml.gc_artifacts(dry_run=True)
        result = [type(r).__name__, type(r).__module__, r.removed, r.dry_run]
        """,
    "registry": """
        run = chachaml.start_run(); chachaml.log_artifact("model", {"w": 1}); chachaml.end_run()
        v1 = chachaml.register_model("m", artifact="model", run_id=run.id)
        v2 = chachaml.register_model("m", artifact="model", run_id=run.id)
        chachaml.promote("m", 2, "production")
        m = chachaml.model("m")
        d = chachaml.diff_versions("m", 1, 2)
        result = [type(v1).__name__, v1.version, v2.version, m.name, len(m.versions),
                  [e.kind for e in chachaml.model_history("m")][:2], type(d).__name__,
                  chachaml.load_model("m")]
        """,
    "alerts": """
        a = chachaml.add_alert("high", "loss", ">", 1.0)  # counts the points logged from now on
        run = chachaml.start_run(); chachaml.log_metric("loss", 5.0); chachaml.end_run()
        fired = chachaml.check_alerts()
        result = [type(a).__name__, a.version, [(e.alert, e.value) for e in fired],
                  [x.name for x in chachaml.alerts()], len(chachaml.alert_history("high"))]
        """,
    "pipelines": """
        out = chachaml.run_pipeline("p", [("a", lambda _: 1), ("b", lambda x: x + 1)])
        p = chachaml.pipelines()[0]
        again = chachaml.get_pipeline(p.id)
        result = [out, type(p).__name__, p.status, [s.status for s in again.steps]]
        """,
    "queries": """
        r1 = chachaml.start_run(); chachaml.log_param("lr", 0.1)
        for i in range(10): chachaml.log_metric("loss", float(i), step=i)
        chachaml.end_run()
        r2 = chachaml.start_run(); chachaml.log_param("lr", 0.2); chachaml.end_run()
        listed = chachaml.runs()
        c = chachaml.compare_runs([r1.id, r2.id])
        points, count = chachaml.Client(db).metric_window(r1.id, "loss", max_points=4)  # the UI's windows
        found = chachaml.runs(where="params.lr > 0.15")
        result = [type(listed).__name__, len(listed), type(c).__name__, count, len(points) <= 4,
                  points[0].step, points[-1].step, [r.id == r2.id for r in found]]
        """,
}

EXPECTED = {
    "artifacts": [
        "Artifact",
        "pickle",
        {"lr": 0.1},
        "abc",
        [{"a": 1}, {"a": 2}],
        ["cfg", "f.bin", "tbl"],
        3,
        "table",
    ],
    "gc": ["GcReport", "chachaml.entities", [], True],
    "registry": ["ModelVersion", 1, 2, "m", 2, ["register", "register"], "Comparison", {"w": 1}],
    "alerts": ["Alert", 1, [["high", 5.0]], ["high"], 1],
    "pipelines": [2, "Pipeline", "completed", ["completed", "completed"]],
    "queries": ["RunList", 2, "Comparison", 10, True, 0, 9, [True]],
}


@pytest.mark.parametrize("area", sorted(AREAS))
def test_every_lazily_loaded_area_works_on_its_first_use(area: str, tmp_path: Path) -> None:
    db = str(tmp_path / "s.db")
    code = f"import json, os, chachaml\ndb = {db!r}\nchachaml.use_store(db)\n"
    code += textwrap.dedent(AREAS[area]) + "\nprint(json.dumps(result))\n"
    out = _python(code, tmp_path)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout.strip().splitlines()[-1]) == EXPECTED[area]


def _env_of_only_run(db: Path) -> dict[str, object]:
    with sqlite3.connect(db) as conn:
        ((env,),) = conn.execute("SELECT env FROM runs").fetchall()
    return dict(json.loads(env))


def test_the_environment_is_recorded_by_start_run_itself(tmp_path: Path) -> None:
    """A run killed right after start_run (SIGKILL: no exit hook runs) has its environment, with
    the same python, implementation and platform texts the platform module gives."""
    db = tmp_path / "k.db"
    out = _python(
        f"""
        import os, signal, chachaml
        chachaml.use_store({str(db)!r})
        chachaml.start_run()
        os.kill(os.getpid(), signal.SIGKILL)
        """,
        tmp_path,
    )
    assert out.returncode == -signal.SIGKILL
    env = _env_of_only_run(db)
    assert env["python"] == platform.python_version()
    assert env["implementation"] == platform.python_implementation()
    assert env["platform"] == platform.platform()
    assert isinstance(env["packages"], str)  # the digest of the package list (ADR-0018)
    with sqlite3.connect(db) as conn:
        ((packages,),) = conn.execute("SELECT packages FROM env_packages").fetchall()
    import hashlib

    assert hashlib.sha256(packages.encode("utf-8")).hexdigest() == env["packages"]
    assert json.loads(packages).get("pytest") is not None


def test_a_run_that_ends_at_once_has_its_environment(tmp_path: Path) -> None:
    db = tmp_path / "e.db"
    out = _python(
        f"""
        import chachaml
        chachaml.use_store({str(db)!r})
        chachaml.start_run()
        chachaml.end_run()
        print(chachaml.last_run().env["python"])
        """,
        tmp_path,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == platform.python_version()
    assert _env_of_only_run(db)["cwd"] == str(tmp_path)
