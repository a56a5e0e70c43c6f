"""A workflow run's history: Temporal-shaped events, and Temporal's JSON history format.

Events keep Temporal's names: ``event_type`` is the PascalCase event type
(``"ActivityTaskScheduled"``) and ``attributes`` is the camelCase attributes object
as Temporal's JSON history carries it (payloads base64-encoded, durations as ``"10s"``,
ids of other events as strings). ``event_time`` is ``None`` for an imported event that
has none (temporalio's loader accepts that; its Replayer needs a time only on
WorkflowTaskStarted).

The JSON written is what ``temporal workflow show --output json`` and temporalio's
``WorkflowHistory.to_json()`` write (protobuf's JSON form: event type enum names,
zero-valued fields left out); it is read back by
``temporalio.client.WorkflowHistory.from_json`` (and so the SDK's ``Replayer``), by
protobuf's parser, and by :meth:`History.from_json`, which also reads the older form
with PascalCase event types::

    {"events": [{"eventId": "1", "eventTime": "2026-01-02T03:04:05.123456Z",
                 "eventType": "EVENT_TYPE_WORKFLOW_EXECUTION_STARTED", "taskId": "1",
                 "workflowExecutionStartedEventAttributes": {...}}, ...]}
"""

from __future__ import annotations

import copy
import difflib
import json
import os
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Iterator, Mapping

from engine._conversion.payload_converter import JSONPlainPayloadConverter, Payload, _json_kind
from engine._api.proto_json import event_type_name, full_enum_names, omit_defaults
from engine._api.proto_json import timestamp as proto_timestamp
from engine.errors import HistoryFormatError, PayloadError

__all__ = [
    "KNOWN_EVENT_TYPES",
    "History",
    "HistoryEvent",
    "HistoryFormatError",
    "attributes_key",
    "decode_payload",
    "decode_payloads",
    "encode_payload",
    "load_history",
]


# Kept literal rather than derived from temporalio's EventType enum so that this module
# needs only the standard library; the tests check it against the installed enum. In the
# enum's number order (1, 2, ...): protobuf's JSON may give an event type as its number.
_EVENT_TYPES_BY_NUMBER_ORDER: tuple[str, ...] = (
    "WorkflowExecutionStarted",
    "WorkflowExecutionCompleted",
    "WorkflowExecutionFailed",
    "WorkflowExecutionTimedOut",
    "WorkflowTaskScheduled",
    "WorkflowTaskStarted",
    "WorkflowTaskCompleted",
    "WorkflowTaskTimedOut",
    "WorkflowTaskFailed",
    "ActivityTaskScheduled",
    "ActivityTaskStarted",
    "ActivityTaskCompleted",
    "ActivityTaskFailed",
    "ActivityTaskTimedOut",
    "ActivityTaskCancelRequested",
    "ActivityTaskCanceled",
    "TimerStarted",
    "TimerFired",
    "TimerCanceled",
    "WorkflowExecutionCancelRequested",
    "WorkflowExecutionCanceled",
    "RequestCancelExternalWorkflowExecutionInitiated",
    "RequestCancelExternalWorkflowExecutionFailed",
    "ExternalWorkflowExecutionCancelRequested",
    "MarkerRecorded",
    "WorkflowExecutionSignaled",
    "WorkflowExecutionTerminated",
    "WorkflowExecutionContinuedAsNew",
    "StartChildWorkflowExecutionInitiated",
    "StartChildWorkflowExecutionFailed",
    "ChildWorkflowExecutionStarted",
    "ChildWorkflowExecutionCompleted",
    "ChildWorkflowExecutionFailed",
    "ChildWorkflowExecutionCanceled",
    "ChildWorkflowExecutionTimedOut",
    "ChildWorkflowExecutionTerminated",
    "SignalExternalWorkflowExecutionInitiated",
    "SignalExternalWorkflowExecutionFailed",
    "ExternalWorkflowExecutionSignaled",
    "UpsertWorkflowSearchAttributes",
    "WorkflowExecutionUpdateAccepted",
    "WorkflowExecutionUpdateRejected",
    "WorkflowExecutionUpdateCompleted",
    "WorkflowPropertiesModifiedExternally",
    "ActivityPropertiesModifiedExternally",
    "WorkflowPropertiesModified",
    "WorkflowExecutionUpdateAdmitted",
    "NexusOperationScheduled",
    "NexusOperationStarted",
    "NexusOperationCompleted",
    "NexusOperationFailed",
    "NexusOperationCanceled",
    "NexusOperationTimedOut",
    "NexusOperationCancelRequested",
    "WorkflowExecutionOptionsUpdated",
    "NexusOperationCancelRequestCompleted",
    "NexusOperationCancelRequestFailed",
    "WorkflowExecutionPaused",
    "WorkflowExecutionUnpaused",
    "WorkflowExecutionTimeSkippingTransitioned",
)
KNOWN_EVENT_TYPES: frozenset[str] = frozenset(_EVENT_TYPES_BY_NUMBER_ORDER)
_EVENT_TYPE_BY_NUMBER: dict[int, str] = {i + 1: t for i, t in enumerate(_EVENT_TYPES_BY_NUMBER_ORDER)}

