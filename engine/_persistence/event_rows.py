"""How a history event is stored in a row of ``events`` (schema 10), compactly, and read back.

A three-activity workflow's 23 events took about 8 KB as JSON text keyed by a 36-character
run id; stored this way they take under a quarter of that, and every event reads back as the
same attributes (same keys, same order, same values), so exports stay byte for byte the same:

- ``run``: the run's ``executions.id`` (a small integer) instead of its run id in every row
  and in the table's key; ``RUN_KEY`` is the SQL that finds it from a run id.
- ``event_type``: a small integer, the type's position in ``EVENT_TYPES`` (a type not listed
  there is stored as its name, so nothing is refused).
- ``event_time``: microseconds since the Unix epoch (an integer; rows of older schemas hold the
  text the engine formatted, which reads back to the same instant).
- ``attributes``: the attributes' JSON with the engine's most frequent fragments (a json/plain
  payload's head, a task queue, ``"scheduledEventId":"``...) each replaced by one control
  byte (a BLOB). JSON text never holds a raw control byte (JSON escapes them inside strings),
  so the substitution is exactly undone; a text that does hold one (a document with tabs or
  newlines between its values) is stored as it is, as TEXT. Only ``bytes.replace`` runs, in
  C: 1-2 us per event to write and 0.5 us to read, where zlib costs 6 us or more to write.

``EVENT_TYPES`` and ``_FRAGMENTS`` are part of the file format: append to them, never reorder
or edit an entry (rows written with the old table would read back wrong).
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta, timezone
from typing import Any, Iterable, Iterator

import orjson

from engine._api.durations import from_timestamp

# The run key of a run id, as a scalar subquery (``executions.run_id`` is unique).
RUN_KEY = "(SELECT id FROM executions WHERE run_id = ?)"

EVENT_TYPES: tuple[str, ...] = (
    "WorkflowExecutionStarted", "WorkflowExecutionCompleted", "WorkflowExecutionFailed",
    "WorkflowExecutionTimedOut", "WorkflowTaskScheduled", "WorkflowTaskStarted", "WorkflowTaskCompleted",
    "WorkflowTaskTimedOut", "WorkflowTaskFailed", "ActivityTaskScheduled", "ActivityTaskStarted",
    "ActivityTaskCompleted", "ActivityTaskFailed", "ActivityTaskTimedOut", "ActivityTaskCancelRequested",
    "ActivityTaskCanceled", "TimerStarted", "TimerFired", "TimerCanceled", "WorkflowExecutionCancelRequested",
    "WorkflowExecutionCanceled", "RequestCancelExternalWorkflowExecutionInitiated",
    "RequestCancelExternalWorkflowExecutionFailed", "ExternalWorkflowExecutionCancelRequested", "MarkerRecorded",
    "WorkflowExecutionSignaled", "WorkflowExecutionTerminated", "WorkflowExecutionContinuedAsNew",
    "StartChildWorkflowExecutionInitiated", "StartChildWorkflowExecutionFailed", "ChildWorkflowExecutionStarted",
    "ChildWorkflowExecutionCompleted", "ChildWorkflowExecutionFailed", "ChildWorkflowExecutionCanceled",
    "ChildWorkflowExecutionTimedOut", "ChildWorkflowExecutionTerminated", "SignalExternalWorkflowExecutionInitiated",
    "SignalExternalWorkflowExecutionFailed", "ExternalWorkflowExecutionSignaled", "UpsertWorkflowSearchAttributes",
    "WorkflowExecutionUpdateAccepted", "WorkflowExecutionUpdateRejected", "WorkflowExecutionUpdateCompleted",
    "WorkflowPropertiesModifiedExternally", "ActivityPropertiesModifiedExternally", "WorkflowPropertiesModified",
    "WorkflowExecutionUpdateAdmitted",
)  # fmt: skip

TYPE_CODES = {name: code for code, name in enumerate(EVENT_TYPES, 1)}

# Frequent fragments of the engine's event JSON. Control bytes 1-31 but tab, newline and
# carriage return (JSON's whitespace) are the tokens: at most 28 fragments.
_FRAGMENTS: tuple[bytes, ...] = (
    b'{"payloads":[{"metadata":{"encoding":"anNvbi9wbGFpbg=="},"data":"',  # a json/plain payload
    b'"}]}',
    b'"taskQueue":{"name":"',
    b'","kind":"TASK_QUEUE_KIND_NORMAL"}',
    b'"identity":"',
    b'"scheduledEventId":"',
    b'","startedEventId":"',
    b'"requestId":"',
    b'"workflowTaskCompletedEventId":"',
    b'"startToCloseTimeout":"10s","attempt":1}',
    b'{"activityId":"',
    b'","activityType":{"name":"',
    b',"header":{},"input":',
    b',"scheduleToCloseTimeout":"0s","scheduleToStartTimeout":"0s","startToCloseTimeout":"',
    b'","heartbeatTimeout":"0s","retryPolicy":{"initialInterval":"1s","backoffCoefficient":2.0,'
    b'"maximumInterval":"100s","maximumAttempts":0,"nonRetryableErrorTypes":[]},"useWorkflowBuildId":true,',
    b'"sdkMetadata":{"coreUsedFlags":[1,2]}',
    b'{"result":',
    b'{"workflowType":{"name":"',
    b'"workflowTaskTimeout":"10s","originalExecutionRunId":"',
    b'","firstExecutionRunId":"',
    b'","attempt":1,"firstWorkflowTaskBackoff":"0s","header":{},"workflowId":"',
    b',"attempt":1}',
    b'"failure":{"message":"',
    b'"applicationFailureInfo":{"type":"',
    b'"timerId":"',
    b'"workflowId":"',
    b'"signalName":"',
    b'","runId":"',
)  # fmt: skip
_TOKENS = tuple(bytes([b]) for b in range(1, 32) if b not in (9, 10, 13))
assert len(_FRAGMENTS) <= len(_TOKENS)

# Which fragments each type's JSON is searched for (a few replaces per event, not all 28);
# other types get the common ones. Order matters only for how much is saved.
_COMMON = (0, 1, 4, 5, 6, 22, 23, 25)
_BY_TYPE: dict[str, tuple[int, ...]] = {
    "WorkflowExecutionStarted": (17, 2, 3, 0, 1, 18, 4, 19, 20),
    "WorkflowTaskScheduled": (2, 3, 9),
    "WorkflowTaskStarted": (4, 7, 5),
    "WorkflowTaskCompleted": (5, 6, 4, 15),
    "WorkflowTaskFailed": (5, 6, 4, 22, 23),
    "ActivityTaskScheduled": (10, 11, 2, 3, 12, 0, 1, 13, 14, 8),
    "ActivityTaskStarted": (5, 4, 7, 21, 23),
    "ActivityTaskCompleted": (16, 0, 1, 5, 4, 6),
    "ActivityTaskFailed": (22, 23, 5, 6, 4),
    "ActivityTaskTimedOut": (22, 23, 5, 6),
    "WorkflowExecutionCompleted": (16, 0, 1, 8),
    "WorkflowExecutionFailed": (22, 23, 8),
    "TimerStarted": (24, 8),
    "TimerFired": (24, 6),
    "WorkflowExecutionSignaled": (26, 0, 1, 4),
    "ChildWorkflowExecutionStarted": (25, 27, 5),
    "ChildWorkflowExecutionCompleted": (16, 0, 1, 25, 27, 5, 6),
}
_PAIRS: dict[Any, tuple[tuple[bytes, bytes], ...]] = {
    name: tuple((_FRAGMENTS[i], _TOKENS[i]) for i in indexes) for name, indexes in _BY_TYPE.items()
}
_COMMON_PAIRS = tuple((_FRAGMENTS[i], _TOKENS[i]) for i in _COMMON)
# By stored type (its code, or its name when it has none), to read rows back.
_PAIRS_BY_STORED: dict[Any, tuple[tuple[bytes, bytes], ...]] = {
    **{TYPE_CODES.get(name, name): pairs for name, pairs in _PAIRS.items()},
}
_HAS_CONTROL = re.compile(rb"[\x00-\x1f]").search

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MICROSECOND = timedelta(microseconds=1)


def type_value(event_type: str) -> int | str:
    """``event_type`` as stored."""
    return TYPE_CODES.get(event_type, event_type)


def type_name(stored: int | str) -> str:
    if isinstance(stored, int):
        return EVENT_TYPES[stored - 1]
    return stored


def time_value(when: datetime) -> int:
    """An event time (timezone-aware) as stored: microseconds since the epoch, exactly."""
    return (when - _EPOCH) // _MICROSECOND


def event_datetime(stored: int | str) -> datetime:
    if isinstance(stored, int):
        # The float path is exact to the microsecond while a double's spacing near the value
        # is under a microsecond (before 2**32 s, in 2106; its error is then at most a
        # quarter of one); later and earlier times add exactly.
        if 0 <= stored < _FLOAT_EXACT:
            return _from_seconds(stored / 1e6, timezone.utc)
        return _EPOCH + timedelta(0, 0, stored)
    return from_timestamp(stored)


_FLOAT_EXACT = 2**32 * 1_000_000
_from_seconds = datetime.fromtimestamp


def pack(event_type: str, text: str) -> bytes | str:
    """The attributes' JSON ``text`` as stored for an event of ``event_type``."""
    data = text.encode()
    if _HAS_CONTROL(data):
        return text
    for fragment, token in _PAIRS.get(event_type, _COMMON_PAIRS):
        data = data.replace(fragment, token)
    return data


