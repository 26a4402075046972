"""The model registry: named models whose versions point at artifacts of runs.

>>> chachaml.log_artifact("model.pkl", model)                          # doctest: +SKIP
>>> chachaml.register_model("churn", artifact="model.pkl")             # doctest: +SKIP
>>> chachaml.promote("churn", 1, "production")                         # doctest: +SKIP
>>> model = chachaml.load_model("churn")                               # doctest: +SKIP

Stages are ``none``, ``staging``, ``production`` and ``archived``; at most one version of a
model is in ``production`` (promoting one archives the previous one, in the same transaction,
also when several processes promote at once). Aliases (``"champion"``) point at one version
each. Every stage and alias change is recorded: ``model_history(name)``.
"""

from __future__ import annotations

from typing import Any

from chachaml import _lifecycle, context
from chachaml._values import check_key
from chachaml.analysis import compare_runs
from chachaml.artifacts import _load
from chachaml.entities import STAGES, Artifact, Comparison, Model, ModelEvent, ModelVersion
from chachaml.errors import InvalidValueError
from chachaml.tracking import _target

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


def _stage(stage: Any) -> str:
    if stage not in STAGES:
        raise InvalidValueError(f"stage {stage!r} is not one of {', '.join(map(repr, STAGES))}")
    return str(stage)


def _version(version: Any) -> int:
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise InvalidValueError(
            f"a model version is a positive int such as 1 or 2, got {version!r}; "
            "list them with chachaml.model_versions(name)"
        )
    return version


def _description(text: Any) -> str | None:
    if text is not None and not isinstance(text, str):
        raise InvalidValueError(f"a description is a str (markdown) or None, got {type(text).__name__}")
    return text


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
    name = check_key(name, "model name")
    if isinstance(artifact, Artifact):
        if run_id is None:
            run_id = artifact.run_id
        artifact = artifact.name
    if not isinstance(artifact, str) or not artifact:
        raise InvalidValueError(
            f"artifact= must be the name of an artifact logged on the run (or an Artifact), got {artifact!r}"
        )
    stage = _stage(stage)
    store, rid = _target(run_id, "run_id")
    return store.register_model(
        name,
        run_id=rid,
        artifact=artifact,
        stage=stage,
        description=_description(description),
        who=_lifecycle.current_user(),
        now=_lifecycle.now_ms(),
    )


def models() -> list[Model]:
    """Every registered model, by name (with latest and production version, aliases)."""
    return context.current_store().models()


def model(name: str) -> Model:
    """The model ``name`` with all its versions (``ModelNotFoundError`` if not registered)."""
    return context.current_store().get_model(check_key(name, "model name"))


def model_versions(name: str) -> list[ModelVersion]:
    """The versions of a model, oldest first."""
    return context.current_store().model_versions(check_key(name, "model name"))


def get_model_version(
    name: str, *, version: int | None = None, stage: str = "production", alias: str | None = None
) -> ModelVersion:
    """Pick one version: by ``version``, else by ``alias``, else the highest version at ``stage``.

    Raises:
        ModelNotFoundError: no such model, version or alias, or no version at that stage.
    """
    name = check_key(name, "model name")
    if version is not None and alias is not None:
        raise InvalidValueError("pass version= or alias=, not both")
    store = context.current_store()
    if version is not None:
        return store.get_model_version(name, version=_version(version))
    if alias is not None:
        return store.get_model_version(name, alias=check_key(alias, "alias"))
    return store.get_model_version(name, stage=_stage(stage))


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
    mv = get_model_version(name, version=version, stage=stage, alias=alias)
    return _load(context.current_store(), mv.run_id, mv.artifact)


def promote(name: str, version: int, stage: str) -> ModelVersion:
    """Move a version to ``stage`` (``none``, ``staging``, ``production``, ``archived``).

    Promoting to ``production`` archives the model's current production version in the same
    transaction. A version that does not exist raises ``ModelNotFoundError`` and changes nothing.
    """
    return context.current_store().promote(
        check_key(name, "model name"),
        _version(version),
        _stage(stage),
        who=_lifecycle.current_user(),
        now=_lifecycle.now_ms(),
    )


def set_alias(name: str, alias: str, version: int) -> ModelVersion:
    """Point ``alias`` (e.g. ``"champion"``) at a version, moving it from any other version."""
    return context.current_store().set_alias(
        check_key(name, "model name"),
        check_key(alias, "alias"),
        _version(version),
        who=_lifecycle.current_user(),
        now=_lifecycle.now_ms(),
    )


def delete_alias(name: str, alias: str) -> bool:
    """Remove an alias; True if it existed (no error if it did not, like ``delete_tag``)."""
    return context.current_store().delete_alias(
        check_key(name, "model name"),
        check_key(alias, "alias"),
        who=_lifecycle.current_user(),
        now=_lifecycle.now_ms(),
    )


def set_model_description(name: str, description: str | None, *, version: int | None = None) -> None:
    """Set the description (markdown) of a model, or of one of its versions with ``version=``."""
    context.current_store().set_model_description(
        check_key(name, "model name"),
        _description(description),
        version=None if version is None else _version(version),
        now=_lifecycle.now_ms(),
    )


def model_history(name: str) -> list[ModelEvent]:
    """Every registration, stage change and alias change of a model, oldest first (who, when,
    from, to). An automatic archive of the previous production version appears as its own event."""
    return context.current_store().model_history(check_key(name, "model name"))


def diff_versions(name: str, v1: int, v2: int) -> Comparison:
    """Compare the source runs of two versions: a ``Comparison`` of their params and metrics
    (``ModelNotFoundError`` if either version does not exist)."""
    store = context.current_store()
    name = check_key(name, "model name")
    a = store.get_model_version(name, version=_version(v1))
    b = store.get_model_version(name, version=_version(v2))
    return compare_runs([a.run_id, b.run_id])
