"""``Client``: every chachaml verb over one explicit store (issue 8; docs/architecture.md).

>>> from chachaml.client import Client
>>> with Client(":memory:") as c:                                   # doctest: +SKIP
...     run = c.start_run("baseline", experiment="mnist")
...     c.log_metric("loss", 0.3, run=run)
...     c.end_run(run)
...     c.runs(experiment="mnist")

httpx's ``Client`` beside ``httpx.get`` is the model: the module-level verbs
(``chachaml.log_metric``, ...) find the store and the current run through ``chachaml.context``
and delegate here; the CLI, the web handlers, the server and MCP use a ``Client`` and never
touch ContextVars or store internals. A ``Client`` never looks at the "current run": every
write names its run (``run=``), and every run reference (a ``Run``, a full id or a unique id
prefix) goes through one resolver, ``resolve_run_id``.

It validates and normalises arguments (``chachaml._values``, ``chachaml.rules``), so a bad value
or a typo in ``where=`` is reported before the store is touched, then makes one call on the
store. The verbs are grouped by role in ``_api_runs``, ``_api_data``, ``_api_artifacts``,
``_api_registry``, ``_api_alerts`` and ``_api_pipelines``; this module composes them.
"""

from __future__ import annotations

from typing import Any

from chachaml._api_pipelines import PipelinesApi
from chachaml.store import is_store, open_store
from chachaml.store.base import Store

__all__ = ["Client"]


class Client(PipelinesApi):
    """The chachaml verbs over one store.

    Args:
        target: a path to a SQLite file (str or PathLike), ``":memory:"``, a URI
            (``sqlite:///runs.db``; see ``chachaml.store.SCHEMES``) or a ``Store`` object.
        **options: passed to the backend when ``target`` is opened here: ``is_dead=``, and
            ``artifacts=`` (a folder or ``s3://bucket/prefix`` for the artifact bytes; ADR-0017).

    A store opened from a path or URI belongs to the client: ``close()`` (or leaving a ``with``
    block) closes it. A ``Store`` object passed in is left open.
    """

    __slots__ = ()

    def __init__(self, target: Any, **options: Any) -> None:
        owned = not is_store(target)
        self.store: Store = open_store(target, **options) if owned else target
        self._owned = owned

    @classmethod
    def _over(cls, store: Store) -> Client:
        """A client over an open store it does not own (the module-level verbs' fast path)."""
        client = object.__new__(cls)
        client.store = store
        client._owned = False
        return client

    @property
    def closed(self) -> bool:
        """Whether the underlying store is closed."""
        return self.store.closed

    def close(self) -> None:
        """Close the store if this client opened it (idempotent)."""
        if self._owned:
            self.store.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = " closed" if self.store.closed else ""
        return f"<Client {self.store.uri}{state}>"
