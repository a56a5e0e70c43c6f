"""Local activities: run by the worker inside the workflow task, recorded as markers.

As in Temporal's SDK core: workflow code schedules a local activity; the worker runs it at
once (no activity task, no ActivityTask* events), retrying it in process while the wait
before the next attempt is at most ``local_retry_threshold``; then the workflow continues in
the same workflow task, and the outcome is written as a ``MarkerRecorded`` event named
``core_local_activity``. Its ``details.data`` is core's JSON (seq, attempt, activity id and
type, complete time, backoff, original schedule time, activation index), ``details.result``
the result, or the marker's ``failure`` the failure. A wait over the threshold ends the
workflow task: the marker records the failure and the backoff, workflow code starts a timer
for it, and schedules the activity again (a new sequence number) when it fires.

On replay the marker is the outcome: the activity is not run again.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, Mapping, Sequence

from engine._conversion.payload_converter import Payload, from_json_payload, to_json_payload, to_json_payloads
from engine.common import RetryPolicy
from engine.errors import ActivityError, RetryState
from engine.history import HistoryEvent

if TYPE_CHECKING:
    from engine._runtime.instance import WorkflowInstance

MARKER = "core_local_activity"
DEFAULT_RETRY_THRESHOLD = timedelta(minutes=1)


@dataclass
class Request:
    """A scheduled attempt series, waiting for the worker (or, on replay, for its marker)."""

    seq: int
    activity_id: str
    activity_type: str
    input: dict[str, Any]
    attempt: int
    original_schedule_time: datetime
    activation_index: int
    start_to_close: timedelta | None
    schedule_to_close: timedelta | None
    retry_policy: RetryPolicy
    retry_threshold: timedelta
    future: asyncio.Future = field(repr=False)
    headers: Mapping[str, Any] = field(default_factory=dict)  # from the workflow's outbound interceptors
    cancellation_type: int = 0  # workflow.ActivityCancellationType: TRY_CANCEL, WAIT_CANCELLATION_COMPLETED, ABANDON
    cancel_requested: bool = False  # the code cancelled it: the worker stops running it


@dataclass(frozen=True)
class Outcome:
    """What happened: a result payload, or a failure (JSON) with an optional backoff."""

    attempt: int
    result: dict[str, Any] | None = None
    failure: dict[str, Any] | None = None
    backoff: timedelta | None = None
    complete_time: datetime | None = None  # None: not known (a cancel that did not wait), as core leaves it
    activation_index: int | None = None  # of the activation that gets the outcome (default: the request's)


class _Backoff(BaseException):
    """Resolves a request whose retry waits on a timer (a BaseException: workflow code's
    ``except Exception`` around the call must not see it)."""

    def __init__(self, backoff: timedelta, attempt: int) -> None:
        super().__init__("local activity backoff")
        self.backoff = backoff
        self.attempt = attempt


class LocalActivities:
    """One workflow run's local activities (``instance.local_activities``)."""

    def __init__(self, instance: "WorkflowInstance") -> None:
        self._instance = instance
        self.pending: dict[int, Request] = {}
        self.markers: dict[int, HistoryEvent] = {}  # seq -> marker of the activation replayed
        self.activation_index = 1
        self._scanned: Any = None
        self.running = False  # the worker is running this run's local activities

    def note_markers(self, events: Sequence[HistoryEvent], start: int) -> None:
        """The markers the workflow task completed after ``events[start - 2]`` recorded."""
        self.markers = {}
        for event in events[start:]:
            if event.event_type == "WorkflowTaskStarted":
                break
            if event.event_type == "MarkerRecorded" and event.attributes.get("markerName") == MARKER:
                data = marker_data(event.attributes)
                if data is not None:
                    self.markers[int(data.get("seq", 0))] = event

    def schedule(self, request: Request) -> None:
        self.pending[request.seq] = request

    def resolve_replayed(self) -> bool:
        """On replay, resolve the pending requests whose markers this task recorded; True if any."""
        if not self.pending:
            return False
        where = self._instance._task_events
        if where is None:
            return False
        if self._scanned is not where:
            self._scanned = where
            self.note_markers(*where)
        found = False
        for seq in sorted(self.pending):
            event = self.markers.get(seq)
            if event is not None:
                self._resolve(self.pending.pop(seq), dict(event.attributes))
                found = True
        return found

    def cancel(self, request: Request) -> None:
        """The code cancelled ``request`` while it was pending. Replaying, its marker will
        resolve it; live, a no-wait cancel is resolved now with core's cancel marker (the
        worker stops the activity), a waiting one once the worker has stopped it."""
        request.cancel_requested = True
        if self._instance._replaying or self.pending.get(request.seq) is not request:
            return
        if request.cancellation_type != WAIT_CANCELLATION_COMPLETED:
            # Core records the attempt the code scheduled: 0 for a first one.
            attempt = request.attempt if request.attempt > 1 else 0
            self.resolve(request.seq, Outcome(attempt, failure=dict(_NO_WAIT_CANCEL), activation_index=self.activation_index))

    def resolve(self, seq: int, outcome: Outcome) -> None:
        """The worker ran request ``seq``: record its marker, wake the workflow code."""
        request = self.pending.pop(seq, None)
        if request is None:
            return
        self._resolve(request, marker_attributes(request, outcome))

    def _resolve(self, request: Request, attrs: dict[str, Any]) -> None:
        self._instance._add_command("RecordMarker", attrs)
        if request.future.done():
            return
        data = marker_data(attrs) or {}
        backoff = data.get("backoff")
        if backoff:
            delay = timedelta(seconds=backoff.get("seconds", 0), microseconds=backoff.get("nanos", 0) // 1000)
            request.future.set_exception(_Backoff(delay, int(data.get("attempt", request.attempt)) + 1))
        elif attrs.get("failure"):
            error = self._instance.failure_converter.from_failure(attrs["failure"], self._instance.payload_converter)
            if "canceledFailureInfo" in attrs["failure"]:
                # As temporalio hands a cancelled local activity to the code.
                cancelled = ActivityError(
                    "Local Activity cancelled", scheduled_event_id=0, started_event_id=0, identity="",
                    activity_type=request.activity_type, activity_id=request.activity_id, retry_state=RetryState.CANCEL_REQUESTED,
                )
                cancelled.__cause__ = error
                error = cancelled
            request.future.set_exception(error)
        else:
            payloads = ((attrs.get("details") or {}).get("result") or {}).get("payloads") or [None]
            request.future.set_result(payloads[0])


def marker_data(attrs: Mapping[str, Any]) -> dict[str, Any] | None:
    try:
        payload = attrs["details"]["data"]["payloads"][0]
        return dict(json.loads(Payload.from_json(payload).data))
    except (KeyError, IndexError, TypeError, ValueError):
        return None


def _timestamp(when: datetime) -> dict[str, int]:
    micros = round(when.timestamp() * 1_000_000)
    return {"seconds": micros // 1_000_000, "nanos": (micros % 1_000_000) * 1000}


def _duration(delay: timedelta) -> dict[str, int]:
    micros = round(delay.total_seconds() * 1_000_000)
    return {"seconds": micros // 1_000_000, "nanos": (micros % 1_000_000) * 1000}


def marker_attributes(request: Request, outcome: Outcome) -> dict[str, Any]:
    """The RecordMarker command, as Temporal's core SDK writes it (its field order too)."""
    data = {
        "seq": request.seq,
        "attempt": outcome.attempt,
        "activity_id": request.activity_id,
        "activity_type": request.activity_type,
        "complete_time": _timestamp(outcome.complete_time) if outcome.complete_time is not None else None,
        "backoff": _duration(outcome.backoff) if outcome.backoff is not None else None,
        "original_schedule_time": _timestamp(request.original_schedule_time),
        "activation_index": outcome.activation_index or request.activation_index,
    }
    payload = Payload({"encoding": b"json/plain"}, json.dumps(data, separators=(",", ":")).encode()).to_json()
    details: dict[str, Any] = {"data": {"payloads": [payload]}}
    if outcome.result is not None:
        details["result"] = {"payloads": [outcome.result]}
    attrs: dict[str, Any] = {"markerName": MARKER, "details": details}
    if outcome.failure is not None:
        attrs["failure"] = outcome.failure
    return attrs


def same_marker(command: Mapping[str, Any], recorded: Mapping[str, Any]) -> bool:
    """A local activity marker produced on replay against the recorded one: the same seq and
    activity type (a changed activity is nondeterminism, as in core)."""
    mine, theirs = marker_data(command), marker_data(recorded)
    if mine is None or theirs is None:
        return False
    return mine.get("seq") == theirs.get("seq") and mine.get("activity_type") == theirs.get("activity_type")


async def run_local_activity(
    instance: "WorkflowInstance",
    activity_type: str,
    args: Sequence[Any],
    *,
    activity_id: str | None,
    result_type: Any,
    start_to_close: timedelta | None,
    schedule_to_close: timedelta | None,
    retry_policy: RetryPolicy | None,
    retry_threshold: timedelta | None,
    headers: Mapping[str, Any] | None = None,
    cancellation_type: int = 0,
) -> Any:
    """Workflow code's side: schedule, wait for the marker's outcome, sleep out a long
    backoff on a timer and schedule again, until a result or a final failure."""
    converter = instance.payload_converter
    payloads = to_json_payloads(converter, list(args), f"argument of local activity {activity_type!r}")
    local = instance.local_activities
    original = instance.now()
    attempt = 1
    while True:
        instance._seq["activity"] += 1
        seq = instance._seq["activity"]
        future = instance.create_future()
        request = Request(
            seq, activity_id or str(seq), activity_type, payloads, attempt, original, local.activation_index,
            start_to_close, schedule_to_close, retry_policy or RetryPolicy(), retry_threshold or DEFAULT_RETRY_THRESHOLD,
            future, dict(headers or {}), int(cancellation_type),
        )
        local.schedule(request)
        try:
            payload = await _outcome(instance, request)
        except _Backoff as backoff:
            await asyncio.sleep(backoff.backoff.total_seconds())
            attempt = backoff.attempt
            continue
        finally:
            local.pending.pop(seq, None)
        return from_json_payload(converter, payload, result_type, f"the result of local activity {activity_type!r}")


async def _outcome(instance: "WorkflowInstance", request: Request) -> Any:
    """The request's outcome; if the code cancels the wait, the outcome of the cancel, as
    Temporal's core gives it: at once with a cancel marker (TRY_CANCEL, ABANDON), or once the
    running activity has stopped (WAIT_CANCELLATION_COMPLETED); on replay, the recorded marker."""
    try:
        return await request.future
    except asyncio.CancelledError:
        if instance._evicting or (request.future.done() and not request.future.cancelled()):
            raise
    request.future = instance.create_future()  # cancelling the wait cancelled the old one
    instance.local_activities.cancel(request)
    return await request.future


# The failure core records for a local activity cancelled without waiting for it.
_NO_WAIT_CANCEL = {"message": "Activity cancelled", "canceledFailureInfo": {}}
WAIT_CANCELLATION_COMPLETED = 1


def result_payload(converter: Any, value: Any, activity_type: str) -> dict[str, Any]:
    return to_json_payload(converter, value, f"the result of local activity {activity_type!r}")


def start(
    instance: "WorkflowInstance",
    activity_type: str,
    args: Sequence[Any],
    *,
    result_type: Any,
    schedule_to_close_timeout: timedelta | None,
    schedule_to_start_timeout: timedelta | None,
    start_to_close_timeout: timedelta | None,
    retry_policy: RetryPolicy | None,
    local_retry_threshold: timedelta | None,
    activity_id: str | None,
    headers: Mapping[str, Any] | None = None,
    cancellation_type: int = 0,
) -> "asyncio.Task[Any]":
    """``workflow.start_local_activity``: the task that waits for the activity's outcome."""
    if start_to_close_timeout is None and schedule_to_close_timeout is None:
        raise ValueError(
            f"Local activity {activity_type!r} needs start_to_close_timeout or schedule_to_close_timeout "
            "(as in Temporal), e.g. start_to_close_timeout=timedelta(seconds=10)."
        )
    del schedule_to_start_timeout  # a local activity starts at once: nothing to wait for
    return instance.create_task(
        run_local_activity(
            instance, activity_type, args, activity_id=activity_id, result_type=result_type,
            start_to_close=start_to_close_timeout, schedule_to_close=schedule_to_close_timeout,
            retry_policy=retry_policy, retry_threshold=local_retry_threshold, headers=headers,
            cancellation_type=cancellation_type,
        ),
        name=f"local activity {activity_type}",
    )