_FIRST_EVENT_TYPE = "WorkflowExecutionStarted"
_COMPLETED_EVENT_TYPE = "WorkflowExecutionCompleted"
_SCREAMING_PREFIX = "EVENT_TYPE_"
_ATTRIBUTES_SUFFIX = "EventAttributes"
_JSON_PLAIN = "json/plain"
_BINARY_NULL = "binary/null"


def attributes_key(event_type: str) -> str:
    """Return the JSON key of an event type's attributes object.

    ``"WorkflowExecutionStarted"`` -> ``"workflowExecutionStartedEventAttributes"``.
    """
    return event_type[:1].lower() + event_type[1:] + _ATTRIBUTES_SUFFIX


_EVENT_TYPE_BY_ATTRIBUTES_KEY: dict[str, str] = {
    attributes_key(event_type): event_type for event_type in KNOWN_EVENT_TYPES
}


@dataclass(frozen=True)
class HistoryEvent:
    """One event of a run's history."""

    event_id: int
    event_type: str
    event_time: datetime | None
    attributes: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class History:
    """The events of one workflow run, in order (ids 1..n)."""

    workflow_id: str
    events: tuple[HistoryEvent, ...]

    def __len__(self) -> int:
        """Return the number of events."""
        return len(self.events)

    def __iter__(self) -> Iterator[HistoryEvent]:
        """Iterate over the events in order."""
        return iter(self.events)

    @property
    def workflow_type(self) -> str:
        """The workflow type name from the start event, or ``""`` if unknown."""
        name = _dig(self._start_attributes(), "workflowType", "name")
        return name if isinstance(name, str) else ""

    @property
    def run_id(self) -> str:
        """The run id recorded in the start event, or ``""`` if it has none.

        Like temporalio's ``WorkflowHistory.run_id`` this is the original execution run
        id; older histories only carry ``firstExecutionRunId``, hence the fallback.
        """
        attributes = self._start_attributes()
        for key in ("originalExecutionRunId", "firstExecutionRunId"):
            value = attributes.get(key)
            if isinstance(value, str) and value:
                return value
        return ""

    def result(self) -> Any:
        """Return the decoded result if the run completed, else ``None``.

        A Temporal workflow result is a single payload; if the completion event carries
        several (some SDKs allow it) they are returned as a list.

        Raises:
            HistoryFormatError: the result payload cannot be decoded (see
                :func:`decode_payload`); the message names the event.
        """
        if not self.events or self.events[-1].event_type != _COMPLETED_EVENT_TYPE:
            return None
        last = self.events[-1]
        try:
            values = decode_payloads(last.attributes.get("result"))
        except HistoryFormatError as exc:
            where = _where(len(self.events) - 1, last.event_id, last.event_type)
            raise HistoryFormatError(f"{where}: result: {exc}") from None
        if not values:
            return None
        return values[0] if len(values) == 1 else values

    def to_json_dict(self) -> dict[str, Any]:
        """Return the history as a Temporal JSON history document (a plain dict).

        Attributes are deep-copied, so mutating the result leaves this history intact.
        """
        return {"events": [_event_to_json(event) for event in self.events]}

    def to_json(self, *, indent: int | None = 2) -> str:
        """Return the history in Temporal's JSON history format.

        The document protobuf prints for the same history (fields with
        zero values left out, event types as ``EVENT_TYPE_...``), so tools that read
        Temporal's files read it; accepted by ``temporalio.client.WorkflowHistory.from_json``
        and by :meth:`from_json`. ``indent`` defaults to 2 like Temporal's own exports.
        """
        document = self.to_json_dict()
        try:
            return json.dumps(document, indent=indent, ensure_ascii=False)
        except (TypeError, ValueError) as exc:
            # json.dumps does not say which event is at fault; find it so the caller
            # knows which attributes the engine filled in wrongly.
            for index, event in enumerate(document["events"]):
                try:
                    json.dumps(event)
                except (TypeError, ValueError) as event_exc:
                    bad = self.events[index]
                    raise HistoryFormatError(
                        f"{_where(index, bad.event_id, bad.event_type)}: attributes are not "
                        f"JSON-serializable ({event_exc}); store payloads with "
                        "encode_payload() and other values as JSON strings, numbers, "
                        "booleans, lists or objects"
                    ) from event_exc
            raise

    @classmethod
    def from_json(cls, workflow_id: str, data: str | bytes | Mapping[str, Any]) -> History:
        """Parse a Temporal JSON history document.

        Mirrors ``temporalio.client.WorkflowHistory.from_json(workflow_id, history)``.
        ``data`` may be JSON text (str or UTF-8 bytes) or an already parsed mapping, in
        either the plain ``{"events": [...]}`` form or the Web UI API form
        ``{"history": {"events": [...]}}``. Event types may be PascalCase or
        ``EVENT_TYPE_...``; event ids strings or numbers; times RFC 3339 with any number
        of fractional digits (kept to microseconds, the resolution of ``datetime``), or
        absent (``event_time`` is then ``None``). Keys other than ``eventId``, ``eventTime``, ``eventType`` and the attributes
        object (``taskId``, ``version``, ``links``, ...) are ignored.

        Raises:
            HistoryFormatError: the document is not a valid history; the message says
                what is wrong, where and how to fix it.
        """
        document = _parse_document(data)
        raw_events = _find_events(document)
        events = tuple(_event_from_json(index, raw) for index, raw in enumerate(raw_events))
        return cls(workflow_id=workflow_id, events=events)

    def _start_attributes(self) -> Mapping[str, Any]:
        if not self.events or self.events[0].event_type != _FIRST_EVENT_TYPE:
            return {}
        return self.events[0].attributes


