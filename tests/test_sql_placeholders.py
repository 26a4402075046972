"""SQL statements bind plain ``?`` placeholders to sequences, never numbered ones (``?1``).

Python 3.12 counts a numbered placeholder as *named* and warns (DeprecationWarning; 3.14
raises) when a sequence is bound to it, which users running with warnings as errors hit on
every ``log_metric``. On 3.12+ the suite's ``filterwarnings = error`` catches it at run time;
this test catches it on every Python, by reading the statements the store modules define.
"""

from __future__ import annotations

import importlib
import pkgutil
import re

import chachaml.store

NUMBERED = re.compile(r"\?\d")


def _store_statements() -> list[tuple[str, str]]:
    found = []
    for info in pkgutil.iter_modules(chachaml.store.__path__):
        module = importlib.import_module(f"chachaml.store.{info.name}")
        for name, value in vars(module).items():
            if isinstance(value, str) and ("SELECT" in value or "INSERT" in value or "UPDATE" in value):
                found.append((f"{info.name}.{name}", value))
    return found


def test_the_store_modules_define_sql_statements() -> None:
    names = {name for name, _ in _store_statements()}
    assert {"sqlite._INSERT_METRIC", "sqlite._INSERT_METRIC_NEXT", "_sqlite_base._FOLD"} <= names


def test_no_store_statement_uses_numbered_placeholders() -> None:
    offenders = [name for name, sql in _store_statements() if NUMBERED.search(sql)]
    assert offenders == [], f"numbered placeholders (bind plain ? in text order): {offenders}"
