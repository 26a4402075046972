"""Artifacts: files kept with a run -- models, arrays, plots, tables, reports.

>>> chachaml.log_artifact("model.pkl", model)          # doctest: +SKIP  (pickle)
>>> chachaml.log_artifact("report.md", "# Results")    # doctest: +SKIP  (text)
>>> chachaml.log_file("data/train.csv")                # doctest: +SKIP  (streamed copy)
>>> chachaml.log_artifacts("outputs/")                  # doctest: +SKIP  (a whole folder)
>>> chachaml.load_artifact(run.id, "model.pkl")        # doctest: +SKIP

Bytes live in files next to the database (``<db>-artifacts/<run-id>/<name>``), written
atomically, with size and sha256 recorded (``chachaml.store._sqlite_artifacts`` has the write
protocol). ``FORMATS`` maps a format name to how values are encoded and decoded; add one with
``register_format`` (both live in ``chachaml.formats``). **Loading a pickle runs code**: only
load artifacts from stores you trust. Each verb delegates to the ``Client``; garbage collection
is ``chachaml.housekeeping.gc_artifacts``.
"""

from __future__ import annotations

import os
from typing import Any

from chachaml import context
from chachaml.entities import Artifact
from chachaml.formats import FORMATS, Format, guess_format, register_format
from chachaml.rules import check_artifact_name

__all__ = [
    "FORMATS",
    "Format",
    "artifact_path",
    "guess_format",
    "list_artifacts",
    "load_artifact",
    "log_artifact",
    "log_artifacts",
    "log_figure",
    "log_file",
    "log_table",
    "register_format",
]


def log_artifact(
    name: str, value: Any, *, format: str | None = None, overwrite: bool = False, run: Any = None
) -> Artifact:
    """Store ``value`` as the artifact ``name`` of the current run (or ``run=``).

    Args:
        name: a relative path such as ``"model.pkl"`` or ``"plots/loss.png"``; ``/`` makes
            folders. ``..``, absolute paths, backslashes, NUL and empty names raise
            ``InvalidValueError`` and write nothing.
        value: the object to store.
        format: ``"pickle"``, ``"json"``, ``"text"``, ``"bytes"``, ``"npy"`` (numpy) or a
            registered format; ``None`` picks bytes for bytes, text for ``str``, npy for numpy
            arrays and pickle for anything else.
        overwrite: replace an artifact of that name that holds other bytes.

    Returns:
        the stored ``Artifact`` (size, sha256, content type, format).

    Raises:
        ConflictError: the name already holds other bytes (it is left untouched) and
            ``overwrite`` is false. Identical bytes again are a no-op.
        RunStateError: the run is not running.
        NoActiveRunError: there is no current run and no ``run=``.
    """
    check_artifact_name(name)  # a bad name is reported first, even without a current run
    client, ref = context.target(run)
    return client.log_artifact(name, value, run=ref, format=format, overwrite=overwrite)


def log_file(
    path: str | os.PathLike[str], name: str | None = None, *, overwrite: bool = False, run: Any = None
) -> Artifact:
    """Copy the file at ``path`` into the run as the artifact ``name`` (default: its file name).

    The file is copied by the kernel (``copy_file_range`` / ``sendfile``) when it can, else in
    1 MiB chunks, and the stored copy is hashed in chunks: a file of any size is never held in
    memory. It loads back as ``bytes`` (``artifact_path`` gives the stored file's path,
    better for large files). Same rules as ``log_artifact`` for names and conflicts.
    """
    if name is not None:
        check_artifact_name(name)
    client, ref = context.target(run)
    return client.log_file(path, name, run=ref, overwrite=overwrite)


def log_artifacts(
    folder: str | os.PathLike[str],
    prefix: str | None = None,
    *,
    overwrite: bool = False,
    run: Any = None,
) -> list[Artifact]:
    """Log every file under ``folder`` as an artifact named by its relative path (under ``prefix``).

    Each file is streamed as by ``log_file`` (never held in memory whole), in name order. The
    folder ``outputs`` holding ``a.txt`` and ``plots/loss.png`` gives the artifacts ``a.txt``
    and ``plots/loss.png``, or ``run1/a.txt`` ... with ``prefix="run1"``. On a terminal, a
    large folder shows its progress on stderr (never on stdout, never when redirected).

    Not one transaction: files logged before an error stay logged. Logging the same folder
    again skips files whose bytes are unchanged, so a second call after fixing the cause
    completes the set.

    Args:
        folder: the directory to log.
        prefix: a folder name to put the files under (same rules as artifact names).
        overwrite: replace artifacts of those names that hold other bytes.
        run: the run (default: the current run).

    Returns:
        the stored ``Artifact`` of each file, in name order (empty for an empty folder).

    Raises:
        InvalidValueError: ``folder`` is not a directory, a symbolic link leads out of it,
            or a file name is not a valid artifact name; nothing is written.
        ConflictError: a name already holds other bytes and ``overwrite`` is false.
    """
    client, ref = context.target(run)
    return client.log_artifacts(folder, prefix, run=ref, overwrite=overwrite)


def log_figure(
    fig: Any, name: str, *, dpi: int | None = None, overwrite: bool = False, run: Any = None
) -> Artifact:
    """Store a matplotlib figure (or Axes) as a PNG artifact ``name`` (needs matplotlib)."""
    check_artifact_name(name)
    client, ref = context.target(run)
    return client.log_figure(fig, name, run=ref, dpi=dpi, overwrite=overwrite)


def log_table(name: str, rows: Any, *, overwrite: bool = False, run: Any = None) -> Artifact:
    """Store a table as JSON (``{"columns": [...], "rows": [[...], ...]}``) for the UI.

    ``rows`` is a list of dicts (columns in first-seen order, missing cells ``None``), a
    ``(headers, rows)`` pair, or a pandas/polars DataFrame. Numpy numbers become numbers, other
    non-JSON cells are stored with ``str()``. It loads back as a list of dicts.
    """
    check_artifact_name(name)
    client, ref = context.target(run)
    return client.log_table(name, rows, run=ref, overwrite=overwrite)


# -- reading ------------------------------------------------------------------------------------
def load_artifact(run_id: Any, name: str) -> Any:
    """The value of artifact ``name`` of a run, decoded with the format it was stored in.

    ``run_id`` is a ``Run``, a run id or a unique prefix. Text loads as ``str``, json as the
    JSON value, bytes and files as ``bytes``, npy as a numpy array, tables as a list of dicts.

    **Security**: a ``pickle`` artifact (the default for Python objects) runs code while it is
    loaded. Only load artifacts from a store you trust.

    Raises:
        ArtifactNotFoundError: the run has no artifact of that name (the message lists those it has).
    """
    client, ref = context.target(run_id)
    return client.load_artifact(ref, name)


def list_artifacts(run_id: Any = None) -> list[Artifact]:
    """The artifacts of a run (default: the current run), by name."""
    client, ref = context.target(run_id)
    return client.list_artifacts(ref)


def artifact_path(run_id: Any, name: str) -> str:
    """The absolute path of the file holding artifact ``name`` (read it; never write to it)."""
    client, ref = context.target(run_id)
    return client.artifact_path(ref, name)
