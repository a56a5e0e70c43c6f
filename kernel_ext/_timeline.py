"""Events to steps: a history as the steps a learner thinks in, and those steps collapsed.

A history holds bookkeeping events (workflow tasks scheduled, started, completed) around
the events that matter to a reader. :func:`history_timeline_rows` groups the events into
steps: the start, each activity with all its attempts, timers, markers, signals, child
workflows, updates, cancel requests, workflow task failures and the final result.

Steps that one workflow task started together (same ``workflowTaskCompletedEventId``)
run in parallel. Long runs of identical steps (an activity called in a loop) are
collapsed into one row (``echo x500``) by :func:`collapse_rows`.

The public names are re-exported by :mod:`kernel_ext.graphs`; import them from there.
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping, Sequence

from engine.errors import HistoryFormatError
from engine.history import History, HistoryEvent, decode_payloads

if TYPE_CHECKING:
    from engine.client import ActivityAttempt
    from engine.faults import FaultFired

Row = dict[str, Any]

_TOOLTIP_LIMIT = 1500
_VALUE_LIMIT = 200
_LISTED_ATTEMPTS = 10
# Workflow task events are bookkeeping; a reader thinks in the commands they carry.
_BOOKKEEPING = frozenset({"WorkflowTaskScheduled", "WorkflowTaskStarted", "WorkflowTaskCompleted"})
# Events written as the result of a workflow task's commands; those without a
# workflowTaskCompletedEventId attribute (updates, older histories) are grouped with the
# workflow task completion they follow.
_COMMAND_EVENTS = frozenset(
    {
        "ActivityTaskScheduled",
        "ActivityTaskCancelRequested",
        "TimerStarted",
        "TimerCanceled",
        "MarkerRecorded",
        "StartChildWorkflowExecutionInitiated",
        "SignalExternalWorkflowExecutionInitiated",
        "RequestCancelExternalWorkflowExecutionInitiated",
        "UpsertWorkflowSearchAttributes",
        "WorkflowPropertiesModified",
        "WorkflowExecutionUpdateAccepted",
        "WorkflowExecutionUpdateRejected",
        "WorkflowExecutionUpdateCompleted",
        "NexusOperationScheduled",
        "NexusOperationCancelRequested",
    }
)
_STATUS_WORDS = {
    "ok": "completed",
    "retried": "completed after retries",
    "failed": "failed",
    "cancelled": "cancelled",
    "running": "running",
    "info": "",
    "injected": "injected",
}
# Kinds whose detail (an error message) is part of "identical" when collapsing; for the
# others the detail holds inputs and results, which differ between loop iterations.
_DETAIL_MATTERS = frozenset({"workflow_task_failed", "workflow_task_timed_out", "event", "crash"})
# How an injected activity fault is named in a step's detail and tooltip.
_FAULT_WORDS = {"fail": "failed on purpose", "hang": "hung past its timeout", "slow": "slowed down"}


# --- small, forgiving readers: imported histories may hold anything ----------------


def _dig(obj: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(obj, Mapping):
            return None
        obj = obj.get(key)
    return obj


def _text(obj: Any, *keys: str) -> str:
    value = _dig(obj, *keys)
    if value is None:
        return ""
    return value if isinstance(value, str) else str(value)


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            return None
    return None


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: max(limit - 1, 0)] + "…"


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _value_text(value: Any) -> str:
    if isinstance(value, (bytes, bytearray)):
        return f"<{len(value)} bytes>"
    try:
        return json.dumps(value, ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        return repr(value)


def _payloads_text(obj: Any, limit: int = _VALUE_LIMIT) -> str:
    """The decoded values of a ``{"payloads": [...]}`` object, comma-separated."""
    try:
        values = decode_payloads(obj) if isinstance(obj, Mapping) else []
    except (HistoryFormatError, TypeError, ValueError) as exc:
        return _shorten(f"<payload that cannot be decoded: {exc}>", limit)
    return _shorten(", ".join(_value_text(v) for v in values), limit)


def _failure_messages(failure: Any) -> list[str]:
    """The messages of a Temporal failure and its causes, outermost first."""
    messages: list[str] = []
    while isinstance(failure, Mapping) and len(messages) < 10:
        message = _text(failure, "message")
        if message:
            messages.append(message)
        failure = failure.get("cause")
    return messages


def _failure_summary(failure: Any) -> str:
    """``message`` or ``message: root cause`` on one line."""
    messages = [m.splitlines()[0] if m.splitlines() else m for m in _failure_messages(failure)]
    if not messages:
        return ""
    if len(messages) > 1 and messages[-1] != messages[0]:
        return f"{messages[0]}: {messages[-1]}"
    return messages[0]


def format_seconds(seconds: float) -> str:
    """``86400`` -> ``"1d"``, ``90`` -> ``"1m30s"``, ``1.5`` -> ``"1.5s"``."""
    if seconds < 0:
        return "-" + format_seconds(-seconds)
    if seconds < 60 and seconds != int(seconds):
        return f"{seconds:.3g}s" if seconds >= 1 else f"{seconds * 1000:.3g}ms"
    rest = int(seconds)
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        amount, rest = divmod(rest, size)
        if amount:
            parts.append(f"{amount}{unit}")
    return "".join(parts) or "0s"


_DURATION = re.compile(r"^\s*(-?\d+(?:\.\d+)?)s\s*$")


def format_duration(value: Any) -> str:
    """A protobuf JSON duration (``"86400s"``) in human form (``"1d"``); unknown forms as is."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return format_seconds(float(value))
    text = "" if value is None else str(value)
    match = _DURATION.match(text)
    return format_seconds(float(match.group(1))) if match else text


