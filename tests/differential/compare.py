"""Puts two histories of the same code in a form where only meaningful differences remain.

Everything in a Temporal JSON history is compared except what ``IGNORED_FIELDS`` and
``IGNORED_EVENTS`` list, each with the reason Temporal itself lets it differ between two runs
of the same code. What stays is made comparable without losing meaning: a reference to
another event names it (``activity 3``, ``timer 1``, ``child <id>``) or gives its position
among the compared events, run ids become ``<workflow id>#run<n>`` (so links between runs are
still compared), payloads are decoded, durations become seconds.
"""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass
from typing import Any, Iterable

# field name (at any depth) -> why two runs of the same code may differ in it
IGNORED_FIELDS: dict[str, str] = {
    "eventTime": "a timestamp: two runs never happen at the same moment",
    "taskId": "the server's internal sequence number of the write",
    "identity": "names the worker or client process (pid@host)",
    "requestId": "a random id per request",
    "workerVersion": "the worker's build id, a hash of its process's code",
    "historySizeBytes": "the size so far, which depends on ids, identities and the workflow tasks",
    "stackTrace": "file paths and line numbers of the SDK's own frames",
    "workflowTaskCompletedEventId": "workflow-task events are not compared (IGNORED_EVENTS)",
    "expirationTime": "a timestamp (start time plus a timeout)",
    "eventId": "renumbered: the compared events' positions are compared instead",
    "version": "the server's failover version, always 0 on a single cluster",
    "workflowExecutionExpirationTime": "a timestamp (start time plus the execution timeout)",
    "parentInitiatedEventId": "an event id in the parent's history, whose numbering counts its workflow-task events",
    "externalInitiatedEventId": "an event id in the sender's history, whose numbering counts its workflow-task events",
    "updateId": "a random id the client makes for each update call",
    "protocolInstanceId": "the update's id (see updateId)",
    "acceptedRequestMessageId": "made from the update's id (see updateId)",
    "createTime": "a timestamp (an auto-reset point's: when its workflow task completed)",
    "expireTime": "a timestamp (an auto-reset point's: its run's close plus the namespace's retention)",
    "buildId": "an auto-reset point's build id, a hash of the worker's code (see workerVersion)",
}
# fields whose value the server makes up, so only their presence is compared
SERVER_MADE: dict[str, str] = {
    "namespaceId": "the namespace's id, a UUID made when the server created the namespace",
    "parentWorkflowNamespaceId": "see namespaceId",
}
# event type -> why its presence and number may differ between two runs of the same code
IGNORED_EVENTS: dict[str, str] = {
    "WorkflowTaskScheduled": "how many workflow tasks a run takes depends on when results, signals "
    "and timers arrive relative to each other (Temporal batches what arrives while a task runs)",
    "WorkflowTaskStarted": "see WorkflowTaskScheduled",
    "WorkflowTaskCompleted": "see WorkflowTaskScheduled",
    "WorkflowTaskTimedOut": "a slow worker on a loaded machine; Temporal retries the task",
}
# WorkflowTaskFailed causes that are timing, not code -> why
IGNORED_TASK_FAILURES: dict[str, str] = {
    "WORKFLOW_TASK_FAILED_CAUSE_UNHANDLED_COMMAND": "the server refuses to close a run while events arrived "
    "during its workflow task (a late activity result, a signal), and the worker runs a new task: a timing race",
    "WORKFLOW_TASK_FAILED_CAUSE_FORCE_CLOSE_COMMAND": "the run was terminated while one of its workflow tasks ran "
    "(here by a parent-close policy): the server fails that task first; whether one was running is timing",
}
# fields that hold the id of another event in the same history
EVENT_REFERENCES = {"scheduledEventId", "startedEventId", "initiatedEventId", "latestCancelRequestedEventId"}
RUN_ID_FIELDS = {
    "runId", "originalExecutionRunId", "firstExecutionRunId", "continuedExecutionRunId", "newExecutionRunId", "baseRunId", "newRunId",
}
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)s$")
_EVENT_TYPE = re.compile(r"^EVENT_TYPE_")


def event_type(raw: dict[str, Any]) -> str:
    """``EVENT_TYPE_ACTIVITY_TASK_SCHEDULED`` -> ``ActivityTaskScheduled``."""
    name = _EVENT_TYPE.sub("", str(raw["eventType"]))
    return "".join(part.capitalize() for part in name.split("_")) if "_" in name or name.isupper() else name


def run_names(histories: Iterable[dict[str, Any]]) -> dict[str, str]:
    """Each run id of the fetched histories -> ``<workflow id>#run<n>`` (n counts from 1 per workflow id)."""
    names: dict[str, str] = {}
    count: dict[str, int] = {}
    for run in histories:
        count[run["workflow_id"]] = count.get(run["workflow_id"], 0) + 1
        names[run["run_id"]] = f"{run['workflow_id']}#run{count[run['workflow_id']]}"
    return names


