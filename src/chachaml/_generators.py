"""Runs that span a generator's iteration (``@with_run`` / ``@tracked`` on generator functions).

A generator's body runs in pieces, each inside the ``Context`` of whoever calls ``next()``. Were
the run made current there, it would leak into the consumer between items (the consumer's logs
would land on the generator's run) and be reset in whatever context happens to finish the
iteration. So the generator gets a ``Context`` of its own, copied from the consumer's when
iteration starts (so the run nests under the consumer's current run), and every step of the body,
the run's start and its end run inside it: the same isolation an asyncio task gives a coroutine.
"""

from __future__ import annotations

import functools
import types
from collections.abc import AsyncGenerator, Awaitable, Callable, Generator
from contextlib import AbstractContextManager
from contextvars import Context, copy_context
from typing import Any

Block = Callable[[], AbstractContextManager[Any]]  # makes a fresh ``with_run`` for one call


def spanning_generator(fn: Callable[..., Any], make_block: Block) -> Callable[..., Any]:
    """Wrap generator function ``fn``: each call's iteration runs inside a ``make_block()`` run.

    The wrapper is a generator function too (``inspect.isgeneratorfunction`` stays true).
    """

    @functools.wraps(fn)
    def run_generator(*args: Any, **kwargs: Any) -> Generator[Any, Any, Any]:
        return (yield from iterate_in_run(make_block(), fn(*args, **kwargs)))

    return run_generator


def spanning_async_generator(fn: Callable[..., Any], make_block: Block) -> Callable[..., Any]:
    """Wrap async generator function ``fn`` like ``spanning_generator`` (the wrapper returns the
    driving async generator itself, so ``asend``/``athrow``/``aclose`` reach the body)."""

    @functools.wraps(fn)
    def run_async_generator(*args: Any, **kwargs: Any) -> AsyncGenerator[Any, Any]:
        return aiterate_in_run(make_block(), fn(*args, **kwargs))

    return run_async_generator


def iterate_in_run(
    block: AbstractContextManager[Any], gen: Generator[Any, Any, Any]
) -> Generator[Any, Any, Any]:
    """Drive ``gen`` inside ``block`` (a ``with_run``) and a context of its own; returns its result.

    ``send``/``throw``/``close`` reach ``gen``; closing early (the consumer stopped) ends the run
    ``completed``, an exception from the body ends it like any ``with_run`` block, and re-raises.
    """
    ctx = copy_context()
    ctx.run(block.__enter__)
    try:
        value: Any = None
        error: BaseException | None = None
        while True:
            try:
                item = ctx.run(gen.send, value) if error is None else ctx.run(gen.throw, error)
            except StopIteration as stop:
                result = stop.value
                break
            try:
                value, error = (yield item), None
            except GeneratorExit:
                ctx.run(gen.close)
                raise
            except BaseException as exc:  # thrown in by the consumer: the body decides
                value, error = None, exc
    except BaseException as exc:
        ctx.run(block.__exit__, type(exc), exc, exc.__traceback__)
        raise
    ctx.run(block.__exit__, None, None, None)
    return result


async def aiterate_in_run(
    block: AbstractContextManager[Any], agen: AsyncGenerator[Any, Any]
) -> AsyncGenerator[Any, Any]:
    """The async-generator twin of ``iterate_in_run``: each step of ``agen`` runs in its own context.

    A cancellation while the body awaits reaches the body and ends the run ``killed``.
    """
    ctx = copy_context()
    ctx.run(block.__enter__)
    try:
        value: Any = None
        error: BaseException | None = None
        while True:
            step = agen.asend(value) if error is None else agen.athrow(error)
            try:
                item = await _in_context(ctx, step)
            except StopAsyncIteration:
                break
            try:
                value, error = (yield item), None
            except GeneratorExit:
                await _in_context(ctx, agen.aclose())
                raise
            except BaseException as exc:  # thrown in by the consumer: the body decides
                value, error = None, exc
    except BaseException as exc:
        ctx.run(block.__exit__, type(exc), exc, exc.__traceback__)
        raise
    ctx.run(block.__exit__, None, None, None)


@types.coroutine
def _in_context(ctx: Context, awaitable: Awaitable[Any]) -> Generator[Any, Any, Any]:
    """Await ``awaitable`` with each of its steps run inside ``ctx`` (what the event loop sees is
    passed through unchanged, so futures, sleeps and cancellation work as usual)."""
    it: Any = awaitable.__await__()
    value: Any = None
    error: BaseException | None = None
    while True:
        try:
            signal = ctx.run(it.send, value) if error is None else ctx.run(it.throw, error)
        except StopIteration as stop:
            return stop.value
        try:
            value, error = (yield signal), None
        except BaseException as exc:  # cancellation included: it must reach the body
            value, error = None, exc
