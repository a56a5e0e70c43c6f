"""Temporal's JSON history as protobuf writes it: the form ``temporal workflow show -o json``
and temporalio's ``WorkflowHistory.to_json()`` produce (protobuf's ``json_format`` with its
default options).

The engine keeps event attributes as it wrote them (``"nonRetryable": false``, durations such
as ``"0.2s"``); tools that read Temporal's files parse them into protobuf messages and expect
what protobuf itself would print. The rules here follow from the data, not from a list of
event types, so that an event type the engine learns later is exported the same way:

* fields holding their type's zero value are left out (``false``, ``0``, ``""``, ``[]``,
  an ``..._UNSPECIFIED`` enum, an int64 event id ``"0"``); an empty object stays, because
  protobuf prints a message that is set even when all its fields are zero (``"header": {}``),
  except an empty map (``fields``, ``indexedFields``, ``metadata``), which protobuf leaves out;
* map entries are kept whatever their value (protobuf prints them all);
* durations and timestamps get protobuf's fraction digits: none, 3, 6 or 9.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Any

EVENT_TYPE_PREFIX = "EVENT_TYPE_"

# Temporal's map<string, ...> fields that appear in histories (Memo.fields,
# SearchAttributes.indexed_fields, Header.fields, Payload.metadata).
_MAP_KEYS = frozenset({"fields", "indexedFields", "metadata"})
# int64 fields are strings in protobuf JSON, so their zero is "0". Ids of other events end
# in "EventId"; the others are few and named here.
_INT64_ZERO_KEYS = frozenset({"version", "historySizeBytes", "firstWorkflowTaskCompletedId", "taskId"})
_UNSPECIFIED_ENUM = re.compile(r"[A-Z][A-Z0-9_]*_UNSPECIFIED")
_FRACTIONAL_DURATION = re.compile(r"(-?\d+)\.(\d{1,9})s")
_TIMESTAMP = re.compile(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?Z")
_WORD_START = re.compile(r"(?<!^)(?=[A-Z])")


def event_type_name(event_type: str) -> str:
    """``"ActivityTaskScheduled"`` -> ``"EVENT_TYPE_ACTIVITY_TASK_SCHEDULED"`` (the enum name)."""
    return EVENT_TYPE_PREFIX + _WORD_START.sub("_", event_type).upper()


def timestamp(moment: datetime) -> str:
    """A UTC time as protobuf's Timestamp JSON: ``...05Z``, ``...05.120Z``, ``...05.123456Z``."""
    utc = moment.astimezone(timezone.utc)
    # Formatted by hand: strftime("%Y") does not zero-pad years below 1000 on glibc.
    text = f"{utc.year:04d}-{utc.month:02d}-{utc.day:02d}T{utc.hour:02d}:{utc.minute:02d}:{utc.second:02d}"
    return text + _fraction(f"{utc.microsecond:06d}") + "Z"


# Older exports (the Web UI's, tctl's) write some enum values in PascalCase ("Normal",
# "NonRetryableFailure"); protobuf reads only the full names. These are the fields where
# temporalio's loader fixes them, keyed by the field's name (and "cause" by event type,
# since a "cause" elsewhere is a failure object).
_ENUM_PREFIX = {
    "kind": "TASK_QUEUE_KIND",
    "retryState": "RETRY_STATE",
    "initiator": "CONTINUE_AS_NEW_INITIATOR",
    "parentClosePolicy": "PARENT_CLOSE_POLICY",
    "workflowIdReusePolicy": "WORKFLOW_ID_REUSE_POLICY",
    "timeoutType": "TIMEOUT_TYPE",
}
_CAUSE_PREFIX = {
    "RequestCancelExternalWorkflowExecutionFailed": "CANCEL_EXTERNAL_WORKFLOW_EXECUTION_FAILED_CAUSE",
    "SignalExternalWorkflowExecutionFailed": "SIGNAL_EXTERNAL_WORKFLOW_EXECUTION_FAILED_CAUSE",
    "StartChildWorkflowExecutionFailed": "START_CHILD_WORKFLOW_EXECUTION_FAILED_CAUSE",
    "WorkflowTaskFailed": "WORKFLOW_TASK_FAILED_CAUSE",
}
_PASCAL = re.compile(r"[A-Z][A-Za-z0-9]*")


def full_enum_names(event_type: str, attributes: dict[str, Any]) -> dict[str, Any]:
    """``attributes`` with PascalCase enum values given their full names, in place.

    ``{"taskQueue": {"kind": "Normal"}}`` -> ``{"taskQueue": {"kind": "TASK_QUEUE_KIND_NORMAL"}}``.
    """
    cause = _CAUSE_PREFIX.get(event_type)
    if cause is not None and isinstance(attributes.get("cause"), str):
        attributes["cause"] = _full_name(cause, attributes["cause"])
    stack: list[Any] = [attributes]
    while stack:
        obj = stack.pop()
        items = obj.items() if isinstance(obj, dict) else enumerate(obj)
        for key, value in items:
            if isinstance(value, str):
                prefix = _ENUM_PREFIX.get(key) if isinstance(key, str) else None
                if prefix is not None:
                    obj[key] = _full_name(prefix, value)
            elif isinstance(value, (dict, list)):
                stack.append(value)
    return attributes


def _full_name(prefix: str, value: str) -> str:
    if value.startswith(prefix) or not _PASCAL.fullmatch(value):
        return value
    return prefix + "_" + _WORD_START.sub("_", value).upper()


def omit_defaults(attributes: dict[str, Any]) -> dict[str, Any]:
    """A copy of an event's attributes object in protobuf's JSON form (see the module doc)."""
    return _message(attributes)


def _message(obj: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in obj.items():
        if _is_default(key, value):
            continue
        if key in _MAP_KEYS and isinstance(value, dict):
            out[key] = {k: _value(v) for k, v in value.items()}
        else:
            out[key] = _value(value)
    return out


def _value(value: Any) -> Any:
    if isinstance(value, dict):
        return _message(value)
    if isinstance(value, list):
        # Elements of a repeated field are printed even when zero.
        return [_value(item) for item in value]
    if isinstance(value, str):
        return _canonical_string(value)
    return value


def _is_default(key: str, value: Any) -> bool:
    if value is None or value is False or value == "" or value == []:
        return True
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return value == 0
    if isinstance(value, str):
        if value == "0":
            return key.endswith("EventId") or key in _INT64_ZERO_KEYS
        return _UNSPECIFIED_ENUM.fullmatch(value) is not None
    if value == {}:
        return key in _MAP_KEYS
    return False


def _canonical_string(value: str) -> str:
    match = _FRACTIONAL_DURATION.fullmatch(value)
    if match is not None:
        return match.group(1) + _fraction(match.group(2)) + "s"
    match = _TIMESTAMP.fullmatch(value)
    if match is not None and match.group(2) is not None:
        return match.group(1) + _fraction(match.group(2)) + "Z"
    return value


def _fraction(digits: str) -> str:
    """Fraction digits as protobuf prints them: none, 3, 6 or 9 (``"2"`` -> ``".200"``)."""
    nanos = int(digits.ljust(9, "0"))
    if nanos == 0:
        return ""
    if nanos % 1_000_000 == 0:
        return f".{nanos // 1_000_000:03d}"
    if nanos % 1_000 == 0:
        return f".{nanos // 1_000:06d}"
    return f".{nanos:09d}"
