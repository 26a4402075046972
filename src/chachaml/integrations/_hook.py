"""The run a framework hook logs to: one it was given, the current one, or one it starts.

Every hook follows one rule (SPEC section 11): used inside a run, it logs to that run; used with
no current run, it starts a run when training starts and ends it when training ends
(``completed``, or ``failed``/``killed`` with the exception when the framework reports one).

A run the hook starts is opened by ``with_run`` inside a private copy of the caller's context
(``contextvars.copy_context``), so it never becomes the current run of the user's code. Keras and
transformers call no callback when training raises; such a run is still ended with the right
status (docs/adr/0027-hooks-end-runs-of-unreported-failures.md):

* ``with callback:`` holds the run for the block and ends it with the block's exception;
* an exception that reaches the top level (a script's end, a prompt, a notebook cell, the end of
  a thread) through the framework's training frame ends it ``failed`` (``killed`` for Ctrl-C)
  with that exception;
* a process that exits normally while a training never reported its end ends it ``failed``;
* the next training with the same hook ends it ``failed`` before starting a fresh run.

Every write goes through the public verbs with an explicit ``run=``
(docs/adr/0016-framework-hooks-own-their-runs.md).
"""

from __future__ import annotations

import atexit
import contextvars
import sys
import threading
from collections.abc import Callable, Mapping
from types import FrameType, TracebackType
from typing import Any, Protocol, Self

import chachaml
from chachaml import _exit
from chachaml.errors import InvalidValueError

__all__ = ["HeldRun", "HookRun", "numbers", "outermost_frame", "status_of", "through", "unwatch", "watch"]

UNREPORTED_AT_EXIT = (
    "the process exited while a training was still running: the framework raised without "
    "telling its callbacks, and the exception was caught before it reached the top level"
)


class Watcher(Protocol):
    def on_uncaught(self, exc: BaseException) -> None: ...

    def on_exit(self) -> None: ...


_watchers: dict[int, Watcher] = {}  # id -> watcher: hooks whose run an unreported failure may end
_watch_lock = threading.Lock()
_at_exit_registered = False


def watch(watcher: Watcher) -> None:
    """Tell ``watcher`` about exceptions reaching the top level, and about process exit."""
    global _at_exit_registered
    with _watch_lock:
        _watchers[id(watcher)] = watcher
        if not _at_exit_registered:
            _at_exit_registered = True
            # Registered after the lifecycle's handler (a hook's run is open already), so it
            # runs first: a run it ends is no longer open when the lifecycle ends the rest.
            atexit.register(_at_exit)
    _exit.watch_uncaught(_uncaught)


def unwatch(watcher: Watcher) -> None:
    with _watch_lock:
        _watchers.pop(id(watcher), None)


def _uncaught(exc: BaseException) -> None:
    with _watch_lock:
        watchers = list(_watchers.values())
    for watcher in watchers:
        watcher.on_uncaught(exc)


def _at_exit() -> None:
    with _watch_lock:
        watchers = list(_watchers.values())
    for watcher in watchers:
        try:
            watcher.on_exit()
        except Exception:  # exiting: one hook failing must not stop the others
            continue


def outermost_frame(package: str) -> FrameType | None:
    """The outermost frame of the calling thread's stack that runs code of ``package`` (the
    framework's entry point, ``fit`` or ``Trainer.train``): alive exactly while that call runs."""
    frame: FrameType | None = sys._getframe(1)
    found = None
    while frame is not None:
        module = str(frame.f_globals.get("__name__", ""))
        if module == package or module.startswith(package + "."):
            found = frame
        frame = frame.f_back
    return found


def through(tb: TracebackType | None, match: Callable[[FrameType], bool]) -> FrameType | None:
    """The first frame of traceback ``tb`` for which ``match`` is true, or None."""
    while tb is not None:
        if match(tb.tb_frame):
            return tb.tb_frame
        tb = tb.tb_next
    return None


