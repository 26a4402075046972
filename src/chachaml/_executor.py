"""``ContextExecutor``: a thread pool whose tasks run in the submitter's context.

Its own module so that ``import chachaml.context`` (every first ``use_store``/``start_run``)
does not import ``concurrent.futures`` (and ``logging`` with it, ~5 ms) for a class most
programs never use; ``chachaml.context.ContextExecutor`` still names it.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from contextvars import copy_context
from typing import Any, TypeVar

__all__ = ["ContextExecutor"]

R = TypeVar("R")


class ContextExecutor(ThreadPoolExecutor):
    """A ``ThreadPoolExecutor`` whose tasks run in the submitter's context (per submit/map)."""

    def submit(self, fn: Callable[..., R], /, *args: Any, **kwargs: Any) -> Future[R]:
        return super().submit(copy_context().run, fn, *args, **kwargs)
