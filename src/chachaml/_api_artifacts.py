"""The ``Client``'s artifact verbs: encode and store values and files, read them back."""

from __future__ import annotations

import io
import os
import sys
from typing import TYPE_CHECKING, Any, BinaryIO

from chachaml import _process
from chachaml._api_data import DataApi
from chachaml.errors import InvalidValueError, MissingDependencyError
from chachaml.rules import check_artifact_name

# Annotations only: these load with the first verb that needs them, not with the Client
if TYPE_CHECKING:
    from chachaml import formats
    from chachaml.entities import (
        Artifact,
    )

_PROGRESS_FILES = 200  # log_artifacts shows progress on a terminal from this many files ...
_PROGRESS_BYTES = 256 * 1024 * 1024  # ... or this many bytes


def _folder_files(root: str) -> list[tuple[str, str]]:
    """(path, relative name with ``/``) of every file under ``root``, sorted by name.

    Symbolic links are resolved: one that leads outside ``root`` is refused (it would copy
    files the user did not mean to log, e.g. a link to ``~``), checked for the whole tree
    before anything is written. A link to a folder inside ``root`` is not descended into: its
    files are logged once, under their real path.
    """
    real_root = os.path.realpath(root)
    found: list[tuple[str, str]] = []
    for folder, dirs, files in os.walk(root, followlinks=False):
        for entry in sorted(dirs + files):
            path = os.path.join(folder, entry)
            if os.path.islink(path):
                target = os.path.realpath(path)
                if os.path.commonpath([real_root, target]) != real_root:
                    raise InvalidValueError(
                        f"{path!r} is a symbolic link to {target!r}, outside the folder {root!r}; "
                        "remove the link or copy what it points to into the folder"
                    )
                if not os.path.isfile(path):
                    continue  # a link to a folder inside root (or a dangling link inside it)
            elif entry in dirs:
                continue
            found.append((path, os.path.relpath(path, root).replace(os.sep, "/")))
    return sorted(found, key=lambda pair: pair[1])


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
        from chachaml import formats

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
            raise InvalidValueError(f"{src!r} is a folder; log it with chachaml.log_artifacts({src!r})")
        return self._put_file(run_id, src, name, overwrite)

    def _put_file(self, run_id: str, src: str, name: str, overwrite: bool) -> Artifact:
        """Stream the file ``src`` into the run as ``name`` (the body of ``log_file``)."""
        from chachaml import formats

        fmt = formats.FORMATS["bytes"]
        try:
            fh = open(src, "rb", buffering=0)  # noqa: SIM115 -- closed below; opened before the run checks
        except FileNotFoundError as exc:
            raise InvalidValueError(
                f"there is no file at {src!r}; check the path (cwd is {os.getcwd()!r})"
            ) from exc
        with fh:
            return self._put(run_id, name, fh, fmt, formats.content_type(fmt, name), overwrite)

    def log_artifacts(
        self,
        folder: str | os.PathLike[str],
        prefix: str | None = None,
        *,
        run: Any,
        overwrite: bool = False,
    ) -> list[Artifact]:
        """Log every file under ``folder`` as an artifact named by its relative path (under
        ``prefix``).

        Each file is streamed as by ``log_file`` (never held in memory whole), in name order. The
        folder ``outputs`` holding ``a.txt`` and ``plots/loss.png`` gives the artifacts ``a.txt``
        and ``plots/loss.png``, or ``run1/a.txt`` ... with ``prefix="run1"``. On a terminal, a
        large folder shows its progress on stderr (never on stdout, never when redirected).

        Not one transaction: files logged before an error stay logged. Logging the same folder
        again skips files whose bytes are unchanged, so a second call after fixing the cause
        completes the set.

        Returns:
            the stored ``Artifact`` of each file, in name order (empty for an empty folder).

        Raises:
            InvalidValueError: ``folder`` is not a directory, a symbolic link leads out of it,
                or a file name is not a valid artifact name; nothing is written.
            ConflictError: a name already holds other bytes and ``overwrite`` is false.
        """
        root = os.fspath(folder)
        if not isinstance(root, str):
            raise InvalidValueError(f"log_artifacts needs a str path, got {folder!r}")
        if not os.path.isdir(root):
            what = "a file; log it with chachaml.log_file" if os.path.isfile(root) else "not a folder"
            raise InvalidValueError(f"{root!r} is {what} (cwd is {os.getcwd()!r})")
        if prefix is not None:
            prefix = check_artifact_name(prefix.rstrip("/") if isinstance(prefix, str) else prefix, "prefix")
        run_id = self.resolve_run_id(run)
        files = [(path, f"{prefix}/{rel}" if prefix else rel) for path, rel in _folder_files(root)]
        for _, name in files:  # every name is checked before the first byte is written
            check_artifact_name(name)
        total = sum(os.path.getsize(path) for path, _ in files)
        show = sys.stderr.isatty() and (len(files) >= _PROGRESS_FILES or total >= _PROGRESS_BYTES)
        logged: list[Artifact] = []
        for i, (path, name) in enumerate(files, 1):
            logged.append(self._put_file(run_id, path, name, overwrite))
            if show:
                print(f"\rlog_artifacts: {i}/{len(files)} files", end="", file=sys.stderr, flush=True)
        if show:
            print(file=sys.stderr)
        return logged

    def log_image(self, name: str, image: Any, *, run: Any, overwrite: bool = False) -> Artifact:
        """Store a numpy array or a PIL image as the PNG artifact ``name`` (``chachaml.images``)."""
        check_artifact_name(name)
        run_id = self.resolve_run_id(run)  # first: a bad run fails before any encoding work
        from chachaml import _png, formats

        data = _png.image_png(image)
        return self._put(run_id, name, data, formats.FORMATS["bytes"], "image/png", overwrite)

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
        from chachaml import formats

        buf = io.BytesIO()
        figure.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
        return self._put(run_id, name, buf.getvalue(), formats.FORMATS["bytes"], "image/png", overwrite)

    def log_table(self, name: str, rows: Any, *, run: Any, overwrite: bool = False) -> Artifact:
        """Store a table as JSON (``{"columns": [...], "rows": [[...], ...]}``): a list of dicts,
        a ``(headers, rows)`` pair or a pandas/polars DataFrame. It loads back as a list of dicts."""
        check_artifact_name(name)
        run_id = self.resolve_run_id(run)
        from chachaml import formats

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
        from chachaml import formats

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
