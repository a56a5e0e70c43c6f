"""The API used inside activities (mirrors ``temporalio.activity``)."""

from __future__ import annotations

import asyncio
import contextvars
import logging
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Callable, Mapping, MutableMapping, NoReturn, Sequence, TypeVar

from engine._runtime.definitions import ActivityDefinition, check_problems, hints_of, is_async
from engine._conversion.payload_converter import PayloadConverter

__all__ = [
    "defn", "info", "Info", "heartbeat", "in_activity", "is_cancelled", "payload_converter",
    "logger", "LoggerAdapter", "raise_complete_async", "is_worker_shutdown", "wait_for_worker_shutdown",
    "wait_for_worker_shutdown_sync",
]

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class Info:
    """Facts about the running activity attempt."""

    activity_id: str
    activity_type: str
    attempt: int
    workflow_id: str
    workflow_run_id: str
    workflow_type: str
    workflow_namespace: str
    task_queue: str
    scheduled_time: datetime
    started_time: datetime
    schedule_to_close_timeout: timedelta | None
    start_to_close_timeout: timedelta | None
    heartbeat_timeout: timedelta | None
    heartbeat_details: Sequence[Any]
    is_local: bool = False
    task_token: bytes = b""

    @property
    def namespace(self) -> str:
        return self.workflow_namespace

    def _logger_details(self) -> dict[str, Any]:
        return {
            "activity_id": self.activity_id,
            "activity_type": self.activity_type,
            "attempt": self.attempt,
            "namespace": self.workflow_namespace,
            "task_queue": self.task_queue,
            "workflow_id": self.workflow_id,
            "workflow_run_id": self.workflow_run_id,
            "workflow_type": self.workflow_type,
        }


_SHUTDOWN_LOCK = threading.Lock()


class _Context:
    """The running attempt, as the worker hands it to the activity API.

    ``info`` and the heartbeat sender are built on first use: most activities never ask.
    """

    def __init__(
        self,
        make_info: Callable[[], Info],
        make_heartbeat: Callable[["_Context"], Callable[[Sequence[Any]], None]],
        payload_converter: PayloadConverter | None = None,
    ) -> None:
        self._make_info = make_info
        self._make_heartbeat = make_heartbeat
        self._info: Info | None = None
        self._heartbeat: Callable[[Sequence[Any]], None] | None = None
        self.payload_converter = payload_converter or PayloadConverter.default
        # The worker's activity outbound interceptor chain, when it has interceptors:
        # activity.info() and activity.heartbeat() go through it, as in temporalio.
        self.outbound: Any = None
        self.cancelled = False
        self.on_cancel: Callable[[], Any] | None = None
        # Made on first use: a threading.Event per attempt cost ~10 us, and few activities ask.
        self._shutdown_event: threading.Event | None = None
        self._shut_down = False
        self._shutdown_waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Future]] = []

    @property
    def shutdown(self) -> threading.Event:
        """Set once the worker running this attempt shuts down."""
        event = self._shutdown_event
        if event is None:
            with _SHUTDOWN_LOCK:  # shut_down may run on another thread
                if self._shutdown_event is None:
                    self._shutdown_event = threading.Event()
                    if self._shut_down:
                        self._shutdown_event.set()
                event = self._shutdown_event
        return event

    def shut_down(self) -> None:
        """The worker running this attempt is shutting down (safe from any thread)."""
        with _SHUTDOWN_LOCK:
            self._shut_down = True
            event = self._shutdown_event
        if event is not None:
            event.set()
        waiters, self._shutdown_waiters = self._shutdown_waiters, []
        for loop, fut in waiters:
            loop.call_soon_threadsafe(_resolve, fut)

    async def wait_shutdown(self) -> None:
        if self.shutdown.is_set():
            return
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        self._shutdown_waiters.append((loop, fut))
        if self.shutdown.is_set():  # set between the check and the append
            return
        await fut

    @property
    def info(self) -> Info:
        if self._info is None:
            self._info = self._make_info()
        return self._info

    def heartbeat(self, details: Sequence[Any]) -> None:
        if self._heartbeat is None:
            self._heartbeat = self._make_heartbeat(self)
        self._heartbeat(details)

    async def drain_heartbeats(self) -> None:
        """Until the heartbeats given so far are recorded (the worker calls this before
        recording the attempt's outcome, so that the outcome never overtakes them)."""
        drain = getattr(self._heartbeat, "drain", None)
        if drain is not None:
            await drain()


def _resolve(fut: asyncio.Future) -> None:
    if not fut.done():
        fut.set_result(None)


_current: contextvars.ContextVar[_Context | None] = contextvars.ContextVar("engine_activity", default=None)