def pack_dumped(event_type: str, text: str) -> bytes:
    """``pack`` for a text of ``engine._persistence.transactions.dumps``, which never holds a
    raw control byte (orjson and json escape them; neither writes whitespace): no check."""
    data = text.encode()
    for fragment, token in _PAIRS.get(event_type, _COMMON_PAIRS):
        data = data.replace(fragment, token)
    return data


def unpack_json(stored_type: int | str, stored: bytes | str) -> bytes | str:
    """The attributes' JSON text of a stored row (bytes when it was packed)."""
    if isinstance(stored, str):
        return stored
    for fragment, token in _PAIRS_BY_STORED.get(stored_type, _COMMON_PAIRS):
        stored = stored.replace(token, fragment)
    return stored


def unpack(stored_type: int | str, stored: bytes | str) -> Any:
    """The attributes of a stored row."""
    text = unpack_json(stored_type, stored)
    try:
        return _loads(text)
    except orjson.JSONDecodeError:  # integers beyond 64 bits, which only json reads
        return json.loads(text)


_loads = orjson.loads


_EVENTS = (
    "SELECT event_id, event_type, event_time, attributes FROM events WHERE run = " + RUN_KEY + " AND event_id > ? "
    "ORDER BY event_id"
)


def read_rows(conn: Any, run_id: str, after: int = 0) -> Iterator[tuple[int, str, datetime, Any]]:
    """(event id, type, time, attributes) of the run's events after ``after``, in order."""
    return decode_rows(conn.execute(_EVENTS, (run_id, after)))


