"""Artifacts: files kept with a run -- models, arrays, plots, tables, reports.

>>> chachaml.log_artifact("model.pkl", model)          # doctest: +SKIP  (pickle)
>>> chachaml.log_artifact("report.md", "# Results")    # doctest: +SKIP  (text)
>>> chachaml.log_file("data/train.csv")                # doctest: +SKIP  (streamed copy)
>>> chachaml.log_artifacts("outputs/")                  # doctest: +SKIP  (a whole folder)
>>> chachaml.load_artifact(run.id, "model.pkl")        # doctest: +SKIP

Bytes live in files next to the database (``<db>-artifacts/<run-id>/<name>``), written
atomically, with size and sha256 recorded (``chachaml.store._sqlite_artifacts`` has the write
protocol). ``FORMATS`` maps a format name to how values are encoded and decoded; add one with
``register_format``. **Loading a pickle runs code**: only load artifacts from stores you trust.
"""

from __future__ import annotations

import io
import json
import mimetypes
import os
import pickle
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, BinaryIO

from chachaml import _lifecycle, context
from chachaml.entities import Artifact, GcReport, Run
from chachaml.errors import InvalidValueError, MissingDependencyError
from chachaml.reading import full_run_id
from chachaml.store._files import check_name
from chachaml.store.base import Store
from chachaml.tracking import _target

__all__ = [
    "FORMATS",
    "Format",
    "artifact_path",
    "gc",
    "list_artifacts",
    "load_artifact",
    "log_artifact",
    "log_artifacts",
    "log_figure",
    "log_file",
    "log_table",
    "register_format",
]


@dataclass(frozen=True, slots=True)
class Format:
    """How a value becomes bytes and back. ``decode`` reads from a binary file object."""

    name: str
    encode: Callable[[Any], bytes]
    decode: Callable[[BinaryIO], Any]
    content_type: str
    extension: str | None = None  # the usual file extension, for downloads and exports


#: Format name -> Format. The one place to add a format (``register_format``).
FORMATS: dict[str, Format] = {}


def register_format(
    name: str,
    *,
    encode: Callable[[Any], bytes],
    decode: Callable[[BinaryIO], Any],
    content_type: str,
    extension: str | None = None,
) -> Format:
    """Add (or replace) a format usable as ``log_artifact(..., format=name)``.

    The format name is stored with each artifact and ``load_artifact`` decodes with it, so a
    process that loads such an artifact must register the same format first.
    """
    fmt = Format(name, encode, decode, content_type, extension)
    FORMATS[name] = fmt
    return fmt


def _numpy() -> Any:
    try:
        import numpy
    except ImportError as exc:
        raise MissingDependencyError(
            "the 'npy' artifact format needs numpy, which is not installed; pip install numpy"
        ) from exc
    return numpy


def _encode_pickle(value: Any) -> bytes:
    try:
        return pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception as exc:  # pickling raises many types (PicklingError, TypeError, AttributeError)
        raise InvalidValueError(
            f"cannot pickle {type(value).__name__} ({exc}); log its state instead (e.g. a dict of "
            "arrays), or save it to a file yourself and use chachaml.log_file"
        ) from exc


def _utf8(text: str) -> bytes:
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidValueError(
            f"the text holds the lone surrogate {text[exc.start]!r} at position {exc.start}, which is "
            "not valid UTF-8; fix the text, or store it with format='pickle'"
        ) from None


def _encode_json(value: Any) -> bytes:
    try:
        text = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError, RecursionError) as exc:  # unsupported type, circular reference
        raise InvalidValueError(
            f"cannot store {type(value).__name__} as JSON ({exc}); convert it to dicts, lists, str "
            "and numbers, or use format='pickle'"
        ) from exc
    return _utf8(text)


def _encode_text(value: Any) -> bytes:
    if not isinstance(value, str):
        raise InvalidValueError(
            f"format 'text' takes a str, got {type(value).__name__}; pass str(value), or use "
            "format='json' or 'pickle'"
        )
    return _utf8(value)


