"""docs/integrations.md's examples run, with the real frameworks (like tests/test_docs.py)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from _frameworks import need
from test_docs import python_blocks

pytestmark = [
    pytest.mark.frameworks,
    # Third-party deprecations under torch 2.13 / numpy 2 (see the per-framework test modules).
    pytest.mark.filterwarnings(r"ignore:`isinstance\(treespec, LeafSpec\)` is deprecated:FutureWarning"),
    pytest.mark.filterwarnings(
        "ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning"
    ),
]

PAGE = Path(__file__).resolve().parents[1] / "docs" / "integrations.md"


def test_every_python_example_on_the_integrations_page_runs() -> None:
    os.environ.setdefault("KERAS_BACKEND", "torch")
    for module in ("torch", "lightning", "transformers", "accelerate", "keras", "optuna", "sklearn"):
        need(module)
    blocks = python_blocks(PAGE.read_text(encoding="utf-8"))
    assert len(blocks) >= 7, "one example per framework, the Optuna with-form and system metrics"
    namespace: dict[str, object] = {"__name__": "docs_integrations"}
    for number, source in enumerate(blocks, 1):
        exec(compile(source, f"integrations.md (python block {number})", "exec"), namespace)
    import chachaml

    assert chachaml.current_run() is None, "the examples leave no run open"
    assert {r.tags.get("framework") for r in chachaml.runs()} >= {
        "lightning",
        "transformers",
        "keras",
        "sklearn",
    }