def seconds_between(earlier: Any, later: Any) -> float | None:
    """Seconds from ``earlier`` to ``later``, or None if they are not comparable times."""
    if not isinstance(earlier, datetime) or not isinstance(later, datetime):
        return None
    try:
        return (later - earlier).total_seconds()
    except TypeError:  # naive and aware datetimes mixed
        return None


def format_offset(seconds: float | None) -> str:
    """Time since the run started as ``[Nd ]HH:MM:SS.mmm`` (``""`` if unknown)."""
    if seconds is None:
        return ""
    sign = "-" if seconds < 0 else ""
    millis = round(abs(seconds) * 1000)
    days, millis = divmod(millis, 86_400_000)
    hours, millis = divmod(millis, 3_600_000)
    minutes, millis = divmod(millis, 60_000)
    secs, millis = divmod(millis, 1000)
    text = f"{hours:02d}:{minutes:02d}:{secs:02d}.{millis:03d}"
    return f"{sign}{days}d {text}" if days else sign + text


def format_event_ids(ids: Sequence[int], *, span: bool = False) -> str:
    """``[5, 6, 7]`` -> ``"events 5-7"``; ``span=True`` gives just ``first-last``."""
    unique = sorted(set(ids))
    if not unique:
        return ""
    if len(unique) == 1:
        return f"event {unique[0]}"
    if span:
        return f"events {unique[0]}-{unique[-1]}"
    ranges: list[tuple[int, int]] = []
    for event_id in unique:
        if ranges and event_id == ranges[-1][1] + 1:
            ranges[-1] = (ranges[-1][0], event_id)
        else:
            ranges.append((event_id, event_id))
    texts = [f"{a}-{b}" if a != b else str(a) for a, b in ranges]
    if len(texts) > 3:
        texts = texts[:2] + ["…", texts[-1]]
    return "events " + ", ".join(texts)


# --- events -> steps ------------------------------------------------------------------


@dataclass
class _Step:
    kind: str
    title: str
    batch: int | None
    event_ids: list[int]
    offset: float | None
    status: str = "info"
    detail: str = ""
    notes: list[str] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)


class _Timeline:
    """The steps found so far, and where later events of each step will attach."""

    def __init__(self, history: History) -> None:
        self.start_time = history.events[0].event_time if history.events else None
        self.steps: list[_Step] = []
        self.open: dict[tuple[str, Any], _Step] = {}
        self.batch: int | None = None

    def new(self, event: HistoryEvent, kind: str, title: str, *, status: str = "info", batch: bool = True) -> _Step:
        step = _Step(
            kind=kind,
            title=title,
            batch=self.batch if batch else None,
            event_ids=[event.event_id],
            offset=seconds_between(self.start_time, event.event_time),
            status=status,
        )
        self.steps.append(step)
        return step

    def attach(self, event: HistoryEvent, kind: str, ref: Any) -> _Step | None:
        step = self.open.get((kind, ref))
        if step is not None:
            step.event_ids.append(event.event_id)
        return step


Handler = Callable[[_Timeline, HistoryEvent], None]


def _generic(tl: _Timeline, event: HistoryEvent) -> None:
    tl.new(event, "event", event.event_type or "(event without a type)")


