"""Tests for engine.history: Temporal's JSON history format, validation and payloads.

Real histories from public Temporal repositories live in /work/shared/histories (outside
this project); the tests that use them skip when that folder is absent.
"""

from __future__ import annotations

import base64
import json
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

# The project has no packaging/pytest config yet, and pytest's default import mode only
# puts this test's own folder on sys.path; make the project root importable.
_PROJECT_ROOT = Path(__file__).resolve().parents[2]
if str(_PROJECT_ROOT) not in sys.path:
    sys.path.insert(0, str(_PROJECT_ROOT))

from engine._api.proto_json import event_type_name  # noqa: E402
from engine.history import (  # noqa: E402
    KNOWN_EVENT_TYPES,
    History,
    HistoryEvent,
    HistoryFormatError,
    attributes_key,
    decode_payload,
    decode_payloads,
    encode_payload,
    load_history,
)

SHARED_HISTORIES = Path(__file__).resolve().parents[3] / "shared" / "histories"

# Event counts of the shared histories, counted from the files themselves.
EXPECTED_EVENT_COUNTS: dict[str, int] = {
    "go__continue-as-new.json": 5,
    "go__multiple-updates.json": 45,
    "go__side-effect.json": 12,
    "py__test_replayer_command_reordering_backward_compatibility.json": 6,
    "py__test_replayer_complete_history.json": 11,
    "py__test_replayer_event_tracing.json": 26,
    "py__test_replayer_nondeterministic_history.json": 11,
    "py__test_replayer_swallowed_activity_cancellation.json": 48,
    "ts__cancel_fake_progress_history.json": 16,
    "ts__signal_workflow_1_13_1.json": 24,
    "ui__raw-events.ascending.completed.json": 18,
    "vscode__multiple-signals-terminated-after-days.json": 12,
    "vscode__single-activity.json": 11,
}

JSON_PLAIN_B64 = base64.b64encode(b"json/plain").decode()
T0 = datetime(2026, 1, 2, 3, 4, 5, 123456, tzinfo=timezone.utc)


def _shared_files() -> list[Any]:
    if not SHARED_HISTORIES.is_dir():
        return [pytest.param(None, marks=pytest.mark.skip(reason=f"{SHARED_HISTORIES} absent"))]
    return [pytest.param(path, id=path.name) for path in sorted(SHARED_HISTORIES.glob("*.json"))]


def _shared(name: str) -> Path:
    path = SHARED_HISTORIES / name
    if not path.is_file():
        pytest.skip(f"{path} absent")
    return path


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def _event(
    event_id: int, event_type: str, attributes: dict[str, Any] | None = None
) -> dict[str, Any]:
    """A raw JSON event as Temporal exports it."""
    return {
        "eventId": str(event_id),
        "eventTime": "2026-01-02T03:04:05.123456Z",
        "eventType": event_type,
        "taskId": "100",
        attributes_key(event_type): {} if attributes is None else attributes,
    }


def _minimal_document() -> dict[str, Any]:
    """A small, valid completed run: start, one workflow task, completion."""
    return {
        "events": [
            _event(
                1,
                "WorkflowExecutionStarted",
                {
                    "workflowType": {"name": "Greet"},
                    "taskQueue": {"name": "q", "kind": "TASK_QUEUE_KIND_NORMAL"},
                    "workflowTaskTimeout": "10s",
                    "originalExecutionRunId": "run-1",
                    "firstExecutionRunId": "run-1",
                    "attempt": 1,
                },
            ),
            _event(2, "WorkflowTaskScheduled", {"startToCloseTimeout": "10s", "attempt": 1}),
            _event(3, "WorkflowTaskStarted", {"scheduledEventId": "2"}),
            _event(4, "WorkflowTaskCompleted", {"scheduledEventId": "2", "startedEventId": "3"}),
            _event(
                5,
                "WorkflowExecutionCompleted",
                {"result": {"payloads": [encode_payload({"greeting": "héllo"})]},
                 "workflowTaskCompletedEventId": "4"},
            ),
        ]
    }


def _built_history() -> History:
    """The same run as _minimal_document, built the way the engine builds histories."""
    return History.from_json("wf-1", _minimal_document())


# --- shared real histories -----------------------------------------------------------


