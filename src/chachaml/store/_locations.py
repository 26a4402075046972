"""Where a store that is not a SQLite file keeps artifact bytes (SPEC section 10).

``use_store(target, artifacts=URI)``, else ``$CHACHAML_ARTIFACTS``, else ``./chachaml-artifacts/``.
Today a location is a local folder (a path or a ``file://`` URI). This is the seam for object
storage: an ``s3://bucket/prefix`` location is recognised and refused with a clear message until
that backend exists, instead of being taken for a folder named ``s3:``.
"""

from __future__ import annotations

import os
from urllib.parse import unquote, urlsplit

from chachaml.errors import InvalidValueError, MissingDependencyError

DEFAULT_FOLDER = "chachaml-artifacts"


def artifact_location(artifacts: str | os.PathLike[str] | None) -> str:
    """The artifact location in effect: the argument, else ``$CHACHAML_ARTIFACTS``, else the
    default folder in the current directory."""
    if artifacts is not None:
        return os.fspath(artifacts)
    return os.environ.get("CHACHAML_ARTIFACTS") or os.path.join(".", DEFAULT_FOLDER)


def local_artifact_root(artifacts: str | os.PathLike[str] | None) -> str:
    """The absolute folder a local artifact location names.

    Raises:
        InvalidValueError: an empty location, or a URI scheme chachaml does not know.
        MissingDependencyError: object storage (``s3://``), which this release does not have.
    """
    where = artifact_location(artifacts)
    if not where:
        raise InvalidValueError("the artifact location is empty; pass a folder, e.g. artifacts='artifacts/'")
    if "://" in where:
        parts = urlsplit(where)
        if parts.scheme == "file":
            where = unquote(parts.path)
        elif parts.scheme == "s3":
            raise MissingDependencyError(
                f"artifacts={where!r}: object storage (s3://) is not part of this chachaml release "
                "yet; keep artifacts in a folder for now (artifacts='path/to/folder')"
            )
        else:
            raise InvalidValueError(
                f"unknown artifact location scheme {parts.scheme!r} in {where!r}; pass a folder "
                "path or a file:// URI"
            )
    return os.path.abspath(os.path.expanduser(where))
