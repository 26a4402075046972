"""The artifact-location seam: where a metadata store keeps artifact bytes (docs/adr/0017).

A metadata store (SQLite today, PostgreSQL next) keeps the rows; the bytes live in an
``ArtifactFiles``: a local folder (``_files.LocalFiles``) or S3-compatible object storage
(``_s3.S3Objects``). The store's artifact code (``_sqlite_artifacts``) talks only to this
protocol, so a location is chosen when the store is opened (``artifacts=``) and every store
gets every location. ``open_location`` turns a location text into one:

* ``s3://bucket[/prefix]`` -> ``S3Objects`` (boto3 from the extra ``s3``, imported here lazily);
* ``file:///abs/path`` or a path -> ``LocalFiles`` of that folder (made absolute).

The protocol is the write protocol of ADR-0008 spelled for any medium: ``stage`` the bytes under
a temporary name while hashing them, ``commit`` them into place before the row is written,
``discard`` a staged copy that lost; ``scan``/``remove`` for ``gc``; a marker proving whose
location it is (``marker_ids``/``mark``/``has_marker``/``holds_run_files``).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import BinaryIO, Protocol
from urllib.parse import unquote, urlsplit

from chachaml.errors import InvalidValueError
from chachaml.store._files import Found, LocalFiles, Staged

__all__ = ["ArtifactFiles", "open_location"]


class ArtifactFiles(Protocol):
    """Artifact bytes of one store, addressed by ``<run_id>/<name>`` relative paths."""

    #: The folder path or ``s3://`` URI, for messages.
    root: str
    #: True when the bytes are files on this machine (``artifact_path`` works).
    local: bool

    def final_path(self, run_id: str, name: str) -> str:
        """Where an artifact goes; ``InvalidValueError`` for a name that could escape."""
        ...

    def stage(self, run_id: str, name: str, data: bytes | BinaryIO) -> Staged:
        """Write ``data`` under a temporary name, streamed, and return its size and sha256."""
        ...

    def commit(self, staged: Staged, name: str) -> None:
        """Put staged bytes in place (before the row is written)."""
        ...

    def discard(self, staged: Staged) -> None:
        """Forget staged bytes (a no-op once committed)."""
        ...

    def open(self, relpath: str) -> BinaryIO:
        """Stream stored bytes (the caller closes)."""
        ...

    def exists(self, relpath: str) -> bool:
        """Whether stored bytes exist at ``relpath``."""
        ...

    def scan(self) -> Iterator[Found]:
        """Every stored file or object below the run folders (for ``gc``)."""
        ...

    def remove(self, relpath: str) -> None:
        """Delete one stored file or object (no error if absent)."""
        ...

    def remove_run(self, run_id: str) -> None:
        """Delete everything stored for a run."""
        ...

    def prune_empty_dirs(self) -> None:
        """Remove folders left empty (object storage has none)."""
        ...

    def marker_ids(self) -> list[str] | None:
        """Store ids that marked this location (``[]``: none; None: the folder does not exist)."""
        ...

    def mark(self, store_id: str) -> None:
        """Mark this location as the store ``store_id``'s."""
        ...

    def has_marker(self, store_id: str) -> bool:
        """Whether ``store_id``'s marker is there."""
        ...

    def holds_run_files(self) -> bool:
        """Whether anything is stored below a run folder (so the location is not fresh)."""
        ...


def open_location(location: str | os.PathLike[str]) -> ArtifactFiles:
    """The ``ArtifactFiles`` a location text names (see the module docstring).

    Raises:
        InvalidValueError: empty, or a scheme other than ``s3`` / ``file``.
        MissingDependencyError: ``s3://`` without boto3 (``pip install 'chachaml[s3]'``).
    """
    where = os.fspath(location)
    if not isinstance(where, str) or not where:
        raise InvalidValueError(
            f"the artifact location {location!r} is empty; pass a folder or s3://bucket/prefix"
        )
    if "://" in where:
        scheme = urlsplit(where).scheme
        if scheme == "s3":
            from chachaml.store._s3 import S3Objects

            return S3Objects(where)
        if scheme != "file":
            raise InvalidValueError(
                f"unknown artifact location scheme {scheme!r} in {where!r}; pass a folder path, "
                "a file:// URI or s3://bucket/prefix"
            )
        where = unquote(urlsplit(where).path)
    return LocalFiles(os.path.abspath(os.path.expanduser(where)))
