"""How this process ends: the status its still-open runs get at exit (docs/adr/0006-dead-run-detection.md).

Only what actually ends the process decides. Things that look like an ending but are survived do
not count: a ``SystemExit`` that is caught (argparse inside ``try``, or in a notebook cell), an
exception shown at a ``python -i`` or IPython prompt, Ctrl-C at an idle prompt, an exception a
framework reports through ``sys.excepthook`` and then carries on.

Every candidate ending is recorded as a *request* (``_request``): the chained ``sys.excepthook``,
the wrapped ``sys.exit`` and builtin ``exit``/``quit``, and on Python 3.12+ a ``sys.monitoring``
watch on the *entry frame* (the bottom frame of the main thread: the script, the ``-c`` code, or
``runpy`` for ``-m``). A request also notes where the entry frame stood (its ``f_lasti``). At exit
(``outcome_at_exit``) the entry frame, which this module keeps, tells what really happened:

* it **returned**: the program fell off its end, so every request was survived: ``completed``;
* it **unwound** at the instruction a request noted: that request ended the process;
* it unwound elsewhere: a ``SystemExit`` no hook saw (Python 3.11 only; 3.12+ sees them all),
  whose code cannot be known: ``completed``.

At an interactive prompt there is no entry frame that decides; there, a request counts unless
the prompt comes back (``_Prompt``), and exceptions shown at the prompt are never requests.
"""

from __future__ import annotations

import builtins
import contextlib
import os
import sys
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any

from chachaml._process import state as _state


# -- outcome of a block or of the process -------------------------------------------------------
def outcome(et: Any, ev: Any, tb: Any) -> tuple[str, dict[str, str] | None]:
    """The run status and error record for an exception leaving a block (None: completed)."""
    if et is None:
        return "completed", None
    if issubclass(et, KeyboardInterrupt) or _is_cancellation(et):
        return "killed", _error(et, ev, tb)
    if issubclass(et, SystemExit):
        code = None if ev is None else ev.code
        return ("completed", None) if exits_zero(code) else ("failed", _error(et, ev, tb))
    if issubclass(et, GeneratorExit):
        return "completed", None
    return "failed", _error(et, ev, tb)


def exits_zero(code: Any) -> bool:
    """Whether ``SystemExit(code)`` ends the process with status 0: ``None`` or an int equal to 0
    (``0.0`` or ``"0"`` exit with status 1, as CPython prints them as messages)."""
    return code is None or (isinstance(code, int) and code == 0)


def _is_cancellation(et: type[BaseException]) -> bool:
    """Whether ``et`` is ``asyncio.CancelledError``: an interrupted task (``task.cancel()``, a
    notebook interrupt during ``await``) is ``killed`` like ``KeyboardInterrupt`` (SPEC section 3)."""
    # Looked up, not imported: asyncio is heavy, and without it no CancelledError can exist.
    exceptions = sys.modules.get("asyncio.exceptions")
    return exceptions is not None and issubclass(et, exceptions.CancelledError)


def _error(et: Any, ev: Any, tb: Any) -> dict[str, str]:
    import traceback

    record = {
        "type": et.__name__,
        "message": str(ev),
        "traceback": "".join(traceback.format_exception(et, ev, tb)),
    }
    # A NUL in an exception's text would make PostgreSQL refuse the whole end of the run:
    # the record is for people, so it is shown escaped instead.
    return {k: v.replace("\x00", "\\x00") for k, v in record.items()}


_TOOL_IDS = (4, 3)  # sys.monitoring ids no standard tool claims (0-2 and 5 are taken by convention)