def _on_started(tl: _Timeline, event: HistoryEvent) -> None:
    a = event.attributes
    wtype = _text(a, "workflowType", "name") or "?"
    inp = _payloads_text(a.get("input"))
    step = tl.new(event, "start", "Workflow started", batch=False)
    step.detail = f"{wtype}({_shorten(inp, 60)})"
    step.notes += [f"type: {wtype}", f"input: {inp}", f"task queue: {_text(a, 'taskQueue', 'name')}"]
    if _text(a, "parentWorkflowExecution", "workflowId"):
        step.notes.append(f"child of workflow {_text(a, 'parentWorkflowExecution', 'workflowId')}")
    if _text(a, "continuedExecutionRunId"):
        step.notes.append(f"continued from run {_text(a, 'continuedExecutionRunId')}")
    if (_int(a.get("attempt")) or 1) > 1:
        step.notes.append(f"workflow attempt {_int(a.get('attempt'))}")


def _on_task_failed(tl: _Timeline, event: HistoryEvent) -> None:
    a = event.attributes
    cause = _text(a, "cause").removeprefix("WORKFLOW_TASK_FAILED_CAUSE_")
    message = _text(a, "failure", "message")
    title = "Workflow task failed"
    if "NON_DETERMINISTIC" in cause or "nondetermin" in message.lower():
        title += " (non-determinism)"
    step = tl.new(event, "workflow_task_failed", title, status="failed", batch=False)
    step.detail = (message.splitlines() or [cause.lower().replace("_", " ")])[0]
    step.notes += [f"cause: {cause}", f"message: {_shorten(message, 600)}"]
    trace = _text(a, "failure", "stackTrace").strip().splitlines()
    if trace:
        step.notes.append("stack trace (end):\n" + "\n".join(trace[-6:]))


def _on_task_timed_out(tl: _Timeline, event: HistoryEvent) -> None:
    step = tl.new(event, "workflow_task_timed_out", "Workflow task timed out", status="failed", batch=False)
    step.detail = _text(event.attributes, "timeoutType").removeprefix("TIMEOUT_TYPE_").lower().replace("_", " ")
    step.notes.append("the worker did not finish the workflow task in time (crashed or too slow)")


def _on_activity_scheduled(tl: _Timeline, event: HistoryEvent) -> None:
    a = event.attributes
    step = tl.new(event, "activity", _text(a, "activityType", "name") or "activity", status="running")
    step.data.update(id=_text(a, "activityId"), input=_payloads_text(a.get("input")))
    step.notes.append(f"input: {step.data['input']}")
    tl.open[("activity", event.event_id)] = step


def _on_activity_event(what: str, tl: _Timeline, event: HistoryEvent) -> None:
    a = event.attributes
    step = tl.attach(event, "activity", _int(a.get("scheduledEventId")))
    if step is None:
        _generic(tl, event)
        return
    if what == "started":
        step.data["attempt"] = _int(a.get("attempt")) or 1
        step.data["last_failure"] = _failure_summary(a.get("lastFailure"))
    elif what == "cancel requested":
        step.data["cancel_requested"] = True
    else:
        step.data["outcome"] = what
        step.data["result"] = _payloads_text(a.get("result"))
        step.data["failure"] = _failure_summary(a.get("failure"))
        if _text(a, "retryState"):
            step.notes.append(f"retry state: {_text(a, 'retryState').removeprefix('RETRY_STATE_')}")


def _on_crash(tl: _Timeline, event: HistoryEvent, fired: FaultFired) -> None:
    """An injected worker crash, drawn after the last event the run had when it happened."""
    step = tl.new(event, "crash", "Worker crashed (injected)", status="injected", batch=False)
    step.event_ids = []  # no event records a crash: only what follows it shows
    step.detail = fired.detail
    step.notes += [
        f"fault {fired.fault_id}: the worker died {fired.detail}",
        f"worker: {fired.identity}",
        "its cache and work in flight were lost; another worker carried on from the history",
    ]


