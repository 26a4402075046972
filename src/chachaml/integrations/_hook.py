"""The run a framework hook logs to: one it was given, the current one, or one it starts.

Every hook follows one rule (SPEC section 11): used inside a run, it logs to that run; used with
no current run, it starts a run when training starts and ends it when training ends
(``completed``, or ``failed``/``killed`` with the exception when the framework reports one).

A run the hook starts is opened by ``with_run`` inside a private copy of the caller's context
(``contextvars.copy_context``), so it never becomes the current run of the user's code: a
training that dies without telling its callbacks (Keras and transformers have no exception hook)
cannot leave a stale current run behind in a notebook, and the process-exit handler still ends
it (``failed`` when the process fails). Every write goes through the public verbs with an
explicit ``run=`` (docs/adr/0016-framework-hooks-own-their-runs.md).
"""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Callable, Mapping
from typing import Any

import chachaml
from chachaml.errors import InvalidValueError

__all__ = ["HookRun", "numbers"]


def numbers(mapping: Mapping[str, Any] | None) -> dict[str, float]:
    """The entries of ``mapping`` that are real numbers (floats, ints, numpy scalars, 0-d
    tensors); strings, booleans, ``None`` and arrays are left out, as a framework's log
    dictionaries mix them."""
    out: dict[str, float] = {}
    for key, value in (mapping or {}).items():
        if isinstance(value, str | bytes | bool) or value is None or not hasattr(value, "__float__"):
            continue
        try:
            out[str(key)] = float(value)
        except (TypeError, ValueError, RuntimeError):  # a tensor of several elements
            continue
    return out


class HookRun:
    """Which run a hook writes to, and the run it owns (if it started one).

    Args:
        run: log to this run (a ``Run`` or an id) instead of the current one.
        name: the name of a run the hook starts.
        experiment: the experiment of a run the hook starts (default: chachaml's default).
        tags: tags of a run the hook starts.
    """

    def __init__(
        self,
        run: Any = None,
        *,
        name: str | None = None,
        experiment: str | None = None,
        tags: Mapping[str, Any] | None = None,
    ) -> None:
        if run is not None and not isinstance(run, str | chachaml.Run):
            raise InvalidValueError(f"run= must be a Run or a run id, got {run!r}")
        self._given = run
        self._start_kwargs: dict[str, Any] = {"name": name, "tags": dict(tags or {})}
        if experiment is not None:
            self._start_kwargs["experiment"] = experiment
        # Reentrant: ``call`` may begin and end a run around one write.
        self._lock = threading.RLock()
        self._ctx: contextvars.Context | None = None
        self._with_run: Any = None  # the open with_run of a run this hook started
        self._depth = 0
        self._fresh = False  # the owned run failed: the next training starts a new run
        self.run_id: str | None = None
        self.owned = False

    @property
    def active(self) -> bool:
        """True between ``begin`` and the matching ``end``."""
        return self._depth > 0

    @property
    def depth(self) -> int:
        """How many ``begin`` calls are open (an evaluation inside a training makes two)."""
        return self._depth

    def begin(self) -> str:
        """Training (or an evaluation) starts; nestable. Returns the run id.

        The first call picks the run: the one given, else the current one, else a new one this
        hook owns. A later training with the same hook reopens its own run (``run_id=``), so
        ``fit`` then ``test`` land in one run.
        """
        with self._lock:
            self._depth += 1
            if self._depth == 1:
                self._pick()
            assert self.run_id is not None
            return self.run_id

    def restart(self) -> str:
        """A training starts that must be the outermost one: a previous training that never
        reported its end (an exception the framework does not tell callbacks about) is ended
        ``failed`` first, then ``begin``."""
        with self._lock:
            if self.active:
                self.end("failed", RuntimeError("training stopped without reporting its end"))
            return self.begin()

    def _pick(self) -> None:
        if self._fresh:
            self._fresh = self.owned = False
            self.run_id = None
        if self.owned:
            self._open(run_id=self.run_id)
        elif self.run_id is not None:
            return  # a given or adopted run: keep writing there
        elif self._given is not None:
            given = self._given.id if isinstance(self._given, chachaml.Run) else self._given
            self._ctx = contextvars.copy_context()
            self.run_id = self._ctx.run(chachaml.get_run, given).id  # resolves a prefix, or raises
        else:
            current = chachaml.current_run()
            if current is not None:
                self._ctx = contextvars.copy_context()
                self.run_id = current.id
            else:
                self._open(**self._start_kwargs)
                self.owned = True

    def _open(self, **kwargs: Any) -> None:
        self._ctx = contextvars.copy_context()
        self._with_run = chachaml.with_run(**kwargs)
        self.run_id = self._ctx.run(self._with_run.__enter__).id

    def end(self, status: str = "completed", exc: BaseException | None = None) -> None:
        """Training ends: the outermost ``end`` ends a run this hook started (others are left alone).

        Args:
            status: ``completed``, ``failed`` or ``killed``; a failure ends the run even from
                inside nested ``begin`` calls.
            exc: the exception that stopped training, recorded with the run when given.
        """
        with self._lock:
            if self._depth == 0:
                return
            self._depth = self._depth - 1 if status == "completed" else 0
            if self._depth > 0 or self._with_run is None or self._ctx is None:
                return
            cm, self._with_run = self._with_run, None
            self._fresh = status != "completed"
            if status != "completed" and exc is None:
                exc = KeyboardInterrupt() if status == "killed" else RuntimeError(f"training {status}")
            self._ctx.run(cm.__exit__, type(exc) if exc else None, exc, exc.__traceback__ if exc else None)

    def in_context(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Call ``fn(*args)`` in the hook's context (where ``current_store()`` is the run's store)."""
        with self._lock:
            if self._ctx is None:
                raise RuntimeError("in_context before begin")  # a bug in a hook, not a user error
            return self._ctx.run(fn, *args)

    def call(self, verb: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Call a chachaml verb with ``run=`` this hook's run, in the hook's context.

        Outside ``begin``/``end`` (an evaluation after training) the write gets a run of its own
        lifetime: the hook's run is reopened for it and ended again.
        """
        with self._lock:
            if not self.active:
                self.begin()
                try:
                    return self.call(verb, *args, **kwargs)
                finally:
                    self.end()
            assert self._ctx is not None
            return self._ctx.run(verb, *args, run=self.run_id, **kwargs)
