"""How code finds the active store and run (docs/adr/0004-contextvars-carry-store-and-run-context.md).

Two layers, the same for stores and runs:

* **process layer** -- ``use_store()`` and a top-level ``start_run()``. Plain module globals behind
  a lock, because ContextVar values do not reliably survive between notebook cells (a cell with
  top-level ``await`` runs in a copy of the context; some kernels lose everything).
* **scoped layer** -- ``with_store()`` / ``with_run()`` (and ``bind``, ``ContextExecutor``,
  ``attach``). ContextVars holding immutable frames, set with a token and reset in ``finally``.
  Inside a scope, ``start_run`` / ``end_run`` / ``use_store`` rebind the variable without a
  token; the scope's own reset undoes them all.

This is the only module with mutable module-level state (STYLE.md).
"""

from __future__ import annotations

import os
import sys
import threading
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from contextvars import ContextVar, copy_context
from typing import TYPE_CHECKING, Any, NamedTuple, ParamSpec, TypeVar

from chachaml import _lifecycle, _process
from chachaml.client import Client
from chachaml.entities import Run
from chachaml.errors import InvalidValueError, NoActiveRunError

if TYPE_CHECKING:
    from chachaml._executor import ContextExecutor
    from chachaml.store.base import Store

__all__ = [
    "ContextExecutor",
    "Frame",
    "Snapshot",
    "attach",
    "bind",
    "client",
    "current_experiment",
    "current_frame",
    "current_store",
    "describe",
    "set_experiment",
    "snapshot",
    "target",
    "use_store",
    "with_store",
]

P = ParamSpec("P")
R = TypeVar("R")


class Frame:
    """One entry of a run stack: an immutable linked frame (never a mutated list).

    ``imperative`` frames were pushed by ``start_run()`` and are popped by ``end_run()``;
    ``with_run`` frames are not. A frame with ``run_id=None`` is the empty floor a
    ``with_store`` block puts down (its clean room). ``task`` is a weak reference to the asyncio
    task that pushed a frame onto a shared (process or thread) stack, if one did.
    """

    __slots__ = ("imperative", "parent", "run_id", "store", "task")

    def __init__(
        self,
        store: Store | None,
        run_id: str | None,
        parent: Frame | None,
        imperative: bool,
        task: weakref.ref[Any] | None = None,
    ) -> None:
        self.store = store
        self.run_id = run_id
        self.parent = parent
        self.imperative = imperative
        self.task = task

    def __repr__(self) -> str:
        kind = "start_run" if self.imperative else "with_run"
        return f"<Frame {self.run_id and self.run_id[:8]} {kind}>"


# -- scoped layer -------------------------------------------------------------------------------
_store_cv: ContextVar[Store | None] = ContextVar("chachaml_store", default=None)
_run_cv: ContextVar[Frame | None] = ContextVar("chachaml_run", default=None)
# The active ``batched()`` buffer of this context (see ``chachaml.tracking.batched``).
_batch_cv: ContextVar[Any] = ContextVar("chachaml_batch", default=None)
# set_experiment() inside a with_store block: (the block's store, the name). Keyed by the store
# so the name belongs to that block alone, as use_store() there rebinds that block's store only.
_experiment_cv: ContextVar[tuple[Store, str | None] | None] = ContextVar("chachaml_experiment", default=None)

# -- process layer ------------------------------------------------------------------------------
_lock = threading.RLock()
_process_store: Store | None = None
_process_stack: list[Frame] = []
_process_experiment: str | None = None  # set_experiment() at top level


class _ThreadState(threading.local):
    """start_run() stacks of threads other than the main thread: a worker thread's own runs never
    become current in another thread; it still sees the main thread's runs beneath its own."""

    # A class-level default: reading ``stack`` in a thread that never set it gives None without
    # the AttributeError a plain ``threading.local`` raises (~1 µs on every log call).
    stack: list[Frame] | None = None


_threads = _ThreadState()
_opened: dict[str, Store] = {}  # stores opened from a path by use_store/current_store, by abspath


# Lifecycle facts about this process (open runs, exit status, heartbeat): a leaf module, so the
# stores and ``_lifecycle`` can use them without importing this one.
process = _process.state


def _reset_after_fork() -> None:
    # A thread that forks is the child's main thread: its own start_run() stack is not kept.
    with suppress(AttributeError):
        del _threads.stack


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_after_fork)