@pytest.mark.parametrize("path", _shared_files())
def test_shared_history_imports(path: Path) -> None:
    history = load_history(path)

    assert history.workflow_id == path.stem
    assert len(history) == EXPECTED_EVENT_COUNTS[path.name]
    assert [event.event_id for event in history] == list(range(1, len(history) + 1))
    assert history.events[0].event_type == "WorkflowExecutionStarted"
    for event in history:
        assert event.event_type in KNOWN_EVENT_TYPES
        assert event.event_time.utcoffset() == timedelta(0)
        assert isinstance(event.attributes, dict)
    assert history.workflow_type
    assert history.run_id


@pytest.mark.parametrize("path", _shared_files())
def test_shared_history_round_trips(path: Path) -> None:
    history = load_history(path)

    again = History.from_json(history.workflow_id, history.to_json())
    assert [(e.event_id, e.event_type, e.event_time) for e in again] == [
        (e.event_id, e.event_type, e.event_time) for e in history
    ]
    # Zero-valued fields are left out of the export, as Temporal's own exports do: the
    # export is a fixed point, and what it leaves out reads back as absent.
    assert again.to_json() == history.to_json()
    assert History.from_json(history.workflow_id, history.to_json_dict()) == again


@pytest.mark.parametrize("path", _shared_files())
def test_shared_history_export_is_read_by_temporalio(path: Path) -> None:
    from temporalio.client import WorkflowHistory

    history = load_history(path)
    parsed = WorkflowHistory.from_json("wid", history.to_json())
    assert len(parsed.events) == len(history)

    # Stronger: temporalio sees the same protobuf events in our export as in the original
    # file, apart from what we deliberately drop (task ids, versions, sub-microsecond time).
    original = json.loads(path.read_text(encoding="utf-8"))
    original = original.get("history", original)
    from_original = WorkflowHistory.from_json("wid", original)
    assert _comparable(parsed.events) == _comparable(from_original.events)


def _comparable(events: Any) -> list[Any]:
    result = []
    for event in events:
        copy = type(event)()
        copy.CopyFrom(event)
        copy.task_id = 0
        copy.version = 0
        copy.worker_may_ignore = False
        copy.event_time.nanos = copy.event_time.nanos // 1000 * 1000
        result.append(copy)
    return result


def test_vscode_single_activity_facts() -> None:
    history = load_history(_shared("vscode__single-activity.json"))

    assert len(history) == 11
    scheduled = history.events[4]
    assert scheduled.event_id == 5
    assert scheduled.event_type == "ActivityTaskScheduled"
    assert scheduled.attributes["activityType"]["name"] == "httpGet"
    assert scheduled.attributes["activityId"] == "1"
    assert history.workflow_type == "http"
    assert history.run_id == "0d693592-0d25-4be9-b8c6-de6a210da5cc"
    assert history.result() == "<html><body>hello from https://temporal.io</body></html>"
    started = datetime(2022, 7, 28, 23, 47, 39, 929656, tzinfo=timezone.utc)
    assert history.events[0].event_time == started


def test_ui_wrapped_history_is_unwrapped() -> None:
    path = _shared("ui__raw-events.ascending.completed.json")
    raw = json.loads(path.read_text(encoding="utf-8"))
    assert "events" not in raw and "events" in raw["history"]

    history = load_history(path)
    assert len(history) == 18
    assert history.workflow_type == "workflow.completion"
    assert history.events[-1].event_type == "WorkflowExecutionCompleted"
    # The completion has "result": null; that reads as "no result", not an error.
    assert history.result() is None


def test_screaming_event_types_are_normalized() -> None:
    path = _shared("py__test_replayer_event_tracing.json")
    assert "EVENT_TYPE_WORKFLOW_EXECUTION_STARTED" in path.read_text(encoding="utf-8")

    history = load_history(path)
    assert history.events[0].event_type == "WorkflowExecutionStarted"
    assert history.result()[0] == "sig-before-sync"


def test_nanoseconds_are_truncated_to_microseconds() -> None:
    history = load_history(_shared("go__continue-as-new.json"))
    # The file says 2022-12-13T23:18:31.822878008Z.
    started = datetime(2022, 12, 13, 23, 18, 31, 822878, tzinfo=timezone.utc)
    assert history.events[0].event_time == started
    assert history.events[-1].event_type == "WorkflowExecutionContinuedAsNew"
    assert history.result() is None


def test_binary_null_result_decodes_to_none() -> None:
    history = load_history(_shared("ts__cancel_fake_progress_history.json"))
    assert history.events[-1].event_type == "WorkflowExecutionCompleted"
    assert history.result() is None


