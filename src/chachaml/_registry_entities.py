"""The entities of artifacts, the model registry and ``gc_artifacts``, re-exported by
``chachaml.entities`` (import them from there).

Creating a dataclass runs generated code (~0.7 ms each on the development VM), and a first
``log_metric`` needs none of these five, so ``chachaml.entities`` defines them on first access
(docs/adr/0028-first-use-imports.md). Their ``__module__`` is ``chachaml.entities``: pickles and
reprs name that module, as before.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from chachaml import _display
from chachaml._entity_base import _Entity, _fmt_size

__all__ = ["Artifact", "GcReport", "Model", "ModelEvent", "ModelVersion"]


@dataclass(frozen=True, slots=True)
class Artifact(_Entity):
    """Metadata of a file kept with a run (``log_artifact``, ``log_file``, ...).

    ``path`` is relative to the store's artifact folder (``<run_id>/<name>``); ask
    ``chachaml.artifact_path(run_id, name)`` for the absolute path. ``format`` says how
    ``load_artifact`` decodes the bytes.
    """

    run_id: str
    name: str
    size: int
    sha256: str
    content_type: str
    format: str
    created: int
    path: str = ""

    def __repr__(self) -> str:
        return (
            f"<Artifact {self.name!r} {_fmt_size(self.size)} {self.format} "
            f"run={self.run_id[:8]} sha256={self.sha256[:12]}>"
        )

    def _repr_html_(self) -> str:
        return _display.html_table(
            ["name", "size", "format", "content type", "sha256", "run", "created"],
            [
                [
                    self.name,
                    _fmt_size(self.size),
                    self.format,
                    self.content_type,
                    self.sha256[:12],
                    self.run_id[:8],
                    _display.fmt_time(self.created),
                ]
            ],
        )


@dataclass(frozen=True, slots=True)
class ModelVersion(_Entity):
    """One registered version of a model: an artifact of a run, at a stage."""

    model: str
    version: int
    run_id: str
    artifact: str
    stage: str = "none"
    description: str | None = None
    created: int | None = None
    created_by: str | None = None
    aliases: tuple[str, ...] = ()

    _NESTED: ClassVar[dict[str, Any]] = {"aliases": tuple}

    def _row(self) -> list[Any]:
        return [
            f"v{self.version}",
            self.stage,
            ", ".join(self.aliases),
            self.run_id[:8],
            self.artifact,
            self.created_by,
            _display.fmt_time(self.created),
            self.description,
        ]

    _HEADERS = ("version", "stage", "aliases", "run", "artifact", "by", "created", "description")

    def __repr__(self) -> str:
        aliases = f" aliases={list(self.aliases)}" if self.aliases else ""
        return (
            f"<ModelVersion {self.model!r} v{self.version} {self.stage}{aliases}"
            f" run={self.run_id[:8]} artifact={self.artifact!r}>"
        )

    def _repr_html_(self) -> str:
        return _display.html_table(self._HEADERS, [self._row()], caption=f"{self.model} v{self.version}")


@dataclass(frozen=True, slots=True)
class Model(_Entity):
    """A registered model: a name whose versions move through stages.

    ``versions`` holds the versions, oldest first, when the model was read with
    ``chachaml.model(name)``; ``models()`` leaves it empty (use ``latest_version``).
    """

    name: str
    description: str | None = None
    created: int | None = None
    updated: int | None = None
    latest_version: int | None = None
    production_version: int | None = None
    aliases: dict[str, int] = field(default_factory=dict)
    versions: tuple[ModelVersion, ...] = ()

    _NESTED: ClassVar[dict[str, Any]] = {
        "aliases": dict,
        "versions": lambda vs: tuple(ModelVersion.from_dict(v) for v in vs),
    }

    def __repr__(self) -> str:
        prod = f" production=v{self.production_version}" if self.production_version else ""
        return f"<Model {self.name!r} versions={self.latest_version or 0}{prod}>"

    def _repr_html_(self) -> str:
        caption = self.name + (f": {self.description}" if self.description else "")
        if not self.versions:
            return _display.html_table(
                ["name", "versions", "production", "updated"],
                [
                    [
                        self.name,
                        self.latest_version or 0,
                        self.production_version,
                        _display.fmt_time(self.updated),
                    ]
                ],
                caption=caption,
            )
        return _display.html_table(ModelVersion._HEADERS, [v._row() for v in self.versions], caption=caption)


@dataclass(frozen=True, slots=True)
class ModelEvent(_Entity):
    """One change in the registry: a version registered, a stage or alias changed.

    ``kind`` is ``register``, ``stage`` or ``alias``; ``from_value`` / ``to_value`` are the stage
    before and after, or the version an alias pointed at before and after (``None`` when the
    alias did not exist, or was deleted).
    """

    model: str
    version: int | None
    kind: str
    from_value: str | None
    to_value: str | None
    who: str | None
    at: int
    alias: str | None = None

    def __repr__(self) -> str:
        what = self.kind if self.alias is None else f"alias {self.alias!r}"
        return (
            f"<ModelEvent {self.model!r} v{self.version} {what} {self.from_value} -> {self.to_value}"
            f" by {self.who} at {_display.fmt_time(self.at)}>"
        )


@dataclass(frozen=True, slots=True)
class GcReport(_Entity):
    """What ``chachaml.gc_artifacts()`` removed (or, with ``dry_run=True``, would remove).

    ``removed`` lists paths relative to the artifact folder; ``missing`` lists artifacts whose
    row exists but whose file is gone (deleted by hand), as ``<run_id>/<name>``.
    """

    removed: tuple[str, ...] = ()
    freed_bytes: int = 0
    missing: tuple[str, ...] = ()
    dry_run: bool = False

    _NESTED: ClassVar[dict[str, Any]] = {"removed": tuple, "missing": tuple}

    def __repr__(self) -> str:
        verb = "would remove" if self.dry_run else "removed"
        n = len(self.removed)
        missing = f", {len(self.missing)} missing" if self.missing else ""
        return f"<GcReport {verb} {n} file{'s' if n != 1 else ''}, {_fmt_size(self.freed_bytes)}{missing}>"


# Their public home: pickles and reprs name ``chachaml.entities`` (set after the dataclasses are
# made: ``dataclass`` resolves the string annotation ``ClassVar`` in the defining module).
for _cls in (Artifact, ModelVersion, Model, ModelEvent, GcReport):
    _cls.__module__ = "chachaml.entities"
del _cls