def install() -> None:
    """Chain ``sys.excepthook``, wrap ``sys.exit``/``exit``/``quit``, watch the entry frame (once)."""
    # The hook formats tracebacks: import ``traceback`` now, not while an uncaught
    # KeyboardInterrupt is being reported. Importing it inside the hook then made CPython 3.11
    # exit with status 1 instead of dying by SIGINT (tests/test_exit.py caught it once nothing
    # else on the logging path imported ``traceback``; docs/adr/0024).
    import traceback  # noqa: F401

    process = _state
    process.entry_frame = _entry_frame()
    previous_hook = sys.excepthook

    def excepthook(et: Any, ev: Any, tb: Any) -> None:
        _tell_uncaught(ev)
        if not _prompt_goes_on():
            _request(*outcome(et, ev, tb))
        previous_hook(et, ev, tb)  # chain: the user's traceback still prints

    sys.excepthook = excepthook
    sys.exit = _ExitCall(sys.exit, "sys.exit")
    for name in ("exit", "quit"):  # site's Quitter objects, when site installed them
        found = getattr(builtins, name, None)
        if type(found).__name__ == "Quitter":
            setattr(builtins, name, _ExitCall(found, name))
    if process.entry_frame is not None and sys.version_info >= (3, 12):
        _watch_entry_unwind(process.entry_frame)


def outcome_at_exit() -> tuple[str, dict[str, str] | None]:
    """The status (and error record) the process's open runs end with, called from ``atexit``."""
    process = _state
    frame = process.entry_frame
    if frame is not None and not _may_have_prompted():
        if _returned(frame):
            return "completed", None  # fell off the end: every earlier request was survived
        if process.exit_anchor != frame.f_lasti:
            return "completed", None  # unwound by a SystemExit no hook saw (3.11): code unknown
    return process.exit_status, process.exit_error


# -- exceptions that reach the top level --------------------------------------------------------
_listeners: list[Callable[[BaseException], None]] = []


def watch_uncaught(listener: Callable[[BaseException], None]) -> None:
    """Call ``listener(exc)`` for every exception that reaches the top level from now on: the end
    of a script (``sys.excepthook``), a ``python`` prompt, an IPython or Jupyter cell
    (``post_run_cell``), the end of a thread (``threading.excepthook``, chained like
    ``sys.excepthook``). Listeners must not raise; one that does is ignored. Idempotent.

    Framework hooks use it to end a run whose training raised without telling its callbacks
    (docs/adr/0027-hooks-end-runs-of-unreported-failures.md).
    """
    global _thread_hook_chained
    with _state.lock:
        if listener not in _listeners:
            _listeners.append(listener)
        if not _thread_hook_chained:
            _thread_hook_chained = True
            previous = threading.excepthook

            def thread_excepthook(args: Any) -> None:
                _tell_uncaught(args.exc_value)
                previous(args)  # chain: the thread's traceback still prints

            threading.excepthook = thread_excepthook
    _watch_ipython()


_thread_hook_chained = False


def _tell_uncaught(exc: BaseException | None) -> None:
    for listener in list(_listeners):
        if exc is not None:
            with contextlib.suppress(Exception):  # a listener's bug must not hide the traceback
                listener(exc)


_ipython_shells: list[Any] = []  # shells whose post_run_cell event we registered with


def _watch_ipython() -> None:
    """In IPython (a terminal or a Jupyter kernel) a cell's exception never reaches
    ``sys.excepthook``: watch the shell's ``post_run_cell`` event instead (once per shell)."""
    ipython = sys.modules.get("IPython")
    get_ipython = getattr(ipython, "get_ipython", None)
    shell = get_ipython() if callable(get_ipython) else None
    if shell is None or any(s is shell for s in _ipython_shells):
        return
    events = getattr(shell, "events", None)
    if events is None:
        return
    _ipython_shells.append(shell)
    events.register("post_run_cell", _post_run_cell)


def _post_run_cell(result: Any) -> None:
    _tell_uncaught(getattr(result, "error_in_exec", None))


# -- requests -----------------------------------------------------------------------------------
def _request(status: str, error: dict[str, str] | None) -> None:
    """Record a possible ending of the process; the last one not survived decides (see above)."""
    if threading.current_thread() is not threading.main_thread():
        return  # SystemExit ends only its thread; other threads' errors never reach sys.excepthook
    process = _state
    process.exit_status, process.exit_error = status, error
    frame = process.entry_frame
    process.exit_anchor = frame.f_lasti if frame is not None else None
    prompt = getattr(sys, "ps1", None)
    if prompt is not None and not isinstance(prompt, _Prompt):
        sys.ps1 = _Prompt(prompt)


