"""The SQLite dialect of the query compiler (``chachaml.store._sql_compile``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

__all__ = ["SQLITE", "SqliteDialect"]


class SqliteDialect:
    """Everything engine-specific the compiler needs, for SQLite (3.38+: built-in JSON).

    Params are JSON text; ``json_type`` tells a number from a string, so ``params.lr < 0.1``
    compares numbers and ``params.lr = '0.1'`` does not match the number 0.1. ``like`` lowers
    both sides in Python (``chachaml_lower``) because SQLite's own ``like`` folds ASCII only.
    """

    name = "sqlite"
    placeholder = "?"
    #: json_type names of each literal class (a JSON null counts as a missing value).
    number_types: tuple[str, ...] = ("integer", "real")
    text_types: tuple[str, ...] = ("text",)
    bool_types: tuple[str, ...] = ("true", "false")
    null_type = "null"
    #: Python functions the compiled SQL calls; the store registers them on its connection.
    functions: ClassVar[dict[str, Callable[[Any], Any]]] = {
        "chachaml_lower": lambda v: v.lower() if isinstance(v, str) else v,
    }
    #: The SQL functions compiled queries use: what the read-only authorizer allows.
    allowed_functions: ClassVar[frozenset[str]] = frozenset(
        {"json_type", "json_extract", "chachaml_lower", "like"}
    )

    def json_type(self, col: str) -> str:
        return f"json_type({col})"

    def json_value(self, col: str) -> str:
        return f"json_extract({col}, '$')"

    def json_text(self, col: str) -> str:
        """The param's JSON text as stored: an integer's exact decimal digits."""
        return col

    def bool_value(self, b: bool) -> Any:
        return int(b)  # json_extract gives 1 / 0 for JSON true / false

    def like(self, expr: str) -> str:
        return f"chachaml_lower({expr}) LIKE {self.placeholder} ESCAPE '\\'"

    def like_pattern(self, pattern: str) -> str:
        return pattern.lower()

    def order_term(self, expr: str, descending: bool) -> str:
        return f"{expr} {'DESC' if descending else 'ASC'} NULLS LAST"


SQLITE = SqliteDialect()
