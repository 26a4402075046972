"""Import a real framework for the integration tests: skip off CI, fail on CI when it is missing.

.ci/run installs the frameworks (torch 2.13.0 CPU, lightning, transformers, keras, optuna,
scikit-learn) before the README test command; a CI run without one of them is a broken CI run,
not a reason to skip.
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType

import pytest


def need(module: str) -> ModuleType:
    """Import ``module``; off CI a missing one skips the calling test module, on CI it fails."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        if os.environ.get("CI"):
            pytest.fail(
                f"{module} is not installed but CI must run the framework tests ({exc}); "
                "the framework step of .ci/run installs it",
                pytrace=False,
            )
        pytest.skip(
            f"{module} is not installed (the framework step of .ci/run installs it)",
            allow_module_level=True,
        )
