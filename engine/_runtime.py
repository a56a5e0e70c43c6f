"""The workflow runtime: a deterministic asyncio event loop driven by history.

A ``WorkflowInstance`` *is* an event loop (as in temporalio): ``time()`` is history time,
``call_later`` becomes a durable timer, and nothing runs except when an activation drives the
ready queue. ``apply(events)`` walks history: jobs (workflow started, activity completed,
timer fired, ...) resolve futures; each ``WorkflowTaskStarted`` that the history shows as
completed is a past activation (replay), the last one is the live activation. Commands the
code produces are matched, in order, with the command events recorded after each
``WorkflowTaskCompleted``; a mismatch raises ``NondeterminismError``.
"""

from __future__ import annotations

import asyncio
import collections
import contextvars
import inspect
import json
import logging
import linecache
import os
import random as _random
import sys
import uuid
import types
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Mapping, Sequence

from engine import _children, _search_attributes, _updates, _user_exits
from engine import _handlers
from engine import _interceptors
from engine._sdk_flags import SDK_FLAGS, UPSERT_ON_PATCH, flags_of
from engine._definitions import WorkflowDefinition, hints_of
from engine._durations import from_duration, to_duration
from engine._code_names import place as _place
from engine._payload_converter import (
    Payload,
    PayloadConverter,
    from_json_payload,
    from_json_payloads,
    to_json_payload,
    to_json_payloads,
)
from engine._seed import randomness_seed
from engine import _local_activities
from engine.common import RetryPolicy, SearchAttributePair, SearchAttributeUpdate, TypedSearchAttributes
from engine.converter import DataConverter
from engine.errors import (
    ActivityError,
    CancelledError,
    FailureError,
    NondeterminismError,
    PayloadError,
    RetryState,
)
from engine.history import HistoryEvent

_log = logging.getLogger("engine.workflow")
_ENGINE_DIR = os.path.dirname(os.path.abspath(__file__))
_ASYNCIO_DIR = os.path.dirname(asyncio.__file__)

# Event types written in response to a command, keyed to the command that produces them.
COMMAND_EVENTS: dict[str, str] = {
    "ActivityTaskScheduled": "ScheduleActivityTask",
    "ActivityTaskCancelRequested": "RequestCancelActivityTask",
    "TimerStarted": "StartTimer",
    "TimerCanceled": "CancelTimer",
    "MarkerRecorded": "RecordMarker",
    "WorkflowExecutionCompleted": "CompleteWorkflowExecution",
    "WorkflowExecutionFailed": "FailWorkflowExecution",
    "WorkflowExecutionCanceled": "CancelWorkflowExecution",
    "WorkflowExecutionContinuedAsNew": "ContinueAsNewWorkflowExecution",
    "StartChildWorkflowExecutionInitiated": "StartChildWorkflowExecution",
    "SignalExternalWorkflowExecutionInitiated": "SignalExternalWorkflowExecution",
    "RequestCancelExternalWorkflowExecutionInitiated": "RequestCancelExternalWorkflowExecution",
    "UpsertWorkflowSearchAttributes": "UpsertWorkflowSearchAttributes",
    "WorkflowPropertiesModified": "ModifyWorkflowProperties",
    "WorkflowExecutionUpdateAccepted": "AcceptUpdate",
    "WorkflowExecutionUpdateCompleted": "CompleteUpdate",
}


@dataclass
class CodeLine:
    """Where in user code something happened."""

    filename: str
    lineno: int
    function: str
    text: str

    def __str__(self) -> str:
        where = _place(self.filename, self.lineno)
        separator = " in" if where.endswith(f":{self.lineno}") else ", in"
        return f'{where}{separator} {self.function}: "{self.text}"'


@dataclass
class Command:
    """A decision of workflow code, sent to the engine at the end of an activation."""

    kind: str
    attributes: dict[str, Any]
    source: CodeLine | None = None
    # Called with the event id once the command is matched with its recorded event.
    on_event: Callable[[int], None] | None = None

    def describe(self) -> str:
        return f"{self.kind}({_key_of(self.kind, self.attributes)})"


def _key_of(kind: str, attrs: dict[str, Any]) -> str:
    if kind in ("ScheduleActivityTask", "ActivityTaskScheduled"):
        return f"activity_type={attrs.get('activityType', {}).get('name')!r}, activity_id={attrs.get('activityId')!r}"
    if kind in ("StartTimer", "TimerStarted", "CancelTimer", "TimerCanceled"):
        return f"timer_id={attrs.get('timerId')!r}"
    if kind in ("RecordMarker", "MarkerRecorded"):
        return f"marker_name={attrs.get('markerName')!r}"
    if kind in ("RequestCancelActivityTask", "ActivityTaskCancelRequested"):
        return f"scheduled_event_id={attrs.get('scheduledEventId')}"
    if kind in ("AcceptUpdate", "WorkflowExecutionUpdateAccepted"):
        return f"update_id={attrs.get('protocolInstanceId')!r}"
    if kind in ("CompleteUpdate", "WorkflowExecutionUpdateCompleted"):
        return f"update_id={(attrs.get('meta') or {}).get('updateId')!r}"
    if kind in ("StartChildWorkflowExecution", "StartChildWorkflowExecutionInitiated"):
        return f"workflow_type={attrs.get('workflowType', {}).get('name')!r}, workflow_id={attrs.get('workflowId')!r}"
    if kind in ("SignalExternalWorkflowExecution", "SignalExternalWorkflowExecutionInitiated"):
        target = attrs.get("execution") or attrs.get("workflowExecution") or {}
        return f"signal_name={attrs.get('signalName')!r}, workflow_id={target.get('workflowId')!r}"
    if kind in ("RequestCancelExternalWorkflowExecution", "RequestCancelExternalWorkflowExecutionInitiated"):
        return f"workflow_id={(attrs.get('workflowExecution') or {}).get('workflowId')!r}"
    if kind == "UpsertWorkflowSearchAttributes":
        return f"search_attributes={sorted((attrs.get('searchAttributes') or {}).get('indexedFields') or {})}"
    if kind in ("ModifyWorkflowProperties", "WorkflowPropertiesModified"):
        return f"memo={sorted((attrs.get('upsertedMemo') or {}).get('fields') or {})}"
    return ""