def _encode_bytes(value: Any) -> bytes:
    if not isinstance(value, bytes | bytearray | memoryview):
        raise InvalidValueError(
            f"format 'bytes' takes bytes, got {type(value).__name__}; encode it first, or let "
            "chachaml choose (format=None)"
        )
    return bytes(value)


def _encode_npy(value: Any) -> bytes:
    np = _numpy()
    arr = np.asarray(value)
    if arr.dtype.hasobject:
        raise InvalidValueError(
            f"an array of dtype {arr.dtype} holds Python objects and cannot be stored as .npy "
            "without pickling; use format='pickle'"
        )
    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=False)
    return buf.getvalue()


def _decode_npy(fh: BinaryIO) -> Any:
    return _numpy().load(fh, allow_pickle=False)


def _plain(v: Any) -> Any:
    """A JSON-friendly cell for ``log_table``: numpy scalars become numbers, the rest ``str``."""
    item = getattr(v, "item", None)
    if callable(item):
        try:
            return item()
        except (TypeError, ValueError):
            pass
    return str(v)


def _encode_table(value: Any) -> bytes:
    columns, rows = value
    return _utf8(json.dumps({"columns": columns, "rows": rows}, ensure_ascii=False, default=_plain))


def _decode_table(fh: BinaryIO) -> list[dict[str, Any]]:
    data = json.load(fh)
    columns = data["columns"]
    return [dict(zip(columns, row, strict=True)) for row in data["rows"]]


register_format(
    "pickle",
    encode=_encode_pickle,
    decode=pickle.load,  # runs code from the file: see the module docstring
    content_type="application/x-python-pickle",
    extension=".pkl",
)
register_format(
    "json", encode=_encode_json, decode=json.load, content_type="application/json", extension=".json"
)
register_format(
    "text",
    encode=_encode_text,
    decode=lambda fh: fh.read().decode("utf-8"),
    content_type="text/plain; charset=utf-8",
    extension=".txt",
)
register_format(
    "bytes",
    encode=_encode_bytes,
    decode=lambda fh: fh.read(),
    content_type="application/octet-stream",
    extension=None,
)
register_format(
    "npy", encode=_encode_npy, decode=_decode_npy, content_type="application/x-npy", extension=".npy"
)
register_format(
    "table",
    encode=_encode_table,
    decode=_decode_table,
    content_type="application/vnd.chachaml.table+json",
    extension=".json",
)


def _is_ndarray(value: Any) -> bool:
    np = sys.modules.get("numpy")  # an array exists only if numpy was imported: never import it here
    return np is not None and isinstance(value, np.ndarray)


def guess_format(value: Any) -> str:
    """The format ``format=None`` picks: bytes -> bytes, str -> text, numpy array -> npy, else pickle."""
    if isinstance(value, bytes | bytearray | memoryview):
        return "bytes"
    if isinstance(value, str):
        return "text"
    if _is_ndarray(value):
        return "npy"
    return "pickle"


def _content_type(fmt: Format, name: str) -> str:
    """Refine the format's content type from the name for raw formats (``.md``, ``.png``, ...)."""
    if fmt.name not in ("text", "bytes"):
        return fmt.content_type
    guessed, _ = mimetypes.guess_type(name, strict=False)
    if guessed is None:
        return fmt.content_type
    if fmt.name == "text":
        return f"{guessed}; charset=utf-8" if guessed.startswith("text/") else fmt.content_type
    return guessed


def _format(name: str) -> Format:
    fmt = FORMATS.get(name)
    if fmt is None:
        raise InvalidValueError(
            f"unknown artifact format {name!r}; use one of {', '.join(sorted(FORMATS))}, "
            "or add it with chachaml.artifacts.register_format"
        )
    return fmt


def _put(
    store: Store,
    run_id: str,
    name: str,
    data: bytes | BinaryIO,
    fmt: Format,
    content_type: str,
    overwrite: bool,
) -> Artifact:
    return store.log_artifact(
        run_id,
        name,
        data,
        format=fmt.name,
        content_type=content_type,
        created=_lifecycle.now_ms(),
        overwrite=overwrite,
    )


# -- writing ------------------------------------------------------------------------------------
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
    check_name(name)
    store, run_id = _target(run)
    fmt = _format(guess_format(value) if format is None else format)
    return _put(store, run_id, name, fmt.encode(value), fmt, _content_type(fmt, name), overwrite)