def _finish_activity(step: _Step, tries: Sequence[ActivityAttempt], injected: Mapping[int, list[str]]) -> None:
    d = step.data
    count = max([d.get("attempt") or 0] + [t.attempt for t in tries if isinstance(t.attempt, int)])
    outcome = d.get("outcome")
    if outcome and count == 0:
        count = 1
    failures = [
        (t.attempt, _failure_summary(t.failure) or str(t.outcome)) for t in tries if t.outcome != "completed"
    ]
    if not failures and d.get("last_failure") and count > 1:
        failures = [(count - 1, d["last_failure"])]
    step.data["count"] = count
    step.status = {
        "completed": "retried" if count > 1 else "ok",
        "failed": "failed",
        "timed out": "failed",
        "canceled": "cancelled",
    }.get(outcome or "", "running")
    parts = [f"activity {d.get('id') or '?'}"]
    if count > 1:
        parts.append(f"{count} attempts")
    kinds = [kind for attempt in sorted(injected) for kind in injected[attempt]]
    if kinds:  # early in the detail: text views cut long details short
        counted = {kind: kinds.count(kind) for kind in kinds}
        parts.append("⚡ injected: " + ", ".join(k if n == 1 else f"{k} ×{n}" for k, n in counted.items()))
        step.data["injected"] = len(kinds)
    if outcome == "completed":
        parts.append(f"→ {_shorten(d.get('result') or 'null', 60)}")
    elif outcome in ("failed", "timed out"):
        parts.append(f"{outcome}: {d.get('failure') or '?'}")
    elif outcome == "canceled":
        parts.append("cancelled")
    elif d.get("cancel_requested"):
        parts.append("cancel requested")
    else:
        parts.append("retrying" if failures else ("running" if count else "scheduled, not started"))
    if failures and outcome != "failed":
        parts.append(f"last failure: {failures[-1][1]}")
    step.detail = " · ".join(parts)
    if outcome == "completed":
        step.notes.append(f"result: {d.get('result')}")
    elif d.get("failure"):
        step.notes.append(f"failure: {d.get('failure')}")
    step.notes += [
        f"attempt {attempt}: {_FAULT_WORDS.get(kind, kind)} (injected fault)"
        for attempt in sorted(injected)
        for kind in injected[attempt]
    ]
    lines = [
        f"attempt {attempt} failed{' (injected)' if attempt in injected else ''}: {message}" for attempt, message in failures
    ]
    if len(lines) > _LISTED_ATTEMPTS:
        half = _LISTED_ATTEMPTS // 2
        lines = lines[:half] + [f"… {len(lines) - 2 * half} more failed attempts"] + lines[-half:]
    step.notes += lines


def _on_timer_started(tl: _Timeline, event: HistoryEvent) -> None:
    a = event.attributes
    duration = format_duration(a.get("startToFireTimeout"))
    step = tl.new(event, "timer", f"sleep {duration}", status="running")
    step.detail = f"timer {_text(a, 'timerId')} · waiting"
    tl.open[("timer", event.event_id)] = step
    tl.open[("timer id", _text(a, "timerId"))] = step


def _on_timer_closed(fired: bool, tl: _Timeline, event: HistoryEvent) -> None:
    a = event.attributes
    step = tl.attach(event, "timer", _int(a.get("startedEventId"))) or tl.attach(event, "timer id", _text(a, "timerId"))
    if step is None:
        _generic(tl, event)
        return
    step.status = "ok" if fired else "cancelled"
    step.detail = f"timer {_text(a, 'timerId')} · {'fired' if fired else 'cancelled'}"
    waited = seconds_between(tl.start_time, event.event_time)
    if waited is not None and step.offset is not None:
        step.notes.append(f"{'fired' if fired else 'cancelled'} after {format_seconds(waited - step.offset)}")


def _on_marker(tl: _Timeline, event: HistoryEvent) -> None:
    a = event.attributes
    step = tl.new(event, "marker", f"marker {_text(a, 'markerName') or '?'}")
    details = a.get("details")
    values = [f"{key}={_payloads_text(value, 60)}" for key, value in details.items()] if isinstance(details, Mapping) else []
    step.detail = ", ".join(values)
    if a.get("failure"):
        step.status = "failed"
        step.detail = _failure_summary(a.get("failure"))
    step.notes += values


def _on_signal(tl: _Timeline, event: HistoryEvent) -> None:
    a = event.attributes
    step = tl.new(event, "signal", f"signal {_text(a, 'signalName') or '?'}", batch=False)
    inp = _payloads_text(a.get("input"))
    step.detail = f"received {_shorten(inp, 60)}" if inp else "received"
    step.notes += [f"input: {inp}", f"sent by: {_text(a, 'identity') or '?'}"]


def _on_cancel_requested(tl: _Timeline, event: HistoryEvent) -> None:
    a = event.attributes
    step = tl.new(event, "cancel_request", "Cancel requested", batch=False)
    step.detail = _text(a, "cause") or (f"by {_text(a, 'identity')}" if _text(a, "identity") else "")
    step.notes.append("the workflow is asked to stop; it decides how (cleanup, compensation)")


def _on_child_initiated(tl: _Timeline, event: HistoryEvent) -> None:
    a = event.attributes
    step = tl.new(event, "child", f"child {_text(a, 'workflowType', 'name') or 'workflow'}", status="running")
    step.data["workflow_id"] = _text(a, "workflowId")
    step.detail = f"workflow {step.data['workflow_id']} · starting"
    step.notes.append(f"input: {_payloads_text(a.get('input'))}")
    tl.open[("child", event.event_id)] = step