def stored_rows(conn: Any, run_id: str, after: int = 0) -> list[tuple[Any, ...]]:
    """The run's rows after ``after`` as stored, for ``decode_rows`` to decode later."""
    return conn.execute(_EVENTS, (run_id, after)).fetchall()  # type: ignore[no-any-return]


def decode_rows(rows: Iterable[tuple[Any, ...]]) -> Iterator[tuple[int, str, datetime, Any]]:
    """(event id, type, time, attributes) of rows as stored."""
    for event_id, stored_type, stored_time, stored in rows:
        yield event_id, type_name(stored_type), event_datetime(stored_time), unpack(stored_type, stored)


def read_attributes(conn: Any, run_id: str, event_id: int) -> tuple[str, Any] | None:
    """(type, attributes) of one event of the run, or None."""
    row = conn.execute(
        "SELECT event_type, attributes FROM events WHERE run = " + RUN_KEY + " AND event_id = ?", (run_id, event_id)
    ).fetchone()
    return None if row is None else (type_name(row[0]), unpack(row[0], row[1]))


def child_started_event(conn: Any, run_id: str, initiated: int) -> tuple[int] | None:
    """(event id,) of the run's ChildWorkflowExecutionStarted for the child initiated by
    event ``initiated``, or None."""
    rows = conn.execute(
        "SELECT event_id, event_type, attributes FROM events WHERE run = " + RUN_KEY + " AND event_type = ? ORDER BY event_id",
        (run_id, type_value("ChildWorkflowExecutionStarted")),
    )
    for event_id, stored_type, stored in rows:
        if unpack(stored_type, stored).get("initiatedEventId") == str(initiated):
            return (event_id,)
    return None


