"""The model registry: named models whose versions point at artifacts of runs.

>>> chachaml.log_artifact("model.pkl", model)                          # doctest: +SKIP
>>> chachaml.register_model("churn", artifact="model.pkl")             # doctest: +SKIP
>>> chachaml.promote("churn", 1, "production")                         # doctest: +SKIP
>>> model = chachaml.load_model("churn")                               # doctest: +SKIP

Stages are ``none``, ``staging``, ``production`` and ``archived``; at most one version of a
model is in ``production`` (promoting one archives the previous one, in the same transaction,
also when several processes promote at once). Aliases (``"champion"``) point at one version
each. Every stage and alias change is recorded: ``model_history(name)``. Each verb delegates to
the ``Client`` of the current store.
"""

from __future__ import annotations

from typing import Any

from chachaml import context
from chachaml.entities import Artifact, Model, ModelEvent, ModelVersion
from chachaml.results import Comparison

__all__ = [
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
]


def register_model(
    name: str,
    *,
    artifact: str | Artifact,
    run_id: Any = None,
    stage: str = "none",
    description: str | None = None,
) -> ModelVersion:
    """Register an artifact of a run as the next version (1, 2, ...) of the model ``name``.

    Args:
        name: the model's name (created on first registration).
        artifact: the artifact's name on the run (as given to ``log_artifact``), or the
            ``Artifact`` that ``log_artifact`` returned.
        run_id: the run holding it (a ``Run``, an id or a unique prefix); default: the
            artifact's run, else the current run.
        stage: the new version's stage; ``"production"`` archives the previous production version.
        description: markdown describing this version.

    Raises:
        ArtifactNotFoundError: the run has no artifact of that name (log it first).
        NoActiveRunError: no ``run_id`` and no current run.
    """
    if run_id is None and isinstance(artifact, Artifact):
        run_id = artifact.run_id
    client, ref = context.target(run_id, "run_id")
    return client.register_model(name, artifact=artifact, run_id=ref, stage=stage, description=description)


def models() -> list[Model]:
    """Every registered model, by name (with latest and production version, aliases)."""
    return context.client().models()


def model(name: str) -> Model:
    """The model ``name`` with all its versions (``ModelNotFoundError`` if not registered)."""
    return context.client().model(name)


def model_versions(name: str) -> list[ModelVersion]:
    """The versions of a model, oldest first."""
    return context.client().model_versions(name)


def get_model_version(
    name: str, *, version: int | None = None, stage: str = "production", alias: str | None = None
) -> ModelVersion:
    """Pick one version: by ``version``, else by ``alias``, else the highest version at ``stage``.

    Raises:
        ModelNotFoundError: no such model, version or alias, or no version at that stage.
    """
    return context.client().get_model_version(name, version, stage=stage, alias=alias)


def load_model(
    name: str, *, version: int | None = None, stage: str = "production", alias: str | None = None
) -> Any:
    """Load a model version's artifact: by ``version``, ``alias``, or the highest version at
    ``stage`` (default: the production version).

    **Security**: models are usually pickles, and loading a pickle runs code. Only load models
    from a store you trust.

    Raises:
        ModelNotFoundError: nothing matches (the message lists the versions there are).
    """
    return context.client().load_model(name, version=version, stage=stage, alias=alias)


def promote(name: str, version: int, stage: str) -> ModelVersion:
    """Move a version to ``stage`` (``none``, ``staging``, ``production``, ``archived``).

    Promoting to ``production`` archives the model's current production version in the same
    transaction. A version that does not exist raises ``ModelNotFoundError`` and changes nothing.
    """
    return context.client().promote(name, version, stage)


def set_alias(name: str, alias: str, version: int) -> ModelVersion:
    """Point ``alias`` (e.g. ``"champion"``) at a version, moving it from any other version."""
    return context.client().set_alias(name, alias, version)


def delete_alias(name: str, alias: str) -> bool:
    """Remove an alias; True if it existed (no error if it did not, like ``delete_tag``)."""
    return context.client().delete_alias(name, alias)


def set_model_description(name: str, description: str | None, *, version: int | None = None) -> None:
    """Set the description (markdown) of a model, or of one of its versions with ``version=``."""
    context.client().set_model_description(name, description, version=version)


def model_history(name: str) -> list[ModelEvent]:
    """Every registration, stage change and alias change of a model, oldest first (who, when,
    from, to). An automatic archive of the previous production version appears as its own event."""
    return context.client().model_history(name)


def diff_versions(name: str, v1: int, v2: int) -> Comparison:
    """Compare the source runs of two versions: a ``Comparison`` of their params and metrics
    (``ModelNotFoundError`` if either version does not exist)."""
    return context.client().diff_versions(name, v1, v2)