def _on_child_event(what: str, tl: _Timeline, event: HistoryEvent) -> None:
    a = event.attributes
    step = tl.attach(event, "child", _int(a.get("initiatedEventId")))
    if step is None:
        _generic(tl, event)
        return
    head = f"workflow {step.data.get('workflow_id', '?')}"
    result = _payloads_text(a.get("result"))
    failure = _failure_summary(a.get("failure"))
    outcomes = {
        "started": ("running", f"{head} · running"),
        "completed": ("ok", f"{head} · → {_shorten(result, 60)}"),
        "failed": ("failed", f"{head} · failed: {failure}"),
        "start failed": ("failed", f"{head} · could not start: {_text(a, 'cause')}"),
        "canceled": ("cancelled", f"{head} · cancelled"),
        "timed out": ("failed", f"{head} · timed out"),
        "terminated": ("failed", f"{head} · terminated"),
    }
    step.status, step.detail = outcomes[what]
    if what == "started":
        step.notes.append(f"run id: {_text(a, 'workflowExecution', 'runId')}")
    elif what == "completed":
        step.notes.append(f"result: {result}")
    elif failure:
        step.notes.append(f"failure: {failure}")


def _on_external_initiated(kind: str, tl: _Timeline, event: HistoryEvent) -> None:
    a = event.attributes
    target = _text(a, "workflowExecution", "workflowId") or "?"
    if kind == "signal_external":
        step = tl.new(event, kind, f"send signal {_text(a, 'signalName') or '?'}", status="running")
        step.notes.append(f"input: {_payloads_text(a.get('input'))}")
    else:
        step = tl.new(event, kind, "cancel another workflow", status="running")
    step.detail = f"to workflow {target}"
    tl.open[(kind, event.event_id)] = step


def _on_external_closed(kind: str, ok: bool, tl: _Timeline, event: HistoryEvent) -> None:
    a = event.attributes
    step = tl.attach(event, kind, _int(a.get("initiatedEventId")))
    if step is None:
        _generic(tl, event)
        return
    step.status = "ok" if ok else "failed"
    step.detail += " · delivered" if ok else f" · failed: {_text(a, 'cause') or '?'}"


def _update_id(a: Mapping[str, Any]) -> str:
    for path in (("meta", "updateId"), ("request", "meta", "updateId"), ("acceptedRequest", "meta", "updateId"),
                 ("rejectedRequest", "meta", "updateId"), ("protocolInstanceId",)):
        if _text(a, *path):
            return _text(a, *path)
    return ""


def _on_update(what: str, tl: _Timeline, event: HistoryEvent) -> None:
    a = event.attributes
    update_id = _update_id(a)
    step = tl.attach(event, "update", update_id) if update_id else None
    if step is None and what == "completed":
        step = tl.attach(event, "update accepted", _int(a.get("acceptedEventId")))
    if step is None:
        name = _text(a, "acceptedRequest", "input", "name") or _text(a, "rejectedRequest", "input", "name")
        name = name or _text(a, "request", "input", "name")
        step = tl.new(event, "update", f"update {name or '?'}", status="running")
        if update_id:
            tl.open[("update", update_id)] = step
        args = _dig(a, "acceptedRequest", "input", "args") or _dig(a, "request", "input", "args")
        step.notes.append(f"input: {_payloads_text(args)}")
    if what == "accepted":
        tl.open[("update accepted", event.event_id)] = step
        step.detail = "accepted"
    elif what == "rejected":
        step.status, step.detail = "failed", f"rejected: {_failure_summary(a.get('failure'))}"
    elif what == "completed":
        failure = _dig(a, "outcome", "failure")
        if failure:
            step.status, step.detail = "failed", f"failed: {_failure_summary(failure)}"
        else:
            result = _payloads_text(_dig(a, "outcome", "success"))
            step.status, step.detail = "ok", f"→ {_shorten(result, 60)}"
            step.notes.append(f"result: {result}")


def _on_nexus(what: str, tl: _Timeline, event: HistoryEvent) -> None:
    a = event.attributes
    if what == "scheduled":
        title = f"nexus {_text(a, 'service')}.{_text(a, 'operation')}"
        step = tl.new(event, "nexus", title, status="running")
        step.data["endpoint"] = _text(a, "endpoint")
        step.detail = f"endpoint {step.data['endpoint']} · scheduled"
        step.notes.append(f"input: {_payloads_text({'payloads': [a.get('input')]} if a.get('input') else None)}")
        tl.open[("nexus", event.event_id)] = step
        return
    found = tl.attach(event, "nexus", _int(a.get("scheduledEventId")))
    if found is None:
        _generic(tl, event)
        return
    status = {"completed": "ok", "failed": "failed", "canceled": "cancelled", "timed out": "failed"}
    if what in status:
        found.status = status[what]
    found.detail = f"endpoint {found.data.get('endpoint', '?')} · {what}"