# -- stores -------------------------------------------------------------------------------------
def _open(target: Any, artifacts: Any = None, **options: Any) -> Store:
    from chachaml.store import is_store, open_store, store_path

    if is_store(target):
        return target  # type: ignore[no-any-return]
    if artifacts is not None:
        options["artifacts"] = os.fspath(artifacts)
    path = store_path(target)
    key = path if path is None or "artifacts" not in options else f"{path}\0{options['artifacts']}"
    if path is None and isinstance(target, str) and target.startswith(("http://", "https://")):
        # One remote store (one spool and sender) per server URL and token in this process.
        key = f"{target.rstrip('/')} {options.get('token')}"
    elif path is None and "://" in str(target) and not str(target).endswith(":memory:"):
        # A server URI is opened once per process too (a re-run cell reuses its connections).
        key = f"{target}\0{options.get('artifacts', '')}"
    if key is None:
        return open_store(target, **options)
    with _lock:
        store = _opened.get(key)
        if store is None or store.closed:
            store = _opened[key] = open_store(path or target, **options)
        return store


def _default_target() -> str:
    return os.environ.get("CHACHAML_STORE") or "chachaml.db"


def use_store(target: Any = None, *, artifacts: Any = None, **options: Any) -> Store:
    """Make ``target`` the current store and return it.

    ``target`` is a path to a SQLite file, ``":memory:"``, a URI (``sqlite:///...``, a server's
    ``http(s)://host:port``) or a ``Store``; ``None`` means ``$CHACHAML_STORE`` or
    ``./chachaml.db``. ``options`` go to the backend (a server: ``token=``, else
    ``$CHACHAML_TOKEN``). At top level this sets
    the process default (calling it twice with the same path returns the same store); inside a
    ``with_store`` block it rebinds that block's store only, so code under a test fixture cannot
    escape it. Opening creates nothing on disk: the file appears on the first write.
    ``artifacts`` is where the artifact bytes go (a folder or ``s3://bucket/prefix``; for a
    store that is not a SQLite file, else ``$CHACHAML_ARTIFACTS``, else ``./chachaml-artifacts/``).
    """
    store = _open(_default_target() if target is None else target, artifacts, **options)
    if _store_cv.get() is not None:
        _store_cv.set(store)
    else:
        global _process_store
        with _lock:
            _process_store = store
    return store


def current_store() -> Store:
    """The scoped store of this context, else the process default, else the default store."""
    store = _store_cv.get()
    if store is not None:
        return store
    store = _process_store
    if store is not None:
        return store
    return _open(_default_target())


def set_experiment(name: str | None) -> None:
    """Set (``None``: clear) the default experiment of new runs, in the layer ``use_store`` would.

    At top level this is the process default, seen by every thread and cell; inside a
    ``with_store`` block it holds for that block only (the block is a clean room: an experiment
    set outside it does not apply inside). ``name`` is validated by the caller.
    """
    scoped = _store_cv.get()
    if scoped is not None:
        _experiment_cv.set((scoped, name))
        return
    global _process_experiment
    with _lock:
        _process_experiment = name


def current_experiment() -> str | None:
    """The experiment ``set_experiment`` chose for this layer, or None (see ``set_experiment``)."""
    scoped = _store_cv.get()
    if scoped is None:
        return _process_experiment
    chosen = _experiment_cv.get()
    return chosen[1] if chosen is not None and chosen[0] is scoped else None


def client() -> Client:
    """A ``Client`` over the current store: what a module-level read verb delegates to."""
    return Client._over(current_store())


def target(run: Any, arg: str = "run") -> tuple[Client, Any]:
    """The client and run reference a module-level write (or run read) goes to.

    ``run=None`` means the current run (``NoActiveRunError`` if there is none). A reference to
    the current run goes to the store that run lives in; any other reference goes to the
    current store, and the ``Client`` resolves it (its one resolver). ``arg`` is the name of the
    caller's run argument (``run``, or ``run_id`` for ``register_model``), so that the error
    names the argument the user can actually pass.
    """
    frame = current_frame()
    if run is None:
        if frame is None:
            raise NoActiveRunError(
                "no active run: call chachaml.start_run() first (or use `with chachaml.with_run():`),"
                f" or pass {arg}=<a Run or run id>"
            )
        return Client._over(frame.store), frame.run_id  # type: ignore[arg-type]
    run_id = run.id if isinstance(run, Run) else run
    if not isinstance(run_id, str):
        raise InvalidValueError(f"{arg}= must be a Run or a run id, got {run!r}")
    if frame is not None and frame.store is not None and frame.run_id == run_id:
        return Client._over(frame.store), run_id
    return Client._over(current_store()), run_id