def _matches(command: Command, event: HistoryEvent) -> bool:
    if COMMAND_EVENTS.get(event.event_type) != command.kind:
        return False
    a, b = command.attributes, event.attributes
    if command.kind == "ScheduleActivityTask":
        return (a["activityType"]["name"] == b.get("activityType", {}).get("name")) and (
            a["activityId"] == b.get("activityId")
        )
    if command.kind in ("StartTimer", "CancelTimer"):
        return a["timerId"] == b.get("timerId")
    if command.kind == "RecordMarker":
        if a["markerName"] != b.get("markerName"):
            return False
        if a["markerName"] == _local_activities.MARKER:
            return _local_activities.same_marker(a, b)
        if a["markerName"] == PATCH_MARKER:
            mine = from_json_payload(PayloadConverter.default, a["details"]["patch-data"]["payloads"][0])
            recorded = patch_of(event)
            return recorded is not None and recorded[0] == mine["id"]
        return True
    if command.kind == "RequestCancelActivityTask":
        return str(a["scheduledEventId"]) == str(b.get("scheduledEventId"))
    if command.kind == "AcceptUpdate":
        return a["protocolInstanceId"] == b.get("protocolInstanceId")
    if command.kind == "CompleteUpdate":
        return a["meta"]["updateId"] == (b.get("meta") or {}).get("updateId")
    if command.kind == "StartChildWorkflowExecution":
        return a["workflowType"]["name"] == (b.get("workflowType") or {}).get("name") and a["workflowId"] == b.get("workflowId")
    if command.kind == "SignalExternalWorkflowExecution":
        return a["signalName"] == b.get("signalName") and a["execution"]["workflowId"] == (b.get("workflowExecution") or {}).get("workflowId")
    if command.kind == "RequestCancelExternalWorkflowExecution":
        return a["workflowExecution"]["workflowId"] == (b.get("workflowExecution") or {}).get("workflowId")
    return True


_SKIPPED_FILES: dict[str, bool] = {}


def _skipped(filename: str) -> bool:
    skip = _SKIPPED_FILES.get(filename)
    if skip is None:
        skip = _SKIPPED_FILES[filename] = (
            filename.startswith(_ENGINE_DIR)
            or filename.startswith(_ASYNCIO_DIR)
            or "contextvars" in filename
            or filename.startswith("<frozen")
        )
    return skip


# Frames where workflow code ends and the code that drives it begins: a walk up the stack
# stops there, lest it blame whoever called the worker or the Replayer.
_BOUNDARY_CODES: set[Any] = {asyncio.events.Handle._run.__code__}


def user_code_line(frames: Sequence[Any] | None = None) -> CodeLine | None:
    """The innermost frame that belongs to user code (not the engine, not asyncio).

    In a task whose own frames are all the engine's (``asyncio.gather(workflow.execute_child_workflow(...))``
    wraps the engine's coroutine in a task of its own), the line that created the task."""
    if frames is None:
        frame: Any = sys._getframe(1)
        while frame is not None:
            code = frame.f_code
            if code in _BOUNDARY_CODES:
                return _task_origin()
            if not _skipped(code.co_filename):
                break
            frame = frame.f_back
    else:
        frame = next((f for f in reversed(frames) if not _skipped(f.f_code.co_filename)), None)
    if frame is None:
        return None
    filename, lineno = frame.f_code.co_filename, frame.f_lineno
    return CodeLine(filename, lineno, frame.f_code.co_name, linecache.getline(filename, lineno).strip())


def _task_origin() -> CodeLine | None:
    loop = asyncio.events._get_running_loop()
    task = asyncio.current_task(loop) if loop is not None else None
    return getattr(task, "_dlab_origin", None)


@dataclass(frozen=True)
class ParentInfo:
    """The parent of a child workflow run (temporalio's ``workflow.ParentInfo``)."""

    namespace: str
    run_id: str
    workflow_id: str