def _on_search_attributes(tl: _Timeline, event: HistoryEvent) -> None:
    fields = _dig(event.attributes, "searchAttributes", "indexedFields")
    step = tl.new(event, "search_attributes", "upsert search attributes")
    step.detail = ", ".join(fields) if isinstance(fields, Mapping) else ""


_FINAL = {
    "WorkflowExecutionCompleted": ("Completed", "ok"),
    "WorkflowExecutionFailed": ("Failed", "failed"),
    "WorkflowExecutionCanceled": ("Cancelled", "cancelled"),
    "WorkflowExecutionTerminated": ("Terminated", "failed"),
    "WorkflowExecutionTimedOut": ("Timed out", "failed"),
    "WorkflowExecutionContinuedAsNew": ("Continued as new", "ok"),
}


def _on_closed(tl: _Timeline, event: HistoryEvent) -> None:
    a = event.attributes
    title, status = _FINAL[event.event_type]
    step = tl.new(event, "result", title, status=status, batch=False)
    if event.event_type == "WorkflowExecutionCompleted":
        result = _payloads_text(a.get("result"))
        step.detail = f"result {_shorten(result, 80)}" if result else "no result"
        step.notes.append(f"result: {result or 'none'}")
    elif event.event_type == "WorkflowExecutionFailed":
        step.detail = _failure_summary(a.get("failure"))
        step.notes += [f"failure: {m}" for m in _failure_messages(a.get("failure"))]
    elif event.event_type == "WorkflowExecutionTerminated":
        step.detail = _text(a, "reason") or "no reason given"
        step.notes.append(f"by: {_text(a, 'identity') or '?'}")
    elif event.event_type == "WorkflowExecutionContinuedAsNew":
        inp = _payloads_text(a.get("input"))
        step.detail = f"new run with ({_shorten(inp, 60)})"
        step.notes += [f"new run id: {_text(a, 'newExecutionRunId')}", f"input: {inp}"]
    elif event.event_type == "WorkflowExecutionCanceled":
        step.detail = _payloads_text(a.get("details"), 80)
    else:
        step.detail = _text(a, "retryState").removeprefix("RETRY_STATE_").lower().replace("_", " ")


def _skip(tl: _Timeline, event: HistoryEvent) -> None:
    del tl, event


_HANDLERS: dict[str, Handler] = {
    **{name: _skip for name in _BOOKKEEPING},
    **{name: _on_closed for name in _FINAL},
    "WorkflowExecutionStarted": _on_started,
    "WorkflowTaskFailed": _on_task_failed,
    "WorkflowTaskTimedOut": _on_task_timed_out,
    "ActivityTaskScheduled": _on_activity_scheduled,
    "ActivityTaskStarted": functools.partial(_on_activity_event, "started"),
    "ActivityTaskCompleted": functools.partial(_on_activity_event, "completed"),
    "ActivityTaskFailed": functools.partial(_on_activity_event, "failed"),
    "ActivityTaskTimedOut": functools.partial(_on_activity_event, "timed out"),
    "ActivityTaskCancelRequested": functools.partial(_on_activity_event, "cancel requested"),
    "ActivityTaskCanceled": functools.partial(_on_activity_event, "canceled"),
    "TimerStarted": _on_timer_started,
    "TimerFired": functools.partial(_on_timer_closed, True),
    "TimerCanceled": functools.partial(_on_timer_closed, False),
    "MarkerRecorded": _on_marker,
    "WorkflowExecutionSignaled": _on_signal,
    "WorkflowExecutionCancelRequested": _on_cancel_requested,
    "StartChildWorkflowExecutionInitiated": _on_child_initiated,
    "StartChildWorkflowExecutionFailed": functools.partial(_on_child_event, "start failed"),
    "ChildWorkflowExecutionStarted": functools.partial(_on_child_event, "started"),
    "ChildWorkflowExecutionCompleted": functools.partial(_on_child_event, "completed"),
    "ChildWorkflowExecutionFailed": functools.partial(_on_child_event, "failed"),
    "ChildWorkflowExecutionCanceled": functools.partial(_on_child_event, "canceled"),
    "ChildWorkflowExecutionTimedOut": functools.partial(_on_child_event, "timed out"),
    "ChildWorkflowExecutionTerminated": functools.partial(_on_child_event, "terminated"),
    "SignalExternalWorkflowExecutionInitiated": functools.partial(_on_external_initiated, "signal_external"),
    "ExternalWorkflowExecutionSignaled": functools.partial(_on_external_closed, "signal_external", True),
    "SignalExternalWorkflowExecutionFailed": functools.partial(_on_external_closed, "signal_external", False),
    "RequestCancelExternalWorkflowExecutionInitiated": functools.partial(_on_external_initiated, "cancel_external"),
    "ExternalWorkflowExecutionCancelRequested": functools.partial(_on_external_closed, "cancel_external", True),
    "RequestCancelExternalWorkflowExecutionFailed": functools.partial(_on_external_closed, "cancel_external", False),
    "WorkflowExecutionUpdateAdmitted": functools.partial(_on_update, "admitted"),
    "WorkflowExecutionUpdateAccepted": functools.partial(_on_update, "accepted"),
    "WorkflowExecutionUpdateRejected": functools.partial(_on_update, "rejected"),
    "WorkflowExecutionUpdateCompleted": functools.partial(_on_update, "completed"),
    "NexusOperationScheduled": functools.partial(_on_nexus, "scheduled"),
    "NexusOperationStarted": functools.partial(_on_nexus, "started"),
    "NexusOperationCompleted": functools.partial(_on_nexus, "completed"),
    "NexusOperationFailed": functools.partial(_on_nexus, "failed"),
    "NexusOperationCanceled": functools.partial(_on_nexus, "canceled"),
    "NexusOperationTimedOut": functools.partial(_on_nexus, "timed out"),
    "NexusOperationCancelRequested": functools.partial(_on_nexus, "cancel requested"),
    "UpsertWorkflowSearchAttributes": _on_search_attributes,
}


