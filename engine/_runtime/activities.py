"""Activities as a run's code sees them: ``ActivityHandle`` (the future ``workflow.start_activity``
returns), the ``ScheduleActivityTask`` command, cancellation, and the events that resolve it.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Mapping, Sequence, cast

from engine._api.durations import to_duration
from engine._conversion.payload_converter import from_json_payload, to_json_payload, to_json_payloads
from engine._runtime import interceptors as _interceptors
from engine._runtime.commands import Command
from engine._runtime.event_loop import HistoryEventLoop
from engine._runtime.info import WorkflowInfo
from engine.common import RetryPolicy
from engine.errors import ActivityError, CancelledError, RetryState
from engine.history import HistoryEvent


if TYPE_CHECKING:
    from engine._runtime.instance import WorkflowInstance


# ActivityCancellationType values (temporalio's), kept here so the runtime needs no
# import of the public workflow module.
TRY_CANCEL, WAIT_CANCELLATION_COMPLETED, ABANDON = 0, 1, 2


class ActivityHandle(asyncio.Future):
    """The awaitable result of ``workflow.start_activity``; ``cancel()`` requests cancellation."""

    def __init__(self, instance: WorkflowInstance, activity_type: str, activity_id: str) -> None:
        super().__init__(loop=instance)
        self._instance = instance
        self.activity_type = activity_type
        self.activity_id = activity_id
        self.scheduled_event_id: int | None = None
        self._cancel_sent = False
        self.cancellation_type = TRY_CANCEL
        self._command: Command | None = None

    def cancel(self, msg: Any = None) -> bool:
        if self.done():
            return False
        if self._instance._evicting:
            return super().cancel(msg)
        if self.scheduled_event_id is None and self._instance._drop_unsent(self._command):
            # Cancelled in the activation that scheduled it: nothing is sent or recorded, and
            # the awaiting code gets asyncio.CancelledError, as in temporalio (a real server's
            # history of such a run has no event of the activity).
            return super().cancel(msg)
        if self.cancellation_type == ABANDON:
            # Nothing is sent: the activity runs on, and its outcome is ignored.
            self._resolve_cancelled()
            return True
        if not self._cancel_sent:
            self._cancel_sent = True
            self._instance._request_cancel_activity(self)
        if self.cancellation_type == TRY_CANCEL:
            # As temporalio: the awaiting code gets at once an ActivityError caused by
            # CancelledError (not asyncio.CancelledError), and the engine records the cancel.
            self._resolve_cancelled()
        # WAIT_CANCELLATION_COMPLETED: resolved by the ActivityTaskCanceled event (or by the
        # activity's completion or failure, if it ends before it hears of the cancel).
        return True

    def _resolve_cancelled(self) -> None:
        error = ActivityError(
            "Activity cancelled",
            scheduled_event_id=self.scheduled_event_id or 0,
            started_event_id=0,
            identity="",
            activity_type=self.activity_type,
            activity_id=self.activity_id,
            retry_state=RetryState.CANCEL_REQUESTED,
        )
        error.__cause__ = CancelledError("Cancelled")  # temporalio's wording, as a real server's history gives it
        self.set_exception(error)


_DEFAULT_RETRY = RetryPolicy().to_json()
# The ActivityError message temporalio gives for each way an activity ends (tests/differential).
_ACTIVITY_ERROR_MESSAGES = {"ActivityTaskTimedOut": "Activity task timed out", "ActivityTaskCanceled": "Activity cancelled"}


class ActivityCalls(HistoryEventLoop):
    """The activity side of ``WorkflowInstance``."""

    # Kept by WorkflowInstance (engine/_runtime/instance.py), which this class is a part of.
    info: WorkflowInfo
    payload_converter: Any
    failure_converter: Any
    _activities: dict[int, ActivityHandle]

    def _on_activity_done(self, event: HistoryEvent) -> None:
        attrs = event.attributes
        scheduled = int(attrs.get("scheduledEventId", 0))
        handle = self._activities.pop(scheduled, None)
        if handle is None or handle.done():
            return
        if event.event_type == "ActivityTaskCompleted":
            payloads = (attrs.get("result") or {}).get("payloads") or [None]
            what = f"the result of activity {handle.activity_type!r}"
            handle.set_result(from_json_payload(self.payload_converter, payloads[0], getattr(handle, "result_type", None), what))
            return
        cause = (
            CancelledError("Cancelled")
            if event.event_type == "ActivityTaskCanceled"
            else self.failure_converter.from_failure(attrs.get("failure") or {}, self.payload_converter)
        )
        state = str(attrs.get("retryState", "CANCEL_REQUESTED")).replace("RETRY_STATE_", "")
        error = ActivityError(
            _ACTIVITY_ERROR_MESSAGES.get(event.event_type, "Activity task failed"),
            scheduled_event_id=scheduled,
            started_event_id=int(attrs.get("startedEventId") or 0),
            identity=str(attrs.get("identity", "")),
            activity_type=handle.activity_type,
            activity_id=handle.activity_id,
            retry_state=RetryState.__members__.get(state, RetryState.UNSPECIFIED),
        )
        error.__cause__ = cause
        handle.set_exception(error)

    def schedule_activity(
        self,
        activity_type: str,
        args: Sequence[Any],
        *,
        task_queue: str | None,
        schedule_to_close_timeout: timedelta | None,
        schedule_to_start_timeout: timedelta | None,
        start_to_close_timeout: timedelta | None,
        heartbeat_timeout: timedelta | None,
        retry_policy: Any,
        activity_id: str | None,
        result_type: Any,
        summary: str | None,
        cancellation_type: int = TRY_CANCEL,
        headers: Mapping[str, Any] | None = None,
    ) -> ActivityHandle:
        if start_to_close_timeout is None and schedule_to_close_timeout is None:
            raise ValueError(
                f"Activity {activity_type!r} needs start_to_close_timeout or "
                "schedule_to_close_timeout (as in Temporal), e.g. "
                "start_to_close_timeout=timedelta(seconds=10)."
            )
        self._seq["activity"] += 1
        act_id = activity_id or str(self._seq["activity"])
        handle = ActivityHandle(cast("WorkflowInstance", self), activity_type, act_id)
        handle.result_type = result_type  # type: ignore[attr-defined]
        handle.cancellation_type = int(cancellation_type)
        attrs: dict[str, Any] = {
            "activityId": act_id,
            "activityType": {"name": activity_type},
            "taskQueue": {"name": task_queue or self.info.task_queue, "kind": "TASK_QUEUE_KIND_NORMAL"},
            "header": _interceptors.headers_to_json(headers),
            "input": to_json_payloads(self.payload_converter, args, f"argument of activity {activity_type!r}"),
            "scheduleToCloseTimeout": to_duration(schedule_to_close_timeout),
            "scheduleToStartTimeout": to_duration(schedule_to_start_timeout or schedule_to_close_timeout),  # Temporal's default
            "startToCloseTimeout": to_duration(start_to_close_timeout or schedule_to_close_timeout),
            "heartbeatTimeout": to_duration(heartbeat_timeout),
            "retryPolicy": retry_policy.to_json() if retry_policy else {**_DEFAULT_RETRY, "nonRetryableErrorTypes": []},
        }
        if attrs["taskQueue"]["name"] == self.info.task_queue:  # as temporalio: same queue, same build
            attrs["useWorkflowBuildId"] = True
        if summary:
            attrs["userMetadata"] = {"summary": to_json_payload(self.payload_converter, summary, "the activity summary")}

        def bound(event_id: int) -> None:
            handle.scheduled_event_id = event_id
            if not handle.done():
                self._activities[event_id] = handle
            if handle._cancel_sent:
                self._add_cancel_activity_command(event_id)

        handle._command = self._add_command("ScheduleActivityTask", attrs, bound)
        return handle

    def _request_cancel_activity(self, handle: ActivityHandle) -> None:
        if handle.scheduled_event_id is not None:
            if handle.cancellation_type != WAIT_CANCELLATION_COMPLETED:
                self._activities.pop(handle.scheduled_event_id, None)
            self._add_cancel_activity_command(handle.scheduled_event_id)

    def _add_cancel_activity_command(self, scheduled_event_id: int) -> None:
        self._add_command("RequestCancelActivityTask", {"scheduledEventId": str(scheduled_event_id)})
