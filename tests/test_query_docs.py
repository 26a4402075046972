"""The examples in docs/query.md and docs/guide-analysis.md run (like tests/test_docs.py)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parent.parent / "docs"
_BLOCK = re.compile(r"^```python\n(.*?)^```", re.MULTILINE | re.DOTALL)


@pytest.mark.parametrize("page", ["query.md", "guide-analysis.md"])
def test_every_python_example_on_the_page_runs(page: str, capsys: pytest.CaptureFixture[str]) -> None:
    blocks = _BLOCK.findall((DOCS / page).read_text(encoding="utf-8"))
    assert len(blocks) >= 4
    namespace: dict[str, object] = {"__name__": f"docs_{page.removesuffix('.md')}"}
    for number, source in enumerate(blocks, 1):
        exec(compile(source, f"{page} (python block {number})", "exec"), namespace)


def test_the_error_example_in_query_md_prints_what_the_page_shows(capsys: pytest.CaptureFixture[str]) -> None:
    import chachaml

    text = (DOCS / "query.md").read_text(encoding="utf-8")
    shown = text.split("```text\n", 1)[1].split("```", 1)[0]
    with pytest.raises(chachaml.QueryError) as info:
        chachaml.runs(where="params.lr < 0.1 and metrics.acc = 'high'")
    assert str(info.value) == shown.rstrip("\n")
