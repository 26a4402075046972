"""Import optional packages on demand, failing with the install command to run."""

from __future__ import annotations

import importlib
from types import ModuleType

from chachaml.errors import MissingDependencyError


def require(module: str, extra: str) -> ModuleType:
    """Import ``module`` or raise ``MissingDependencyError`` naming ``pip install 'chachaml[extra]'``."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingDependencyError(
            f"this needs the optional package {module!r}, which is not installed; "
            f"install it with: pip install 'chachaml[{extra}]'"
        ) from exc
