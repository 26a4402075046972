"""Shared fixtures: every test starts from an empty process layer in its own directory."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]


@pytest.fixture(autouse=True)
def _isolated_process(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Run each test in its own cwd with no process-level store or runs left by another test."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CHACHAML_STORE", raising=False)
    monkeypatch.delenv("CHACHAML_USER", raising=False)
    monkeypatch.delenv("CHACHAML_EXPERIMENT", raising=False)
    from chachaml import context

    context._reset_process_layer()
    yield
    context._reset_process_layer()
    context.process.open_runs.clear()
