"""A worker's activity tasks: polled, each attempt run through the interceptors with its
context, heartbeats sent, and the outcome recorded for the history service to retry or not.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import functools
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Sequence, cast

from engine._conversion.payload_converter import to_json_payloads
from engine._frontend.async_activities import task_token as _task_token
from engine._history.activities import ActivityTask
from engine._history.activities import claim_activity_tasks, complete_activity, fail_activity, heartbeat_activity
from engine._history.mutable_state import StaleTaskError, from_ts
from engine._matching.dead_workers import mark_completing_async
from engine._persistence import lock_waits as _lock_waits
from engine._runtime import interceptors as _interceptors
from engine._runtime import user_exits as _user_exits
from engine._runtime.definitions import ActivityDefinition
from engine.activity import Info as ActivityInfo, _Context, _current
from engine.activity import _CompleteAsyncError
from engine.errors import ApplicationError, PayloadError, StoreLockedError
from engine.worker import _faults as _worker_faults
from engine.worker import _logs as _worker_logs
from engine.worker._activity_interceptors import EngineActivityInbound, EngineActivityOutbound, activity_chain
from engine.worker._logs import _report_failed_job, log

if TYPE_CHECKING:
    from engine._matching.dispatch import Receiver
    from engine.client import Client
    from engine.worker import Worker


class ActivityTasks:
    """The activity-task side of ``Worker``."""

    # Kept by Worker (engine/worker/__init__.py), which this class is a part of.
    client: Client
    task_queue: str
    stats: dict[str, int]
    _owner: str
    _crashed: bool
    _activities: dict[str, ActivityDefinition]
    _interceptors: list[Any]
    _executor: concurrent.futures.Executor | None
    _stop: asyncio.Event
    _inflight_act: set[asyncio.Task]
    _activity_contexts: set[_Context]
    _receivers: dict[str, Receiver]
    _poll_loop: Callable[[str, Callable[..., Any], tuple[Any, ...], Callable[[Any], None]], Awaitable[None]]
    _encode_failure: Callable[[BaseException], Awaitable[dict[str, Any]]]

    # ------------------------------------------------------------------ activities
    async def _activity_loop(self) -> None:
        await self._poll_loop("activity", claim_activity_tasks, (), self._accept_activity)

    def _accept_activity(self, task: ActivityTask) -> None:
        if self._crashed:
            return  # as after a real crash: the lease times out
        self._spawn_activity_job(self._run_activity(task))

    def _spawn_activity_job(self, coro: Any) -> None:
        job = asyncio.ensure_future(coro)
        self._inflight_act.add(job)
        job.add_done_callback(self._activity_job_done)

    def _activity_job_done(self, job: asyncio.Future) -> None:
        self._inflight_act.discard(job)
        _report_failed_job(job, "an activity")

    def _activity_recorded(self, what: str, make: Callable[[], tuple[Any, ...]], ok: bool, value: Any) -> None:
        if not ok and isinstance(value, StoreLockedError) and not self._crashed:
            # Another program holds the write lock: record the outcome once it is free.
            self._spawn_activity_job(self._record_after_lock_wait(what, make, value))
            return
        self._receivers["activity"].release()
        if not ok:  # the lease will time out and the attempt is retried
            log.error("recording %s failed", what, exc_info=value)

    async def _record_after_lock_wait(self, what: str, make: Callable[[], tuple[Any, ...]], error: StoreLockedError) -> None:
        try:
            await _lock_waits.record(self.client.store, what, make, lambda: self._crashed, error)
        except StaleTaskError:
            pass
        except Exception:  # noqa: BLE001 - the lease will time out and the attempt is retried
            log.exception("recording %s failed", what)
        finally:
            self._receivers["activity"].release()

    async def _run_activity(self, task: ActivityTask) -> None:
        """Run one attempt and submit its outcome; the slot is given back after that commit."""
        submitted = False
        try:
            submitted = await self._attempt(task)
        finally:
            if not submitted:
                self._receivers["activity"].release()

    async def _attempt(self, task: ActivityTask) -> bool:
        store = self.client.store
        self.stats["activities"] += 1
        info = task.info
        defn = self._activities.get(info["activityType"])
        outcome: tuple[str, Any]
        context: _Context | None = None
        quiet = _worker_faults.quiet(cast("Worker", self))
        if defn is None:
            outcome = (
                "fail",
                ApplicationError(
                    f"Activity type {info['activityType']!r} is not registered on the worker for task queue "
                    f"{self.task_queue!r} (it has: {', '.join(sorted(self._activities)) or 'none'}). Add the "
                    "function to Worker(activities=[...]).",
                    type="NotFoundError",
                ),
            )
        else:
            injected = None if quiet else await _worker_faults.activity_fault(cast("Worker", self), task)
            if injected is not None:
                outcome = injected
            else:
                try:
                    context = await self._activity_context(task)
                except Exception as e:  # noqa: BLE001 - unreadable heartbeat details fail the attempt
                    outcome = ("fail", e)
                else:
                    try:
                        outcome = await self._invoke(defn, task, context)
                    except asyncio.CancelledError:
                        if not self._stop.is_set() or self._crashed:
                            raise
                        # A graceful shutdown cut the attempt short: say so, so the engine
                        # retries it now rather than after its start-to-close timeout.
                        outcome = ("fail", ApplicationError("the worker shut down while the activity ran", type="WorkerShutdown"))
        if outcome[0] == "abandoned":
            if outcome[1] == "async":
                # Its lease must outlive this process: no worker takes it back if we die.
                try:
                    await store.run(mark_completing_async, task.task_id, self._owner, task.attempt)
                except Exception:  # noqa: BLE001 - unmarked, the lease is taken back if this process dies
                    log.exception("marking attempt %d of activity %s as completing asynchronously failed", task.attempt, info["activityType"])
            return False
        if context is not None:
            await context.drain_heartbeats()
        if outcome[0] == "fail":
            _worker_logs.activity_failed(self._activity_log_details(task), outcome[1])
        what = f"The outcome of attempt {task.attempt} of activity {info['activityType']} (run {task.run_id})"
        try:
            make = await self._activity_outcome(task, outcome)
            if quiet and _worker_faults.quiet(cast("Worker", self)):
                # Nothing to obey: submit, and let the commit give the slot back.
                store.submit(*make(), done=functools.partial(self._activity_recorded, what, make))
                return True
            await _worker_faults.change(cast("Worker", self), _worker_faults.activity_point(task, outcome[0]), what, make)
        except _worker_faults.Crashed:
            return False
        except Exception:  # noqa: BLE001 - the lease will time out and the attempt is retried
            log.exception("recording %s failed", what)
        return False

    def _activity_log_details(self, task: ActivityTask) -> dict[str, Any]:
        info = task.info
        return {
            "activity_id": info.get("activityId"), "activity_type": info.get("activityType"), "attempt": task.attempt,
            "namespace": self.client.namespace, "task_queue": self.task_queue, "workflow_id": info.get("workflowId"),
            "workflow_run_id": task.run_id, "workflow_type": info.get("workflowType"),
        }

    async def _activity_outcome(self, task: ActivityTask, outcome: tuple[str, Any]) -> Callable[[], tuple[Any, ...]]:
        """The change that records ``outcome``, made at each try (its time current)."""
        now = self.client.clock.now
        if outcome[0] == "ok":
            return lambda: (complete_activity, task.task_id, self._owner, task.attempt, outcome[1], now())
        failure = await self._encode_failure(outcome[1])
        cancelled = outcome[0] == "cancelled"
        return lambda: (fail_activity, task.task_id, self._owner, task.attempt, failure, now(), cancelled)

    async def _invoke(self, defn: ActivityDefinition, task: ActivityTask, context: _Context) -> tuple[str, Any]:
        info = task.info
        converter = self.client.data_converter
        timer: asyncio.TimerHandle | None = None
        state = {"running": True, "timed_out": False}
        try:
            args = await converter._decode_json(info.get("input"), defn.arg_types, f"the input of activity {defn.name!r}")
            token = _current.set(context)
            self._activity_contexts.add(context)
            try:
                if defn.is_async:
                    # Run inline in this task (no task of its own). A timeout or a cancel
                    # request learned through a heartbeat cancels this task, and only while the
                    # activity's code is still running, so it always lands inside that code.
                    job = asyncio.current_task()
                    assert job is not None

                    def interrupt(timed_out: bool = False) -> None:
                        if state["running"]:
                            state["timed_out"] = timed_out
                            job.cancel()

                    context.on_cancel = interrupt
                    limit = info.get("startToClose")
                    if limit:
                        timer = asyncio.get_running_loop().call_later(limit, interrupt, True)
                    try:
                        result = await (self._intercepted(defn, args, info) if self._interceptors else defn.fn(*args))
                    finally:
                        state["running"] = False
                elif self._interceptors:
                    result = await self._intercepted(defn, args, info)
                else:
                    ctx = contextvars.copy_context()
                    loop = asyncio.get_running_loop()
                    result = await loop.run_in_executor(self._executor, ctx.run, defn.fn, *args)
            finally:
                _current.reset(token)
                self._activity_contexts.discard(context)
                if timer is not None:
                    timer.cancel()
        except _CompleteAsyncError:
            return ("abandoned", "async")  # completed later through a handle: nothing to record now
        except asyncio.CancelledError as e:
            if state["timed_out"]:
                # As a temporalio worker: stop the code, report nothing; the engine's own timer
                # records ActivityTaskTimedOut (a reported failure would be ActivityTaskFailed).
                return ("abandoned", None)
            if context.cancelled:
                return ("cancelled", asyncio.CancelledError())
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                raise  # this attempt's task was cancelled: the worker crashed or is shutting down
            # The activity raised it itself (nobody cancelled it): as temporalio, a failure.
            return ("fail", _from_user_code(e, defn.name))
        except Exception as e:  # noqa: BLE001 - every failure is recorded as the attempt's outcome
            return ("fail", e)
        except BaseException as e:  # noqa: BLE001 - SystemExit, KeyboardInterrupt: see _from_user_code
            return ("fail", _from_user_code(e, defn.name))
        try:
            return ("ok", await converter._encode_json([result], f"the result of activity {defn.name!r}", numbered=False))
        except PayloadError as e:
            return ("fail", ApplicationError(str(e), type="PayloadError", non_retryable=True))

    async def _intercepted(self, defn: ActivityDefinition, args: list[Any], info: dict[str, Any]) -> Any:
        chain = activity_chain(self._interceptors, EngineActivityInbound(self._executor))
        chain.init(EngineActivityOutbound(_current.get()))
        call = _interceptors.ExecuteActivityInput(defn.fn, args, self._executor, _interceptors.headers_from_json(info.get("header")))
        return await chain.execute_activity(call)

    async def _activity_context(self, task: ActivityTask) -> _Context:
        info = task.info
        converter = self.client.data_converter
        # Decoded now (a codec may need awaiting); the rest of activity.info() on first use.
        details = await converter._decode_json(info["heartbeatDetails"], (), "heartbeat details") if info.get("heartbeatDetails") else []

        def make_info() -> ActivityInfo:
            def seconds(key: str) -> timedelta | None:
                return timedelta(seconds=info[key]) if info.get(key) else None

            return ActivityInfo(
                activity_id=info["activityId"],
                activity_type=info["activityType"],
                attempt=task.attempt,
                workflow_id=info["workflowId"],
                workflow_run_id=task.run_id,
                workflow_type=info["workflowType"],
                workflow_namespace=self.client.namespace,
                task_queue=self.task_queue,
                scheduled_time=from_ts(info["scheduledTime"]),
                started_time=from_ts(task.started_at),
                schedule_to_close_timeout=(from_ts(info["deadline"]) - from_ts(info["scheduledTime"])) if info.get("deadline") else None,
                start_to_close_timeout=seconds("startToClose"),
                heartbeat_timeout=seconds("heartbeat"),
                heartbeat_details=details,
                task_token=_task_token(task.task_id, self._owner, task.attempt, task.run_id, task.scheduled_event_id),
            )

        loop = asyncio.get_running_loop()  # heartbeats may come from a sync activity's thread
        return _Context(make_info, lambda context: _Heartbeats(cast("Worker", self), task, context, loop), converter.payload_converter)


def _from_user_code(error: BaseException, activity_type: str) -> BaseException:
    """An activity raised what is not an ``Exception`` (``sys.exit()`` in a library, say).
    As in temporalio it fails only this attempt, as an application failure whose type is the
    exception's class name: letting it through would end the worker process, and the next
    worker to take the retried attempt too, with nothing recorded."""
    log.warning(
        "activity %s raised %s; recorded as the failure of this attempt, the worker goes on",
        activity_type, _user_exits.described(error),
    )
    return error


class _Heartbeats:
    """Sends an activity's heartbeats, one change at a time, the latest details winning."""

    def __init__(self, worker: Worker, task: ActivityTask, context: _Context, loop: asyncio.AbstractEventLoop) -> None:
        self._worker = worker
        self._task = task
        self._context = context
        self._loop = loop
        self._details: Any = None
        self._sending: asyncio.Task | None = None

    def __call__(self, values: Sequence[Any]) -> None:
        converter = self._worker.client.data_converter
        self._details = to_json_payloads(converter.payload_converter, list(values), "heartbeat detail")
        if asyncio.events._get_running_loop() is self._loop:
            self._kick()
        else:
            self._loop.call_soon_threadsafe(self._kick)

    def _kick(self) -> None:
        if self._sending is None and self._details is not None:
            self._sending = self._loop.create_task(self._send())

    async def drain(self) -> None:
        """Until every heartbeat given so far is recorded (before the attempt's outcome is)."""
        while self._sending is not None:
            await asyncio.shield(self._sending)

    async def _send(self) -> None:
        worker, task, context = self._worker, self._task, self._context
        converter = worker.client.data_converter
        try:
            while self._details is not None:
                details, self._details = self._details, None
                details = await converter._codec_json(details, encode=True)
                cancel = await worker.client.store.run(
                    heartbeat_activity, task.task_id, worker._owner, task.attempt, details, worker.client.clock.now()
                )
                if cancel and not context.cancelled:
                    context.cancelled = True
                    if context.on_cancel is not None:
                        context.on_cancel()
        except Exception:  # noqa: BLE001 - a lost heartbeat only risks a heartbeat timeout
            log.exception("heartbeat failed")
        finally:
            self._sending = None