def test_undecodable_result_names_the_event() -> None:
    # This fixture was hand-edited: its result data is the literal "workflow-result".
    name = "py__test_replayer_command_reordering_backward_compatibility.json"
    history = load_history(_shared(name))
    expected = r"events\[5\] \(eventId 6, WorkflowExecutionCompleted\): result: .*not valid JSON"
    with pytest.raises(HistoryFormatError, match=expected):
        history.result()


# --- export format -------------------------------------------------------------------


def test_to_json_dict_shape() -> None:
    history = History(
        "wf",
        (
            HistoryEvent(1, "WorkflowExecutionStarted", T0, {"workflowType": {"name": "W"}}),
            HistoryEvent(2, "WorkflowTaskScheduled", T0 + timedelta(seconds=1), {}),
        ),
    )
    document = history.to_json_dict()

    assert document == {
        "events": [
            {
                "eventId": "1",
                "eventTime": "2026-01-02T03:04:05.123456Z",
                "eventType": "EVENT_TYPE_WORKFLOW_EXECUTION_STARTED",
                "taskId": "1",
                "workflowExecutionStartedEventAttributes": {"workflowType": {"name": "W"}},
            },
            {
                "eventId": "2",
                "eventTime": "2026-01-02T03:04:06.123456Z",
                "eventType": "EVENT_TYPE_WORKFLOW_TASK_SCHEDULED",
                "taskId": "2",
                "workflowTaskScheduledEventAttributes": {},
            },
        ]
    }
    assert list(document["events"][0]) == [
        "eventId",
        "eventTime",
        "eventType",
        "taskId",
        "workflowExecutionStartedEventAttributes",
    ]
    assert json.loads(history.to_json()) == document
    assert "\n" not in history.to_json(indent=None)


def test_to_json_dict_does_not_alias_attributes() -> None:
    history = _built_history()
    document = history.to_json_dict()
    document["events"][0]["workflowExecutionStartedEventAttributes"]["workflowType"]["name"] = "X"
    assert history.workflow_type == "Greet"


def test_to_json_writes_times_in_utc_as_protobuf_does() -> None:
    """protobuf prints a Timestamp's fraction with 0, 3, 6 or 9 digits, whichever is exact."""
    plus_two = timezone(timedelta(hours=2))
    history = History(
        "wf",
        (
            HistoryEvent(1, "WorkflowExecutionStarted", datetime(2026, 1, 2, 5, tzinfo=plus_two)),
            HistoryEvent(2, "WorkflowTaskScheduled", datetime(999, 1, 1, tzinfo=timezone.utc)),
            HistoryEvent(3, "WorkflowTaskStarted", datetime(2026, 1, 2, 0, 0, 0, 120000, tzinfo=timezone.utc)),
            HistoryEvent(4, "WorkflowTaskCompleted", datetime(2026, 1, 2, 0, 0, 0, 123450, tzinfo=timezone.utc)),
        ),
    )
    times = [event["eventTime"] for event in history.to_json_dict()["events"]]
    assert times == [
        "2026-01-02T03:00:00Z",
        "0999-01-01T00:00:00Z",
        "2026-01-02T00:00:00.120Z",
        "2026-01-02T00:00:00.123450Z",
    ]


def test_to_json_rejects_naive_times() -> None:
    naive = datetime(2026, 1, 2)
    history = History("wf", (HistoryEvent(1, "WorkflowExecutionStarted", naive),))
    with pytest.raises(HistoryFormatError, match="eventId 1 .*no time zone"):
        history.to_json()


def test_to_json_names_the_event_with_unserializable_attributes() -> None:
    history = History(
        "wf",
        (
            HistoryEvent(1, "WorkflowExecutionStarted", T0, {}),
            HistoryEvent(2, "WorkflowTaskScheduled", T0, {"oops": b"raw"}),
        ),
    )
    expected = r"events\[1\] \(eventId 2, WorkflowTaskScheduled\): attributes are not JSON-se"
    with pytest.raises(HistoryFormatError, match=expected):
        history.to_json()


