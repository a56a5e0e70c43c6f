"""``testing.ActivityEnvironment``: run activity code outside a worker, as temporalio's.

The function runs with an activity context whose ``info`` the test chose, whose heartbeats go
to ``on_heartbeat``, and which the test can cancel or tell that the worker shuts down. No
engine, no database: a unit test of one activity (a class's method with a stubbed session,
say) runs in microseconds.
"""

from __future__ import annotations

import asyncio
import contextvars
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Sequence

from engine._conversion.payload_converter import PayloadConverter
from engine._runtime.definitions import is_async
from engine.activity import Info, _Context, _current


class ActivityEnvironment:
    """Runs activity functions with a test-controlled activity context.

    ``info`` is what ``activity.info()`` returns (start from ``default_info()`` and change
    fields with ``dataclasses.replace``), ``on_heartbeat(*details)`` sees every heartbeat,
    ``payload_converter`` is what ``activity.payload_converter()`` returns."""

    def __init__(self, client: Any = None) -> None:
        self.info = ActivityEnvironment.default_info()
        self.on_heartbeat: Callable[..., None] = lambda *details: None
        self.payload_converter: PayloadConverter = PayloadConverter.default
        self.client = client
        self._cancelled = False
        self._shut_down = False
        self._running: set[_Context] = set()

    @staticmethod
    def default_info() -> Info:
        epoch = datetime.fromtimestamp(0, timezone.utc)
        return Info(
            activity_id="test", activity_type="unknown", attempt=1, workflow_id="test", workflow_run_id="test-run",
            workflow_type="test", workflow_namespace="default", task_queue="test", scheduled_time=epoch,
            started_time=epoch, schedule_to_close_timeout=timedelta(seconds=1), start_to_close_timeout=timedelta(seconds=1),
            heartbeat_timeout=None, heartbeat_details=[], task_token=b"test",
        )

    def cancel(self) -> None:
        """Request cancellation of the activities running here (and of later runs): an
        ``async def`` one gets ``asyncio.CancelledError`` at its next await, any one sees
        ``activity.is_cancelled()`` become True. Only the first call has an effect."""
        if self._cancelled:
            return
        self._cancelled = True
        for context in list(self._running):
            _cancel(context)

    def worker_shutdown(self) -> None:
        """Tell the activities running here that the worker shuts down
        (``activity.is_worker_shutdown()``, ``wait_for_worker_shutdown()``)."""
        if self._shut_down:
            return
        self._shut_down = True
        for context in list(self._running):
            context.shut_down()

    def run(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Call ``fn(*args, **kwargs)`` inside the activity context. For an ``async def``
        function this returns an awaitable (``await env.run(acts.translate, x)``); a plain
        function runs at once, in this thread, and its result is returned."""
        context = self._context()
        if is_async(fn):
            return self._run_async(context, fn, args, kwargs)
        self._running.add(context)
        token = _current.set(context)
        try:
            return fn(*args, **kwargs)
        finally:
            _current.reset(token)
            self._running.discard(context)

    async def _run_async(self, context: _Context, fn: Callable[..., Any], args: Sequence[Any], kwargs: dict[str, Any]) -> Any:
        ctx = contextvars.copy_context()
        ctx.run(_current.set, context)
        task = asyncio.get_running_loop().create_task(fn(*args, **kwargs), context=ctx)
        context.on_cancel = task.cancel
        self._running.add(context)
        try:
            if self._cancelled:
                _cancel(context)
            return await task
        finally:
            self._running.discard(context)

    def _context(self) -> _Context:
        info = self.info
        on_heartbeat = self.on_heartbeat

        def make_heartbeat(_: _Context) -> Callable[[Sequence[Any]], None]:
            return lambda details: on_heartbeat(*details)

        context = _Context(lambda: info, make_heartbeat, self.payload_converter)
        if self._cancelled:
            context.cancelled = True
        if self._shut_down:
            context.shut_down()
        return context


def _cancel(context: _Context) -> None:
    context.cancelled = True
    if context.on_cancel is not None:
        context.on_cancel()