@dataclass
class WorkflowInfo:
    """What ``workflow.info()`` returns (a subset of temporalio's ``workflow.Info``)."""

    workflow_id: str
    run_id: str
    workflow_type: str
    task_queue: str
    namespace: str = "default"
    attempt: int = 1
    start_time: datetime = field(default_factory=lambda: datetime.now(timezone.utc))
    first_execution_run_id: str = ""
    continued_run_id: str | None = None
    execution_timeout: timedelta | None = None
    run_timeout: timedelta | None = None
    task_timeout: timedelta = timedelta(seconds=10)
    headers: dict[str, Any] = field(default_factory=dict)
    parent: ParentInfo | None = None
    root: ParentInfo | None = None
    # As the run started, then as workflow code upserted them (not by other means).
    typed_search_attributes: TypedSearchAttributes = TypedSearchAttributes.empty
    # Memo fields as payloads (JSON form): workflow.memo() converts them.
    raw_memo: dict[str, Any] = field(default_factory=dict)
    cron_schedule: str | None = None

    def get_current_history_length(self) -> int:
        """Events in the history as the current workflow task began (its WorkflowTaskStarted's id)."""
        return current().last_started_event_id

    def is_continue_as_new_suggested(self) -> bool:
        """Whether the server suggested continuing as new when the current workflow task began
        (WorkflowTaskStarted's ``suggestContinueAsNew``; this engine sets none of its own)."""
        return current().continue_as_new_suggested


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


# The ActivityError message temporalio gives for each way an activity ends (tests/differential).
_ACTIVITY_ERROR_MESSAGES = {"ActivityTaskTimedOut": "Activity task timed out", "ActivityTaskCanceled": "Activity cancelled"}