def test_known_event_types_match_temporalio() -> None:
    from temporalio.api.enums.v1 import EventType
    from temporalio.api.history.v1 import HistoryEvent as ProtoHistoryEvent

    from_enum = {
        "".join(word.capitalize() for word in name.removeprefix("EVENT_TYPE_").split("_"))
        for name in EventType.keys()
        if name != "EVENT_TYPE_UNSPECIFIED"
    }
    assert KNOWN_EVENT_TYPES == from_enum

    oneof = ProtoHistoryEvent.DESCRIPTOR.oneofs_by_name["attributes"]
    assert {attributes_key(t) for t in KNOWN_EVENT_TYPES} == {f.json_name for f in oneof.fields}
    assert attributes_key("WorkflowExecutionStarted") == "workflowExecutionStartedEventAttributes"


def test_event_types_as_enum_numbers_read_as_protobuf_reads_them() -> None:
    """protobuf's JSON parser (and so temporalio's loader and Replayer) takes an enum's
    number for its name: "eventType": 1 is WorkflowExecutionStarted."""
    from temporalio.api.enums.v1 import EventType

    from engine.history import _EVENT_TYPE_BY_NUMBER

    document = _minimal_document()
    for event in document["events"]:
        event["eventType"] = EventType.Value(event_type_name(event["eventType"]))
    history = History.from_json("wf", document)
    assert [e.event_type for e in history] == [e.event_type for e in History.from_json("wf", _minimal_document())]
    numbered = {v.number: v.name for v in EventType.DESCRIPTOR.values if v.number}
    assert {n: event_type_name(t) for n, t in _EVENT_TYPE_BY_NUMBER.items()} == numbered
    with pytest.raises(HistoryFormatError, match=r"eventType 999 is not an event type number"):
        History.from_json("wf", {"events": [_event(1, "WorkflowExecutionStarted") | {"eventType": 999}]})


# --- import variants -----------------------------------------------------------------


def test_from_json_accepts_str_bytes_bom_and_mapping() -> None:
    document = _minimal_document()
    text = json.dumps(document)
    expected = History.from_json("wf-1", text)

    assert History.from_json("wf-1", text.encode()) == expected
    assert History.from_json("wf-1", b"\xef\xbb\xbf" + text.encode()) == expected
    assert History.from_json("wf-1", "\ufeff" + text) == expected
    assert History.from_json("wf-1", {"history": document}) == expected
    assert expected == _built_history()


def test_from_json_mapping_is_copied() -> None:
    document = _minimal_document()
    history = History.from_json("wf-1", document)
    document["events"][0]["workflowExecutionStartedEventAttributes"]["workflowType"]["name"] = "X"
    assert history.workflow_type == "Greet"


def test_from_json_normalizes_ids_types_and_times() -> None:
    document = _minimal_document()
    events = document["events"]
    events[0]["eventId"] = 1
    events[1]["eventType"] = "EVENT_TYPE_WORKFLOW_TASK_SCHEDULED"
    events[1]["eventTime"] = "2026-01-02T03:04:05Z"
    events[2]["eventTime"] = "2026-01-02T05:04:05.5+02:00"
    events[3]["eventTime"] = "2026-01-02T03:04:05.123456789Z"
    events[4]["eventTime"] = "2026-01-01T22:34:05.1-04:30"
    # Keys temporalio and the UI write that carry nothing for us.
    events[0].update(version="0", workerMayIgnore=False, userMetadata={}, links=[])

    history = History.from_json("wf", document)

    assert [e.event_id for e in history] == [1, 2, 3, 4, 5]
    assert history.events[1].event_type == "WorkflowTaskScheduled"
    assert [e.event_time for e in history] == [
        T0,
        T0.replace(microsecond=0),
        T0.replace(microsecond=500000),
        T0,
        T0.replace(microsecond=100000),
    ]
    assert all(e.event_time.tzinfo == timezone.utc for e in history)


@pytest.mark.parametrize("digits", range(10))
def test_from_json_accepts_any_fraction_length(digits: int) -> None:
    fraction = "123456789"[:digits]
    document = _minimal_document()
    dotted = f".{fraction}" if digits else ""
    document["events"][0]["eventTime"] = f"2026-01-02T03:04:05{dotted}Z"
    moment = History.from_json("wf", document).events[0].event_time
    assert moment == T0.replace(microsecond=int(fraction[:6].ljust(6, "0") or 0))


def test_missing_attributes_object_reads_as_empty() -> None:
    document = _minimal_document()
    del document["events"][1]["workflowTaskScheduledEventAttributes"]
    history = History.from_json("wf", document)
    assert history.events[1].attributes == {}
    assert "workflowTaskScheduledEventAttributes" in history.to_json_dict()["events"][1]