@dataclass(frozen=True)
class Race:
    """Events that may or may not be in a history, depending on timing: those of ``event_types``
    that belong to an activity of ``activity_type``. Left out on both sides."""

    event_types: frozenset[str]
    activity_type: str
    reason: str
    activity_id: str | None = None  # only this activity of the type

    def drops(self, raw: dict[str, Any], by_id: dict[str, dict[str, Any]]) -> bool:
        if event_type(raw) not in self.event_types:
            return False
        attributes = next((v for k, v in raw.items() if k.endswith("EventAttributes")), {})
        scheduled = (by_id.get(str(attributes.get("scheduledEventId")), {}).get("activityTaskScheduledEventAttributes") or {})
        return scheduled.get("activityType", {}).get("name") == self.activity_type and (
            self.activity_id is None or scheduled.get("activityId") == self.activity_id
        )


@dataclass(frozen=True)
class Interleaving:
    """Activities of ``activity_type`` run at the same time: the order in which their
    ``ActivityTaskStarted``/``Completed``/``Failed`` events arrive is free (sorted on both sides)."""

    activity_type: str
    reason: str


_RESULTS = ("ActivityTaskStarted", "ActivityTaskCompleted", "ActivityTaskFailed")


def _attributes(raw: dict[str, Any]) -> dict[str, Any]:
    return next((v for k, v in raw.items() if k.endswith("EventAttributes")), {})