def log_file(
    path: str | os.PathLike[str], name: str | None = None, *, overwrite: bool = False, run: Any = None
) -> Artifact:
    """Copy the file at ``path`` into the run as the artifact ``name`` (default: its file name).

    The file is copied by the kernel (``copy_file_range`` / ``sendfile``) when it can, else in
    1 MiB chunks, and the stored copy is hashed in chunks: a file of any size is never held in
    memory. It loads back as ``bytes`` (``artifact_path`` gives the stored file's path,
    better for large files). Same rules as ``log_artifact`` for names and conflicts.
    """
    src = os.fspath(path)
    if not isinstance(src, str):
        raise InvalidValueError(f"log_file needs a str path, got {path!r}")
    if name is None:
        name = os.path.basename(src.rstrip("/" + os.sep))
    check_name(name)
    store, run_id = _target(run)
    if os.path.isdir(src):
        raise InvalidValueError(f"{src!r} is a folder; log it with chachaml.log_artifacts({src!r})")
    return _put_file(store, run_id, src, name, overwrite)


def _put_file(store: Store, run_id: str, src: str, name: str, overwrite: bool) -> Artifact:
    """Stream the file ``src`` into the run as ``name`` (the body of ``log_file``)."""
    fmt = FORMATS["bytes"]
    try:
        fh = open(src, "rb", buffering=0)  # noqa: SIM115 -- closed below; opened before the run checks
    except FileNotFoundError as exc:
        raise InvalidValueError(
            f"there is no file at {src!r}; check the path (cwd is {os.getcwd()!r})"
        ) from exc
    with fh:
        return _put(store, run_id, name, fh, fmt, _content_type(fmt, name), overwrite)


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
    root = os.fspath(folder)
    if not isinstance(root, str):
        raise InvalidValueError(f"log_artifacts needs a str path, got {folder!r}")
    if not os.path.isdir(root):
        what = "a file; log it with chachaml.log_file" if os.path.isfile(root) else "not a folder"
        raise InvalidValueError(f"{root!r} is {what} (cwd is {os.getcwd()!r})")
    if prefix is not None:
        prefix = check_name(prefix.rstrip("/") if isinstance(prefix, str) else prefix, "prefix")
    store, run_id = _target(run)
    files = [(path, f"{prefix}/{rel}" if prefix else rel) for path, rel in _folder_files(root)]
    for _, name in files:  # every name is checked before the first byte is written
        check_name(name)
    total = sum(os.path.getsize(path) for path, _ in files)
    show = sys.stderr.isatty() and (len(files) >= _PROGRESS_FILES or total >= _PROGRESS_BYTES)
    logged: list[Artifact] = []
    for i, (path, name) in enumerate(files, 1):
        logged.append(_put_file(store, run_id, path, name, overwrite))
        if show:
            print(f"\rlog_artifacts: {i}/{len(files)} files", end="", file=sys.stderr, flush=True)
    if show:
        print(file=sys.stderr)
    return logged


def log_figure(
    fig: Any, name: str, *, dpi: int | None = None, overwrite: bool = False, run: Any = None
) -> Artifact:
    """Store a matplotlib figure (or Axes) as a PNG artifact ``name`` (needs matplotlib)."""
    check_name(name)
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
    store, run_id = _target(run)
    buf = io.BytesIO()
    figure.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    return _put(store, run_id, name, buf.getvalue(), FORMATS["bytes"], "image/png", overwrite)