def load_history(path: str | os.PathLike[str]) -> History:
    """Read a Temporal JSON history file.

    Temporal's format does not record the workflow id, so the file name without its
    extension is used (``histories/order-42.json`` -> ``"order-42"``).

    Raises:
        OSError: the file cannot be read.
        HistoryFormatError: the file is not a valid history; the message starts with
            the path.
    """
    file_path = Path(path)
    data = file_path.read_bytes()
    try:
        return History.from_json(file_path.stem, data)
    except HistoryFormatError as exc:
        # Same message, prefixed with the file so errors from batch imports are traceable.
        raise HistoryFormatError(f"{file_path}: {exc}") from None


def decode_payload(payload: Mapping[str, Any]) -> Any:
    """Decode one Temporal payload as found in JSON history.

    ``{"metadata": {"encoding": "<base64>"}, "data": "<base64>"}``: for ``json/plain``
    the parsed JSON value is returned, for ``binary/null`` ``None``, and for any other
    encoding (``binary/plain``, ``json/protobuf``, encrypted, ...) the raw data bytes.
    (The engine's :class:`engine.converter.JSONPlainPayloadConverter` does the decoding.)

    Raises:
        HistoryFormatError: the payload is not an object, a field is not valid base64,
            or ``json/plain`` data is not valid JSON.
    """
    try:
        parsed = Payload.from_json(payload)
        encoding = parsed.metadata.get("encoding", b"").decode("utf-8", "replace")
        if encoding == _BINARY_NULL:
            return None
        if encoding == _JSON_PLAIN:
            return _PLAIN_JSON.from_payload(parsed)
    except PayloadError as exc:
        raise HistoryFormatError(str(exc)) from None
    return parsed.data