def test_history_conveniences() -> None:
    history = _built_history()

    assert len(history) == 5
    assert [e.event_type for e in history][-1] == "WorkflowExecutionCompleted"
    assert history.workflow_type == "Greet"
    assert history.run_id == "run-1"
    assert history.result() == {"greeting": "héllo"}


def test_run_id_falls_back_and_result_needs_completion() -> None:
    document = _minimal_document()
    del document["events"][0]["workflowExecutionStartedEventAttributes"]["originalExecutionRunId"]
    document["events"] = document["events"][:4]
    history = History.from_json("wf", document)
    assert history.run_id == "run-1"
    assert history.result() is None

    del document["events"][0]["workflowExecutionStartedEventAttributes"]["firstExecutionRunId"]
    assert History.from_json("wf", document).run_id == ""
    assert History("wf", ()).run_id == ""
    assert History("wf", ()).workflow_type == ""
    assert History("wf", ()).result() is None


def test_load_history_uses_file_stem_and_prefixes_errors(tmp_path: Path) -> None:
    good = tmp_path / "order-42.json"
    good.write_text(json.dumps(_minimal_document()), encoding="utf-8")
    assert load_history(good).workflow_id == "order-42"
    assert load_history(str(good)) == load_history(good)

    bad = tmp_path / "broken.json"
    bad.write_text('{"events": [', encoding="utf-8")
    with pytest.raises(HistoryFormatError) as info:
        load_history(bad)
    assert str(info.value).startswith(f"{bad}: history is not valid JSON")

    with pytest.raises(FileNotFoundError):
        load_history(tmp_path / "missing.json")


# --- malformed input -----------------------------------------------------------------


