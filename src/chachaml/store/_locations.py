"""Where a store that is not a SQLite file keeps artifact bytes (SPEC section 10).

``use_store(target, artifacts=URI)``, else ``$CHACHAML_ARTIFACTS``, else ``./chachaml-artifacts/``.
A location is a local folder (a path or a ``file://`` URI) or S3-compatible object storage
(``s3://bucket/prefix``); ``_artifact_files.open_location`` opens it (docs/adr/0017). Here it is
only chosen and written out in full, so that a store's URI names the same place from any
working directory.
"""

from __future__ import annotations

import os
from urllib.parse import unquote, urlsplit

from chachaml.errors import InvalidValueError

DEFAULT_FOLDER = "chachaml-artifacts"


def artifact_location(artifacts: str | os.PathLike[str] | None) -> str:
    """The artifact location in effect: the argument, else ``$CHACHAML_ARTIFACTS``, else the
    default folder in the current directory."""
    if artifacts is not None:
        return os.fspath(artifacts)
    return os.environ.get("CHACHAML_ARTIFACTS") or os.path.join(".", DEFAULT_FOLDER)


def artifact_root_uri(artifacts: str | os.PathLike[str] | None) -> str:
    """The artifact location in effect, in full: an absolute folder, or the ``s3://`` URI.

    Raises:
        InvalidValueError: an empty location, or a URI scheme chachaml does not know.
    """
    where = artifact_location(artifacts)
    if not where:
        raise InvalidValueError("the artifact location is empty; pass a folder, e.g. artifacts='artifacts/'")
    if "://" in where:
        parts = urlsplit(where)
        if parts.scheme == "s3":
            return where
        if parts.scheme != "file":
            raise InvalidValueError(
                f"unknown artifact location scheme {parts.scheme!r} in {where!r}; pass a folder "
                "path, a file:// URI or s3://bucket/prefix"
            )
        where = unquote(parts.path)
    return os.path.abspath(os.path.expanduser(where))