class with_store:
    """``with with_store(target) as store:`` -- a clean room with its own store and runs.

    Inside the block ``current_store()`` is ``store`` and no outside run is current. Runs started
    there with ``start_run()`` and still open are ended when the block exits (``completed``, or
    ``failed`` if an exception escapes). A store opened here from a path is closed on exit; a
    ``Store`` object passed in is left open.
    """

    def __init__(self, target: Any, *, artifacts: Any = None, **options: Any) -> None:
        self._target = target
        self._options = dict(options)  # a server's token=, ...
        if artifacts is not None:
            self._options["artifacts"] = os.fspath(artifacts)
        self._entered: list[tuple[Any, Any, Store, bool]] = []

    def __enter__(self) -> Store:
        from chachaml.store import is_store, open_store

        owned = not is_store(self._target)
        store: Store = open_store(self._target, **self._options) if owned else self._target
        tokens = (_store_cv.set(store), _run_cv.set(Frame(store, None, None, False)))
        self._entered.append((*tokens, store, owned))
        return store

    def __exit__(self, et: Any, ev: Any, tb: Any) -> None:
        store_token, run_token, store, owned = self._entered.pop()
        try:
            status, error = _lifecycle.outcome(et, ev, tb)
            _lifecycle.end_left_open(frames_above(None), status, error, _batch_cv.get())
        finally:
            _reset(_run_cv, run_token, None)
            _reset(_store_cv, store_token, None)
            if owned:
                store.close()


def _reset(var: ContextVar[Any], token: Any, fallback: Any) -> None:
    try:
        var.reset(token)
    except ValueError:  # exited in another Context than it entered (rare: generators, tasks)
        var.set(fallback)


# -- runs ---------------------------------------------------------------------------------------
def _thread_stack(create: bool = False) -> list[Frame] | None:
    """This thread's own ``start_run()`` stack; None in the main thread (it uses the process stack)."""
    if threading.current_thread() is threading.main_thread():
        return None
    stack = _threads.stack
    if stack is None and create:
        stack = _threads.stack = []
    return stack


def current_frame() -> Frame | None:
    """The innermost run frame of this context, else this thread's, else the process stack's."""
    frame = _run_cv.get()
    if frame is not None:
        return frame if frame.run_id is not None else None
    # Only threads other than the main one ever get a stack (_thread_stack), so no thread check
    # is needed here: this runs on every log call.
    own = _threads.stack
    if own:
        return own[-1]
    stack = _process_stack
    return stack[-1] if stack else None


def _running_task() -> Any:
    """The asyncio task running in this thread, or None (asyncio is looked up, never imported)."""
    asyncio = sys.modules.get("asyncio")
    if asyncio is None:
        return None
    try:
        return asyncio.current_task()
    except RuntimeError:  # no event loop running in this thread
        return None


def check_stack_owner(action: str) -> None:
    """Refuse ``start_run``/``end_run`` on a shared stack whose top run another live task started.

    The process (or a thread's) stack is shared by every asyncio task of that thread: two tasks
    pushing and popping there interleave, so each would log to, and end, the other's run. Runs
    of concurrent tasks belong in ``with_run`` blocks, which each task's own context keeps apart
    (docs/concurrency.md). A finished task's runs are fair game: notebook cells with top-level
    ``await`` run in successive tasks and nest as usual.

    Raises:
        RunStateError: another unfinished asyncio task owns the run on top of the shared stack.
    """
    if _run_cv.get() is not None:
        return  # a scoped layer: private to this context
    own = _threads.stack if threading.current_thread() is not threading.main_thread() else None
    stack = own if own is not None else _process_stack
    if not stack or stack[-1].task is None:
        return
    top = stack[-1]
    owner = top.task() if top.task is not None else None
    if owner is None or owner.done() or owner is _running_task():
        return
    from chachaml.errors import RunStateError

    raise RunStateError(
        f"{action} {_where(_running_task())} refused: run {top.run_id} on top of the shared"
        f" start_run() stack was started by asyncio task {owner.get_name()!r}, which is still"
        " running, so the two tasks would log to and end each other's runs. In concurrent tasks"
        " use `with chachaml.with_run(...):` (or @chachaml.tracked): each task then has its own"
        " current run"
    )


def _where(task: Any) -> str:
    return f"in asyncio task {task.get_name()!r}" if task is not None else "outside any asyncio task"


def push_frame(store: Store, run_id: str) -> Frame:
    """Push a ``start_run()`` frame onto the innermost active layer."""
    scoped = _run_cv.get()
    if scoped is not None:
        frame = Frame(store, run_id, scoped, True)
        _run_cv.set(frame)
        return frame
    task = _running_task()
    frame = Frame(store, run_id, None, True, None if task is None else weakref.ref(task))
    own = _thread_stack(create=True)
    if own is not None:
        own.append(frame)
        return frame
    with _lock:
        _process_stack.append(frame)
    return frame