def _with(change: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    document = _minimal_document()
    change(document)
    return document


def _set_event(index: int, key: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(document: dict[str, Any]) -> None:
        document["events"][index][key] = value

    return change


def _del_event(index: int, key: str) -> Callable[[dict[str, Any]], None]:
    def change(document: dict[str, Any]) -> None:
        del document["events"][index][key]

    return change


def _drop_event(index: int) -> Callable[[dict[str, Any]], None]:
    def change(document: dict[str, Any]) -> None:
        del document["events"][index]

    return change


def _swap_attributes(index: int, new_key: str) -> Callable[[dict[str, Any]], None]:
    def change(document: dict[str, Any]) -> None:
        event = document["events"][index]
        old_key = attributes_key(event["eventType"])
        event[new_key] = event.pop(old_key)

    return change


WTS_ATTRS = "workflowTaskScheduledEventAttributes"

# (test id, input, regex the message must match). Inputs are JSON text or a parsed
# document derived from _minimal_document() with one thing broken.
MALFORMED: list[Any] = [
    pytest.param(
        '{"events": [}', r"not valid JSON: Expecting value at line 1 column 13", id="not-json"
    ),
    pytest.param("", r"not valid JSON: .* at line 1 column 1", id="empty-text"),
    pytest.param(b"\xff\xfe{}", r"not UTF-8", id="not-utf8"),
    pytest.param(
        "[]",
        r"top level must be a JSON object .* found a list; if this is a bare list",
        id="top-list",
    ),
    pytest.param(
        '"events"', r"top level must be a JSON object .* found a string", id="top-string"
    ),
    pytest.param(
        '{"evnts": []}', r"no \"events\" key \(top-level keys: 'evnts'\)", id="no-events"
    ),
    pytest.param(
        '{"events": {}}', r"\"events\" must be a list .* found an object", id="events-not-list"
    ),
    pytest.param('{"events": []}', r"history is empty", id="empty-history"),
    pytest.param('{"history": {"events": []}}', r"history is empty", id="empty-wrapped"),
    pytest.param(
        _with(lambda d: d["events"].__setitem__(1, "x")),
        r"events\[1\]: event must be an object, found a string",
        id="event-not-object",
    ),
    pytest.param(
        _with(_del_event(2, "eventType")),
        r"events\[2\] \(eventId 3\): missing \"eventType\"",
        id="no-type",
    ),
    pytest.param(
        _with(_set_event(2, "eventType", "WorkflowTaskStartd")),
        r"events\[2\] \(eventId 3\): unknown eventType 'WorkflowTaskStartd'; "
        r"did you mean WorkflowTaskStarted.*valid types include",
        id="unknown-type",
    ),
    pytest.param(
        _with(_set_event(2, "eventType", "EVENT_TYPE_UNSPECIFIED")),
        r"unknown eventType 'EVENT_TYPE_UNSPECIFIED'",
        id="unspecified-type",
    ),
    pytest.param(
        _with(_set_event(2, "eventType", 0)),
        r"events\[2\] \(eventId 3\): eventType 0 is not an event type number \(1 to \d+\)",
        id="numeric-type",
    ),
    pytest.param(
        _with(_del_event(1, "eventId")),
        r"events\[1\]: missing \"eventId\"; .*\"eventId\": \"2\"",
        id="no-id",
    ),
    pytest.param(
        _with(_set_event(1, "eventId", "two")),
        r"events\[1\]: eventId 'two' is not an integer",
        id="id-not-int",
    ),
    pytest.param(
        _with(_set_event(1, "eventId", True)),
        r"events\[1\]: eventId True is not an integer",
        id="id-bool",
    ),
    pytest.param(
        _with(_set_event(1, "eventId", 2.5)),
        r"events\[1\]: eventId 2.5 is not an integer",
        id="id-float",
    ),
    pytest.param(
        _with(_drop_event(2)),
        r"events\[2\]: expected eventId 3 but found 4; .*without gaps",
        id="gap",
    ),
    pytest.param(
        _with(_set_event(2, "eventId", "2")),
        r"events\[2\]: expected eventId 3 but found 2",
        id="repeat",
    ),
    pytest.param(
        _with(_set_event(0, "eventId", 0)),
        r"events\[0\]: expected eventId 1 but found 0",
        id="from-zero",
    ),
    pytest.param(
        _with(_drop_event(0)),
        r"events\[0\]: expected eventId 1 but found 2",
        id="truncated-ids",
    ),
    pytest.param(
        {"events": [_event(1, "WorkflowTaskScheduled")]},
        r"events\[0\] \(eventId 1, WorkflowTaskScheduled\): the first event must be "
        r"WorkflowExecutionStarted, found WorkflowTaskScheduled",
        id="first-not-started",
    ),
    pytest.param(
        _with(_set_event(3, "eventTime", "yesterday")),
        r"events\[3\] \(eventId 4, WorkflowTaskCompleted\): eventTime 'yesterday' is not "
        r"an RFC 3339 timestamp",
        id="bad-time",
    ),
    pytest.param(
        _with(_set_event(3, "eventTime", "2026-13-02T03:04:05Z")),
        r"eventTime '2026-13-02T03:04:05Z' is not an RFC 3339",
        id="month-13",
    ),
    pytest.param(
        _with(_set_event(3, "eventTime", "2026-01-02T03:04:05")),
        r"is not an RFC 3339 timestamp; use UTC with a 'Z'",
        id="no-zone",
    ),
    pytest.param(
        _with(_set_event(3, "eventTime", 1767323045)),
        r"eventTime 1767323045 is not an RFC 3339",
        id="epoch-time",
    ),
    pytest.param(
        _with(_set_event(1, WTS_ATTRS, [])),
        r"events\[1\] \(eventId 2, WorkflowTaskScheduled\): "
        r"\"workflowTaskScheduledEventAttributes\" must be an object, found a list",
        id="attrs-list",
    ),
    pytest.param(
        _with(_swap_attributes(1, "timerStartedEventAttributes")),
        r"events\[1\] \(eventId 2, WorkflowTaskScheduled\): has "
        r"\"timerStartedEventAttributes\", which belongs to TimerStarted events",
        id="attrs-other-type",
    ),
    pytest.param(
        _with(_set_event(1, "activityTaskScheduledEventAttributes", {})),
        r"belongs to ActivityTaskScheduled events",
        id="attrs-extra-type",
    ),
]


@pytest.mark.parametrize(("data", "message"), MALFORMED)
def test_malformed_history_is_rejected_clearly(data: Any, message: str) -> None:
    with pytest.raises(HistoryFormatError, match=message):
        History.from_json("wf", data)


def test_history_format_error_is_a_value_error() -> None:
    assert issubclass(HistoryFormatError, ValueError)


# --- payloads ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        None,
        True,
        0,
        -12345678901234567890,
        1.5,
        "",
        "héllo wörld ✓ 日本語 😀",
        [1, "two", [3.0, None]],
        {"nested": {"list": [{"deep": "ünïcode"}], "empty": {}}, "n": None},
    ],
)
def test_encode_decode_round_trip(value: Any) -> None:
    payload = encode_payload(value)
    assert payload["metadata"] == {"encoding": JSON_PLAIN_B64}
    assert decode_payload(payload) == value
    assert decode_payloads({"payloads": [payload, payload]}) == [value, value]