def decode_payloads(obj: Mapping[str, Any] | None) -> list[Any]:
    """Decode a ``{"payloads": [...]}`` object (``input``, ``result``, ``details``, ...).

    ``None`` and an object without payloads (proto JSON writes empty payload lists as
    ``{}``) give an empty list.

    Raises:
        HistoryFormatError: ``obj`` is not an object, ``payloads`` is not a list, or a
            payload cannot be decoded (see :func:`decode_payload`).
    """
    if obj is None:
        return []
    if not isinstance(obj, Mapping):
        raise HistoryFormatError(
            f"expected an object like {{\"payloads\": [...]}}, found {_json_kind(obj)}"
        )
    payloads = obj.get("payloads")
    if payloads is None:
        return []
    if not isinstance(payloads, (list, tuple)):
        raise HistoryFormatError(
            f"\"payloads\" must be a list of payload objects, found {_json_kind(payloads)}"
        )
    return [decode_payload(payload) for payload in payloads]


def encode_payload(value: Any) -> dict[str, Any]:
    """Encode a JSON value as a ``json/plain`` payload in JSON-history form.

    The data is compact JSON with sorted keys, byte for byte what temporalio's default
    converter (and this engine's) writes for the same value.

    Raises:
        TypeError: ``value`` is not made of JSON types (dict with string keys, list,
            tuple, str, int, float, bool, None); convert it first.
    """
    try:
        payload = _PLAIN_JSON.to_payload(value)
    except TypeError as exc:
        raise TypeError(
            f"encode_payload needs a plain JSON value, but {exc}; convert the value to "
            "dicts, lists, strings, numbers, booleans or None first"
        ) from exc
    assert payload is not None
    return payload.to_json()


# Plain JSON only (no dataclass encoder): history files hold JSON values.
_PLAIN_JSON = JSONPlainPayloadConverter(encoder=None)


# --- JSON -> History ---------------------------------------------------------------

_HOW_TO_EXPORT = (
    "export the full history with `temporal workflow show --workflow-id <id> --output json` "
    "or the Web UI's JSON download"
)

# RFC 3339 as Temporal writes it; a space separator and lowercase t/z are allowed by
# the RFC, so accept them too.
_TIMESTAMP = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?"
    r"(?:([Zz])|([+-])(\d{2}):(\d{2}))",
    re.ASCII,
)

_EVENT_ID = re.compile(r"[+-]?\d+", re.ASCII)


# protobuf's JSON parser (and so temporalio's loader) stops at 100 nested messages; each
# message is one or two JSON levels (lists add one), so a history Temporal's tools read is
# well within this. Deeper documents would end in a RecursionError here or in the views.
_MAX_DEPTH = 200


def _check_depth(document: Any) -> None:
    # Iterative, so that the check itself cannot run out of stack.
    stack: list[tuple[Any, int]] = [(document, 1)]
    while stack:
        value, depth = stack.pop()
        if depth > _MAX_DEPTH:
            raise _too_deep()
        if isinstance(value, Mapping):
            stack.extend((item, depth + 1) for item in value.values() if isinstance(item, (Mapping, list, tuple)))
        elif isinstance(value, (list, tuple)):
            stack.extend((item, depth + 1) for item in value if isinstance(item, (Mapping, list, tuple)))


def _too_deep() -> HistoryFormatError:
    return HistoryFormatError(
        f"history is nested more than {_MAX_DEPTH} levels deep, which no Temporal history is "
        f"(protobuf stops at 100 nested messages); this is not a history: {_HOW_TO_EXPORT}"
    )