def defn(
    fn: F | None = None, *, name: str | None = None, no_thread_cancel_exception: bool = False, dynamic: bool = False
) -> Any:
    """Declare an activity. ``async def`` ones run on the worker's event loop, plain ``def``
    ones in its thread pool. ``name`` is the activity type (default: the function name)."""

    def decorate(target: F) -> F:
        problems: list[str] = []
        if not callable(target):
            problems.append(f"{target!r} is not callable")
        if problems:
            check_problems(f"activity definition {getattr(target, '__qualname__', target)}", problems)
        arg_types, result_type = hints_of(target, skip_self=False)
        target.__activity_definition__ = ActivityDefinition(  # type: ignore[attr-defined]
            name=name or target.__name__,
            fn=target,
            is_async=is_async(target),
            arg_types=arg_types,
            result_type=result_type,
        )
        return target

    if fn is not None:
        return decorate(fn)
    return decorate


def _context() -> _Context:
    ctx = _current.get()
    if ctx is None:
        raise RuntimeError("Not in an activity: this function works only inside an @activity.defn function run by a worker.")
    return ctx


def info() -> Info:
    """The current attempt's info (attempt number, activity id, workflow id, ...)."""
    ctx = _context()
    return ctx.info if ctx.outbound is None else ctx.outbound.info()  # type: ignore[no-any-return]


def heartbeat(*details: Any) -> None:
    """Tell the engine the activity is alive (and record progress ``details``)."""
    ctx = _context()
    if ctx.outbound is None:
        ctx.heartbeat(details)
    else:
        ctx.outbound.heartbeat(*details)


def payload_converter() -> PayloadConverter:
    """The payload converter of the worker's data converter (for converting values by hand)."""
    return _context().payload_converter


def in_activity() -> bool:
    return _current.get() is not None


def is_cancelled() -> bool:
    """True once cancellation of this activity was requested (learned through heartbeats)."""
    return _context().cancelled


class _CompleteAsyncError(BaseException):
    """Raised by ``raise_complete_async``: the worker records nothing for this attempt.

    A ``BaseException`` so that ``except Exception`` in the activity cannot swallow it."""


def is_worker_shutdown() -> bool:
    """True once the worker running this activity began shutting down."""
    return _context().shutdown.is_set()


async def wait_for_worker_shutdown() -> None:
    """Until the worker running this activity begins shutting down."""
    await _context().wait_shutdown()


def wait_for_worker_shutdown_sync(timeout: float | timedelta | None = None) -> None:
    """``wait_for_worker_shutdown`` for plain ``def`` activities (at most ``timeout``)."""
    seconds = timeout.total_seconds() if isinstance(timeout, timedelta) else timeout
    _context().shutdown.wait(seconds)


def raise_complete_async() -> NoReturn:
    """End this activity function without completing the activity: something else completes
    it later, through ``client.get_async_activity_handle(task_token=activity.info().task_token)``
    (or by workflow id, run id and activity id). The attempt's timeouts still apply, so give
    a start-to-close timeout long enough for the completer, or heartbeat through the handle."""
    _context()
    raise _CompleteAsyncError()


class LoggerAdapter(logging.LoggerAdapter):
    """Adds the running activity's details to each record, as temporalio's does: appended to
    the message (``activity_info_on_message``) and as ``temporal_activity`` in the record's
    extra fields (``activity_info_on_extra``); ``full_activity_info_on_extra`` adds the whole
    ``Info`` as ``activity_info``. Outside an activity records pass through unchanged."""

    def __init__(self, logger: logging.Logger, extra: Mapping[str, Any] | None) -> None:
        super().__init__(logger, extra or {})
        self.activity_info_on_message = True
        self.activity_info_on_extra = True
        self.full_activity_info_on_extra = False

    def process(self, msg: Any, kwargs: MutableMapping[str, Any]) -> tuple[Any, MutableMapping[str, Any]]:
        ctx = _current.get()
        if ctx is None:
            return msg, kwargs
        details = ctx.info._logger_details()
        if self.activity_info_on_message:
            msg = f"{msg} ({details})"
        if self.activity_info_on_extra or self.full_activity_info_on_extra:
            extra = dict(kwargs.get("extra") or {})  # the caller's dict is theirs: never changed
            if self.activity_info_on_extra:
                extra["temporal_activity"] = details
            if self.full_activity_info_on_extra:
                extra["activity_info"] = ctx.info
            kwargs["extra"] = extra
        return msg, kwargs

    @property
    def base_logger(self) -> logging.Logger:
        return self.logger


logger = LoggerAdapter(logging.getLogger("engine.activity"), None)
"""Logger for activity code: each record carries the running activity's details."""