def _table(rows: Any) -> tuple[list[str], list[list[Any]]]:
    """(columns, rows) from a list of dicts, a (headers, rows) pair, or a pandas/polars frame."""
    if hasattr(rows, "columns") and (hasattr(rows, "itertuples") or hasattr(rows, "rows")):
        columns = [str(c) for c in rows.columns]
        body = rows.itertuples(index=False, name=None) if hasattr(rows, "itertuples") else rows.rows()
        return columns, [list(r) for r in body]
    if isinstance(rows, tuple) and len(rows) == 2 and not isinstance(rows[0], Mapping):
        headers, body = rows
        columns = [str(h) for h in headers]
        out = [list(r) for r in body]
        for i, r in enumerate(out):
            if len(r) != len(columns):
                raise InvalidValueError(
                    f"table row {i} has {len(r)} cells but there are {len(columns)} headers {columns}"
                )
    elif (
        isinstance(rows, Sequence)
        and not isinstance(rows, str | bytes)
        and all(isinstance(r, Mapping) for r in rows)
    ):
        columns = list(dict.fromkeys(str(k) for r in rows for k in r))
        out = [[next((v for k, v in r.items() if str(k) == c), None) for c in columns] for r in rows]
    else:
        raise InvalidValueError(
            "log_table takes a list of dicts, a (headers, rows) pair or a DataFrame, "
            f"got {type(rows).__name__}"
        )
    if len(set(columns)) != len(columns):
        raise InvalidValueError(f"table headers must be unique, got {columns}")
    return columns, out


def log_table(name: str, rows: Any, *, overwrite: bool = False, run: Any = None) -> Artifact:
    """Store a table as JSON (``{"columns": [...], "rows": [[...], ...]}``) for the UI.

    ``rows`` is a list of dicts (columns in first-seen order, missing cells ``None``), a
    ``(headers, rows)`` pair, or a pandas/polars DataFrame. Numpy numbers become numbers, other
    non-JSON cells are stored with ``str()``. It loads back as a list of dicts.
    """
    check_name(name)
    store, run_id = _target(run)
    fmt = FORMATS["table"]
    return _put(store, run_id, name, fmt.encode(_table(rows)), fmt, fmt.content_type, overwrite)


# -- reading ------------------------------------------------------------------------------------
def _resolve(run: Any) -> tuple[Store, str]:
    """Store and full run id for a read: a ``Run``, a run id or a unique id prefix."""
    if run is None:
        return _target(None)
    frame = context.current_frame()
    wanted = run.id if isinstance(run, Run) else run
    if frame is not None and frame.store is not None and frame.run_id == wanted:
        return frame.store, wanted
    store = context.current_store()
    return store, full_run_id(store, run)


def _load(store: Store, run_id: str, name: str) -> Any:
    art = store.get_artifact(run_id, name)
    fmt = FORMATS.get(art.format)
    if fmt is None:
        raise InvalidValueError(
            f"artifact {name!r} of run {run_id[:8]} has the format {art.format!r}, which is not "
            "registered in this process; register it (chachaml.artifacts.register_format) or read "
            "the file at chachaml.artifact_path(...)"
        )
    with store.open_artifact(run_id, name) as fh:
        return fmt.decode(fh)


def load_artifact(run_id: Any, name: str) -> Any:
    """The value of artifact ``name`` of a run, decoded with the format it was stored in.

    ``run_id`` is a ``Run``, a run id or a unique prefix. Text loads as ``str``, json as the
    JSON value, bytes and files as ``bytes``, npy as a numpy array, tables as a list of dicts.

    **Security**: a ``pickle`` artifact (the default for Python objects) runs code while it is
    loaded. Only load artifacts from a store you trust.

    Raises:
        ArtifactNotFoundError: the run has no artifact of that name (the message lists those it has).
    """
    store, rid = _resolve(run_id)
    return _load(store, rid, check_name(name))


def list_artifacts(run_id: Any = None) -> list[Artifact]:
    """The artifacts of a run (default: the current run), by name."""
    store, rid = _resolve(run_id)
    return store.list_artifacts(rid)


def artifact_path(run_id: Any, name: str) -> str:
    """The absolute path of the file holding artifact ``name`` (read it; never write to it)."""
    store, rid = _resolve(run_id)
    return store.artifact_path(rid, check_name(name))


def gc(*, dry_run: bool = False) -> GcReport:
    """Remove orphan artifact files of the current store and report what was freed.

    Orphans are files without a metadata row (a crash between writing the bytes and recording
    them, or a run deleted while its files could not be removed) and abandoned temporary files.
    With ``dry_run=True`` nothing is removed. The report also lists recorded artifacts whose
    file is missing.
    """
    return context.current_store().gc_artifacts(dry_run=dry_run)
