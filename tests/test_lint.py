"""The README's test command keeps the code clean: ruff (lint and format) and mypy --strict.

They run as the developers run them, from the repository root with the configuration in
pyproject.toml, so CI fails on a lint or type error just as it fails on a broken test.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, timeout=600, check=False
    )


@pytest.fixture(scope="module", autouse=True)
def _source_checkout() -> None:
    if not (ROOT / "pyproject.toml").is_file() or not (ROOT / "src" / "chachaml").is_dir():
        pytest.skip("not a source checkout: the linters check the repository, not an installed package")


@pytest.mark.parametrize(
    "command",
    [("ruff", "check", "src", "tests"), ("ruff", "format", "--check", "src", "tests")],
    ids=["ruff-check", "ruff-format"],
)
def test_ruff_is_clean(command: tuple[str, ...]) -> None:
    done = _run(*command)
    assert done.returncode == 0, done.stdout + done.stderr


def test_mypy_strict_is_clean() -> None:
    done = _run("mypy")  # files and strictness come from [tool.mypy] in pyproject.toml
    assert done.returncode == 0, done.stdout + done.stderr