def status_of(exc: BaseException | None) -> str:
    """The run status for an exception ending a training (``completed`` for None)."""
    return "completed" if exc is None else _exit.outcome(type(exc), exc, exc.__traceback__)[0]


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
        framework: the framework's package (``keras``): a training whose frames in that
            package an exception reaching the top level went through ended with it.
    """

    def __init__(
        self,
        run: Any = None,
        *,
        name: str | None = None,
        experiment: str | None = None,
        tags: Mapping[str, Any] | None = None,
        framework: str | None = None,
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
        self._held = False  # inside ``with callback:``: the block holds one level open
        self._framework = framework
        self._anchor: FrameType | None = None  # the framework's entry frame of the training
        self.run_id: str | None = None
        self.owned = False

    @property
    def active(self) -> bool:
        """True between ``begin`` and the matching ``end`` (or inside ``hold``/``release``)."""
        return self._depth > 0

    @property
    def depth(self) -> int:
        """How many trainings/evaluations are open (an evaluation inside a training makes two);
        a ``with`` block holding the run does not count."""
        return self._depth - int(self._held)

    @property
    def failed(self) -> bool:
        """Whether the run this hook started last ended ``failed``/``killed`` (the next training
        starts a new one)."""
        return self._fresh

    def hold(self) -> str:
        """``with callback:`` starts: pick the run now and keep it open until ``release``."""
        with self._lock:
            if self._held:
                raise InvalidValueError("this callback is already in a `with` block; use one block at a time")
            self._held = True
            return self.begin()

    def release(self, exc: BaseException | None) -> None:
        """``with callback:`` ends: end a run this hook started, with the block's exception."""
        with self._lock:
            if not self._held:
                return
            if exc is None:
                self._depth = 1  # trainings that raised inside the block were caught there
            self.end(status_of(exc), exc)

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
            if self.depth == 1 and self._framework is not None and self._with_run is not None:
                # An owned run: remember the framework's entry frame, and watch for an exception
                # that leaves it unreported and reaches the top level.
                self._anchor = outermost_frame(self._framework)
                watch(self)
            assert self.run_id is not None
            return self.run_id

    def restart(self) -> str:
        """A training starts that must be the outermost one: a previous training that never
        reported its end (an exception the framework does not tell callbacks about) is ended
        ``failed`` first (inside ``with callback:`` it was caught in the block, which goes on
        holding the run), then ``begin``."""
        with self._lock:
            if self.depth > 0:
                if self._held:
                    self._depth = 1
                else:
                    self.end("failed", RuntimeError("training stopped without reporting its end"))
            return self.begin()

    def on_uncaught(self, exc: BaseException) -> None:
        """An exception reached the top level: if it left this hook's training, end the run."""
        with self._lock:
            anchor = self._anchor
            if anchor is None or self._with_run is None:
                return
            if through(exc.__traceback__, lambda frame: frame is anchor) is not None:
                self.end(status_of(exc), exc)

    def on_exit(self) -> None:
        """The process exits: a training still open never reported its end. If the process
        itself ends well, that training did not: ``failed``; otherwise the exit handler gives
        the run the process's own status and error, as for every open run."""
        with self._lock:
            if self.depth <= 0 or self._with_run is None:
                return
            if _exit.outcome_at_exit()[0] == "completed":
                self.end("failed", RuntimeError(UNREPORTED_AT_EXIT))

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
            if self.depth <= 0:
                self._anchor = None  # no training open: nothing left for an exception to leave
                unwatch(self)
            if self._depth == 0:
                self._held = False
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


class HeldRun:
    """The ``run_id`` property and the ``with`` form shared by the Keras and transformers
    callbacks (their ``_hook`` is a ``HookRun``)."""

    _hook: HookRun

    @property
    def run_id(self) -> str | None:
        """The id of the run this callback writes to (None before its first use)."""
        return self._hook.run_id

    def __enter__(self) -> Self:
        """``with ChachamlCallback() as cb:`` picks the run now and holds it for the block: every
        training and evaluation in the block lands in it, and the block's end ends a run the
        callback started, ``failed`` (``killed`` for Ctrl-C) with the traceback if it raised."""
        self._hook.hold()
        return self

    def __exit__(self, et: Any, ev: Any, tb: Any) -> None:
        self._hook.release(ev)
