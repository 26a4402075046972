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

# Not ``from typing import TYPE_CHECKING``: importing typing costs ~10 ms, a third of the import
# budget (benchmarks/bench_core.py). Type checkers treat this name as true.
TYPE_CHECKING = False

__version__ = "0.1.0"

# name -> module that defines it; the facade is the only public namespace (STYLE.md).
_EXPORTS = {
    "Alert": "automation_entities",
    "AlertEvent": "automation_entities",
    "Artifact": "entities",
    "ArtifactNotFoundError": "errors",
    "ChachamlError": "errors",
    "Client": "client",
    "Comparison": "results",
    "ConflictError": "errors",
    "ContextExecutor": "_executor",
    "Dataset": "entities",
    "Experiment": "entities",
    "ExperimentNotFoundError": "errors",
    "GcReport": "entities",
    "InvalidValueError": "errors",
    "KeySplit": "results",
    "Metric": "entities",
    "MissingDependencyError": "errors",
    "Model": "entities",
    "ModelEvent": "entities",
    "ModelNotFoundError": "errors",
    "ModelVersion": "entities",
    "NoActiveRunError": "errors",
    "Pipeline": "automation_entities",
    "PipelineStep": "automation_entities",
    "QueryError": "errors",
    "Run": "entities",
    "RunList": "results",
    "RunNotFoundError": "errors",
    "RunStateError": "errors",
    "SchemaVersionError": "errors",
    "StoreError": "errors",
    "add_alert": "automation",
    "alert_history": "automation",
    "alerts": "automation",
    "archive_runs": "housekeeping",
    "artifact_path": "artifacts",
    "batched": "batching",
    "best_run": "analysis",
    "bind": "context",
    "check_alerts": "automation",
    "compare_runs": "analysis",
    "create_experiment": "tracking",
    "current_run": "tracking",
    "current_store": "context",
    "current_user": "reading",
    "delete_alias": "registry",
    "delete_experiment": "housekeeping",
    "delete_run": "housekeeping",
    "delete_tag": "tracking",
    "diff_versions": "registry",
    "end_run": "tracking",
    "experiments": "reading",
    "export_runs": "analysis",
    "flush": "batching",
    "gc_artifacts": "housekeeping",
    "get_model_version": "registry",
    "get_pipeline": "automation",
    "get_run": "reading",
    "inspect_run": "analysis",
    "last_run": "reading",
    "list_artifacts": "artifacts",
    "load_artifact": "artifacts",
    "load_model": "registry",
    "log_artifact": "artifacts",
    "log_artifacts": "artifacts",
    "log_dataset": "tracking",
    "log_figure": "artifacts",
    "log_file": "artifacts",
    "log_image": "images",
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
    "plot": "plotting",
    "pipelines": "automation",
    "promote": "registry",
    "register_model": "registry",
    "remove_alert": "automation",
    "resume_pipeline": "automation",
    "run_pipeline": "automation",
    "runs": "reading",
    "search_runs": "reading",
    "set_alias": "registry",
    "set_experiment": "tracking",
    "set_model_description": "registry",
    "set_note": "tracking",
    "set_tag": "tracking",
    "set_tags": "tracking",
    "start_run": "tracking",
    "tracked": "tracking",
    "unarchive_runs": "housekeeping",
    "use_store": "context",
    "with_run": "tracking",
    "with_store": "context",
}

__all__ = sorted(_EXPORTS)

# Old names kept working with a DeprecationWarning, outside ``__all__``: under
# ``from chachaml import *`` they shadowed the stdlib modules ``inspect`` and ``gc`` (issue 8).
_DEPRECATED = {"gc": "gc_artifacts", "inspect": "inspect_run"}


def __getattr__(name: str) -> object:
    module = _EXPORTS.get(name)
    if module is None:
        new = _DEPRECATED.get(name)
        if new is None:
            raise AttributeError(f"module 'chachaml' has no attribute {name!r}")
        import warnings

        warnings.warn(
            f"chachaml.{name} is deprecated; use chachaml.{new} (the old name shadowed the "
            f"standard library's {name!r} module under `from chachaml import *`)",
            DeprecationWarning,
            stacklevel=2,
        )
        return __getattr__(new)  # not cached: every use of the old name warns
    import importlib  # on first use only: the import of chachaml itself stays cheap

    value = getattr(importlib.import_module(f"chachaml.{module}"), name)
    globals()[name] = value  # cache: later lookups are plain attribute reads
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