def test_encode_payload_is_compact_and_matches_temporalio() -> None:
    from temporalio.converter import JSONPlainPayloadConverter

    value = {"b": [1, 2], "a": "é"}
    payload = encode_payload(value)
    assert base64.b64decode(payload["data"]) == b'{"a":"\\u00e9","b":[1,2]}'
    theirs = JSONPlainPayloadConverter().to_payload(value)
    assert theirs is not None
    assert base64.b64decode(payload["data"]) == theirs.data


def test_encode_payload_rejects_non_json_values() -> None:
    with pytest.raises(TypeError, match="encode_payload needs a plain JSON value"):
        encode_payload({"raw": b"bytes"})


def test_decode_payload_other_encodings() -> None:
    def payload(encoding: str, data: str | None = None) -> dict[str, Any]:
        result: dict[str, Any] = {"metadata": {"encoding": encoding}}
        if data is not None:
            result["data"] = data
        return result

    assert decode_payload(payload(_b64("binary/null"))) is None
    assert decode_payload(payload(_b64("binary/null"), "")) is None
    assert decode_payload(payload(_b64("binary/plain"), _b64("raw"))) == b"raw"
    assert decode_payload(payload(_b64("json/protobuf"), _b64("{}"))) == b"{}"
    assert decode_payload({"data": _b64("raw")}) == b"raw"
    # URL-safe, unpadded base64 is also what proto JSON readers accept.
    unpadded = base64.urlsafe_b64encode(b'"?>"').decode().rstrip("=")
    assert decode_payload(payload(JSON_PLAIN_B64.rstrip("="), unpadded)) == "?>"


def test_decode_payloads_empty_forms() -> None:
    assert decode_payloads(None) == []
    assert decode_payloads({}) == []
    assert decode_payloads({"payloads": []}) == []


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ("x", "payload must be an object"),
        ({"metadata": [], "data": ""}, "payload metadata must be an object"),
        (
            {"metadata": {"encoding": JSON_PLAIN_B64}, "data": "!!!"},
            "payload data '!!!' is not valid base64",
        ),
        (
            {"metadata": {"encoding": JSON_PLAIN_B64}, "data": _b64("{nope")},
            "json/plain payload data is not valid JSON",
        ),
        ({"metadata": {"encoding": 5}, "data": ""}, "metadata.encoding must be a base64 string"),
    ],
)
def test_decode_payload_errors(payload: Any, message: str) -> None:
    with pytest.raises(HistoryFormatError, match=message):
        decode_payload(payload)


def test_decode_payloads_errors() -> None:
    with pytest.raises(HistoryFormatError, match=r"expected an object like \{\"payloads\""):
        decode_payloads([])  # type: ignore[arg-type]
    with pytest.raises(HistoryFormatError, match="\"payloads\" must be a list"):
        decode_payloads({"payloads": {}})


_json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
)
_json_values = st.recursive(
    _json_scalars,
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(), children, max_size=5)
    ),
    max_leaves=25,
)


@given(_json_values)
def test_payload_round_trip_property(value: Any) -> None:
    payload = encode_payload(value)
    assert decode_payload(payload) == value
    # Payloads survive a trip through a history export unchanged.
    history = History(
        "wf",
        (HistoryEvent(1, "WorkflowExecutionStarted", T0, {"input": {"payloads": [payload]}}),),
    )
    again = History.from_json("wf", history.to_json())
    assert decode_payloads(again.events[0].attributes["input"]) == [value]


# --- histories without eventTime (temporalio's loader and Replayer accept them) ------------

_PROJECT_HISTORIES = sorted(p for p in (_PROJECT_ROOT / "tests" / "histories").glob("*.json") if p.name != "recorded_with.json")


def _without_times(document: dict[str, Any], *, keep: str | None = None, null: bool = False) -> dict[str, Any]:
    document = json.loads(json.dumps(document))
    events = document["history"]["events"] if "history" in document else document["events"]
    for event in events:
        if keep is not None and _normalized_type(event["eventType"]) == keep:
            continue
        if null:
            event["eventTime"] = None
        else:
            event.pop("eventTime", None)
    return document


