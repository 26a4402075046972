"""The ``chachaml`` command line (SPEC 9.1), run as real subprocesses."""

from __future__ import annotations

import csv
import io
import json
import math
import os
import queue
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

import chachaml

pytestmark = pytest.mark.slow

BIN = Path(sys.executable).with_name("chachaml")


def cli(
    *args: str,
    cwd: Path,
    env: dict[str, str] | None = None,
    stdin: str | None = None,
    module: bool = False,
) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if k != "CHACHAML_STORE"}
    full_env.update({"COLUMNS": "80", **(env or {})})
    cmd = [sys.executable, "-m", "chachaml"] if module else [str(BIN)]
    return subprocess.run(
        [*cmd, *args],
        cwd=cwd,
        env=full_env,
        input=stdin if stdin is not None else "",
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture
def store(tmp_path: Path) -> dict[str, Any]:
    path = tmp_path / "runs.db"
    with chachaml.with_store(str(path)):
        with chachaml.with_run("a-rather-long-run-name-that-will-not-fit", experiment="vision") as a:
            chachaml.log_params({"lr": 0.1, "opt": "adam"})
            for i, v in enumerate([0.9, 0.5, 0.7]):
                chachaml.log_metric("loss", v, step=i)
            chachaml.log_metric("acc", math.nan)
            for k in range(6):
                chachaml.log_metric(f"metric_with_a_long_name_{k}", k * 1000.123456)
            chachaml.set_tags({"team": "cv"})
            chachaml.set_note("first line\nsecond line")
            chachaml.log_artifact("model.txt", "w")
            with chachaml.with_run("child", experiment="vision") as child:
                chachaml.log_param("lr", 0.2)
        with chachaml.with_run("b", experiment="nlp") as b:
            chachaml.log_params({"lr": 0.3, "opt": "sgd"})
            chachaml.log_metric("loss", 0.4)
        chachaml.register_model("net", artifact="model.txt", run_id=a.id)
    return {"path": path, "a": a.id, "b": b.id, "child": child.id, "cwd": tmp_path}


def test_runs_prints_a_table_that_fits_80_columns_with_short_ids(store: dict[str, Any]) -> None:
    r = cli("runs", "--store", str(store["path"]), cwd=store["cwd"])
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].split()[:4] == ["id", "name", "experiment", "status"]
    assert all(len(line) <= 80 for line in lines), r.stdout
    ids = [line.split()[0] for line in lines[2:]]
    assert ids == [store["b"][:8], store["child"][:8], store["a"][:8]]  # newest first
    assert "a-rather" in r.stdout and "…" in r.stdout  # a long name is cut, not wrapped


def test_runs_json_is_one_document_of_run_objects(store: dict[str, Any]) -> None:
    r = cli("runs", "--json", "--store", str(store["path"]), cwd=store["cwd"])
    assert r.returncode == 0
    runs = json.loads(r.stdout)
    assert [x["id"] for x in runs] == [store["b"], store["child"], store["a"]]
    assert runs[2]["metrics"]["acc"] == "NaN"  # strict JSON: no bare NaN token
    assert set(runs[0]) >= {"id", "name", "experiment", "status", "params", "metrics", "tags"}


def test_runs_csv_has_full_ids_and_prefixed_columns(store: dict[str, Any]) -> None:
    r = cli("runs", "--csv", "--experiment", "nlp", "--store", str(store["path"]), cwd=store["cwd"])
    rows = list(csv.DictReader(io.StringIO(r.stdout)))
    assert [row["id"] for row in rows] == [store["b"]]
    assert rows[0]["params.lr"] == "0.3" and rows[0]["metrics.loss"] == "0.4"


def test_runs_filters_where_order_limit(store: dict[str, Any]) -> None:
    base = ["runs", "--json", "--store", str(store["path"])]
    where = json.loads(cli(*base, "--where", "params.lr >= 0.2", cwd=store["cwd"]).stdout)
    assert {x["id"] for x in where} == {store["b"], store["child"]}
    ordered = json.loads(cli(*base, "--order-by", "params.lr asc", "--limit", "1", cwd=store["cwd"]).stdout)
    assert [x["id"] for x in ordered] == [store["a"]]


