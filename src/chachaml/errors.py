"""Every error chachaml raises, in one tree.

::

    ChachamlError
    ├── NoActiveRunError            a log call with no current run
    ├── RunStateError               writing to a finished run, using a closed store
    ├── ConflictError               a param or artifact already holds another value
    ├── InvalidValueError (ValueError)
    │   └── QueryError              a malformed ``where=`` query (has ``.position``)
    ├── NotFoundError (LookupError)
    │   ├── RunNotFoundError
    │   ├── ExperimentNotFoundError
    │   ├── ArtifactNotFoundError
    │   └── ModelNotFoundError
    ├── StoreError                  the database failed (chained ``from`` the driver error)
    │   └── SchemaVersionError      the database was written by a newer chachaml
    └── MissingDependencyError (ImportError)   an optional package is not installed

Every message names the offending value and says what to do instead.
"""

from __future__ import annotations

__all__ = [
    "ArtifactNotFoundError",
    "ChachamlError",
    "ConflictError",
    "ExperimentNotFoundError",
    "InvalidValueError",
    "MissingDependencyError",
    "ModelNotFoundError",
    "NoActiveRunError",
    "NotFoundError",
    "QueryError",
    "RunNotFoundError",
    "RunStateError",
    "SchemaVersionError",
    "StoreError",
]


class ChachamlError(Exception):
    """Base class of every error raised by chachaml."""

    def __init__(self, message: str) -> None:
        if not message:  # an empty message helps nobody (STYLE.md principle 9)
            raise TypeError("chachaml errors need a message")
        super().__init__(message)


class NoActiveRunError(ChachamlError):
    """A log call found no current run. chachaml never starts one implicitly."""


class RunStateError(ChachamlError):
    """The run (or store) is in a state that does not allow this call."""


class ConflictError(ChachamlError):
    """The write would silently replace something that is immutable."""


class InvalidValueError(ChachamlError, ValueError):
    """A key, value or argument is not acceptable."""


class QueryError(InvalidValueError):
    """A ``where=`` query could not be parsed or compiled.

    ``position`` is the 0-based character offset of the problem in ``query``.
    """

    def __init__(self, message: str, *, query: str = "", position: int = 0) -> None:
        self.query = query
        self.position = position
        if query:
            message = f"{message}\n  {query}\n  {' ' * position}^"
        super().__init__(message)


class NotFoundError(ChachamlError, LookupError):
    """Something looked up by name or id does not exist."""


class RunNotFoundError(NotFoundError):
    """No run has this id (or id prefix)."""


class ExperimentNotFoundError(NotFoundError):
    """No experiment has this name."""


class ArtifactNotFoundError(NotFoundError):
    """The run has no artifact of this name."""


class ModelNotFoundError(NotFoundError):
    """No registered model (or model version) matches."""


class StoreError(ChachamlError):
    """The storage backend failed; the driver's error is chained as ``__cause__``."""


class SchemaVersionError(StoreError):
    """The database was written by a newer chachaml with a schema this one cannot read."""


class MissingDependencyError(ChachamlError, ImportError):
    """An optional package needed for this call is not installed."""
