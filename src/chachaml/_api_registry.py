"""The ``Client``'s model-registry verbs."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from chachaml import _process, entities
from chachaml._api_artifacts import ArtifactsApi
from chachaml._values import check_key
from chachaml.errors import InvalidValueError
from chachaml.rules import check_description, check_stage, check_version

# Annotations only: these load with the first verb that needs them, not with the Client
if TYPE_CHECKING:
    from chachaml.entities import (
        Artifact,
        Model,
        ModelEvent,
        ModelVersion,
    )
    from chachaml.results import Comparison


class RegistryApi(ArtifactsApi):
    """The model registry (mixed into ``chachaml.client.Client``)."""

    __slots__ = ()

    def register_model(
        self,
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
            artifact: the artifact's name on the run, or the ``Artifact`` ``log_artifact`` returned.
            run_id: the run holding it (a Run, id or prefix); default: the ``Artifact``'s run.
            stage: the new version's stage; ``"production"`` archives the previous one.
            description: markdown describing this version.

        Raises:
            ArtifactNotFoundError: the run has no artifact of that name.
            InvalidValueError: no run is given and ``artifact`` is a name.
        """
        name = check_key(name, "model name")
        if isinstance(artifact, entities.Artifact):
            if run_id is None:
                run_id = artifact.run_id
            artifact = artifact.name
        if not isinstance(artifact, str) or not artifact:
            raise InvalidValueError(
                "artifact= must be the name of an artifact logged on the run (or an Artifact), "
                f"got {artifact!r}"
            )
        stage = check_stage(stage)
        if run_id is None:
            raise InvalidValueError(
                f"register_model({name!r}, artifact={artifact!r}) needs run_id= (the run holding "
                "the artifact), or pass the Artifact that log_artifact returned"
            )
        return self.store.register_model(
            name,
            run_id=self.resolve_run_id(run_id),
            artifact=artifact,
            stage=stage,
            description=check_description(description),
            who=_process.current_user(),
            now=_process.now_ms(),
        )

    def models(self) -> list[Model]:
        """Every registered model, by name (with latest and production version, aliases)."""
        return self.store.models()

    def model(self, name: str) -> Model:
        """The model ``name`` with all its versions (``ModelNotFoundError`` if not registered)."""
        return self.store.get_model(check_key(name, "model name"))

    def model_versions(self, name: str) -> list[ModelVersion]:
        """The versions of a model, oldest first."""
        return self.store.model_versions(check_key(name, "model name"))

    def model_history(self, name: str) -> list[ModelEvent]:
        """Every registration, stage change and alias change of a model, oldest first."""
        return self.store.model_history(check_key(name, "model name"))

    def get_model_version(
        self,
        name: str,
        version: int | None = None,
        *,
        stage: str = "production",
        alias: str | None = None,
    ) -> ModelVersion:
        """Pick one version: by ``version``, else by ``alias``, else the highest at ``stage``.

        Raises:
            ModelNotFoundError: no such model, version or alias, or no version at that stage.
            InvalidValueError: both ``version`` and ``alias`` are given.
        """
        name = check_key(name, "model name")
        if version is not None and alias is not None:
            raise InvalidValueError("pass version= or alias=, not both")
        if version is not None:
            return self.store.get_model_version(name, version=check_version(version))
        if alias is not None:
            return self.store.get_model_version(name, alias=check_key(alias, "alias"))
        return self.store.get_model_version(name, stage=check_stage(stage))

    def load_model(
        self, name: str, *, version: int | None = None, stage: str = "production", alias: str | None = None
    ) -> Any:
        """Load a model version's artifact (default: the production version).

        **Security**: models are usually pickles, and loading a pickle runs code.
        """
        mv = self.get_model_version(name, version, stage=stage, alias=alias)
        return self._load(mv.run_id, mv.artifact)

    def promote(self, name: str, version: int, stage: str) -> ModelVersion:
        """Move a version to ``stage``; ``production`` archives the current production version
        in the same transaction. A missing version raises ``ModelNotFoundError``, changing nothing."""
        return self.store.promote(
            check_key(name, "model name"),
            check_version(version),
            check_stage(stage),
            who=_process.current_user(),
            now=_process.now_ms(),
        )

    def set_alias(self, name: str, alias: str, version: int) -> ModelVersion:
        """Point ``alias`` (e.g. ``"champion"``) at a version, moving it from any other version."""
        return self.store.set_alias(
            check_key(name, "model name"),
            check_key(alias, "alias"),
            check_version(version),
            who=_process.current_user(),
            now=_process.now_ms(),
        )

    def delete_alias(self, name: str, alias: str) -> bool:
        """Remove an alias; True if it existed (no error if it did not)."""
        return self.store.delete_alias(
            check_key(name, "model name"),
            check_key(alias, "alias"),
            who=_process.current_user(),
            now=_process.now_ms(),
        )

    def set_model_description(
        self, name: str, description: str | None, *, version: int | None = None
    ) -> None:
        """Set the description (markdown) of a model, or of one of its versions."""
        self.store.set_model_description(
            check_key(name, "model name"),
            check_description(description),
            version=None if version is None else check_version(version),
            now=_process.now_ms(),
        )

    def diff_versions(self, name: str, v1: int, v2: int) -> Comparison:
        """Compare the source runs of two versions (``ModelNotFoundError`` if either is missing)."""
        name = check_key(name, "model name")
        a = self.store.get_model_version(name, version=check_version(v1))
        b = self.store.get_model_version(name, version=check_version(v2))
        return self.compare_runs([a.run_id, b.run_id])