if TYPE_CHECKING:  # what the type checker and IDEs see
    # ``X as X`` marks an explicit re-export, so ``mypy --strict`` users can write ``chachaml.X``.
    from chachaml._executor import ContextExecutor as ContextExecutor
    from chachaml.analysis import best_run as best_run
    from chachaml.analysis import compare_runs as compare_runs
    from chachaml.analysis import export_runs as export_runs
    from chachaml.analysis import inspect_run as inspect_run
    from chachaml.artifacts import artifact_path as artifact_path
    from chachaml.artifacts import list_artifacts as list_artifacts
    from chachaml.artifacts import load_artifact as load_artifact
    from chachaml.artifacts import log_artifact as log_artifact
    from chachaml.artifacts import log_artifacts as log_artifacts
    from chachaml.artifacts import log_figure as log_figure
    from chachaml.artifacts import log_file as log_file
    from chachaml.artifacts import log_table as log_table
    from chachaml.automation import add_alert as add_alert
    from chachaml.automation import alert_history as alert_history
    from chachaml.automation import alerts as alerts
    from chachaml.automation import check_alerts as check_alerts
    from chachaml.automation import get_pipeline as get_pipeline
    from chachaml.automation import pipelines as pipelines
    from chachaml.automation import remove_alert as remove_alert
    from chachaml.automation import resume_pipeline as resume_pipeline
    from chachaml.automation import run_pipeline as run_pipeline
    from chachaml.automation_entities import Alert as Alert
    from chachaml.automation_entities import AlertEvent as AlertEvent
    from chachaml.automation_entities import Pipeline as Pipeline
    from chachaml.automation_entities import PipelineStep as PipelineStep
    from chachaml.batching import batched as batched
    from chachaml.batching import flush as flush
    from chachaml.client import Client as Client
    from chachaml.context import bind as bind
    from chachaml.context import current_store as current_store
    from chachaml.context import use_store as use_store
    from chachaml.context import with_store as with_store
    from chachaml.entities import Artifact as Artifact
    from chachaml.entities import Dataset as Dataset
    from chachaml.entities import Experiment as Experiment
    from chachaml.entities import GcReport as GcReport
    from chachaml.entities import Metric as Metric
    from chachaml.entities import Model as Model
    from chachaml.entities import ModelEvent as ModelEvent
    from chachaml.entities import ModelVersion as ModelVersion
    from chachaml.entities import Run as Run
    from chachaml.errors import ArtifactNotFoundError as ArtifactNotFoundError
    from chachaml.errors import ChachamlError as ChachamlError
    from chachaml.errors import ConflictError as ConflictError
    from chachaml.errors import ExperimentNotFoundError as ExperimentNotFoundError
    from chachaml.errors import InvalidValueError as InvalidValueError
    from chachaml.errors import MissingDependencyError as MissingDependencyError
    from chachaml.errors import ModelNotFoundError as ModelNotFoundError
    from chachaml.errors import NoActiveRunError as NoActiveRunError
    from chachaml.errors import QueryError as QueryError
    from chachaml.errors import RunNotFoundError as RunNotFoundError
    from chachaml.errors import RunStateError as RunStateError
    from chachaml.errors import SchemaVersionError as SchemaVersionError
    from chachaml.errors import StoreError as StoreError
    from chachaml.housekeeping import archive_runs as archive_runs
    from chachaml.housekeeping import delete_experiment as delete_experiment
    from chachaml.housekeeping import delete_run as delete_run
    from chachaml.housekeeping import gc_artifacts as gc_artifacts
    from chachaml.housekeeping import unarchive_runs as unarchive_runs
    from chachaml.images import log_image as log_image
    from chachaml.plotting import plot as plot
    from chachaml.reading import current_user as current_user
    from chachaml.reading import experiments as experiments
    from chachaml.reading import get_run as get_run
    from chachaml.reading import last_run as last_run
    from chachaml.reading import metric_history as metric_history
    from chachaml.reading import runs as runs
    from chachaml.reading import search_runs as search_runs
    from chachaml.registry import delete_alias as delete_alias
    from chachaml.registry import diff_versions as diff_versions
    from chachaml.registry import get_model_version as get_model_version
    from chachaml.registry import load_model as load_model
    from chachaml.registry import model as model
    from chachaml.registry import model_history as model_history
    from chachaml.registry import model_versions as model_versions
    from chachaml.registry import models as models
    from chachaml.registry import promote as promote
    from chachaml.registry import register_model as register_model
    from chachaml.registry import set_alias as set_alias
    from chachaml.registry import set_model_description as set_model_description
    from chachaml.results import Comparison as Comparison
    from chachaml.results import KeySplit as KeySplit
    from chachaml.results import RunList as RunList
    from chachaml.tracking import create_experiment as create_experiment
    from chachaml.tracking import current_run as current_run
    from chachaml.tracking import delete_tag as delete_tag
    from chachaml.tracking import end_run as end_run
    from chachaml.tracking import log_dataset as log_dataset
    from chachaml.tracking import log_metric as log_metric
    from chachaml.tracking import log_metrics as log_metrics
    from chachaml.tracking import log_param as log_param
    from chachaml.tracking import log_params as log_params
    from chachaml.tracking import set_experiment as set_experiment
    from chachaml.tracking import set_note as set_note
    from chachaml.tracking import set_tag as set_tag
    from chachaml.tracking import set_tags as set_tags
    from chachaml.tracking import start_run as start_run
    from chachaml.tracking import tracked as tracked
    from chachaml.tracking import with_run as with_run
