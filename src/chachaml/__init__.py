"""chachaml: REPL-first experiment tracking in one local SQLite file.

>>> import chachaml
>>> run = chachaml.start_run("baseline")            # doctest: +SKIP
>>> chachaml.log_param("lr", 0.1)                   # doctest: +SKIP
>>> chachaml.log_metric("loss", 0.3)                # doctest: +SKIP
>>> chachaml.end_run()                              # doctest: +SKIP

Importing this package opens nothing and creates no file: names are loaded on first use, so
``import chachaml`` stays within a few milliseconds (SPEC section 6).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# name -> module that defines it; the facade is the only public namespace (STYLE.md).
_EXPORTS = {
    "Artifact": "entities",
    "ArtifactNotFoundError": "errors",
    "ChachamlError": "errors",
    "Comparison": "entities",
    "ConflictError": "errors",
    "ContextExecutor": "context",
    "Dataset": "entities",
    "Experiment": "entities",
    "ExperimentNotFoundError": "errors",
    "GcReport": "entities",
    "InvalidValueError": "errors",
    "KeySplit": "entities",
    "Metric": "entities",
    "MissingDependencyError": "errors",
    "Model": "entities",
    "ModelEvent": "entities",
    "ModelNotFoundError": "errors",
    "ModelVersion": "entities",
    "NoActiveRunError": "errors",
    "QueryError": "errors",
    "Run": "entities",
    "RunList": "entities",
    "RunNotFoundError": "errors",
    "RunStateError": "errors",
    "SchemaVersionError": "errors",
    "StoreError": "errors",
    "archive_runs": "analysis",
    "artifact_path": "artifacts",
    "batched": "tracking",
    "best_run": "analysis",
    "bind": "context",
    "compare_runs": "analysis",
    "create_experiment": "reading",
    "current_run": "tracking",
    "current_store": "context",
    "current_user": "reading",
    "delete_alias": "registry",
    "delete_experiment": "analysis",
    "delete_run": "analysis",
    "delete_tag": "tracking",
    "diff_versions": "registry",
    "end_run": "tracking",
    "experiments": "reading",
    "export_runs": "analysis",
    "flush": "tracking",
    "gc": "artifacts",
    "get_model_version": "registry",
    "get_run": "reading",
    "inspect": "analysis",
    "last_run": "reading",
    "list_artifacts": "artifacts",
    "load_artifact": "artifacts",
    "load_model": "registry",
    "log_artifact": "artifacts",
    "log_dataset": "tracking",
    "log_figure": "artifacts",
    "log_file": "artifacts",
    "log_metric": "tracking",
    "log_metrics": "tracking",
    "log_param": "tracking",
    "log_params": "tracking",
    "log_table": "artifacts",
    "metric_history": "reading",
    "model": "registry",
    "model_history": "registry",
    "model_versions": "registry",
    "models": "registry",
    "promote": "registry",
    "register_model": "registry",
    "runs": "reading",
    "search_runs": "reading",
    "set_alias": "registry",
    "set_model_description": "registry",
    "set_note": "tracking",
    "set_tag": "tracking",
    "set_tags": "tracking",
    "start_run": "tracking",
    "tracked": "tracking",
    "unarchive_runs": "analysis",
    "use_store": "context",
    "with_run": "tracking",
    "with_store": "context",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'chachaml' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"chachaml.{module}"), name)
    globals()[name] = value  # cache: later lookups are plain attribute reads
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


if TYPE_CHECKING:  # what the type checker and IDEs see
    from chachaml.analysis import (
        archive_runs,
        best_run,
        compare_runs,
        delete_experiment,
        delete_run,
        export_runs,
        inspect,
        unarchive_runs,
    )
    from chachaml.artifacts import (
        artifact_path,
        gc,
        list_artifacts,
        load_artifact,
        log_artifact,
        log_figure,
        log_file,
        log_table,
    )
    from chachaml.context import ContextExecutor, bind, current_store, use_store, with_store
    from chachaml.entities import (
        Artifact,
        Comparison,
        Dataset,
        Experiment,
        GcReport,
        KeySplit,
        Metric,
        Model,
        ModelEvent,
        ModelVersion,
        Run,
        RunList,
    )
    from chachaml.errors import (
        ArtifactNotFoundError,
        ChachamlError,
        ConflictError,
        ExperimentNotFoundError,
        InvalidValueError,
        MissingDependencyError,
        ModelNotFoundError,
        NoActiveRunError,
        QueryError,
        RunNotFoundError,
        RunStateError,
        SchemaVersionError,
        StoreError,
    )
    from chachaml.reading import (
        create_experiment,
        current_user,
        experiments,
        get_run,
        last_run,
        metric_history,
        runs,
        search_runs,
    )
    from chachaml.registry import (
        delete_alias,
        diff_versions,
        get_model_version,
        load_model,
        model,
        model_history,
        model_versions,
        models,
        promote,
        register_model,
        set_alias,
        set_model_description,
    )
    from chachaml.tracking import (
        batched,
        current_run,
        delete_tag,
        end_run,
        flush,
        log_dataset,
        log_metric,
        log_metrics,
        log_param,
        log_params,
        set_note,
        set_tag,
        set_tags,
        start_run,
        tracked,
        with_run,
    )