def _scheduled(raw: dict[str, Any], by_id: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return _attributes(by_id.get(str(_attributes(raw).get("scheduledEventId")), {}))


def _interleave(events: list[dict[str, Any]], by_id: dict[str, dict[str, Any]], rules: Iterable[Interleaving]) -> list[dict[str, Any]]:
    types = {rule.activity_type for rule in rules}

    def free(raw: dict[str, Any]) -> bool:
        return event_type(raw) in _RESULTS and _scheduled(raw, by_id).get("activityType", {}).get("name") in types

    out: list[dict[str, Any]] = []
    run: list[dict[str, Any]] = []
    for raw in [*events, {}]:
        if raw and free(raw):
            run.append(raw)
            continue
        out += sorted(run, key=lambda r: (str(_scheduled(r, by_id).get("activityId")), _RESULTS.index(event_type(r))))
        run = []
        if raw:
            out.append(raw)
    return out


def _identity(raw: dict[str, Any], by_id: dict[str, dict[str, Any]]) -> str | None:
    """A name for an event that other events refer to, which does not depend on its position."""
    kind, attributes = event_type(raw), _attributes(raw)
    if kind == "ActivityTaskScheduled":
        return f"activity {attributes.get('activityId')}"
    if kind == "ActivityTaskStarted":
        return f"start of activity {_scheduled(raw, by_id).get('activityId')}"
    if kind == "ActivityTaskCancelRequested":
        return f"cancel request of activity {_scheduled(raw, by_id).get('activityId')}"
    if kind == "TimerStarted":
        return f"timer {attributes.get('timerId')}"
    if kind == "StartChildWorkflowExecutionInitiated":
        return f"child {attributes.get('workflowId')}"
    if kind == "ChildWorkflowExecutionStarted":
        return f"start of child {(attributes.get('workflowExecution') or {}).get('workflowId')}"
    if kind in ("SignalExternalWorkflowExecutionInitiated", "RequestCancelExternalWorkflowExecutionInitiated"):
        return f"{kind} to {(attributes.get('workflowExecution') or {}).get('workflowId')}"
    return None


def normalize(
    document: dict[str, Any], runs: dict[str, str], races: Iterable[Race] = (), interleavings: Iterable[Interleaving] = ()
) -> list[dict[str, Any]]:
    """The compared events of one history, in order, as plain comparable data."""
    by_id = {str(raw["eventId"]): raw for raw in document["events"]}
    kept = [
        raw for raw in document["events"]
        if event_type(raw) not in IGNORED_EVENTS and not any(race.drops(raw, by_id) for race in races)
        and _attributes(raw).get("cause") not in IGNORED_TASK_FAILURES
    ]
    kept = _interleave(kept, by_id, interleavings)
    # References name the event they point at (or its position), so that free orders stay comparable.
    position = {str(raw["eventId"]): _identity(raw, by_id) or f"event {index + 1}" for index, raw in enumerate(kept)}
    out = []
    for raw in kept:
        out.append({"type": event_type(raw), **_clean(_attributes(raw), position, runs)})
    return out


def _clean(value: Any, position: dict[str, str], runs: dict[str, str], key: str = "") -> Any:
    if isinstance(value, dict):
        if set(value) <= {"metadata", "data", "externalPayloads"} and "metadata" in value:
            return _payload(value)
        out = {}
        for k, v in value.items():
            if k in IGNORED_FIELDS:
                continue
            if k in EVENT_REFERENCES:
                out[k] = position.get(str(v), "a workflow-task event")
            elif k in SERVER_MADE:
                out[k] = f"<{k}>"
            elif k in RUN_ID_FIELDS and isinstance(v, str):
                out[k] = runs.get(v, "a run outside this scenario") if v else v
            else:
                cleaned = _clean(v, position, runs, k)
                if cleaned not in ({}, None, [], "", "0s", 0.0) or k in ("result", "attempt"):
                    out[k] = cleaned
        return out
    if isinstance(value, list):
        return [_clean(v, position, runs, key) for v in value]
    if isinstance(value, str):
        match = _DURATION.match(value)
        if match:
            return float(match.group(1))
    return value


def _payload(payload: dict[str, Any]) -> Any:
    metadata = {k: base64.b64decode(v).decode(errors="replace") for k, v in (payload.get("metadata") or {}).items()}
    data = base64.b64decode(payload.get("data") or "")
    if metadata.get("encoding") == "json/plain":
        return {"json": json.loads(data) if data else None}
    if metadata.get("encoding") == "binary/null":
        return {"json": None}
    return {"payload": metadata, "data": data.decode(errors="replace")}


def describe_difference(ours: list[dict[str, Any]], theirs: list[dict[str, Any]]) -> str:
    """A readable, line-by-line diff of two normalized histories (``-`` Temporal, ``+`` ours)."""
    import difflib

    def lines(events: list[dict[str, Any]]) -> list[str]:
        return [f"{i + 1}: {json.dumps(e, sort_keys=True)}" for i, e in enumerate(events)]

    return "\n".join(difflib.unified_diff(lines(theirs), lines(ours), "temporal", "engine", lineterm="", n=1))


@dataclass(frozen=True)
class Difference:
    """One field that differs: ``where`` is ``outcome`` or ``<workflow id>#run<n> event <i>``."""

    where: str
    event_types: frozenset[str]
    path: str
    temporal: Any
    engine: Any

    def __str__(self) -> str:
        types = "/".join(sorted(self.event_types))
        return f"{self.where} ({types}) {self.path}: Temporal {self.temporal!r}, engine {self.engine!r}"


_MISSING = "<absent>"


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": [1]}}`` -> ``{"a.b[0]": 1}``; an empty dict or list is a leaf."""
    if isinstance(value, dict) and value:
        out: dict[str, Any] = {}
        for k, v in value.items():
            out.update(flatten(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    if isinstance(value, list) and value:
        out = {}
        for i, v in enumerate(value):
            out.update(flatten(v, f"{prefix}[{i}]"))
        return out
    return {prefix: value}


def _differ(where: str, types: frozenset[str], theirs: Any, ours: Any) -> list[Difference]:
    a, b = flatten(theirs), flatten(ours)
    return [
        Difference(where, types, path, a.get(path, _MISSING), b.get(path, _MISSING))
        for path in sorted(set(a) | set(b), key=lambda p: (p != "type", p))
        if a.get(path, _MISSING) != b.get(path, _MISSING)
    ]


def outcome_differences(theirs: Any, ours: Any) -> list[Difference]:
    return _differ("outcome", frozenset({"outcome"}), theirs, ours)


def history_differences(
    theirs: dict[str, Any], ours: dict[str, Any], races: Iterable[Race] = (), interleavings: Iterable[Interleaving] = ()
) -> list[Difference]:
    """Field by field, event by event, for every run of every workflow the scenario's driver named."""
    t_runs, o_runs = run_names(theirs["histories"]), run_names(ours["histories"])
    t_names = [t_runs[h["run_id"]] for h in theirs["histories"]]
    o_names = [o_runs[h["run_id"]] for h in ours["histories"]]
    if t_names != o_names:
        return [Difference("runs", frozenset({"runs"}), "runs", t_names, o_names)]
    out: list[Difference] = []
    for name, t_history, o_history in zip(t_names, theirs["histories"], ours["histories"]):
        t_events = normalize(t_history["history"], t_runs, races, interleavings)
        o_events = normalize(o_history["history"], o_runs, races, interleavings)
        for i in range(max(len(t_events), len(o_events))):
            t_event = t_events[i] if i < len(t_events) else {}
            o_event = o_events[i] if i < len(o_events) else {}
            types = frozenset(e["type"] for e in (t_event, o_event) if e)
            out += _differ(f"{name} event {i + 1}", types, t_event, o_event)
    return out