def test_store_flag_beats_the_environment_which_beats_the_default(
    store: dict[str, Any], tmp_path: Path
) -> None:
    other = tmp_path / "other"
    other.mkdir()
    with chachaml.with_store(str(other / "chachaml.db")), chachaml.with_run("in-default-file"):
        pass
    default = json.loads(cli("runs", "--json", cwd=other).stdout)
    assert [x["name"] for x in default] == ["in-default-file"]
    env = json.loads(cli("runs", "--json", cwd=other, env={"CHACHAML_STORE": str(store["path"])}).stdout)
    assert len(env) == 3
    flag = json.loads(
        cli(
            "--store",
            str(other / "chachaml.db"),
            "runs",
            "--json",
            cwd=other,
            env={"CHACHAML_STORE": str(store["path"])},
        ).stdout
    )
    assert [x["name"] for x in flag] == ["in-default-file"]


@pytest.mark.parametrize(
    "args",
    [
        ["runs"],
        ["show", "abc"],
        ["compare", "abc"],
        ["export"],
        ["experiments"],
        ["models"],
        ["runs", "--json"],
    ],
)
def test_reads_never_create_a_database(tmp_path: Path, args: list[str]) -> None:
    r = cli(*args, cwd=tmp_path)
    assert r.returncode == 1
    assert str(tmp_path / "chachaml.db") in r.stderr and "--store" in r.stderr
    assert "Traceback" not in r.stderr and r.stdout == ""
    assert list(tmp_path.iterdir()) == []


def test_errors_exit_1_with_the_message_and_no_traceback(store: dict[str, Any]) -> None:
    s = str(store["path"])
    bad_query = cli("runs", "--where", "params.lr <<", "--store", s, cwd=store["cwd"])
    assert bad_query.returncode == 1
    assert "params.lr <<" in bad_query.stderr and "^" in bad_query.stderr
    assert "Traceback" not in bad_query.stderr
    unknown = cli("show", "ffffffff", "--store", s, cwd=store["cwd"])
    assert unknown.returncode == 1 and "ffffffff" in unknown.stderr and "Traceback" not in unknown.stderr


@pytest.mark.parametrize(
    "args", [[], ["nonsense"], ["runs", "--bogus"], ["runs", "--limit", "ten"], ["promote", "m", "1", "live"]]
)
def test_usage_errors_exit_2(tmp_path: Path, args: list[str]) -> None:
    r = cli(*args, cwd=tmp_path)
    assert r.returncode == 2 and "usage:" in r.stderr


def test_show_prints_everything_and_its_json_twin(store: dict[str, Any]) -> None:
    s = str(store["path"])
    text = cli("show", store["a"][:8], "--store", s, cwd=store["cwd"])
    assert text.returncode == 0, text.stderr
    for piece in ("params (2)", "lr", "adam", "metrics", "team", "first line", "model.txt", "children (1)"):
        assert piece in text.stdout
    assert all(len(line) <= 80 for line in text.stdout.splitlines()), text.stdout
    doc = json.loads(cli("show", store["a"][:10], "--json", "--store", s, cwd=store["cwd"]).stdout)
    assert doc["id"] == store["a"] and doc["children"] == [store["child"]]
    assert [a["name"] for a in doc["artifacts"]] == ["model.txt"]
    assert doc["metric_summaries"]["loss"] == {
        "last": 0.7,
        "min": 0.5,
        "max": 0.9,
        "count": 3,
        "last_step": 2,
    }
    assert doc["metrics"]["loss"] == 0.7  # the run object's own keys are unchanged


def test_compare(store: dict[str, Any]) -> None:
    s = str(store["path"])
    doc = json.loads(cli("compare", store["a"], store["b"], "--json", "--store", s, cwd=store["cwd"]).stdout)
    assert doc["params"]["differ"] == {"lr": [0.1, 0.3], "opt": ["adam", "sgd"]}
    text = cli("compare", store["a"][:8], store["b"][:8], "--store", s, cwd=store["cwd"]).stdout
    assert "params.lr" in text and all(len(line) <= 80 for line in text.splitlines())


