"""The ends of an activity's interceptor chains in a worker: what runs the activity
function once every interceptor has seen the call, and what the activity module's calls do."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import inspect
from typing import Any, Sequence

from engine import activity
from engine._runtime.interceptors import ExecuteActivityInput


def activity_chain(interceptors: Sequence[Any], root: Any) -> Any:
    chain = root
    for interceptor in reversed(interceptors):
        make = getattr(interceptor, "intercept_activity", None)
        if make is not None:
            chain = make(chain)
    return chain


class EngineActivityInbound:
    """The bottom of an activity's inbound chain: runs the function (a plain ``def`` on the
    worker's executor, in a copy of the caller's context so the interceptors' context vars
    reach it)."""

    def __init__(self, executor: concurrent.futures.Executor | None) -> None:
        self._executor = executor

    def init(self, outbound: Any) -> None:
        # What activity.info() and activity.heartbeat() call from now on (temporalio sets its
        # context's callables the same way): the top of the outbound chain.
        context = activity._current.get()
        if context is not None and not isinstance(outbound, EngineActivityOutbound):
            context.outbound = outbound

    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        if inspect.iscoroutinefunction(input.fn):
            return await input.fn(*input.args)
        context = contextvars.copy_context()
        return await asyncio.get_running_loop().run_in_executor(input.executor or self._executor, context.run, input.fn, *input.args)


class EngineActivityOutbound:
    """The bottom of an activity's outbound chain: the attempt's own info and heartbeat."""

    def __init__(self, context: Any = None) -> None:
        self._context = context

    def info(self) -> Any:
        return (self._context or activity._context()).info

    def heartbeat(self, *details: Any) -> None:
        (self._context or activity._context()).heartbeat(details)
