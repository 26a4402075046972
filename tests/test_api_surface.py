"""The public namespace is curated and pinned; importing it is free (SPEC sections 1, 4, 7).

Adding a public name is a deliberate act: add it to ``_EXPORTS`` (and the ``TYPE_CHECKING``
block) in ``chachaml/__init__.py`` AND to ``EXPECTED`` here.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

import chachaml
from chachaml import errors

EXPECTED = {
    # errors
    "ArtifactNotFoundError",
    "ChachamlError",
    "ConflictError",
    "ExperimentNotFoundError",
    "InvalidValueError",
    "MissingDependencyError",
    "ModelNotFoundError",
    "NoActiveRunError",
    "QueryError",
    "RunNotFoundError",
    "RunStateError",
    "SchemaVersionError",
    "StoreError",
    # entities
    "Dataset",
    "Experiment",
    "Metric",
    "Run",
    "RunList",
    # the API object (issue 8)
    "Client",
    # context
    "ContextExecutor",
    "bind",
    "current_store",
    "use_store",
    "with_store",
    # runs and logging
    "batched",
    "current_run",
    "delete_tag",
    "end_run",
    "flush",
    "log_dataset",
    "log_metric",
    "log_metrics",
    "log_param",
    "log_params",
    "set_note",
    "set_tag",
    "set_tags",
    "start_run",
    "tracked",
    "with_run",
    # reading
    "create_experiment",
    "current_user",
    "experiments",
    "get_run",
    "last_run",
    "metric_history",
    "runs",
    "search_runs",
    # analysis and the lifecycle of data (issue 3)
    "Comparison",
    "KeySplit",
    "archive_runs",
    "best_run",
    "compare_runs",
    "delete_experiment",
    "delete_run",
    "export_runs",
    "gc_artifacts",
    "inspect_run",
    "unarchive_runs",
    # artifacts (issue 4)
    "Artifact",
    "GcReport",
    "artifact_path",
    "list_artifacts",
    "load_artifact",
    "log_artifact",
    "log_figure",
    "log_file",
    "log_table",
    # model registry (issue 4)
    "Model",
    "ModelEvent",
    "ModelVersion",
    "delete_alias",
    "diff_versions",
    "get_model_version",
    "load_model",
    "model",
    "model_history",
    "model_versions",
    "models",
    "promote",
    "register_model",
    "set_alias",
    "set_model_description",
    # first-hour gaps (issue 7)
    "log_artifacts",
    "log_image",
    "set_experiment",
}

ERRORS = sorted(n for n in EXPECTED if n.endswith("Error") and n != "ChachamlError")


def test_all_is_sorted_and_is_exactly_the_expected_names() -> None:
    assert chachaml.__all__ == sorted(chachaml.__all__)
    assert len(chachaml.__all__) == len(set(chachaml.__all__))
    assert set(chachaml.__all__) == EXPECTED


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_every_public_name_resolves(name: str) -> None:
    value = getattr(chachaml, name)
    assert value is not None
    assert getattr(value, "__module__", "").startswith("chachaml.")
    assert name in dir(chachaml)


def test_every_export_is_also_imported_for_type_checkers_from_the_same_module() -> None:
    tree = ast.parse(Path(chachaml.__file__).read_text(encoding="utf-8"))
    (block,) = [n for n in tree.body if isinstance(n, ast.If) and ast.unparse(n.test) == "TYPE_CHECKING"]
    typed = {
        alias.name: node.module
        for node in ast.walk(block)
        if isinstance(node, ast.ImportFrom)
        for alias in node.names
    }
    assert typed == {name: f"chachaml.{module}" for name, module in chachaml._EXPORTS.items()}


def test_an_unknown_name_raises_attribute_error_naming_it() -> None:
    with pytest.raises(AttributeError, match="no_such_verb"):
        chachaml.no_such_verb  # noqa: B018


def test_the_version_is_a_string() -> None:
    assert isinstance(chachaml.__version__, str) and chachaml.__version__.count(".") == 2


_IMPORT_PROBE = """
import json, os, sys
before = set(sys.modules)
import chachaml
new = sorted(set(sys.modules) - before)
print(json.dumps({"new": new, "files": sorted(os.listdir("."))}))
"""


@pytest.mark.slow
def test_importing_chachaml_loads_no_heavy_module_and_creates_no_file(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-c", _IMPORT_PROBE],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        env={"PATH": "/usr/bin:/bin", "CHACHAML_STORE": str(tmp_path / "env.db")},
    )
    probe = json.loads(out.stdout)
    new = set(probe["new"])
    assert "chachaml" in new
    assert not {"sqlite3", "_sqlite3", "dataclasses", "inspect", "json", "subprocess", "threading"} & new
    assert [m for m in new if m.startswith("chachaml.")] == []
    assert probe["files"] == []
    assert list(tmp_path.iterdir()) == []


# -- the error tree --------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ERRORS)
def test_every_error_is_a_chachaml_error(name: str) -> None:
    cls = getattr(chachaml, name)
    assert issubclass(cls, chachaml.ChachamlError) and issubclass(cls, Exception)
    assert cls is getattr(errors, name)


@pytest.mark.parametrize(
    ("name", "builtin"),
    [
        ("InvalidValueError", ValueError),
        ("QueryError", ValueError),
        ("RunNotFoundError", LookupError),
        ("ExperimentNotFoundError", LookupError),
        ("ArtifactNotFoundError", LookupError),
        ("ModelNotFoundError", LookupError),
        ("MissingDependencyError", ImportError),
    ],
)
def test_errors_also_inherit_the_natural_builtin(name: str, builtin: type[Exception]) -> None:
    assert issubclass(getattr(chachaml, name), builtin)


def test_the_tree_has_the_documented_shape() -> None:
    assert issubclass(chachaml.QueryError, chachaml.InvalidValueError)
    assert issubclass(chachaml.SchemaVersionError, chachaml.StoreError)
    for name in (
        "RunNotFoundError",
        "ExperimentNotFoundError",
        "ArtifactNotFoundError",
        "ModelNotFoundError",
    ):
        assert issubclass(getattr(chachaml, name), errors.NotFoundError)
    for name in ("NoActiveRunError", "RunStateError", "ConflictError", "StoreError"):
        assert not issubclass(getattr(chachaml, name), ValueError | LookupError)


@pytest.mark.parametrize("name", ERRORS)
def test_an_error_without_a_message_is_refused(name: str) -> None:
    with pytest.raises(TypeError):
        getattr(chachaml, name)("")


def test_query_error_points_at_the_position() -> None:
    exc = chachaml.QueryError("unexpected 'x'", query="status = x", position=9)
    assert (exc.query, exc.position) == ("status = x", 9)
    assert str(exc).splitlines()[-1] == "  " + " " * 9 + "^"


# -- renamed verbs (issue 8): the old names warn, and stay out of ``__all__`` ----------------------
@pytest.mark.parametrize(("old", "new"), [("gc", "gc_artifacts"), ("inspect", "inspect_run")])
def test_old_names_that_shadowed_stdlib_modules_warn_and_still_work(old: str, new: str) -> None:
    assert old not in chachaml.__all__
    with pytest.warns(DeprecationWarning, match=f"chachaml.{new}"):
        value = getattr(chachaml, old)
    assert value is getattr(chachaml, new)


def test_star_import_does_not_shadow_the_stdlib_inspect_and_gc() -> None:
    namespace: dict[str, object] = {}
    exec("import gc, inspect\nfrom chachaml import *", namespace)
    assert namespace["gc"].__name__ == "gc"  # type: ignore[attr-defined]
    assert namespace["inspect"].__name__ == "inspect"  # type: ignore[attr-defined]