def repack(conn: Any, chunk: int = 2000) -> None:
    """Rewrite rows of older schemas (times and JSON as text) the compact way; part of the
    migration to schema 10 (inside its transaction)."""
    after: tuple[int, int] = (0, 0)
    while True:
        rows = conn.execute(
            "SELECT run, event_id, event_type, event_time, attributes FROM events WHERE (run, event_id) > (?, ?) "
            "AND (typeof(event_time) = 'text' OR typeof(attributes) = 'text') ORDER BY run, event_id LIMIT ?",
            (*after, chunk),
        ).fetchall()
        if not rows:
            return
        conn.executemany(
            "UPDATE events SET event_time = ?, attributes = ? WHERE run = ? AND event_id = ?",
            [
                (
                    time_value(event_datetime(stored_time)),
                    pack(type_name(stored_type), stored) if isinstance(stored, str) else stored,
                    run,
                    event_id,
                )
                for run, event_id, stored_type, stored_time, stored in rows
            ],
        )
        after = (rows[-1][0], rows[-1][1])


def readable_view() -> str:
    """``CREATE VIEW history``: the events as schema 9 stored them (run id, type name, time
    and JSON as text), in plain SQL, so that anyone reading the file with ``sqlite3`` (a
    tutorial does, to see what a codec hides) needs no engine code. Every token is put back
    whatever the event's type: a token byte stands for one fragment only."""
    # Seven replace() calls a level: SQLite's parser refuses 28 nested in one expression.
    source = "(SELECT run, event_id, event_type, event_time, CAST(attributes AS TEXT) AS a FROM events)"
    for start in range(0, len(_FRAGMENTS), 7):
        a = "a"
        for fragment, token in zip(_FRAGMENTS[start : start + 7], _TOKENS[start : start + 7]):
            a = f"replace({a}, char({token[0]}), '{fragment.decode()}')"
        source = f"(SELECT run, event_id, event_type, event_time, {a} AS a FROM {source})"
    names = " ".join(f"WHEN {code} THEN '{name}'" for code, name in enumerate(EVENT_TYPES, 1))
    return (
        "CREATE VIEW history (run_id, event_id, event_type, event_time, attributes) AS SELECT x.run_id, e.event_id, "
        f"CASE e.event_type {names} ELSE e.event_type END, "
        "CASE typeof(e.event_time) WHEN 'integer' THEN strftime('%Y-%m-%dT%H:%M:%S', e.event_time / 1000000, 'unixepoch') "
        "|| printf('.%06dZ', e.event_time % 1000000) ELSE e.event_time END, "
        f"e.a FROM {source} e JOIN executions x ON x.id = e.run"
    )