def _row(step: _Step) -> Row:
    events = format_event_ids(step.event_ids)
    notes = [_shorten(note, 600) for note in step.notes if note]
    tooltip = "\n".join([f"{step.title} ({events})" if events else step.title, *notes])
    if step.offset is not None:
        tooltip += f"\nat +{format_offset(step.offset)}"
    return {
        "kind": step.kind,
        "title": step.title,
        "status": step.status,
        "event_ids": sorted(step.event_ids),
        "events": events,
        "attempts": int(step.data.get("count", 0)),
        "injected": int(step.data.get("injected", 0)),
        "detail": _one_line(step.detail),
        "tooltip": _shorten(tooltip, _TOOLTIP_LIMIT),
        "batch": step.batch,
        "offset": step.offset,
        "count": 1,
    }


def history_timeline_rows(
    history: History, attempts: Sequence[ActivityAttempt] = (), faults: Sequence[FaultFired] = ()
) -> list[Row]:
    """Group a history's events into the steps a reader thinks in, in event order.

    Each row is a dict: ``kind`` (``start``, ``activity``, ``timer``, ``marker``,
    ``signal``, ``child``, ``update``, ``cancel_request``, ``workflow_task_failed``,
    ``result``, ``event`` for types without a special meaning, ...), ``title``,
    ``status`` (a key of :data:`kernel_ext.graphs.STATUS_COLOURS`), ``event_ids``,
    ``events`` (those ids as text), ``attempts`` (activities: how many tries), ``detail``
    (one line), ``tooltip``
    (several lines: inputs, results, every failed attempt), ``batch`` (the workflow task
    completion that started the step; equal batches ran in parallel), ``offset`` (seconds
    since the run started) and ``count`` (1; more in rows from :func:`collapse_rows`).

    ``attempts`` is the engine's side table (``await handle.activity_attempts()``): the
    history holds only an activity's last attempt, the side table holds every one. A run
    with no close event ends with a ``Running`` row.

    ``faults`` is the run's fault log (``engine.faults.fault_log``): activity attempts an
    injected fault hit are marked (``injected`` counts them, the detail says which), and
    each injected worker crash is a ``crash`` row (status ``injected``) placed after the
    last event the run had when the worker died.
    """
    tl = _Timeline(history)
    crashes: dict[int | None, list[FaultFired]] = {}
    hits: dict[Any, dict[int, list[str]]] = {}  # scheduled event id -> attempt -> fault kinds
    for fired in faults:
        if fired.kind == "crash_worker":
            crashes.setdefault(fired.last_event_id, []).append(fired)
        elif fired.scheduled_event_id is not None and fired.attempt is not None:
            hits.setdefault(fired.scheduled_event_id, {}).setdefault(fired.attempt, []).append(fired.kind)
    block: int | None = None  # the workflow task completion whose commands we are reading
    for event in history.events:
        attributes = event.attributes if isinstance(event.attributes, Mapping) else {}
        if event.event_type == "WorkflowTaskCompleted":
            block = event.event_id
        elif event.event_type not in _COMMAND_EVENTS:
            block = None
        explicit = _int(attributes.get("workflowTaskCompletedEventId"))
        tl.batch = explicit if explicit is not None else block
        if attributes is event.attributes:
            _HANDLERS.get(event.event_type, _generic)(tl, event)
        else:
            _generic(tl, event)
        for fired in crashes.pop(event.event_id, []):
            _on_crash(tl, event, fired)
    if history.events:
        for fired in [f for pending in crashes.values() for f in pending]:  # logged by an older engine
            _on_crash(tl, history.events[-1], fired)
    by_scheduled: dict[Any, list[ActivityAttempt]] = {}
    for attempt in attempts:
        by_scheduled.setdefault(getattr(attempt, "scheduled_event_id", None), []).append(attempt)
    for step in tl.steps:
        if step.kind == "activity" and "id" in step.data:
            _finish_activity(step, by_scheduled.get(step.event_ids[0], []), hits.get(step.event_ids[0], {}))
    if tl.steps and not any(step.kind == "result" for step in tl.steps):
        last = history.events[-1]
        running = _Step("result", "Running", None, [], seconds_between(tl.start_time, last.event_time), "running")
        running.detail = "no close event yet"
        tl.steps.append(running)
    return [_row(step) for step in tl.steps]


