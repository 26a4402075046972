"""The import picture of docs/architecture.md, checked by walking the source (issue 8).

Every ``import`` in ``src/chachaml`` is read with ``ast`` -- at module level and inside functions,
except under ``if TYPE_CHECKING:`` (never executed) -- and turned into an edge between chachaml
modules (importing ``a.b.c`` also imports the packages ``a.b`` and ``a``, unless the importer
lives in them). Then:

* stores are leaves: nothing under ``chachaml.store`` imports the context, the lifecycle, the
  ``Client`` or a verb module;
* the layers point one way (the table ``MAY_NOT_IMPORT``);
* there is no import cycle among chachaml modules;
* no source module is over 600 lines.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

import chachaml

SRC = Path(chachaml.__file__).parent
ROOT = SRC.parent

#: The verb modules: module-level functions a user types, each delegating to the Client.
VERBS = {
    "chachaml.tracking",
    "chachaml.batching",
    "chachaml.reading",
    "chachaml.analysis",
    "chachaml.housekeeping",
    "chachaml.artifacts",
    "chachaml.registry",
    "chachaml.images",
    "chachaml.automation",
}
CONTEXT = {"chachaml.context", "chachaml._lifecycle", "chachaml.pytest_plugin", "chachaml.demo"}
CLIENT = {"chachaml.client", *(f"chachaml.{m.stem}" for m in SRC.glob("_api_*.py"))}
#: Backend-neutral below the Client: values, rules, query language, formats, wire.
NEUTRAL = {
    "chachaml.errors",
    "chachaml.entities",
    "chachaml._entity_base",
    "chachaml._registry_entities",
    "chachaml.results",
    "chachaml.rules",
    "chachaml._values",
    "chachaml._process",
    "chachaml._display",
    "chachaml._optional",
    "chachaml.formats",
    "chachaml._png",
    "chachaml._environment",
    "chachaml._frames",
    "chachaml._downsample",
    "chachaml.automation_entities",
    "chachaml._automation_rules",
    "chachaml._webhooks",
}


def module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {module_name(p): p for p in sorted(SRC.rglob("*.py"))}
PACKAGES = {module_name(p) for p in SRC.rglob("__init__.py")}


def _runtime_nodes(tree: ast.AST) -> Iterator[ast.AST]:
    """Every node except the bodies of ``if TYPE_CHECKING:`` blocks."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and ast.unparse(node.test) in ("TYPE_CHECKING", "typing.TYPE_CHECKING"):
            yield from (n for orelse in node.orelse for n in [orelse, *_runtime_nodes(orelse)])
            continue
        yield node
        yield from _runtime_nodes(node)


def _with_parents(name: str) -> set[str]:
    parts = name.split(".")
    return {".".join(parts[:i]) for i in range(1, len(parts) + 1)} & set(MODULES)


def imports_of(name: str) -> set[str]:
    """The chachaml modules that importing ``name`` imports directly (run-time imports only)."""
    path = MODULES[name]
    package = name if name in PACKAGES else name.rsplit(".", 1)[0]
    found: set[str] = set()
    for node in _runtime_nodes(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                found |= _with_parents(alias.name)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            found |= _with_parents(base)
            for alias in node.names:
                found |= _with_parents(f"{base}.{alias.name}")
    # A submodule's own packages are being imported already when it runs (the package's
    # ``__init__`` importing its submodules is the usual layout, not a cycle).
    found -= _with_parents(name)
    return {m for m in found if m.startswith("chachaml")}


GRAPH = {name: imports_of(name) for name in MODULES}


def test_the_walk_sees_the_imports_it_should() -> None:
    """The checker itself works: known edges are found, TYPE_CHECKING-only ones are not."""
    assert "chachaml.store.base" in GRAPH["chachaml.store.sqlite"]
    assert "chachaml._process" in GRAPH["chachaml.store._sqlite_base"]
    assert "chachaml.client" in GRAPH["chachaml.context"]  # imported inside a function
    assert "chachaml.context" not in GRAPH["chachaml._lifecycle"]  # only under TYPE_CHECKING
    assert "chachaml.store" in GRAPH["chachaml._api_base"]  # importing store.base runs store/__init__
    assert "chachaml.query" not in GRAPH["chachaml.query.parser"]  # its own package: not an edge


@pytest.mark.parametrize("name", sorted(n for n in MODULES if n.startswith("chachaml.store")))
def test_stores_are_leaves(name: str) -> None:
    forbidden = VERBS | CONTEXT | CLIENT
    assert not GRAPH[name] & forbidden, f"{name} imports {sorted(GRAPH[name] & forbidden)}"


MAY_NOT_IMPORT = {
    # below the Client: the rules, values and wire format know no store, client or context
    **{n: VERBS | CONTEXT | CLIENT | {"chachaml.store"} for n in NEUTRAL},
    # the query language is backend-neutral: no SQL module
    **{n: VERBS | CONTEXT | CLIENT | {m for m in MODULES if m.startswith("chachaml.store")}
       for n in MODULES if n.startswith("chachaml.query")},
    # the Client never looks at the context or the verbs
    **{n: VERBS | CONTEXT for n in CLIENT},
    # verb modules delegate to the Client; they share nothing private with each other
    **{n: VERBS - {n} for n in VERBS},
    # the lifecycle is called by the context, never the other way round
    "chachaml._lifecycle": VERBS | CLIENT | {"chachaml.context"},
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(MAY_NOT_IMPORT))
def test_layers_import_one_way(name: str) -> None:
    bad = GRAPH[name] & MAY_NOT_IMPORT[name]
    assert not bad, f"{name} may not import {sorted(bad)} (docs/architecture.md)"


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_there_is_no_import_cycle() -> None:
    assert _cycles(GRAPH) == []


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


@pytest.mark.parametrize("name", sorted(MODULES))
def test_no_source_module_is_over_600_lines(name: str) -> None:
    lines = MODULES[name].read_text(encoding="utf-8").count("\n")
    assert lines <= 600, f"{name} has {lines} lines; split it by responsibility (STYLE.md 16)"
