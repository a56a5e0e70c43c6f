"""The asyncio side of a workflow run: an event loop whose clock is history time.

``WorkflowInstance`` (engine/_runtime/instance.py) *is* this loop, as temporalio's instance is:
``time()`` is the time of the workflow task being applied, ``call_later`` becomes a durable
timer (a ``StartTimer`` command), and nothing runs except when an activation drains the ready
queue. What workflow code may not do (threads, executors) fails with a message saying so.
"""

from __future__ import annotations

import asyncio
import collections
import contextvars
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Callable, Sequence, cast

from engine._api.durations import to_duration
from engine._runtime.code_lines import user_code_line
from engine._runtime.commands import Command
from engine.errors import FailureError

if TYPE_CHECKING:
    from engine._runtime.instance import WorkflowInstance


class _WorkflowTimer(asyncio.TimerHandle):
    def __init__(
        self,
        instance: HistoryEventLoop,
        when: float,
        callback: Callable[..., Any],
        args: Sequence[Any],
        context: contextvars.Context | None,
        timer_id: str,
    ) -> None:
        super().__init__(when, callback, args, instance, context)
        self._instance = instance
        self.timer_id = timer_id
        self.fired = False
        self.command: Command | None = None

    def cancel(self) -> None:
        if not self.cancelled() and not self.fired:
            self._instance._cancel_timer(self)
        super().cancel()


class HistoryEventLoop(asyncio.AbstractEventLoop):
    """The event loop methods of a run; the instance keeps the state they use and issues the
    commands (``_add_command``, ``_cancel_timer``)."""

    _now: datetime
    _ready: collections.deque[asyncio.Handle]
    _seq: dict[str, int]
    _timers: dict[str, _WorkflowTimer]
    _tasks: set[asyncio.Task]
    _closed: bool
    _failure: BaseException | None

    def _add_command(self, kind: str, attributes: dict[str, Any], on_event: Callable[[int], None] | None = None) -> Command:
        raise NotImplementedError

    def _cancel_timer(self, timer: _WorkflowTimer) -> None:
        raise NotImplementedError

    def time(self) -> float:
        return self._now.timestamp()

    def call_soon(self, callback: Callable[..., Any], *args: Any, context: contextvars.Context | None = None) -> asyncio.Handle:  # type: ignore[override]
        handle = asyncio.Handle(callback, args, self, context)
        self._ready.append(handle)
        return handle

    def call_soon_threadsafe(self, callback: Callable[..., Any], *args: Any, context: Any = None) -> asyncio.Handle:  # type: ignore[override]
        raise RuntimeError("Threads cannot call into workflow code: workflows are single-threaded and deterministic.")

    def call_later(self, delay: float, callback: Callable[..., Any], *args: Any, context: contextvars.Context | None = None) -> asyncio.TimerHandle:  # type: ignore[override]
        if delay <= 0:
            handle = _WorkflowTimer(self, self.time(), callback, args, context, "")
            self._ready.append(handle)
            return handle
        self._seq["timer"] += 1
        timer_id = str(self._seq["timer"])
        timer = _WorkflowTimer(self, self.time() + delay, callback, args, context, timer_id)
        self._timers[timer_id] = timer
        timer.command = self._add_command(
            "StartTimer",
            {"timerId": timer_id, "startToFireTimeout": to_duration(timedelta(seconds=delay))},
        )
        return timer

    def call_at(self, when: float, callback: Callable[..., Any], *args: Any, context: contextvars.Context | None = None) -> asyncio.TimerHandle:  # type: ignore[override]
        return self.call_later(when - self.time(), callback, *args, context=context)

    def create_future(self) -> asyncio.Future:
        return asyncio.Future(loop=self)

    def create_task(  # type: ignore[override]
        self, coro: Any, *, name: str | None = None, context: contextvars.Context | None = None, _origin: bool = True
    ) -> asyncio.Task:
        task = asyncio.Task(coro, loop=self, name=name, context=context)
        # Where workflow code made the task, for error messages about the commands it issues.
        task._dlab_origin = user_code_line() if _origin else None  # type: ignore[attr-defined]
        # Kept here so eviction need not scan every task of the process (asyncio.all_tasks).
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def _timer_handle_cancelled(self, handle: asyncio.TimerHandle) -> None:
        pass

    def get_debug(self) -> bool:
        return False

    def is_running(self) -> bool:
        return asyncio.events._get_running_loop() is self

    def is_closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        self._closed = True

    def get_exception_handler(self) -> None:
        return None

    def set_exception_handler(self, handler: Any) -> None:
        pass

    def default_exception_handler(self, context: dict[str, Any]) -> None:
        pass

    def call_exception_handler(self, context: dict[str, Any]) -> None:
        # An exception nobody retrieved (e.g. a forgotten task): fail the task so it is seen.
        exc = context.get("exception")
        if isinstance(exc, BaseException) and not isinstance(exc, asyncio.CancelledError):
            if self._failure is None and not isinstance(exc, FailureError):
                self._failure = exc

    def get_task_factory(self) -> None:
        return None

    def run_in_executor(self, executor: Any, func: Any, *args: Any) -> Any:  # type: ignore[override]
        raise RuntimeError(
            "Workflow code cannot run threads (run_in_executor/asyncio.to_thread): do blocking "
            "work in an activity and call it with workflow.execute_activity."
        )


def current() -> WorkflowInstance:
    """The instance whose code is running, or a clear error outside workflow code."""
    loop = asyncio.events._get_running_loop()
    if not isinstance(loop, HistoryEventLoop):
        raise RuntimeError(
            "Not in workflow code: this function works only inside a workflow's @workflow.run "
            "method (and what it calls) while a worker runs it."
        )
    return cast("WorkflowInstance", loop)