class _WorkflowTimer(asyncio.TimerHandle):
    def __init__(
        self,
        instance: WorkflowInstance,
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


class WorkflowTaskError(Exception):
    """Workflow code raised something that is not a workflow failure: fail the workflow task."""

    def __init__(self, error: BaseException, nondeterminism: bool = False) -> None:
        if not isinstance(error, Exception):  # SystemExit, say: see engine._user_exits
            error = _user_exits.workflow_task_failure(error)
        super().__init__(str(error))
        self.error = error
        self.nondeterminism = nondeterminism


class WorkflowInstance(asyncio.AbstractEventLoop):
    """One workflow run's code, its state, and the event loop that drives it."""

    # Set by the runner that built the instance (engine/_sandbox_runner.py): whether its code
    # runs in the sandbox, and the definition the worker was given (``defn`` may be a copy).
    sandboxed = False
    registered: WorkflowDefinition | None = None
    # The worker's interceptors (engine/_interceptors.py); the chains are built with the object.
    interceptors: Sequence[Any] = ()

    def __init__(self, defn: WorkflowDefinition, info: WorkflowInfo, data_converter: DataConverter | None = None) -> None:
        self.defn = defn
        self.info = info
        # Only the converters: the codec runs in the worker, outside workflow code.
        converter = data_converter or DataConverter.default
        self.payload_converter = converter.payload_converter
        self.failure_converter = converter.failure_converter
        self._ready: collections.deque[asyncio.Handle] = collections.deque()
        self._now = info.start_time
        self._replaying = False
        self._commands: list[Command] = []
        self._unmatched: collections.deque[Command] = collections.deque()
        self._matching_after: int | None = None
        self._seq = {"activity": 0, "timer": 0}
        self._activities: dict[int, ActivityHandle] = {}
        self._pending_activities: dict[str, ActivityHandle] = {}
        self._timers: dict[str, _WorkflowTimer] = {}
        # Child handles by initiated event id; callbacks of signal/cancel-external commands.
        self._children: dict[int, Any] = {}
        self._external: dict[int, Callable[[BaseException | None], None]] = {}
        self._conditions: list[tuple[Callable[[], bool], asyncio.Future]] = []
        self._main: asyncio.Task | None = None
        self._main_started = False
        self._object: Any = None
        self._inbound: Any = None  # the inbound interceptor chain, when there are interceptors
        self.outbound: Any = None  # the outbound one (its init sets it)
        self._random_instance: _random.Random | None = None
        self._tasks: set[asyncio.Task] = set()
        self._closed = False
        self._finished = False
        self._cancel_requested = False
        self.processed_upto = 0
        self.unhandled_signals: list[str] = []
        self._patches: dict[str, bool] = {}
        self._activation_patches: set[str] = set()
        # Patch ids in the TemporalChangeVersion upserts so far; SDK flags the history recorded
        # (None until a WorkflowTaskCompleted is seen: then the flags this worker writes apply).
        self._change_versions: list[str] = []
        self._history_flags: set[int] | None = None
        self.saw_completed_task = False
        self.last_started_event_id = 0
        self._local: _local_activities.LocalActivities | None = None  # made on first use
        self._task_events: tuple[Sequence[HistoryEvent], int] | None = None  # a replayed task's events
        self.continue_as_new_suggested = False

    # ----------------------------------------------------------------- driving
    def apply(
        self,
        events: Sequence[HistoryEvent],
        *,
        live_tail: bool = True,
        check_end: bool = True,
        updates: Sequence[dict[str, Any]] = (),
    ) -> list[Command]:
        """Feed new events (ids after ``processed_upto``); return the live activation's commands.

        With ``live_tail`` the last ``WorkflowTaskStarted`` runs as the live activation; without
        it (pure replay of a closed history) every activation is a replayed one. ``updates``
        are the update requests the live workflow task carries (validated, then accepted or
        rejected); replayed activations get the accepted ones back from the history.
        """
        try:
            return self._apply(events, live_tail, check_end, updates)
        except Exception:
            raise
        except BaseException as e:
            # Workflow code raised SystemExit or KeyboardInterrupt (asyncio lets those two
            # through its tasks and callbacks): a failed workflow task, not the worker's end.
            raise WorkflowTaskError(e) from None

    def _apply(
        self, events: Sequence[HistoryEvent], live_tail: bool, check_end: bool, updates: Sequence[dict[str, Any]]
    ) -> list[Command]:
        produced: list[Command] = []
        n = len(events)
        for i, event in enumerate(events):
            if event.event_id <= self.processed_upto:
                continue
            etype = event.event_type
            if etype in COMMAND_EVENTS:
                self._match(event)
            elif etype in _WRITTEN_AMONG_COMMANDS:
                self._job(event)
            else:
                self._check_all_matched(event)
                if etype == "WorkflowTaskStarted":
                    following = events[i + 1].event_type if i + 1 < n else None
                    if following == "WorkflowTaskCompleted" or (following is None and not live_tail and check_end):
                        if following is not None:
                            self._note_flags(events[i + 1])
                        self._activation_patches = _patches_after(events, i + 2)
                        self._task_events = (events, i + 2)
                        for request in _updates.requests_in(events, i + 2):
                            _updates.deliver(self, request, validate=False)
                        self._activate(event, replaying=True)
                    elif following is None and live_tail:
                        self._task_events = None
                        for request in updates:
                            _updates.deliver(self, request, validate=True)
                        produced = self._activate(event, replaying=False)
                elif etype == "WorkflowTaskCompleted":
                    self._matching_after = event.event_id
                    self.saw_completed_task = True
                    self._note_flags(event)
                else:
                    self._job(event)
            self.processed_upto = event.event_id
        if not live_tail and check_end:
            self._check_all_matched(None)
        return produced

    def _note_flags(self, completed: HistoryEvent) -> None:
        self._history_flags = (self._history_flags or set()) | flags_of(completed.attributes)

    def uses_flag(self, flag: int) -> bool:
        """Whether this run follows SDK flag ``flag``: as its history recorded, or, before its
        first completed workflow task, as this worker will record."""
        return flag in (SDK_FLAGS if self._history_flags is None else self._history_flags)

    def _activate(self, started: HistoryEvent, *, replaying: bool) -> list[Command]:
        if started.event_time is not None:  # an imported history may lack times: keep the last
            self._now = started.event_time
        self._replaying = replaying
        self.last_started_event_id = started.event_id
        self.continue_as_new_suggested = bool(started.attributes.get("suggestContinueAsNew"))
        if self._local is not None:
            self._local.activation_index = 1
        self._run_until_idle()
        if replaying and self._local is not None:
            while self._local.resolve_replayed():
                self._local.activation_index += 1
                self._run_until_idle()
        return self._take_commands()

    def continue_activation(self) -> list[Command]:
        """Run the code on (local activity outcomes were handed in); the commands since the
        last call. The worker calls this within one workflow task, as core does."""
        self._run_until_idle()
        return self._take_commands()

    def _take_commands(self) -> list[Command]:
        commands, self._commands = self._commands, []
        self._unmatched.extend(c for c in commands if c.kind not in _updates.NO_EVENT_COMMANDS)
        return commands

    @property
    def local_activities(self) -> _local_activities.LocalActivities:
        if self._local is None:
            self._local = _local_activities.LocalActivities(self)
        return self._local

    def _run_until_idle(self) -> None:
        previous = asyncio.events._get_running_loop()
        asyncio.events._set_running_loop(self)
        try:
            while True:
                while self._ready:
                    handle = self._ready.popleft()
                    if not handle._cancelled:
                        handle._run()
                    if self._failure is not None:
                        failure, self._failure = self._failure, None
                        raise WorkflowTaskError(failure)
                if not self._check_conditions():
                    break
        finally:
            asyncio.events._set_running_loop(previous)

    _failure: BaseException | None = None
    _evicting = False

    def fail_task(self, error: BaseException) -> None:
        """Fail this workflow task with ``error`` even if workflow code catches it (the
        sandbox reports restricted calls so), unless it is one of the workflow's failure types."""
        if self._failure is None and not isinstance(error, self.defn.failure_exception_types):
            self._failure = error

    def _check_conditions(self) -> bool:
        fired = False
        for entry in list(self._conditions):
            fn, fut = entry
            if fut.done():
                self._conditions.remove(entry)
                continue
            if fn():
                self._conditions.remove(entry)
                fut.set_result(True)
                fired = True
        return fired

    # ----------------------------------------------------------------- matching
    def _match(self, event: HistoryEvent) -> None:
        if _skippable(event, self._unmatched[0] if self._unmatched else None):
            return
        if not self._unmatched:
            raise NondeterminismError(
                self._nd_message(
                    event,
                    "the workflow code produced no command here",
                    self._where_waiting(),
                ),
                workflow_id=self.info.workflow_id,
                event_id=event.event_id,
                recorded=self._describe_event(event),
                produced=None,
                code_line=str(self._where_waiting() or ""),
            )
        command = self._unmatched.popleft()
        if not _matches(command, event):
            raise NondeterminismError(
                self._nd_message(event, f"the code produced {command.describe()}", command.source),
                workflow_id=self.info.workflow_id,
                event_id=event.event_id,
                recorded=self._describe_event(event),
                produced=command.describe(),
                code_line=str(command.source or ""),
            )
        if command.on_event is not None:
            command.on_event(event.event_id)

    def _check_all_matched(self, event: HistoryEvent | None) -> None:
        if self._matching_after is None:
            return
        if self._unmatched:
            command = self._unmatched[0]
            where = f"before event {event.event_id} ({event.event_type})" if event else "at the end of the history"
            raise NondeterminismError(
                f"Nondeterminism in workflow {self.info.workflow_id!r} ({self.info.workflow_type}): "
                f"the code produced {command.describe()} but the history recorded no such command "
                f"{where} (the workflow task completed at event {self._matching_after}). "
                f"Code line: {command.source}. The workflow code changed since this run started; "
                "restore the old code path, or guard the change with workflow.patched().",
                workflow_id=self.info.workflow_id,
                event_id=event.event_id if event else None,
                recorded=None,
                produced=command.describe(),
                code_line=str(command.source or ""),
            )
        self._matching_after = None

    def _describe_event(self, event: HistoryEvent) -> str:
        return f"{event.event_type}({_key_of(event.event_type, dict(event.attributes))})"

    def _nd_message(self, event: HistoryEvent, produced: str, line: CodeLine | None) -> str:
        return (
            f"Nondeterminism in workflow {self.info.workflow_id!r} ({self.info.workflow_type}): "
            f"history event {event.event_id} is {self._describe_event(event)}, but on replay "
            f"{produced}. Code line: {line or 'unknown'}. The workflow code changed since this run "
            "started; restore the old code path, or guard the change with workflow.patched()."
        )

    def _where_waiting(self) -> CodeLine | None:
        if self._main is None:
            return None
        try:
            return user_code_line(self._main.get_stack())
        except Exception:  # noqa: BLE001 - best effort: only used in a message
            return None

    # ----------------------------------------------------------------- jobs
    def _job(self, event: HistoryEvent) -> None:
        handler = _JOBS.get(event.event_type)
        if handler is not None:
            handler(self, event)

    def _on_started(self, event: HistoryEvent) -> None:
        attrs = event.attributes
        args = from_json_payloads(
            self.payload_converter, attrs.get("input"), self.defn.arg_types, f"the input of workflow {self.info.workflow_type!r}"
        )
        if event.event_time is not None:
            self._now = event.event_time
        previous = asyncio.events._get_running_loop()
        asyncio.events._set_running_loop(self)  # __init__ is workflow code too (the sandbox checks it)
        try:
            if getattr(getattr(self.defn.cls, "__init__"), "__temporal_workflow_init", False):  # @workflow.init
                self._object = self.defn.cls(*args)
            else:
                self._object = self.defn.cls()
            if self.interceptors:
                self._inbound = _interceptors.workflow_chain(self.interceptors, self)
        finally:
            asyncio.events._set_running_loop(previous)
        # The engine makes the main task: no user line made it, so none is looked for.
        self._main = self.create_task(self._run_main(args), _origin=False)

    async def _run_main(self, args: list[Any]) -> None:
        from engine.workflow import ContinueAsNewError

        try:
            self._main_started = True
            if self._cancel_requested:
                # Asked to cancel before the run began (the request came with its first
                # workflow task): workflow code gets the CancelledError at its first await,
                # as it would any later one. Cancelling the task before its first step would
                # throw it in before this try, and the cancel would be lost.
                assert self._main is not None
                self._main.cancel()
            if self._inbound is None:
                result = await self.defn.run_fn(self._object, *args)
            else:
                result = await self._inbound.execute_workflow(
                    _interceptors.ExecuteWorkflowInput(
                        type(self._object), types.MethodType(self.defn.run_fn, self._object), args, self.info.headers
                    )
                )
        except ContinueAsNewError as e:
            self._add_command("ContinueAsNewWorkflowExecution", e.command_attributes(self.info, self.payload_converter))
            return
        except asyncio.CancelledError:
            if self._evicting:
                return
            if self._cancel_requested:
                self._add_command("CancelWorkflowExecution", {})
            else:
                # Not asked to cancel (e.g. an awaited activity was cancelled): as temporalio,
                # the workflow fails rather than retrying a task that would fail the same way.
                self._fail_workflow(CancelledError("Workflow code raised asyncio.CancelledError"))
            return
        except FailureError as e:
            if self._cancel_requested and _is_cancellation(e):
                # A cancelled activity's error left the run method after a cancel request:
                # the workflow is cancelled, not failed (as in Temporal).
                self._add_command("CancelWorkflowExecution", {})
            else:
                self._fail_workflow(e)
            return
        except Exception as e:  # noqa: BLE001 - decided below: workflow failure or task failure
            if isinstance(e, self.defn.failure_exception_types):
                self._fail_workflow(e)
            else:
                self._failure = e
            return
        except GeneratorExit:
            raise  # the coroutine is being closed
        except BaseException as e:  # noqa: BLE001 - SystemExit and the like fail the task, see _user_exits
            self._failure = e
            return
        payload = to_json_payload(self.payload_converter, result, f"the result of workflow {self.info.workflow_type!r}")
        self._add_command("CompleteWorkflowExecution", {"result": {"payloads": [payload]}})

    def _fail_workflow(self, error: BaseException) -> None:
        self._add_command("FailWorkflowExecution", {"failure": self.failure_converter.to_failure(error, self.payload_converter)})

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

    def _on_signal(self, event: HistoryEvent) -> None:
        attrs = event.attributes
        name = str(attrs.get("signalName", ""))
        handler = self.defn.signals.get(name)
        if handler is None or self._object is None:
            # As in Temporal, a signal without a handler waits (here: for the next code version).
            self.unhandled_signals.append(name)
            return
        arg_types, _ = hints_of(handler, skip_self=True)
        try:
            args = from_json_payloads(self.payload_converter, attrs.get("input"), arg_types, f"the input of signal {name!r}")
        except Exception as e:  # noqa: BLE001 - as temporalio: the signal is dropped, the run goes on
            # Failing the workflow task instead would fail it again on every retry, since the
            # signal is in the history for good, and its sender would never hear of it.
            if not self._replaying:
                _log.warning(
                    "Dropped signal %r (event %d) to workflow %s (id %r, run %s): its input does not convert "
                    "to the handler's parameter types: %s. Send it again with arguments that match %s.",
                    name, event.event_id, self.info.workflow_type, self.info.workflow_id, self.info.run_id,
                    str(e).rstrip("."), getattr(handler, "__qualname__", name),
                )
            return
        if self._inbound is not None:
            headers = _interceptors.headers_from_json(attrs.get("header"))
            call = self._inbound.handle_signal(_interceptors.HandleSignalInput(name, args, headers))
            self.create_task(self._guarded(_handlers.tracked(self, call)))
        elif inspect.iscoroutinefunction(handler):
            self.create_task(self._guarded(_handlers.tracked(self, handler(self._object, *args))))
        else:
            self.call_soon(self._call_guarded, handler, self._object, *args)

    def _call_guarded(self, fn: Callable[..., Any], *args: Any) -> None:
        try:
            fn(*args)
        except FailureError as e:
            self._fail_workflow(e)
        except Exception as e:  # noqa: BLE001 - a bug in a handler fails the workflow task
            self._failure = e

    async def _guarded(self, coro: Any) -> None:
        try:
            await coro
        except FailureError as e:
            self._fail_workflow(e)
        except asyncio.CancelledError:
            raise
        except Exception as e:  # noqa: BLE001 - a bug in a handler fails the workflow task
            self._failure = e

    def query(self, name: str, input: Mapping[str, Any] | None, headers: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Run query handler ``name`` on the current state (it must not issue commands);
        ``input`` and the answer are payloads (the worker runs the codec on them)."""
        handler = self.defn.queries.get(name)
        if handler is None:
            known = ", ".join(sorted(self.defn.queries)) or "none"
            raise KeyError(f"Workflow {self.info.workflow_type} has no query {name!r} (it has: {known}).")
        arg_types, _ = hints_of(handler, skip_self=True)
        converted = from_json_payloads(self.payload_converter, input, arg_types, f"the input of query {name!r}")
        previous = asyncio.events._get_running_loop()
        asyncio.events._set_running_loop(self)
        before = len(self._commands)
        try:
            if self._inbound is None:
                result = handler(self._object, *converted)
            else:
                call = _interceptors.HandleQueryInput("", name, converted, dict(headers or {}))
                result = _interceptors.run_sync(self._inbound.handle_query(call), f"Query {name!r}")
        except Exception:
            raise
        except BaseException as e:  # noqa: BLE001 - SystemExit and the like: see _user_exits
            raise RuntimeError(f"Query {name!r} raised {_user_exits.described(e)} ({_user_exits.hint(e)}).") from None
        finally:
            asyncio.events._set_running_loop(previous)
        if len(self._commands) != before:
            del self._commands[before:]
            raise RuntimeError(f"Query {name!r} tried to change the workflow (start an activity or timer); queries may only read state.")
        return to_json_payload(self.payload_converter, result, f"the answer to query {name!r}")

    def _on_timer_fired(self, event: HistoryEvent) -> None:
        timer = self._timers.pop(str(event.attributes.get("timerId")), None)
        if timer is not None and not timer.cancelled():
            timer.fired = True
            self._ready.append(timer)

    def _on_cancel_requested(self, event: HistoryEvent) -> None:
        self._cancel_requested = True
        if self._main is not None and self._main_started and not self._main.done():
            self._main.cancel()

    # ----------------------------------------------------------------- commands
    def _add_command(self, kind: str, attributes: dict[str, Any], on_event: Callable[[int], None] | None = None) -> Command:
        if self._evicting:
            return Command(kind, attributes)
        if self._finished:
            raise RuntimeError("The workflow already completed; no more commands can be issued.")
        if kind in ("CompleteWorkflowExecution", "FailWorkflowExecution", "CancelWorkflowExecution", "ContinueAsNewWorkflowExecution"):
            self._finished = True
        command = Command(kind, attributes, user_code_line(), on_event)
        self._commands.append(command)
        return command

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
        handle = ActivityHandle(self, activity_type, act_id)
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
        # else: the cancel command goes out once the schedule is matched (see ``bound``).

    def _add_cancel_activity_command(self, scheduled_event_id: int) -> None:
        self._add_command("RequestCancelActivityTask", {"scheduledEventId": str(scheduled_event_id)})

    def _cancel_timer(self, timer: _WorkflowTimer) -> None:
        if self._timers.pop(timer.timer_id, None) is None:
            return
        # A timer cancelled in the activation that started it was never sent: as in Temporal's
        # SDK core, both commands vanish (wait_condition with a timeout on a condition that
        # already holds records no timer), though the timer's sequence number stays spent.
        if not self._drop_unsent(timer.command):
            self._add_command("CancelTimer", {"timerId": timer.timer_id})

    def _drop_unsent(self, command: Command | None) -> bool:
        """Take back a command of this activation, not yet sent; False if it was sent."""
        for index, pending in enumerate(self._commands):
            if pending is command:
                del self._commands[index]
                return True
        return False

    # ----------------------------------------------------------------- helpers for the API
    def now(self) -> datetime:
        return self._now

    def is_replaying(self) -> bool:
        return self._replaying

    @property
    def _rng(self) -> _random.Random:
        # Seeded on first use: most workflows never draw a random number.
        if self._random_instance is None:
            self._random_instance = _random.Random(randomness_seed(self.info.run_id))
        return self._random_instance

    def random(self) -> _random.Random:
        return self._rng

    def uuid4(self) -> uuid.UUID:
        return uuid.UUID(int=self._rng.getrandbits(128), version=4)

    def patched(self, patch_id: str, *, deprecated: bool = False) -> bool:
        """Versioning: True on runs that took the new code path (see ``workflow.patched``)."""
        if patch_id in self._patches:
            return self._patches[patch_id]
        use = (patch_id in self._activation_patches) if self._replaying else True
        self._patches[patch_id] = use
        if use:
            # Temporal's core SDK writes this payload itself (not the data converter), in this field order.
            data = json.dumps({"id": patch_id, "deprecated": deprecated}, separators=(",", ":"))
            payload = Payload({"encoding": b"json/plain"}, data.encode()).to_json()
            self._add_command(
                "RecordMarker", {"markerName": PATCH_MARKER, "details": {"patch-data": {"payloads": [payload]}}}
            )
            if self.uses_flag(UPSERT_ON_PATCH):
                # Temporal's SDK core follows each marker with every patch id of the run so
                # far, so that runs can be listed by the code paths they took.
                self._change_versions.append(patch_id)
                fields = _search_attributes.change_version_update(self._change_versions)
                self._add_command("UpsertWorkflowSearchAttributes", {"searchAttributes": {"indexedFields": fields}})
        return use

    def upsert_search_attributes(self, updates: Sequence[SearchAttributeUpdate[Any]]) -> None:
        """See ``workflow.upsert_search_attributes``."""
        fields = _search_attributes.encode_updates(updates)
        if not fields:
            return
        attrs = self.info.typed_search_attributes
        for update in updates:
            attrs = attrs.without(update.key.name)
            if update.value is not None:
                attrs = attrs.updated(SearchAttributePair(update.key, update.value))
        self._add_command("UpsertWorkflowSearchAttributes", {"searchAttributes": {"indexedFields": fields}})
        self.info.typed_search_attributes = attrs

    def upsert_memo(self, updates: Mapping[str, Any]) -> None:
        """See ``workflow.upsert_memo``."""
        if not isinstance(updates, Mapping):
            raise TypeError(f"upsert_memo takes a dict of memo fields (None removes one), not {type(updates).__name__}.")
        # Converted before the command is added, so that a value that does not convert leaves none.
        fields = {
            str(k): Payload({"encoding": b"binary/null"}).to_json() if v is None else to_json_payload(self.payload_converter, v, f"memo field {k!r}")
            for k, v in updates.items()
        }
        if not fields:
            return
        self._add_command("ModifyWorkflowProperties", {"upsertedMemo": {"fields": fields}})
        self.info.raw_memo = _search_attributes.merged(self.info.raw_memo, fields)

    def wait_condition_future(self, fn: Callable[[], bool]) -> asyncio.Future:
        fut = self.create_future()
        self._conditions.append((fn, fut))
        return fut

    # ----------------------------------------------------------------- asyncio.AbstractEventLoop
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

    def evict(self) -> None:
        """Drop the instance: cancel its coroutines so they do not leak."""
        previous = asyncio.events._get_running_loop()
        asyncio.events._set_running_loop(self)
        self._evicting = True
        try:
            for task in list(self._tasks):
                task.cancel()
            self._finished = True
            while self._ready:
                handle = self._ready.popleft()
                try:
                    handle._run()
                except BaseException:  # noqa: BLE001 - tearing down; nothing to report
                    pass
        finally:
            asyncio.events._set_running_loop(previous)
            self._closed = True


_JOBS: dict[str, Callable[[WorkflowInstance, HistoryEvent], None]] = {
    "WorkflowExecutionStarted": WorkflowInstance._on_started,
    "ActivityTaskCompleted": WorkflowInstance._on_activity_done,
    "ActivityTaskFailed": WorkflowInstance._on_activity_done,
    "ActivityTaskTimedOut": WorkflowInstance._on_activity_done,
    "ActivityTaskCanceled": WorkflowInstance._on_activity_done,
    "TimerFired": WorkflowInstance._on_timer_fired,
    "WorkflowExecutionCancelRequested": WorkflowInstance._on_cancel_requested,
    "WorkflowExecutionSignaled": WorkflowInstance._on_signal,
    **_children.JOBS,
}


_BOUNDARY_CODES.update(
    method.__code__ for method in (WorkflowInstance.apply, WorkflowInstance._run_until_idle, WorkflowInstance.query)
)


# Written by the service among the command events of one workflow task, right after the
# command that caused it (as Temporal's server does): cancelling an activity that had not
# started closes it at once, before the events of the task's later commands.
_WRITTEN_AMONG_COMMANDS = frozenset({"ActivityTaskCanceled"})


def _is_cancellation(error: BaseException | None) -> bool:
    """True for a CancelledError, or an error caused (directly or not) by one."""
    while error is not None:
        if isinstance(error, (CancelledError, asyncio.CancelledError)):
            return True
        error = error.__cause__
    return False


PATCH_MARKER = "core_patch"
_DEFAULT_RETRY = RetryPolicy().to_json()
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def patch_of(event: HistoryEvent) -> tuple[str, bool] | None:
    """(patch id, deprecated) of a versioning marker event, else None."""
    if event.event_type != "MarkerRecorded" or event.attributes.get("markerName") != PATCH_MARKER:
        return None
    details = event.attributes.get("details") or {}
    payloads = (details.get("patch-data") or details.get("patch_data") or {}).get("payloads") or []
    try:
        data = from_json_payload(PayloadConverter.default, payloads[0]) if payloads else None
    except PayloadError:
        return None
    if not isinstance(data, dict):
        return None
    return str(data.get("id", "")), bool(data.get("deprecated"))


def _patches_after(events: Sequence[HistoryEvent], start: int) -> set[str]:
    """Patch ids recorded among the command events of the workflow task ending at ``start``."""
    found: set[str] = set()
    for event in events[start:]:
        if event.event_type in _WRITTEN_AMONG_COMMANDS:
            continue
        if event.event_type not in COMMAND_EVENTS:
            break
        patch = patch_of(event)
        if patch is not None:
            found.add(patch[0])
    return found


def _skippable(event: HistoryEvent, command: Command | None) -> bool:
    """Recorded events that code may legitimately no longer produce, as Temporal allows:
    a deprecated patch's marker once the call is removed, and the search-attribute upsert
    that temporalio writes next to each patch marker."""
    patch = patch_of(event)
    if patch is not None:
        same = command is not None and command.kind == "RecordMarker" and command.attributes.get("markerName") == PATCH_MARKER
        return patch[1] and not same
    if event.event_type == "UpsertWorkflowSearchAttributes":
        if not _only_change_version(event.attributes):
            return False
        # Skipped only when the code has no such upsert here (the call of a deprecated patch
        # was removed, so neither its marker nor its upsert is produced).
        return command is None or command.kind != "UpsertWorkflowSearchAttributes" or not _only_change_version(command.attributes)
    return False


def _only_change_version(attrs: Mapping[str, Any]) -> bool:
    fields = (attrs.get("searchAttributes") or {}).get("indexedFields") or {}
    return set(fields) == {_search_attributes.CHANGE_VERSION}


def info_from_history(workflow_id: str, run_id: str, events: Sequence[HistoryEvent], namespace: str = "default") -> WorkflowInfo:
    """The ``workflow.info()`` of a run, read from its WorkflowExecutionStarted event."""
    started = events[0].attributes
    return WorkflowInfo(
        workflow_id=workflow_id,
        run_id=run_id,
        workflow_type=(started.get("workflowType") or {}).get("name", ""),
        task_queue=(started.get("taskQueue") or {}).get("name", ""),
        namespace=namespace,
        attempt=int(started.get("attempt", 1) or 1),
        # An imported history may have no times; then workflow.now() starts at the epoch.
        start_time=events[0].event_time or _EPOCH,
        first_execution_run_id=str(started.get("firstExecutionRunId") or run_id),
        continued_run_id=started.get("continuedExecutionRunId") or None,
        execution_timeout=from_duration(started.get("workflowExecutionTimeout")),
        run_timeout=from_duration(started.get("workflowRunTimeout")),
        task_timeout=from_duration(started.get("workflowTaskTimeout")) or timedelta(seconds=10),
        parent=_parent_info(started, "parentWorkflowExecution", "parentWorkflowNamespace", namespace),
        root=_parent_info(started, "rootWorkflowExecution", "parentWorkflowNamespace", namespace),
        typed_search_attributes=_search_attributes.decode_typed((started.get("searchAttributes") or {}).get("indexedFields")),
        raw_memo=dict((started.get("memo") or {}).get("fields") or {}),
        headers=_interceptors.headers_from_json(started.get("header")),
        cron_schedule=started.get("cronSchedule") or None,
    )


def _parent_info(started: Any, key: str, ns_key: str, namespace: str) -> ParentInfo | None:
    execution = started.get(key)
    if not execution:
        return None
    return ParentInfo(str(started.get(ns_key) or namespace), str(execution.get("runId", "")), str(execution.get("workflowId", "")))


def current() -> WorkflowInstance:
    """The instance whose code is running, or a clear error outside workflow code."""
    loop = asyncio.events._get_running_loop()
    if not isinstance(loop, WorkflowInstance):
        raise RuntimeError(
            "Not in workflow code: this function works only inside a workflow's @workflow.run "
            "method (and what it calls) while a worker runs it."
        )
    return loop