def _parse_document(data: str | bytes | Mapping[str, Any]) -> Any:
    if isinstance(data, Mapping):
        _check_depth(data)
        # The caller's structure must not alias our events' attributes.
        return copy.deepcopy(dict(data))
    if isinstance(data, (bytes, bytearray, memoryview)):
        try:
            # utf-8-sig: files saved by Windows editors often start with a BOM.
            text = bytes(data).decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise HistoryFormatError(
                f"history is not UTF-8 text (byte {exc.start} is invalid); save the "
                "file as UTF-8 JSON"
            ) from exc
    elif isinstance(data, str):
        text = data.removeprefix("\ufeff")
    else:
        raise HistoryFormatError(
            f"history must be JSON text (str or bytes) or a parsed mapping, got "
            f"{type(data).__name__}"
        )
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise HistoryFormatError(
            f"history is not valid JSON: {exc.msg} at line {exc.lineno} column "
            f"{exc.colno}; the text may be cut off or not a history: {_HOW_TO_EXPORT}"
        ) from exc
    except RecursionError:
        # The JSON parser recurses per bracket: this is far deeper than _MAX_DEPTH.
        raise _too_deep() from None
    _check_depth(document)
    return document


def _find_events(document: Any) -> list[Any]:
    if not isinstance(document, Mapping):
        hint = (
            '; if this is a bare list of events, wrap it as {"events": [...]}'
            if isinstance(document, list)
            else ""
        )
        raise HistoryFormatError(
            f"history top level must be a JSON object with an \"events\" list, found "
            f"{_json_kind(document)}{hint}"
        )
    container: Mapping[str, Any] = document
    if "events" not in container and isinstance(container.get("history"), Mapping):
        # The Web UI / GetWorkflowExecutionHistory API response wraps the history.
        container = container["history"]
    if "events" not in container:
        keys = ", ".join(repr(key) for key in list(document)[:8]) or "none"
        raise HistoryFormatError(
            f"history has no \"events\" key (top-level keys: {keys}); expected "
            f"{{\"events\": [...]}} or the Web UI form {{\"history\": {{\"events\": [...]}}}}"
        )
    events = container["events"]
    if not isinstance(events, (list, tuple)):
        raise HistoryFormatError(
            f"\"events\" must be a list of event objects, found {_json_kind(events)}"
        )
    if not events:
        raise HistoryFormatError(
            "history is empty: \"events\" has no events, but a run's history starts with a "
            f"WorkflowExecutionStarted event; {_HOW_TO_EXPORT}"
        )
    return list(events)


def _event_from_json(index: int, raw: Any) -> HistoryEvent:
    if not isinstance(raw, Mapping):
        raise HistoryFormatError(
            f"{_where(index)}: event must be an object, found {_json_kind(raw)}"
        )
    event_id = _parse_event_id(index, raw)
    event_type = _parse_event_type(index, event_id, raw)
    where = _where(index, event_id, event_type)
    if index == 0 and event_type != _FIRST_EVENT_TYPE:
        raise HistoryFormatError(
            f"{where}: the first event must be {_FIRST_EVENT_TYPE}, found {event_type}; "
            f"the history looks truncated at the start; {_HOW_TO_EXPORT}"
        )
    event_time = _parse_event_time(where, raw)
    attributes = _parse_attributes(where, event_type, raw)
    if isinstance(raw.get("userMetadata"), Mapping) and raw["userMetadata"]:
        attributes = {**attributes, "userMetadata": copy.deepcopy(dict(raw["userMetadata"]))}
    return HistoryEvent(
        event_id=event_id, event_type=event_type, event_time=event_time, attributes=attributes
    )


