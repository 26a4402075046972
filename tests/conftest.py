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


class Clock:
    """An injectable millisecond clock (SPEC: no sleeps, no wall-clock races in tests).

    Each call returns ``now`` and then advances it by ``step``: ``step=0`` freezes time (every
    run starts in the same millisecond), ``step=1`` makes every reading distinct.
    """

    def __init__(self, now: int, step: int = 0) -> None:
        self.now = now
        self.step = step

    def __call__(self) -> int:
        now = self.now
        self.now += self.step
        return now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    """Replace the clock that stamps runs and cut-offs (``_process.now_ms``) with a ``Clock``."""
    from chachaml import _lifecycle, _process, tracking

    fake = Clock(_process.now_ms())
    monkeypatch.setattr(_process, "now_ms", fake)  # what the Client reads
    monkeypatch.setattr(_lifecycle, "now_ms", fake)
    monkeypatch.setattr(tracking, "_now", fake)  # bound at import for the hot path
    return fake
