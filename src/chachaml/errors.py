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
    │   ├── AccessError             a tracking server refused the token (401 / 403)
    │   ├── StoreUnavailableError   the database cannot be reached now; retry (503)
    │   └── SchemaVersionError      the database was written by a newer chachaml
    └── MissingDependencyError (ImportError)   an optional package is not installed

Every message names the offending value and says what to do instead.

Errors cross a wire as ``{"type": <class name>, "message": <text>, ...attributes}``
(``error_to_dict`` / ``error_from_dict``): a server sends them, a remote store raises them
again as the same class with the same attributes (``QueryError.query`` and ``.position``).
"""

from __future__ import annotations

__all__ = [
    "AccessError",
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
    "StoreUnavailableError",
    "error_from_dict",
    "error_to_dict",
]


class ChachamlError(Exception):
    """Base class of every error raised by chachaml."""

    #: Structured attributes that travel with the error in ``error_to_dict`` (besides the message).
    wire_attributes: tuple[str, ...] = ()

    def __init__(self, message: str) -> None:
        if not message:  # an empty message helps nobody (STYLE.md principle 9)
            raise TypeError("chachaml errors need a message")
        super().__init__(message)

    @property
    def message(self) -> str:
        """The full message, as ``str(error)`` shows it."""
        return str(self)


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

    wire_attributes = ("query", "position")

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


class AccessError(StoreError):
    """A tracking server refused the token: missing or unknown (401), or it may not write (403)."""


class StoreUnavailableError(StoreError):
    """The database cannot be reached now (down, restarting, every connection busy); the same
    call may succeed later. A tracking server answers it with 503 and the remote store retries."""


class SchemaVersionError(StoreError):
    """The database was written by a newer chachaml with a schema this one cannot read."""


class MissingDependencyError(ChachamlError, ImportError):
    """An optional package needed for this call is not installed."""


def error_to_dict(exc: ChachamlError) -> dict[str, object]:
    """The wire form of a chachaml error: ``{"type", "message", ...its wire attributes}``.

    Args:
        exc: any ``ChachamlError``.

    Returns:
        a JSON-friendly dict; ``type`` is the class name (one of ``__all__``).

    Raises:
        TypeError: ``exc`` is not a ``ChachamlError`` (other exceptions are bugs, not answers).
    """
    if not isinstance(exc, ChachamlError):
        raise TypeError(f"error_to_dict takes a ChachamlError, got {type(exc).__name__}")
    out: dict[str, object] = {"type": type(exc).__name__, "message": str(exc)}
    for name in exc.wire_attributes:
        out[name] = getattr(exc, name)
    return out


def error_from_dict(data: dict[str, object]) -> ChachamlError:
    """The error an ``error_to_dict`` dict describes, as the same class with the same attributes.

    An unknown ``type`` (a newer server) becomes a plain ``ChachamlError`` whose message names it,
    so a client never fails while reporting a failure.

    Raises:
        TypeError: ``data`` has no ``message`` string.
    """
    name = data.get("type")
    message = data.get("message")
    if not isinstance(message, str) or not message:
        raise TypeError(f"an error dict needs a non-empty 'message', got {data!r}")
    cls = _CLASSES.get(name) if isinstance(name, str) else None
    if cls is None:
        return ChachamlError(f"{name}: {message}" if name else message)
    exc = cls.__new__(cls)
    ChachamlError.__init__(exc, message)  # the message is final already (QueryError adds no caret)
    for attr in cls.wire_attributes:
        if attr in data:
            setattr(exc, attr, data[attr])
    return exc


_CLASSES: dict[str, type[ChachamlError]] = {
    cls.__name__: cls
    for cls in (
        ChachamlError,
        NoActiveRunError,
        RunStateError,
        ConflictError,
        InvalidValueError,
        QueryError,
        NotFoundError,
        RunNotFoundError,
        ExperimentNotFoundError,
        ArtifactNotFoundError,
        ModelNotFoundError,
        StoreError,
        AccessError,
        StoreUnavailableError,
        SchemaVersionError,
        MissingDependencyError,
    )
}