def _parse_event_id(index: int, raw: Mapping[str, Any]) -> int:
    expected = index + 1
    if "eventId" not in raw:
        raise HistoryFormatError(
            f"{_where(index)}: missing \"eventId\"; ids are numbered from 1 in order, so "
            f"this event needs \"eventId\": \"{expected}\""
        )
    value = raw["eventId"]
    # bool is an int subclass, but true/false is never a meaningful id.
    if isinstance(value, int) and not isinstance(value, bool):
        event_id = value
    elif isinstance(value, float) and value.is_integer():
        # protobuf's parser takes 1.0 for an int64, and so temporalio's loader.
        event_id = int(value)
    elif isinstance(value, str) and _EVENT_ID.fullmatch(value.strip()):
        event_id = int(value)
    else:
        raise HistoryFormatError(
            f"{_where(index)}: eventId {value!r} is not an integer; use a whole number "
            f"as a string or number, e.g. \"eventId\": \"{expected}\""
        )
    if event_id != expected:
        raise HistoryFormatError(
            f"{_where(index)}: expected eventId {expected} but found {event_id}; event ids "
            "must run 1, 2, 3, ... in order without gaps or repeats (is this one page of a "
            f"paginated history? {_HOW_TO_EXPORT})"
        )
    return event_id


def _parse_event_type(index: int, event_id: int, raw: Mapping[str, Any]) -> str:
    where = _where(index, event_id)
    if "eventType" not in raw:
        raise HistoryFormatError(
            f"{where}: missing \"eventType\"; add the Temporal event type, e.g. "
            "\"eventType\": \"ActivityTaskScheduled\""
        )
    value = raw["eventType"]
    if isinstance(value, int) and not isinstance(value, bool):
        # An enum's number, which protobuf's JSON parser (and temporalio's loader) accepts.
        if value not in _EVENT_TYPE_BY_NUMBER:
            raise HistoryFormatError(
                f"{where}: eventType {value} is not an event type number (1 to "
                f"{len(_EVENT_TYPE_BY_NUMBER)}); give the type's name, e.g. "
                "\"eventType\": \"EVENT_TYPE_ACTIVITY_TASK_SCHEDULED\""
            )
        return _EVENT_TYPE_BY_NUMBER[value]
    if not isinstance(value, str):
        raise HistoryFormatError(
            f"{where}: eventType must be a string such as \"ActivityTaskScheduled\", "
            f"found {_json_kind(value)} {value!r}"
        )
    event_type = _normalize_event_type(value)
    if event_type not in KNOWN_EVENT_TYPES:
        close = difflib.get_close_matches(event_type, KNOWN_EVENT_TYPES, n=3)
        suggestion = f"did you mean {', '.join(close)}? " if close else ""
        raise HistoryFormatError(
            f"{where}: unknown eventType {value!r}; {suggestion}valid types include "
            "WorkflowExecutionStarted, WorkflowTaskScheduled, ActivityTaskScheduled, "
            "TimerFired, WorkflowExecutionSignaled and WorkflowExecutionCompleted, in "
            "PascalCase or as EVENT_TYPE_WORKFLOW_EXECUTION_STARTED etc."
        )
    return event_type


def _normalize_event_type(value: str) -> str:
    # temporalio's to_json and newer CLIs write EVENT_TYPE_ACTIVITY_TASK_SCHEDULED; the
    # UI and older CLIs write ActivityTaskScheduled. Only the former has underscores.
    if value.startswith(_SCREAMING_PREFIX):
        words = value[len(_SCREAMING_PREFIX) :].split("_")
        return "".join(word.capitalize() for word in words)
    return value


def _parse_event_time(where: str, raw: Mapping[str, Any]) -> datetime | None:
    example = "e.g. \"eventTime\": \"2026-01-02T03:04:05.123456Z\""
    value = raw.get("eventTime")
    if value is None:
        # As in protobuf, absent and null both mean "not set"; temporalio loads such events.
        return None
    parsed = _parse_timestamp(value) if isinstance(value, str) else None
    if parsed is None:
        raise HistoryFormatError(
            f"{where}: eventTime {value!r} is not an RFC 3339 timestamp; use UTC with a "
            f"'Z' or an offset like '+02:00', {example}"
        )
    return parsed


