"""What every part of the ``Client`` shares: the store, the one run-reference resolver, and
the filter builder of ``runs()`` (see ``chachaml.client``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from chachaml._values import tag_value
from chachaml.entities import Run
from chachaml.errors import InvalidValueError
from chachaml.rules import check_paging, check_status, is_full_id, validate_query
from chachaml.store.base import RunFilter, Store

#: The filters of ``runs()`` that ``last_run``, ``export_runs`` and ``best_run`` also accept.
FILTERS = (
    "experiment",
    "status",
    "name",
    "parent_id",
    "created_by",
    "tags",
    "where",
    "order_by",
    "limit",
    "offset",
    "include_archived",
)


class ClientBase:
    """The store and the helpers the verb groups of the ``Client`` share."""

    __slots__ = ("_owned", "store")

    store: Store
    _owned: bool

    # -- run references ---------------------------------------------------------------------
    @staticmethod
    def _ref_text(ref: Any, what: str = "run") -> str:
        """The id or id prefix a run reference carries: a ``Run`` gives its id, a ``str`` is
        itself. Every argument naming a run accepts a ``Run`` as well as an id."""
        run_id = ref.id if isinstance(ref, Run) else ref
        if not isinstance(run_id, str) or not run_id:
            raise InvalidValueError(
                f"{what} must be a Run or a run id (str), got {type(ref).__name__} {ref!r}; "
                "pass the Run itself or run.id"
            )
        return run_id

    def resolve_run_id(self, ref: Any, what: str = "run") -> str:
        """The full id of the run ``ref`` names: a ``Run``, a run id or a unique id prefix.

        The one resolver of chachaml (issue 8). A whole-length id is taken as it is (the store
        reports an unknown run when it is used, so no extra read is made); a prefix is resolved
        by the store with ``rules.resolve_prefix``.

        Raises:
            InvalidValueError: ``ref`` is not a Run or a non-empty str, or the prefix is ambiguous.
            RunNotFoundError: no run has this id prefix.
        """
        run_id = self._ref_text(ref, what)
        return run_id if is_full_id(run_id) else self.store.get_run(run_id).id

    # -- filters ------------------------------------------------------------------------------
    def _filter(
        self,
        experiment: str | None = None,
        status: str | None = None,
        name: str | None = None,
        parent_id: Any = None,
        created_by: str | None = None,
        tags: Mapping[str, Any] | None = None,
        where: str | None = None,
        order_by: str | None = None,
        limit: int | None = None,
        offset: int = 0,
        include_archived: bool = False,
    ) -> RunFilter:
        """The ``RunFilter`` for ``runs()``' arguments, checked (a bad query raises here).

        ``parent_id`` may be a ``Run`` or a prefix: it is resolved here, since a prefix reaching
        SQL would match no run and the filter would be silently empty.
        """
        check_status(status)
        check_paging(limit, offset)
        if tags is not None and not isinstance(tags, Mapping):
            raise InvalidValueError(f"tags must be a mapping such as {{'team': 'nlp'}}, got {tags!r}")
        where, order_by = validate_query(where, order_by)
        return RunFilter(
            experiment=_text_filter(experiment, "experiment"),
            status=status,
            name=_text_filter(name, "name"),
            parent_id=None if parent_id is None else self.resolve_run_id(parent_id, "parent_id="),
            created_by=_text_filter(created_by, "created_by"),
            tags=None if tags is None else {k: tag_value(v) for k, v in tags.items()},  # as stored
            where=where,
            order_by=order_by,
            limit=limit,
            offset=offset,
            include_archived=include_archived,
        )


def _text_filter(value: Any, what: str) -> str | None:
    """A filter given as text: None (no filter) or a ``str``; any other type would match nothing."""
    if value is None or isinstance(value, str):
        return value
    raise InvalidValueError(
        f"{what}= filters by text, got {type(value).__name__} {value!r}; pass a str such as "
        f"{what}='baseline' (or leave it out)"
    )
