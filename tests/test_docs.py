"""The documentation's code examples run, so the docs cannot rot (like sqlite-utils' test_docs).

Each listed page's ```python blocks are executed in order, in one namespace, in a fresh folder
(the autouse fixture in conftest.py changes into ``tmp_path`` and empties the process layer).
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
EXECUTED = ["quickstart.md", "concepts.md", "durability.md", "automation.md"]

_BLOCK = re.compile(r"^```python\n(.*?)^```", re.MULTILINE | re.DOTALL)


def python_blocks(text: str) -> list[str]:
    return [m.group(1) for m in _BLOCK.finditer(text)]


@pytest.mark.parametrize("page", EXECUTED)
def test_every_python_example_on_the_page_runs(page: str) -> None:
    blocks = python_blocks((DOCS / page).read_text(encoding="utf-8"))
    assert blocks, f"{page} has no ```python blocks to run"
    namespace: dict[str, object] = {"__name__": f"docs_{page.removesuffix('.md')}"}
    for number, source in enumerate(blocks, 1):
        code = compile(source, f"{page} (python block {number})", "exec")
        exec(code, namespace)


def test_block_extraction_finds_blocks_in_order_and_skips_other_languages() -> None:
    text = "x\n```python\na = 1\n```\n```bash\nls\n```\n```python\nb = a\n```\n"
    assert python_blocks(text) == ["a = 1\n", "b = a\n"]


def test_the_readme_example_runs() -> None:
    blocks = python_blocks((ROOT / "README.md").read_text(encoding="utf-8"))
    assert blocks
    namespace: dict[str, object] = {"__name__": "docs_readme"}
    for number, source in enumerate(blocks, 1):
        exec(compile(source, f"README.md (python block {number})", "exec"), namespace)


def readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    return [line.strip() for line in re.findall(r"```bash\n(.*?)```", text, re.DOTALL)]


def test_readme_shows_exactly_two_commands_install_demo_and_test() -> None:
    commands = readme_commands()
    assert len(commands) == 2, commands
    install, test = commands
    assert install.endswith("-m chachaml.demo")
    assert "pip install -e '.[dev]'" in test
    assert test.endswith("-m pytest")


def test_ci_runs_exactly_the_readme_test_command() -> None:
    script = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    test_command = readme_commands()[1]
    run_lines = [line for line in script.splitlines() if line.startswith("python3 ")]
    assert run_lines == [test_command]
    assert shlex.split(test_command)  # well-formed shell


def test_every_page_the_docs_link_to_exists() -> None:
    pages = [ROOT / "README.md", *DOCS.rglob("*.md")]
    missing = []
    for page in pages:
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", page.read_text(encoding="utf-8")):
            if "://" in target:
                continue
            if not (page.parent / target).exists():
                missing.append(f"{page.relative_to(ROOT)} -> {target}")
    assert not missing, missing


# -- docs/schema.md -----------------------------------------------------------------------------
def _populated_store(path: Path) -> None:
    """A store with the shapes the schema page's queries look for (nested, failed, NaN)."""
    import chachaml

    with chachaml.with_store(path):
        with chachaml.with_run("parent", experiment="docs") as parent:
            chachaml.log_params({"lr": 0.01, "optimizer": {"name": "adam"}})
            for loss in (0.9, 0.5, float("nan"), 0.4):
                chachaml.log_metric("loss", loss)
            with chachaml.with_run("child", experiment="docs"):
                chachaml.log_metric("loss", 0.3)
        with pytest.raises(ZeroDivisionError), chachaml.with_run("broken", experiment="docs"):
            chachaml.log_metric("loss", 2.0)
            _ = 1 / 0
        chachaml.runs()  # a chachaml read folds the points into metric_summary
        assert parent.id


def schema_page_columns() -> dict[str, list[str]]:
    text = (DOCS / "schema.md").read_text(encoding="utf-8")
    tables: dict[str, list[str]] = {}
    for m in re.finditer(r"^### `(\w+)`\n(.*?)(?=^#)", text + "\n#", re.MULTILINE | re.DOTALL):
        tables[m.group(1)] = re.findall(r"^\| `(\w+)` \|", m.group(2), re.MULTILINE)
    return tables


def test_every_sql_query_on_the_schema_page_runs_and_finds_rows(tmp_path: Path) -> None:
    import sqlite3

    db = tmp_path / "docs.db"
    _populated_store(db)
    blocks = re.findall(r"^```sql\n(.*?)^```", (DOCS / "schema.md").read_text(encoding="utf-8"), re.M | re.S)
    assert len(blocks) >= 5
    con = sqlite3.connect(db)
    try:
        for sql in blocks:
            rows = con.execute(sql).fetchall()
            assert rows, f"no rows from:\n{sql}"
    finally:
        con.close()


def test_the_schema_page_documents_every_table_and_column(tmp_path: Path) -> None:
    import sqlite3

    db = tmp_path / "docs.db"
    _populated_store(db)
    con = sqlite3.connect(db)
    try:
        actual = {
            name: [c[1] for c in con.execute(f"PRAGMA table_info({name})")]
            for (name,) in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        }
    finally:
        con.close()
    documented = schema_page_columns()
    assert {t: documented.get(t) for t in actual} == actual