def test_export_to_stdout_and_to_a_file(store: dict[str, Any]) -> None:
    s = str(store["path"])
    out = cli("export", "--experiment", "nlp", "--store", s, cwd=store["cwd"])
    assert out.stdout.splitlines()[0].startswith("id,")
    target = store["cwd"] / "out.json"
    r = cli("export", "--format", "json", "-o", str(target), "--store", s, cwd=store["cwd"])
    assert r.returncode == 0 and r.stdout == ""
    assert len(json.loads(target.read_text())) == 3


def test_export_to_a_folder_that_does_not_exist_is_an_error(store: dict[str, Any]) -> None:
    target = store["cwd"] / "no" / "such" / "out.csv"
    r = cli("export", "-o", str(target), "--store", str(store["path"]), cwd=store["cwd"])
    assert r.returncode == 1 and str(target) in r.stderr and "Traceback" not in r.stderr


def test_experiments_models_promote_and_alias(store: dict[str, Any]) -> None:
    s = str(store["path"])
    exps = json.loads(cli("experiments", "--json", "--store", s, cwd=store["cwd"]).stdout)
    assert {e["name"]: e["run_count"] for e in exps} == {"vision": 2, "nlp": 1}
    assert "vision" in cli("experiments", "--store", s, cwd=store["cwd"]).stdout
    assert cli("promote", "net", "1", "production", "--store", s, cwd=store["cwd"]).returncode == 0
    assert cli("alias", "net", "champion", "1", "--store", s, cwd=store["cwd"]).returncode == 0
    models = json.loads(cli("models", "--json", "--store", s, cwd=store["cwd"]).stdout)
    assert models[0]["production_version"] == 1 and models[0]["aliases"] == {"champion": 1}
    one = json.loads(cli("models", "net", "--json", "--store", s, cwd=store["cwd"]).stdout)
    assert one["versions"][0]["stage"] == "production" and one["versions"][0]["aliases"] == ["champion"]
    assert [e["kind"] for e in one["history"]] == ["register", "stage", "alias"]
    table = cli("models", "net", "--store", s, cwd=store["cwd"]).stdout
    assert "production" in table and "champion" in table
    missing = cli("promote", "net", "7", "staging", "--store", s, cwd=store["cwd"])
    assert missing.returncode == 1 and "Traceback" not in missing.stderr


def test_delete_refuses_without_yes_when_stdin_is_not_a_terminal(store: dict[str, Any]) -> None:
    s = str(store["path"])
    r = cli("delete", store["b"][:8], "--store", s, cwd=store["cwd"])
    assert r.returncode == 1 and "--yes" in r.stderr
    with chachaml.with_store(s):
        assert chachaml.get_run(store["b"]).id == store["b"]
    ok = cli("delete", store["b"][:8], "--yes", "--store", s, cwd=store["cwd"])
    assert ok.returncode == 0, ok.stderr
    with chachaml.with_store(s), pytest.raises(chachaml.RunNotFoundError):
        chachaml.get_run(store["b"])


def test_delete_asks_on_a_terminal(store: dict[str, Any]) -> None:
    pexpect = pytest.importorskip("pexpect")
    s = str(store["path"])
    env = {k: v for k, v in os.environ.items() if k != "CHACHAML_STORE"}
    no = pexpect.spawn(str(BIN), ["delete", store["b"], "--store", s], env=env, timeout=60, encoding="utf-8")
    no.expect(r"\[y/N\]")
    no.sendline("n")
    no.expect(pexpect.EOF)
    no.close()
    assert no.exitstatus == 1
    yes = pexpect.spawn(str(BIN), ["delete", store["b"], "--store", s], env=env, timeout=60, encoding="utf-8")
    yes.expect(r"\[y/N\]")
    yes.sendline("y")
    yes.expect(pexpect.EOF)
    yes.close()
    assert yes.exitstatus == 0
    with chachaml.with_store(s), pytest.raises(chachaml.RunNotFoundError):
        chachaml.get_run(store["b"])