def _exit_request(code: Any, call: str) -> None:
    """Record ``SystemExit(code)`` raised by ``call`` (``sys.exit``, ``exit``, ``quit``)."""
    if sys.flags.inspect and not hasattr(sys, "ps1"):
        return  # `python -i script.py`: a SystemExit in the script drops into the prompt
    if exits_zero(code):
        _request("completed", None)
    else:
        _request("failed", {"type": "SystemExit", "message": f"{call}({code!r})", "traceback": ""})


class _ExitCall:
    """Stands in for ``sys.exit``, ``exit`` or ``quit``: records the request, then calls the original."""

    def __init__(self, original: Any, call: str) -> None:
        self._original = original
        self._call = call
        self.__doc__ = getattr(original, "__doc__", None)

    def __call__(self, code: Any = None) -> Any:
        _exit_request(code, self._call)
        return self._original(code)

    def __repr__(self) -> str:
        return repr(self._original)  # `exit` typed at the prompt still prints the usual hint


class _Prompt:
    """Stands in for ``sys.ps1``. The REPL calls ``str()`` on it before every prompt, so a prompt
    that comes back after a recorded request shows the process survived it (a caught SystemExit)."""

    def __init__(self, prompt: Any) -> None:
        self.prompt = prompt

    def __str__(self) -> str:
        _state.exit_status, _state.exit_error = "completed", None
        return str(self.prompt)

    def __repr__(self) -> str:
        return repr(self.prompt)


# -- the entry frame ----------------------------------------------------------------------------
def _entry_frame() -> FrameType | None:
    """The bottom frame of the main thread, or None at an interactive prompt (no single entry)."""
    main = threading.main_thread()
    if threading.current_thread() is main:
        frame: FrameType | None = sys._getframe()
    else:
        frame = sys._current_frames().get(main.ident or 0)
    if frame is None:
        return None
    while frame.f_back is not None:
        frame = frame.f_back
    name = frame.f_code.co_filename
    if name == "<stdin>" or name.startswith("<python-input"):  # a REPL input (3.13: python-input-N)
        return None
    return frame


def _prompt_goes_on() -> bool:
    """Whether an uncaught exception now leaves the process at (or on its way to) a prompt."""
    return hasattr(sys, "ps1") or _may_have_prompted()


def _may_have_prompted() -> bool:
    """``python -i`` or ``PYTHONINSPECT``: a prompt follows the script, so its end decides nothing."""
    return bool(sys.flags.inspect) or bool(os.environ.get("PYTHONINSPECT"))


def _returned(frame: FrameType) -> bool:
    """Whether a finished frame left through a return instruction (not by an exception)."""
    import opcode

    returns = {opcode.opmap[n] for n in ("RETURN_VALUE", "RETURN_CONST") if n in opcode.opmap}
    return frame.f_code.co_code[frame.f_lasti] in returns


def _watch_entry_unwind(frame: FrameType) -> None:
    """Python 3.12+: see any ``SystemExit`` leave the entry frame, however it was raised.

    ``PY_UNWIND`` is a global event (CPython refuses it per code object: "invalid local event
    set"), so the callback runs whenever an exception leaves any frame and returns after one
    identity check; code that raises no exceptions pays nothing.
    """
    monitoring: Any = getattr(sys, "monitoring", None)
    if monitoring is None:
        return
    for tool in _TOOL_IDS:
        if monitoring.get_tool(tool) is None:
            break
    else:
        return  # every spare id is in use: fall back to the hooks alone (as on 3.11)
    monitoring.use_tool_id(tool, "chachaml")
    entry_code = frame.f_code
    event = monitoring.events.PY_UNWIND

    def on_unwind(code: Any, offset: int, exc: BaseException) -> None:
        if code is not entry_code or not isinstance(exc, SystemExit) or _may_have_prompted():
            return
        status, error = outcome(SystemExit, exc, exc.__traceback__)
        process = _state
        if process.exit_status == status and process.exit_anchor == frame.f_lasti:
            return  # the sys.exit()/exit() request that raised it: keep its clearer message
        _request(status, error)

    monitoring.register_callback(tool, event, on_unwind)
    monitoring.set_events(tool, monitoring.get_events(tool) | event)
