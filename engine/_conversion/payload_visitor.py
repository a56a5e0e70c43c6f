"""Where payloads sit in events, commands and failures, and a walk that runs a codec on them.

The codec boundary of the engine: workers decode the events of a workflow task before the
workflow sees them and encode the commands it answers with; clients encode what they send.
Only the payload-bearing parts of an attribute object are copied; everything else is shared,
and an object without payloads comes back as it went in.

As in temporalio, search attributes and headers are left alone, and so is the patch marker's
payload (Temporal's core SDK writes that marker, not the workflow's data converter).
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Mapping, Sequence

from engine._conversion.payload_converter import Payload

if TYPE_CHECKING:
    from engine.history import HistoryEvent

Codec = Callable[[Sequence[Payload]], Awaitable[list[Payload]]]

# What sits at a location: a Payloads object, one Payload, a Memo, a marker's details (a map of
# Payloads), or a Failure (whose own payloads are listed in _FAILURE).
_PAYLOADS, _PAYLOAD, _MEMO, _MARKER, _FAILURE_KIND = "payloads", "payload", "memo", "marker", "failure"

Location = tuple[tuple[str, ...], str]

_FAILURE: tuple[Location, ...] = (
    (("encodedAttributes",), _PAYLOAD),
    (("applicationFailureInfo", "details"), _PAYLOADS),
    (("timeoutFailureInfo", "lastHeartbeatDetails"), _PAYLOADS),
    (("canceledFailureInfo", "details"), _PAYLOADS),
    (("resetWorkflowFailureInfo", "lastHeartbeatDetails"), _PAYLOADS),
    (("cause",), _FAILURE_KIND),
)

_INPUT: tuple[Location, ...] = ((("input",), _PAYLOADS),)
_RESULT: tuple[Location, ...] = ((("result",), _PAYLOADS),)
_FAILED: tuple[Location, ...] = ((("failure",), _FAILURE_KIND),)
_DETAILS: tuple[Location, ...] = ((("details",), _PAYLOADS),)
_SUMMARY: tuple[Location, ...] = ((("userMetadata", "summary"), _PAYLOAD), (("userMetadata", "details"), _PAYLOAD))

# Event types (Temporal's attribute names); commands use the same names as the events they become.
LOCATIONS: dict[str, tuple[Location, ...]] = {
    "WorkflowExecutionStarted": _INPUT
    + ((("memo",), _MEMO), (("lastCompletionResult",), _PAYLOADS), (("continuedFailure",), _FAILURE_KIND)),
    "WorkflowExecutionCompleted": _RESULT,
    "WorkflowExecutionFailed": _FAILED,
    "WorkflowExecutionCanceled": _DETAILS,
    "WorkflowExecutionTerminated": _DETAILS,
    "WorkflowExecutionContinuedAsNew": _INPUT
    + _FAILED
    + ((("lastCompletionResult",), _PAYLOADS), (("memo",), _MEMO)),
    "WorkflowExecutionSignaled": _INPUT,
    "WorkflowTaskFailed": _FAILED,
    "ActivityTaskScheduled": _INPUT + _SUMMARY,
    "ActivityTaskStarted": ((("lastFailure",), _FAILURE_KIND),),
    "ActivityTaskCompleted": _RESULT,
    "ActivityTaskFailed": _FAILED,
    "ActivityTaskTimedOut": _FAILED,
    "ActivityTaskCanceled": _DETAILS,
    "TimerStarted": _SUMMARY,
    "MarkerRecorded": ((("details",), _MARKER),) + _FAILED,
    "StartChildWorkflowExecutionInitiated": _INPUT + ((("memo",), _MEMO),) + _SUMMARY,
    "ChildWorkflowExecutionCompleted": _RESULT,
    "ChildWorkflowExecutionFailed": _FAILED,
    "ChildWorkflowExecutionCanceled": _DETAILS,
    "SignalExternalWorkflowExecutionInitiated": _INPUT,
    "WorkflowPropertiesModified": ((("upsertedMemo",), _MEMO),),
    "WorkflowExecutionUpdateAdmitted": ((("request", "input", "args"), _PAYLOADS),),
    "WorkflowExecutionUpdateAccepted": ((("acceptedRequest", "input", "args"), _PAYLOADS),),
    "WorkflowExecutionUpdateRejected": ((("rejectedRequest", "input", "args"), _PAYLOADS),) + _FAILED,
    "WorkflowExecutionUpdateCompleted": ((("outcome", "success"), _PAYLOADS), (("outcome", "failure"), _FAILURE_KIND)),
}

COMMAND_EVENT_TYPES: dict[str, str] = {
    "ScheduleActivityTask": "ActivityTaskScheduled",
    "StartTimer": "TimerStarted",
    "RecordMarker": "MarkerRecorded",
    "CompleteWorkflowExecution": "WorkflowExecutionCompleted",
    "FailWorkflowExecution": "WorkflowExecutionFailed",
    "CancelWorkflowExecution": "WorkflowExecutionCanceled",
    "ContinueAsNewWorkflowExecution": "WorkflowExecutionContinuedAsNew",
    "StartChildWorkflowExecution": "StartChildWorkflowExecutionInitiated",
    "SignalExternalWorkflowExecution": "SignalExternalWorkflowExecutionInitiated",
    "ModifyWorkflowProperties": "WorkflowPropertiesModified",
    "AcceptUpdate": "WorkflowExecutionUpdateAccepted",
    "CompleteUpdate": "WorkflowExecutionUpdateCompleted",
    "RejectUpdate": "WorkflowExecutionUpdateRejected",
}

PATCH_MARKER = "core_patch"


async def transform_attributes(event_type: str, attributes: Mapping[str, Any], codec: Codec) -> Mapping[str, Any]:
    """``attributes`` of an event (or of the command writing it) with ``codec`` run on each payload group."""
    locations = LOCATIONS.get(event_type)
    if not locations:
        return attributes
    skip_marker = event_type == "MarkerRecorded" and attributes.get("markerName") == PATCH_MARKER
    out = attributes
    for path, kind in locations:
        if skip_marker and kind == _MARKER:
            continue
        out = await _at(out, path, kind, codec)
    return out


async def transform_failure(failure: Mapping[str, Any], codec: Codec) -> Mapping[str, Any]:
    out = failure
    for path, kind in _FAILURE:
        out = await _at(out, path, kind, codec)
    return out


async def transform_events(events: Sequence[HistoryEvent], codec: Codec) -> list[HistoryEvent]:
    out = []
    for event in events:
        attributes = event.attributes
        changed = await transform_attributes(event.event_type, attributes, codec) if isinstance(attributes, Mapping) else attributes
        out.append(event if changed is attributes else dataclasses.replace(event, attributes=changed))
    return out


async def transform_commands(commands: Sequence[tuple[str, dict[str, Any]]], codec: Codec) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for kind, attributes in commands:
        event_type = COMMAND_EVENT_TYPES.get(kind)
        changed = await transform_attributes(event_type, attributes, codec) if event_type else attributes
        out.append((kind, dict(changed)))
    return out


async def transform_payloads(obj: Mapping[str, Any] | None, codec: Codec) -> Mapping[str, Any] | None:
    """A ``{"payloads": [...]}`` object (or None) with the codec run on its payloads."""
    return None if obj is None else await _leaf(obj, _PAYLOADS, codec)


async def _at(obj: Any, path: tuple[str, ...], kind: str, codec: Codec) -> Any:
    if not isinstance(obj, Mapping):
        return obj
    key = path[0]
    child = obj.get(key)
    if child is None:
        return obj
    new = await (_at(child, path[1:], kind, codec) if len(path) > 1 else _leaf(child, kind, codec))
    if new is child:
        return obj
    copied = dict(obj)
    copied[key] = new
    return copied


async def _leaf(obj: Any, kind: str, codec: Codec) -> Any:
    if not isinstance(obj, Mapping):
        return obj
    if kind == _PAYLOADS:
        raw = obj.get("payloads")
        if not raw:
            return obj
        payloads = await codec([Payload.from_json(p) for p in raw])
        return {**obj, "payloads": [p.to_json() for p in payloads]}
    if kind == _PAYLOAD:
        return (await codec([Payload.from_json(obj)]))[0].to_json()
    if kind == _MEMO:
        fields = obj.get("fields")
        if not fields:
            return obj
        return {**obj, "fields": {k: (await codec([Payload.from_json(v)]))[0].to_json() for k, v in fields.items()}}
    if kind == _MARKER:
        return {k: await _leaf(v, _PAYLOADS, codec) for k, v in obj.items()}
    return await transform_failure(obj, codec)
