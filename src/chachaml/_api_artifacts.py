"""The ``Client``'s artifact verbs: encode and store values and files, read them back."""

from __future__ import annotations

import io
import os
from typing import Any, BinaryIO

from chachaml import _process, formats
from chachaml._api_data import DataApi
from chachaml.entities import Artifact
from chachaml.errors import InvalidValueError, MissingDependencyError
from chachaml.rules import check_artifact_name


class ArtifactsApi(DataApi):
    """Artifacts (mixed into ``chachaml.client.Client``)."""

    __slots__ = ()

    def _put(
        self,
        run_id: str,
        name: str,
        data: bytes | BinaryIO,
        fmt: formats.Format,
        content_type: str,
        overwrite: bool,
    ) -> Artifact:
        return self.store.log_artifact(
            run_id,
            name,
            data,
            format=fmt.name,
            content_type=content_type,
            created=_process.now_ms(),
            overwrite=overwrite,
        )

    def log_artifact(
        self, name: str, value: Any, *, run: Any, format: str | None = None, overwrite: bool = False
    ) -> Artifact:
        """Store ``value`` as the artifact ``name`` of ``run``.

        Args:
            name: a relative path such as ``"model.pkl"`` or ``"plots/loss.png"``
                (``rules.check_artifact_name``).
            value: the object to store.
            run: the run (a Run, id or prefix).
            format: ``"pickle"``, ``"json"``, ``"text"``, ``"bytes"``, ``"npy"``, ``"table"`` or a
                registered format; None picks one from the value (``formats.guess_format``).
            overwrite: replace an artifact of that name that holds other bytes.

        Raises:
            ConflictError: the name holds other bytes and ``overwrite`` is false.
            RunStateError: the run is not running.
        """
        check_artifact_name(name)
        run_id = self.resolve_run_id(run)
        fmt = formats.get_format(formats.guess_format(value) if format is None else format)
        return self._put(run_id, name, fmt.encode(value), fmt, formats.content_type(fmt, name), overwrite)

    def log_file(
        self, path: str | os.PathLike[str], name: str | None = None, *, run: Any, overwrite: bool = False
    ) -> Artifact:
        """Copy the file at ``path`` into the run as the artifact ``name`` (default: its file
        name), streamed: a file of any size is never held in memory. It loads back as bytes."""
        src = os.fspath(path)
        if not isinstance(src, str):
            raise InvalidValueError(f"log_file needs a str path, got {path!r}")
        if name is None:
            name = os.path.basename(src.rstrip("/" + os.sep))
        check_artifact_name(name)
        run_id = self.resolve_run_id(run)
        if os.path.isdir(src):
            raise InvalidValueError(f"{src!r} is a folder; log its files one by one (names may contain '/')")
        fmt = formats.FORMATS["bytes"]
        try:
            fh = open(src, "rb", buffering=0)  # noqa: SIM115 -- closed below; opened before the run checks
        except FileNotFoundError as exc:
            raise InvalidValueError(
                f"there is no file at {src!r}; check the path (cwd is {os.getcwd()!r})"
            ) from exc
        with fh:
            return self._put(run_id, name, fh, fmt, formats.content_type(fmt, name), overwrite)

    def log_figure(
        self, fig: Any, name: str, *, run: Any, dpi: int | None = None, overwrite: bool = False
    ) -> Artifact:
        """Store a matplotlib figure (or Axes) as a PNG artifact ``name`` (needs matplotlib)."""
        check_artifact_name(name)
        try:
            import matplotlib  # noqa: F401 -- only to fail with a clear message
        except ImportError as exc:
            raise MissingDependencyError(
                "log_figure needs matplotlib, which is not installed; pip install matplotlib"
            ) from exc
        figure = getattr(fig, "figure", None) if not hasattr(fig, "savefig") else fig
        if figure is None or not hasattr(figure, "savefig"):
            raise InvalidValueError(
                f"log_figure takes a matplotlib Figure or Axes, got {type(fig).__name__}; "
                "pass plt.gcf() or the fig of fig, ax = plt.subplots()"
            )
        run_id = self.resolve_run_id(run)
        buf = io.BytesIO()
        figure.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
        return self._put(run_id, name, buf.getvalue(), formats.FORMATS["bytes"], "image/png", overwrite)

    def log_table(self, name: str, rows: Any, *, run: Any, overwrite: bool = False) -> Artifact:
        """Store a table as JSON (``{"columns": [...], "rows": [[...], ...]}``): a list of dicts,
        a ``(headers, rows)`` pair or a pandas/polars DataFrame. It loads back as a list of dicts."""
        check_artifact_name(name)
        run_id = self.resolve_run_id(run)
        fmt = formats.FORMATS["table"]
        return self._put(run_id, name, fmt.encode(formats.table(rows)), fmt, fmt.content_type, overwrite)

    # -- reading -------------------------------------------------------------------------------
    def list_artifacts(self, run: Any) -> list[Artifact]:
        """The artifacts of a run, by name."""
        return self.store.list_artifacts(self.resolve_run_id(run))

    def open_artifact(self, run: Any, name: str) -> BinaryIO:
        """The stored bytes of an artifact as a binary file object (the caller closes it)."""
        return self.store.open_artifact(self.resolve_run_id(run), check_artifact_name(name))

    def _load(self, run_id: str, name: str) -> Any:
        art = self.store.get_artifact(run_id, name)
        fmt = formats.FORMATS.get(art.format)
        if fmt is None:
            raise InvalidValueError(
                f"artifact {name!r} of run {run_id[:8]} has the format {art.format!r}, which is not "
                "registered in this process; register it (chachaml.artifacts.register_format) or read "
                "the file at chachaml.artifact_path(...)"
            )
        with self.store.open_artifact(run_id, name) as fh:
            return fmt.decode(fh)

    def load_artifact(self, run: Any, name: str) -> Any:
        """The value of artifact ``name`` of a run, decoded with the format it was stored in.

        **Security**: a ``pickle`` artifact runs code while it is loaded. Only load artifacts
        from a store you trust.

        Raises:
            ArtifactNotFoundError: the run has no such artifact (the message lists those it has).
        """
        run_id = self.resolve_run_id(run)
        return self._load(run_id, check_artifact_name(name))

    def artifact_path(self, run: Any, name: str) -> str:
        """The absolute path of the file holding an artifact (local stores only).

        Raises:
            StoreError: the store keeps no artifact files on this machine.
        """
        run_id = self.resolve_run_id(run)
        return self._local("artifact_path").artifact_path(run_id, check_artifact_name(name))