def _normalized_type(value: str) -> str:
    if value.startswith("EVENT_TYPE_"):
        return "".join(word.capitalize() for word in value[len("EVENT_TYPE_"):].split("_"))
    return value


@pytest.mark.parametrize("null", [False, True], ids=["absent", "null"])
@pytest.mark.parametrize("path", _PROJECT_HISTORIES + [p.values[0] for p in _shared_files() if p.values[0]],
                         ids=lambda p: p.name if isinstance(p, Path) else str(p))
def test_histories_without_event_times_load_and_export(path: Path, null: bool) -> None:
    from temporalio.client import WorkflowHistory

    original = History.from_json(path.stem, path.read_text(encoding="utf-8"))
    document = _without_times(json.loads(path.read_text(encoding="utf-8")), null=null)
    WorkflowHistory.from_json(path.stem, document.get("history", document))  # temporalio's loader takes it
    history = History.from_json(path.stem, document)
    assert [e.event_time for e in history] == [None] * len(original)
    assert [(e.event_type, e.attributes) for e in history] == [(e.event_type, e.attributes) for e in original]
    exported = history.to_json_dict()
    assert all("eventTime" not in event for event in exported["events"])
    assert WorkflowHistory.from_json(path.stem, history.to_json()).events[0].event_time.seconds == 0
    assert History.from_json(path.stem, exported).to_json() == history.to_json()


def test_some_events_without_time_keep_the_others() -> None:
    document = _minimal_document()
    del document["events"][1]["eventTime"]
    history = History.from_json("wf", document)
    assert history.events[1].event_time is None
    assert history.events[2].event_time == T0


def test_null_attributes_and_integral_float_ids_read_as_protobuf_reads_them() -> None:
    document = _minimal_document()
    document["events"][1]["workflowTaskScheduledEventAttributes"] = None
    document["events"][2]["eventId"] = 3.0
    history = History.from_json("wf", document)
    assert history.events[1].attributes == {} and history.events[2].event_id == 3


async def test_our_replayer_replays_a_history_with_times_only_on_workflow_task_started() -> None:
    """What temporalio's Replayer needs (a time on WorkflowTaskStarted) is enough for ours;
    with no times at all workflow.now() falls back to the last time known, else the epoch."""
    from engine import Worker
    from engine.replay import Replayer
    from engine.testing import WorkflowEnvironment
    from tests.engine.workflows import Sleeper

    async with await WorkflowEnvironment.start_time_skipping() as env:
        async with Worker(env.client, task_queue="q", workflows=[Sleeper]):
            handle = await env.client.start_workflow(Sleeper.run, 1, id="s", task_queue="q")
            assert await handle.result() == "86460"  # workflow.now() after a day and a minute
            recorded = await handle.fetch_history()
    for keep in ("WorkflowTaskStarted", None):
        history = History.from_json("s", _without_times(recorded.to_json_dict(), keep=keep))
        result = Replayer(workflows=[Sleeper]).replay_workflow(history, raise_on_replay_failure=False)
        assert result.replay_failure is None, (keep, result.replay_failure)


def test_pascal_case_enum_values_get_their_full_names() -> None:
    """Older exports write "Normal" where protobuf reads "TASK_QUEUE_KIND_NORMAL"; so does
    temporalio's loader, in the same fields."""
    document = _minimal_document()
    document["events"][0]["workflowExecutionStartedEventAttributes"]["taskQueue"]["kind"] = "Normal"
    document["events"][0]["workflowExecutionStartedEventAttributes"]["initiator"] = "Workflow"
    document["events"][3] = _event(4, "WorkflowTaskFailed", {"cause": "UnhandledCommand", "failure": {
        "message": "x", "cause": {"message": "y", "activityFailureInfo": {"retryState": "NonRetryableFailure"}}}})
    history = History.from_json("wf", document)
    started = history.events[0].attributes
    assert started["taskQueue"]["kind"] == "TASK_QUEUE_KIND_NORMAL"
    assert started["initiator"] == "CONTINUE_AS_NEW_INITIATOR_WORKFLOW"
    failed = history.events[3].attributes
    assert failed["cause"] == "WORKFLOW_TASK_FAILED_CAUSE_UNHANDLED_COMMAND"
    assert failed["failure"]["cause"]["activityFailureInfo"]["retryState"] == "RETRY_STATE_NON_RETRYABLE_FAILURE"
    assert failed["failure"]["cause"]["message"] == "y"