def pop_frame() -> Frame | None:
    """Pop what ``start_run()`` pushed most recently in the current layer (None if nothing)."""
    scoped = _run_cv.get()
    if scoped is not None:
        if scoped.run_id is None or not scoped.imperative:
            return None
        _run_cv.set(scoped.parent)
        return scoped
    if threading.current_thread() is not threading.main_thread():
        # A worker thread ends only runs it started itself (SPEC section 8): the main thread's
        # runs it can see beneath its own are never its to end.
        own = _threads.stack
        return own.pop() if own else None
    with _lock:
        return _process_stack.pop() if _process_stack else None


def enter_scope(store: Store, run_id: str) -> tuple[Frame, Any]:
    """Make ``run_id`` current for a ``with_run`` block; returns the frame and its token."""
    frame = Frame(store, run_id, _run_cv.get(), False)
    return frame, _run_cv.set(frame)


def leave_scope(frame: Frame, token: Any) -> None:
    _reset(_run_cv, token, frame.parent)


def frames_above(frame: Frame | None) -> Iterator[Frame]:
    """Run frames pushed in this context on top of ``frame`` (runs left open inside a block).

    The walk also stops at the floor of the innermost ``with_store`` block, so ``None`` means
    "everything that block's runs put on top of its floor".
    """
    f = _run_cv.get()
    while f is not None and f is not frame and f.run_id is not None:
        yield f
        f = f.parent


def describe() -> str:
    """A one-line account of where the current store and run come from (a debugging aid)."""
    scoped_store = _store_cv.get()
    frame = current_frame()
    where = (
        "with_store block"
        if scoped_store is not None
        else ("use_store()" if _process_store is not None else "default")
    )
    if frame is None:
        run = "no current run"
    else:
        if _run_cv.get() is not None:
            layer = "with_run/attach scope"
        elif _thread_stack():
            layer = f"stack of thread {threading.current_thread().name!r}"
        else:
            layer = "process stack"
        how = "start_run()" if frame.imperative else "with_run()"
        run = f"run {frame.run_id} from {how} on the {layer}"
    return f"store {current_store().uri} ({where}); {run}"


# -- threads and processes ----------------------------------------------------------------------
def bind(fn: Callable[P, R]) -> Callable[P, R]:
    """Capture the caller's context now; run ``fn`` in a fresh copy of it on every call.

    Use it to hand the current store and run to a ``threading.Thread`` or an executor. Each call
    gets its own copy, because one ``Context`` cannot be entered by two threads at once.
    """
    captured = copy_context()

    def bound(*args: P.args, **kwargs: P.kwargs) -> R:
        return captured.copy().run(fn, *args, **kwargs)

    bound.__wrapped__ = fn  # type: ignore[attr-defined]
    bound.__name__ = getattr(fn, "__name__", "bound")
    bound.__doc__ = getattr(fn, "__doc__", None)
    return bound


def __getattr__(name: str) -> Any:
    """``ContextExecutor`` lives in ``chachaml._executor``: imported when first named, so that
    the logging path does not import ``concurrent.futures``."""
    if name == "ContextExecutor":
        from chachaml._executor import ContextExecutor

        return ContextExecutor
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class Snapshot(NamedTuple):
    """A picklable pointer to the current store and run, for another process."""

    store_uri: str
    run_id: str | None


def snapshot() -> Snapshot:
    """Capture the current store location and run id (see ``attach``)."""
    from chachaml.store import reopenable

    store = current_store()
    if not reopenable(store):
        raise InvalidValueError(
            "an in-memory store cannot be shared with another process; use a file, "
            "e.g. chachaml.use_store('runs.db')"
        )
    frame = current_frame()
    return Snapshot(store.uri, frame.run_id if frame is not None else None)


@contextmanager
def attach(snap: Snapshot) -> Iterator[Store]:
    """In a child process: make the snapshot's store and run current for the block.

    The run is not ended when the block exits: it belongs to the process that started it.
    Runs started inside the block with ``start_run()`` and left open are ended, as in ``with_run``.
    """
    with with_store(snap.store_uri) as store:
        if snap.run_id is None:
            yield store
            return
        frame, token = enter_scope(store, snap.run_id)
        status, error = "completed", None
        try:
            yield store
        except BaseException as exc:
            status, error = _lifecycle.outcome(type(exc), exc, exc.__traceback__)
            raise
        finally:
            try:
                _lifecycle.end_left_open(frames_above(frame), status, error, _batch_cv.get())
            finally:
                leave_scope(frame, token)


def _reset_process_layer() -> None:
    """Forget the process-level store and run stack (for test isolation; ends nothing)."""
    global _process_store, _process_experiment
    with _lock:
        _process_store = None
        _process_experiment = None
        _process_stack.clear()
        for store in _opened.values():
            store.close()
        _opened.clear()
