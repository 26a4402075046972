"""The base of chachaml's entity classes: ``to_dict``/``from_dict`` and their helpers.

Kept apart from ``chachaml.entities`` so that the entities a first ``log_metric`` never needs
(``chachaml._registry_entities``: artifacts, models, garbage-collection reports) can be defined
on first use without an import cycle (docs/adr/0028-first-use-imports.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Self

from chachaml.errors import InvalidValueError

__all__ = ["_Entity", "_build", "_fmt_size", "_plain"]


def _plain(value: Any) -> Any:
    """A value as plain JSON-friendly data: entities via ``to_dict``, tuples as lists."""
    if isinstance(value, _Entity):
        return value.to_dict()
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _build(cls: Any, data: Mapping[str, Any], nested: Mapping[str, Any]) -> Any:
    """``cls(**fields)`` from a ``to_dict`` dict: unknown keys are ignored (a newer sender),
    ``nested`` converts the fields that hold entities or tuples back."""
    if not isinstance(data, Mapping):
        raise InvalidValueError(f"{cls.__name__}.from_dict takes a dict, got {type(data).__name__}")
    kwargs: dict[str, Any] = {}
    for name in cls.__dataclass_fields__:
        if name in data and not name.startswith("_"):  # _NESTED is a ClassVar, listed there too
            value = data[name]
            convert = nested.get(name)
            kwargs[name] = value if convert is None or value is None else convert(value)
    try:
        return cls(**kwargs)
    except TypeError as exc:  # a required field is missing
        raise InvalidValueError(
            f"cannot read a {cls.__name__} from a dict with the keys {sorted(data)}: {exc}"
        ) from exc


class _Entity:
    """Base of the simple entities: ``to_dict`` is their fields, in order, as plain data, and
    ``from_dict`` reads that back (the wire format of a server and a remote store)."""

    __slots__ = ()
    __dataclass_fields__: ClassVar[dict[str, Any]]
    #: field name -> how to rebuild it from plain data (tuples, nested entities)
    _NESTED: ClassVar[dict[str, Any]] = {}

    def to_dict(self) -> dict[str, Any]:
        return {
            name: _plain(getattr(self, name))
            for name in self.__dataclass_fields__
            if not name.startswith("_")  # ClassVars such as _NESTED are listed there too
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        """The entity ``to_dict`` gave this dict for (``InvalidValueError`` if a field is missing)."""
        return _build(cls, data, cls._NESTED)  # type: ignore[no-any-return]


def _fmt_size(n: int) -> str:
    """A byte count as ``812 B`` / ``1.2 kB`` / ``3.4 MB`` (decimal units)."""
    if n < 1000:
        return f"{n} B"
    size = n / 1000
    for unit in ("kB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            break
        size /= 1000
    return f"{size:.1f} {unit}"