# --- steps -> layers (parallel groups), collapsing ----------------------------------


def _signature(row: Row) -> tuple[Any, ...] | None:
    if row["kind"] in ("start", "result", "more"):
        return None
    detail = row["detail"] if row["kind"] in _DETAIL_MATTERS else ""
    return (row["kind"], row["title"], row["status"], row["attempts"], row.get("injected", 0), detail)


def _merge(rows: Sequence[Row], parallel: bool) -> Row:
    first, last = rows[0], rows[-1]
    ids = sorted(i for row in rows for i in row["event_ids"])
    count = sum(row["count"] for row in rows)
    events = format_event_ids(ids, span=True)
    word = _STATUS_WORDS.get(first["status"], "")
    how = "in parallel" if parallel else "one after another"
    detail = f"{count} {first['kind'].replace('_', ' ')} steps {how}" + (f", all {word}" if word else "")
    tooltip = "\n".join(
        [f"{first['title']} repeated {count} times ({events})", f"first: {first['detail']}", f"last: {last['detail']}"]
    )
    return {
        **first,
        "title": f"{first['title']} x{count}",
        "event_ids": ids,
        "events": events,
        "attempts": sum(row["attempts"] for row in rows),
        "injected": sum(row.get("injected", 0) for row in rows),
        "detail": detail,
        "tooltip": _shorten(tooltip, _TOOLTIP_LIMIT),
        "count": count,
    }


def _layers(rows: Iterable[Row]) -> list[list[Row]]:
    layers: list[list[Row]] = []
    by_batch: dict[int, list[Row]] = {}
    for row in map(dict, rows):
        batch = row.get("batch")
        if row["kind"] in ("start", "result") or batch is None:
            layers.append([row])
        elif batch in by_batch:
            by_batch[batch].append(row)
        else:
            by_batch[batch] = [row]
            layers.append(by_batch[batch])
    return layers


def _collapse_layer(layer: list[Row], threshold: int) -> list[Row]:
    groups: dict[Any, list[Row]] = {}
    for index, row in enumerate(layer):
        groups.setdefault(_signature(row) or ("unique", index), []).append(row)
    collapsed: list[Row] = []
    for group in groups.values():
        if len(group) > threshold:
            collapsed.append(_merge(group, True))
        else:
            collapsed.extend(group)
    return collapsed


def _collapsed_layers(rows: Iterable[Row], threshold: int) -> list[list[Row]]:
    layers = [_collapse_layer(layer, threshold) for layer in _layers(rows)]
    result: list[list[Row]] = []
    run: list[Row] = []

    def flush() -> None:
        if len(run) > threshold:
            result.append([_merge(run, False)])
        else:
            result.extend([row] for row in run)
        run.clear()

    for layer in layers:
        sig = _signature(layer[0]) if len(layer) == 1 else None
        if sig is not None and run and _signature(run[0]) == sig:
            run.append(layer[0])
            continue
        flush()
        if sig is not None:
            run.append(layer[0])
        else:
            result.append(layer)
    flush()
    for number, layer in enumerate(result, start=1):
        for row in layer:
            row["step"] = number
    return result


def collapse_rows(rows: Iterable[Row], *, threshold: int = 5) -> list[Row]:
    """Collapse runs of more than ``threshold`` identical steps into one row each.

    Identical means same kind, title (activity type, timer duration, ...), status and
    attempts, one after another or in parallel. The merged row's title ends in
    ``x<count>`` and ``count`` says how many steps it stands for. Every row gets a
    ``step`` number; rows that ran in parallel share it.
    """
    return [row for layer in _collapsed_layers(rows, threshold) for row in layer]
