"""``workflow.wait`` and ``workflow.as_completed`` (temporalio's): asyncio's, made
deterministic for workflow code. asyncio's return sets, whose order follows object ids and so
can differ between a run and its replay; these return lists in the order the futures were
given, and their timeouts are the workflow's durable timers (the loop's ``call_later``)."""

from __future__ import annotations

import asyncio
from typing import Any, Awaitable, Iterable, Iterator, TypeVar

T = TypeVar("T")
_WHEN = (asyncio.FIRST_COMPLETED, asyncio.FIRST_EXCEPTION, asyncio.ALL_COMPLETED)


async def wait(
    fs: Iterable[asyncio.Future[Any]], *, timeout: float | None = None, return_when: str = asyncio.ALL_COMPLETED
) -> tuple[list[asyncio.Future[Any]], list[asyncio.Future[Any]]]:
    """Wait for the tasks or futures ``fs`` as ``asyncio.wait`` does; ``(done, pending)`` as
    lists in the order of ``fs``."""
    if asyncio.isfuture(fs) or asyncio.iscoroutine(fs):
        raise TypeError(f"workflow.wait takes an iterable of tasks or futures, not one {type(fs).__name__}.")
    futures = list(fs)
    if not futures:
        raise ValueError("workflow.wait was given no tasks or futures to wait for.")
    if return_when not in _WHEN:
        raise ValueError(f"workflow.wait: return_when must be asyncio.FIRST_COMPLETED, FIRST_EXCEPTION or ALL_COMPLETED, not {return_when!r}.")
    if any(asyncio.iscoroutine(f) for f in futures):
        raise TypeError("workflow.wait takes tasks or futures, not coroutines: wrap each in asyncio.create_task(...) first.")
    loop = asyncio.get_running_loop()
    waiter: asyncio.Future[None] = loop.create_future()
    left = len(futures)

    def release(*_: Any) -> None:
        if not waiter.done():
            waiter.set_result(None)

    def on_done(f: asyncio.Future[Any]) -> None:
        nonlocal left
        left -= 1
        failed = return_when == asyncio.FIRST_EXCEPTION and not f.cancelled() and f.exception() is not None
        if left <= 0 or return_when == asyncio.FIRST_COMPLETED or failed:
            release()

    timer = loop.call_later(timeout, release) if timeout is not None else None
    for f in futures:
        f.add_done_callback(on_done)
    try:
        await waiter
    finally:
        if timer is not None:
            timer.cancel()
        for f in futures:
            f.remove_done_callback(on_done)
    return [f for f in futures if f.done()], [f for f in futures if not f.done()]


def as_completed(fs: Iterable[Awaitable[T]], *, timeout: float | None = None) -> Iterator[Awaitable[T]]:
    """As ``asyncio.as_completed``: awaitables that give the results of ``fs`` in the order
    they complete (ties in the order given); after ``timeout`` they raise
    ``asyncio.TimeoutError``."""
    if asyncio.isfuture(fs) or asyncio.iscoroutine(fs):
        raise TypeError(f"workflow.as_completed takes an iterable of awaitables, not one {type(fs).__name__}.")
    loop = asyncio.get_running_loop()
    todo: list[asyncio.Future[T]] = [asyncio.ensure_future(f) for f in list(fs)]
    finished: asyncio.Queue[asyncio.Future[T] | None] = asyncio.Queue()

    def on_done(f: asyncio.Future[T]) -> None:
        if f in todo:
            todo.remove(f)
            finished.put_nowait(f)
            if not todo and timer is not None:
                timer.cancel()

    def on_timeout() -> None:
        for f in todo:
            f.remove_done_callback(on_done)
            finished.put_nowait(None)
        todo.clear()

    async def next_result() -> T:
        f = await finished.get()
        if f is None:
            raise asyncio.TimeoutError
        return f.result()

    timer = loop.call_later(timeout, on_timeout) if todo and timeout is not None else None
    count = len(todo)
    for f in list(todo):
        f.add_done_callback(on_done)
    return (next_result() for _ in range(count))  # made one at a time: none is left unawaited