def test_archive_hides_runs_and_all_shows_them(store: dict[str, Any]) -> None:
    s = str(store["path"])
    r = cli(
        "archive", "--older-than-days", "0", "--experiment", "nlp", "--json", "--store", s, cwd=store["cwd"]
    )
    assert json.loads(r.stdout) == {"archived": 1}
    visible = json.loads(cli("runs", "--json", "--store", s, cwd=store["cwd"]).stdout)
    everything = json.loads(cli("runs", "--json", "--all", "--store", s, cwd=store["cwd"]).stdout)
    assert store["b"] not in [x["id"] for x in visible] and store["b"] in [x["id"] for x in everything]


@pytest.mark.parametrize("days", ["1e16", "nan", "-1"])
def test_archive_refuses_impossible_ages(store: dict[str, Any], days: str) -> None:
    r = cli("archive", "--older-than-days", days, "--store", str(store["path"]), cwd=store["cwd"])
    assert r.returncode == 1 and "older_than_days" in r.stderr and "Traceback" not in r.stderr


def test_gc_dry_run(store: dict[str, Any]) -> None:
    s = str(store["path"])
    orphan = Path(str(store["path"])[:-3] + "-artifacts") / store["a"] / "orphan.bin"
    orphan.write_bytes(b"x" * 10)
    dry = json.loads(cli("gc", "--dry-run", "--json", "--store", s, cwd=store["cwd"]).stdout)
    assert dry["dry_run"] is True and dry["removed"] == [f"{store['a']}/orphan.bin"]
    assert orphan.exists()
    real = cli("gc", "--store", s, cwd=store["cwd"])
    assert real.returncode == 0 and "removed 1 file" in real.stdout and not orphan.exists()


def test_python_dash_m_is_the_same_command(store: dict[str, Any]) -> None:
    a = cli("runs", "--json", "--store", str(store["path"]), cwd=store["cwd"])
    b = cli("runs", "--json", "--store", str(store["path"]), cwd=store["cwd"], module=True)
    assert a.returncode == b.returncode == 0 and json.loads(a.stdout) == json.loads(b.stdout)


def _first_line(proc: subprocess.Popen[str]) -> str:
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: lines.put(proc.stdout.readline()), daemon=True).start()  # type: ignore[union-attr]
    return lines.get(timeout=60)


def test_ui_prints_its_url_first_opens_a_browser_and_stops_on_ctrl_c(
    store: dict[str, Any], tmp_path: Path
) -> None:
    opened = tmp_path / "opened.txt"
    fake = tmp_path / "browser.py"
    fake.write_text(f"import sys; open({str(opened)!r}, 'w').write(sys.argv[1])\n")
    env = {k: v for k, v in os.environ.items() if k != "CHACHAML_STORE"}
    env["BROWSER"] = f"{sys.executable} {fake} %s"
    proc = subprocess.Popen(
        [str(BIN), "ui", "--store", str(store["path"]), "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        line = _first_line(proc)
        assert line.startswith("chachaml UI at http://127.0.0.1:") and line.endswith("/\n")
        url = line.split(" at ", 1)[1].strip()
        with urllib.request.urlopen(url + "api/v1/experiments", timeout=30) as resp:
            assert json.loads(resp.read())["experiments"]
        deadline = time.monotonic() + 60
        while not opened.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert opened.read_text() == url
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "Traceback" not in err


def test_ui_on_a_port_in_use_says_so(tmp_path: Path) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        r = cli("ui", "--port", str(port), "--no-browser", cwd=tmp_path)
    assert r.returncode == 1 and f"127.0.0.1:{port}" in r.stderr and "--port" in r.stderr
    assert "Traceback" not in r.stderr and r.stdout == ""


def test_ui_over_a_missing_file_creates_nothing_until_a_write(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [str(BIN), "ui", "--port", "0", "--no-browser"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={k: v for k, v in os.environ.items() if k != "CHACHAML_STORE"},
    )
    try:
        url = _first_line(proc).split(" at ", 1)[1].strip()
        with urllib.request.urlopen(url + "api/v1/runs", timeout=30) as resp:
            assert json.loads(resp.read()) == {"runs": [], "next_offset": None}
        assert not (tmp_path / "chachaml.db").exists()
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=30)
    assert proc.returncode == 0
