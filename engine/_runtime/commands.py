"""Commands a run's code produces, and how each is matched with the event that recorded it
(the determinism check), patch markers included.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

from engine._api.durations import to_duration
from engine._conversion import search_attributes as _search_attributes
from engine._conversion.payload_converter import PayloadConverter, from_json_payload, to_json_payload, to_json_payloads
from engine._runtime import local_activities as _local_activities
from engine._runtime.code_lines import CodeLine
from engine._runtime.interceptors import headers_to_json
from engine.common import TypedSearchAttributes
from engine.errors import PayloadError
from engine.history import HistoryEvent

if TYPE_CHECKING:
    from engine._runtime.info import WorkflowInfo


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
class Command:
    """A decision of workflow code, sent to the engine at the end of an activation."""

    kind: str
    attributes: dict[str, Any]
    source: CodeLine | None = None
    # Called with the event id once the command is matched with its recorded event.
    on_event: Callable[[int], None] | None = None

    def describe(self) -> str:
        return f"{self.kind}({key_of(self.kind, self.attributes)})"


def key_of(kind: str, attrs: dict[str, Any]) -> str:
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


def matches(command: Command, event: HistoryEvent) -> bool:
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


# Written by the service among the command events of one workflow task, right after the
# command that caused it (as Temporal's server does): cancelling an activity that had not
# started closes it at once, before the events of the task's later commands.
WRITTEN_AMONG_COMMANDS = frozenset({"ActivityTaskCanceled"})


PATCH_MARKER = "core_patch"


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


def patches_after(events: Sequence[HistoryEvent], start: int) -> set[str]:
    """Patch ids recorded among the command events of the workflow task ending at ``start``."""
    found: set[str] = set()
    for event in events[start:]:
        if event.event_type in WRITTEN_AMONG_COMMANDS:
            continue
        if event.event_type not in COMMAND_EVENTS:
            break
        patch = patch_of(event)
        if patch is not None:
            found.add(patch[0])
    return found


def skippable(event: HistoryEvent, command: Command | None) -> bool:
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


class ContinueAsNewError(BaseException):
    """Raised by ``continue_as_new``: ends this run and starts a fresh one with new input.

    A ``BaseException`` so that ``except Exception`` in workflow code cannot swallow it."""

    def __init__(
        self, args: Sequence[Any], *, workflow: Any = None, task_queue: str | None = None,
        run_timeout: timedelta | None = None, task_timeout: timedelta | None = None,
        memo: dict[str, Any] | None = None, search_attributes: TypedSearchAttributes | None = None,
        headers: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__("Continue as new")
        self.headers = dict(headers or {})
        self.input = list(args)
        self.workflow = workflow
        self.task_queue = task_queue
        self.run_timeout = run_timeout
        self.task_timeout = task_timeout
        self.memo = memo
        self.search_attributes = search_attributes

    def command_attributes(self, info: WorkflowInfo, payload_converter: PayloadConverter) -> dict[str, Any]:
        # ``workflow.continue_as_new`` gave the workflow's name (it looks definitions up).
        name = info.workflow_type if self.workflow is None else str(self.workflow)
        attrs: dict[str, Any] = {
            "workflowType": {"name": name},
            "taskQueue": {"name": self.task_queue or info.task_queue, "kind": "TASK_QUEUE_KIND_NORMAL"},
            "input": to_json_payloads(payload_converter, self.input, f"argument of the continued workflow {name!r}"),
            "workflowRunTimeout": to_duration(self.run_timeout or info.run_timeout),
            "workflowTaskTimeout": to_duration(self.task_timeout or info.task_timeout),
            "header": headers_to_json(self.headers),
        }
        # Left out, the engine carries the run's own over (as Temporal does).
        if self.memo:
            attrs["memo"] = {"fields": {k: to_json_payload(payload_converter, v, f"memo field {k!r}") for k, v in self.memo.items()}}
        if self.search_attributes:
            attrs["searchAttributes"] = {"indexedFields": _search_attributes.encode_typed(self.search_attributes)}
        return attrs