def _parse_timestamp(text: str) -> datetime | None:
    match = _TIMESTAMP.fullmatch(text.strip())
    if match is None:
        return None
    year, month, day, hour, minute, second = (int(part) for part in match.group(1, 2, 3, 4, 5, 6))
    # datetime holds microseconds; truncating (not rounding) nanoseconds keeps events
    # that were ordered in the source ordered here and never rolls over a second.
    microsecond = int((match.group(7) or "").ljust(6, "0")[:6])
    if match.group(8):
        tz = timezone.utc
    else:
        offset_hours, offset_minutes = int(match.group(10)), int(match.group(11))
        if offset_hours > 23 or offset_minutes > 59:
            return None
        offset = timedelta(hours=offset_hours, minutes=offset_minutes)
        tz = timezone(-offset if match.group(9) == "-" else offset)
    try:
        moment = datetime(year, month, day, hour, minute, second, microsecond, tzinfo=tz)
    except ValueError:
        # Out-of-range fields such as month 13 or second 60 (leap seconds).
        return None
    return moment.astimezone(timezone.utc)


def _parse_attributes(where: str, event_type: str, raw: Mapping[str, Any]) -> dict[str, Any]:
    key = attributes_key(event_type)
    for other_key in raw:
        other_type = _EVENT_TYPE_BY_ATTRIBUTES_KEY.get(other_key)
        if other_type is not None and other_type != event_type:
            raise HistoryFormatError(
                f"{where}: has \"{other_key}\", which belongs to {other_type} events; a "
                f"{event_type} event carries \"{key}\" (is the eventType wrong?)"
            )
    if raw.get(key) is None:
        # Real exports always include it (even as {}); hand-written ones may not, and
        # protobuf reads null as unset.
        return {}
    attributes = raw[key]
    if not isinstance(attributes, Mapping):
        raise HistoryFormatError(
            f"{where}: \"{key}\" must be an object, found {_json_kind(attributes)}; use "
            "{} when the event has no attributes"
        )
    # As temporalio's loader does, so that what we export again is what protobuf reads.
    return full_enum_names(event_type, dict(attributes))


# --- History -> JSON ---------------------------------------------------------------


def _event_to_json(event: HistoryEvent) -> dict[str, Any]:
    # Protobuf's JSON form, as Temporal's own exports are (see engine._api.proto_json).
    attributes = omit_defaults(dict(event.attributes))
    out: dict[str, Any] = {"eventId": str(event.event_id)}
    if event.event_time is not None:
        out["eventTime"] = _format_timestamp(event.event_time, event)
    out["eventType"] = event_type_name(event.event_type)
    # The engine has no task queue partitions to number tasks by; the event id is
    # unique and increasing like a real task id, and the Replayer ignores it anyway.
    out["taskId"] = str(event.event_id)
    # A command's summary: the engine keeps it with the attributes, Temporal on the event.
    metadata = attributes.pop("userMetadata", None)
    if metadata:
        out["userMetadata"] = metadata
    out[attributes_key(event.event_type)] = attributes
    return out


def _format_timestamp(moment: datetime, event: HistoryEvent) -> str:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise HistoryFormatError(
            f"eventId {event.event_id} ({event.event_type}): event_time {moment.isoformat()} "
            "has no time zone; build events with timezone-aware UTC datetimes, e.g. "
            "datetime.now(timezone.utc)"
        )
    return proto_timestamp(moment)


# --- small helpers -----------------------------------------------------------------


def _where(index: int, event_id: int | None = None, event_type: str | None = None) -> str:
    details = []
    if event_id is not None:
        details.append(f"eventId {event_id}")
    if event_type is not None:
        details.append(event_type)
    suffix = f" ({', '.join(details)})" if details else ""
    return f"events[{index}]{suffix}"


def _dig(mapping: Mapping[str, Any], *keys: str) -> Any:
    current: Any = mapping
    for key in keys:
        if not isinstance(current, Mapping):
            return None
        current = current.get(key)
    return current
