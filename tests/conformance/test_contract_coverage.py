"""Every method of every role of the store contract is exercised by this suite (issue 8).

A method is covered when some conformance test calls ``store.<method>(``. Adding a method to
a role without a conformance test fails here, so the contract stays executable.
"""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest

from chachaml.store.base import ArtifactStore, AutomationStore, LocalArtifacts, RegistryStore, RunStore

HERE = Path(__file__).parent
ROLES = [RunStore, ArtifactStore, RegistryStore, AutomationStore, LocalArtifacts]


def _methods(role: type) -> list[str]:
    own = {n for n in vars(role) if not n.startswith("_")}
    return sorted(n for n in own if callable(getattr(role, n)) or isinstance(getattr(role, n), property))


SUITE = "\n".join(
    p.read_text(encoding="utf-8") for p in sorted(HERE.glob("test_*.py")) if p.name != Path(__file__).name
)


@pytest.mark.parametrize(
    ("role", "method"), [(r, m) for r in ROLES for m in _methods(r)], ids=lambda v: getattr(v, "__name__", v)
)
def test_every_method_of_every_role_is_called_by_the_suite(role: type, method: str) -> None:
    attr = getattr(role, method)
    call = f"store.{method}" if isinstance(attr, property) else f"store.{method}("
    assert call in SUITE, f"{role.__name__}.{method} has no conformance test"


def test_the_roles_are_documented_method_by_method() -> None:
    for role in ROLES:
        assert inspect.getdoc(role)
        for method in _methods(role):
            attr = getattr(role, method)
            doc = inspect.getdoc(attr.fget if isinstance(attr, property) else attr)
            assert doc, f"{role.__name__}.{method} has no docstring"


def test_the_roles_cover_the_whole_store() -> None:
    from chachaml.store.base import Store

    roles = (RunStore, ArtifactStore, RegistryStore, AutomationStore)
    every = {m for r in roles for m in _methods(r)}
    assert {m for r in Store.__mro__ for m in (_methods(r) if r in roles else [])} == every
    assert len(every) >= 35
