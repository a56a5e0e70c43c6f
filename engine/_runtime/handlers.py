"""Which signal and update handlers of a run are still running, for
``workflow.all_handlers_finished()`` (temporalio's): workflow code waits on it before it
returns or continues as new, so that no handler is cut off half-way."""

from __future__ import annotations

import weakref
from typing import Any, Coroutine, TypeVar

T = TypeVar("T")

# Kept beside the instance rather than on it: a discarded (evicted) instance takes its count along.
_running: weakref.WeakKeyDictionary[Any, int] = weakref.WeakKeyDictionary()


def tracked(instance: Any, coro: Coroutine[Any, Any, T]) -> Coroutine[Any, Any, T]:
    """``coro`` counted as a running handler of ``instance`` from now (not from its first
    step: a condition checked before the handler's task starts must already see it) until it
    ends, however it ends."""
    _running[instance] = _running.get(instance, 0) + 1

    async def run() -> T:
        try:
            return await coro
        finally:
            _running[instance] -= 1

    return run()


def all_finished(instance: Any) -> bool:
    return not _running.get(instance, 0)
