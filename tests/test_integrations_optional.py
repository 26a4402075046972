"""The framework hooks import their framework only when imported, and name the extra when it is
missing (issue 11 part 4). Runs without any framework installed: missing ones are simulated by
blocking their import (``sys.modules[name] = None``, the documented way to make an import fail)."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

import chachaml

# integration module -> (the modules it imports, the extra that installs them)
HOOKS = {
    "lightning": (["lightning.pytorch.loggers", "lightning.pytorch.utilities.rank_zero"], "lightning"),
    "transformers": (["transformers"], "transformers"),
    "keras": (["keras"], "keras"),
    "optuna": (["optuna"], "optuna"),
    "sklearn": (["sklearn.utils.validation", "sklearn.exceptions"], "sklearn"),
}


@pytest.mark.parametrize("hook", sorted(HOOKS))
def test_importing_a_hook_without_its_framework_names_the_extra_to_install(
    monkeypatch: pytest.MonkeyPatch, hook: str
) -> None:
    modules, extra = HOOKS[hook]
    for name in modules:
        monkeypatch.setitem(sys.modules, name, None)  # type: ignore[arg-type]
    monkeypatch.delitem(sys.modules, f"chachaml.integrations.{hook}", raising=False)
    with pytest.raises(chachaml.MissingDependencyError) as err:
        importlib.import_module(f"chachaml.integrations.{hook}")
    assert f"pip install 'chachaml[{extra}]'" in str(err.value)
    assert isinstance(err.value, chachaml.ChachamlError)


def test_chachaml_with_system_metrics_imports_no_framework_and_no_nvml_module_at_import() -> None:
    code = (
        "import sys, chachaml, chachaml.integrations, chachaml.system_metrics\n"
        "chachaml.use_store(':memory:')\n"
        "with chachaml.with_run('x', system_metrics=True):\n"
        "    pass\n"
        "heavy = ['torch', 'lightning', 'transformers', 'keras', 'optuna', 'sklearn', 'numpy']\n"
        "print(sorted(m for m in heavy if m in sys.modules))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert out.stdout.strip() == "[]"
