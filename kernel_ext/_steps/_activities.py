"""Activities (with every attempt) and timers as steps."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Sequence

from engine.faults import is_injected
from engine.history import HistoryEvent
from kernel_ext._steps._model import Step, Timeline, generic
from kernel_ext._steps._read import (
    dig,
    failure_summary,
    format_duration,
    format_seconds,
    int_of,
    payload_value,
    payload_values,
    payloads_text,
    shorten,
    text_of,
)

if TYPE_CHECKING:
    from engine.client import ActivityAttempt

_LISTED_ATTEMPTS = 10


def summary_of(attributes: object) -> str:
    """The user-metadata summary of a command (``execute_activity(..., summary=...)``).

    Temporal keeps it on the event (``userMetadata``) beside the attributes; this engine
    keeps it inside the attributes, the only place a ``History`` holds it."""
    value = payload_value(dig(attributes, "userMetadata", "summary"))
    return value if isinstance(value, str) else ""


def on_activity_scheduled(tl: Timeline, event: HistoryEvent) -> None:
    a = event.attributes
    step = tl.new(event, "activity", text_of(a, "activityType", "name") or "activity", status="running")
    step.data.update(id=text_of(a, "activityId"), input=payloads_text(a.get("input")))
    step.data["input_values"] = payload_values(a.get("input"))
    step.data["summary"] = summary_of(a)
    if step.data["summary"]:
        step.notes.append(f"summary: {step.data['summary']}")
    step.notes.append(f"input: {step.data['input']}")
    tl.open[("activity", event.event_id)] = step


def on_activity_event(what: str, tl: Timeline, event: HistoryEvent) -> None:
    a = event.attributes
    step = tl.attach(event, "activity", int_of(a.get("scheduledEventId")))
    if step is None:
        generic(tl, event)
        return
    if what == "started":
        step.data["attempt"] = int_of(a.get("attempt")) or 1
        step.data["last_failure"] = failure_summary(a.get("lastFailure"))
    elif what == "cancel requested":
        step.data["cancel_requested"] = True
    else:
        step.data["outcome"] = what
        step.data["result"] = payloads_text(a.get("result"))
        step.data["result_values"] = payload_values(a.get("result"))
        step.data["failure"] = failure_summary(a.get("failure"))
        step.data["failure_json"] = a.get("failure")
        if text_of(a, "retryState"):
            step.notes.append(f"retry state: {text_of(a, 'retryState').removeprefix('RETRY_STATE_')}")


def _marked(failure: Any, text: str) -> str:
    return f"{text} (injected fault)" if is_injected(failure) else text


def finish_activity(step: Step, tries: Sequence[ActivityAttempt]) -> None:
    """Status, detail and notes of an activity once all its events (and attempts) are known."""
    d = step.data
    count = max([d.get("attempt") or 0] + [t.attempt for t in tries if isinstance(t.attempt, int)])
    outcome = d.get("outcome")
    if outcome and count == 0:
        count = 1
    failures = [
        (t.attempt, _marked(t.failure, failure_summary(t.failure) or str(t.outcome))) for t in tries if t.outcome != "completed"
    ]
    if not failures and d.get("last_failure") and count > 1:
        failures = [(count - 1, d["last_failure"])]
    # Failures made on purpose (engine.faults) are told apart from organic ones.
    injected = sum(1 for t in tries if t.outcome != "completed" and is_injected(t.failure))
    if not tries and is_injected(d.get("failure_json")):
        injected = 1
    step.data["injected"] = injected
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
    if injected:  # early in the detail: text views cut long details short
        parts.append(f"⚡ {injected} injected fault{'s' if injected > 1 else ''}")
    if outcome == "completed":
        parts.append(f"→ {shorten(d.get('result') or 'null', 60)}")
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
    lines = [f"attempt {attempt} failed: {message}" for attempt, message in failures]
    if len(lines) > _LISTED_ATTEMPTS:
        half = _LISTED_ATTEMPTS // 2
        lines = lines[:half] + [f"… {len(lines) - 2 * half} more failed attempts"] + lines[-half:]
    step.notes += lines


def on_timer_started(tl: Timeline, event: HistoryEvent) -> None:
    a = event.attributes
    duration = format_duration(a.get("startToFireTimeout"))
    step = tl.new(event, "timer", f"sleep {duration}", status="running")
    step.detail = f"timer {text_of(a, 'timerId')} · waiting"
    summary = summary_of(a)
    if summary:
        step.notes.append(f"summary: {summary}")
    tl.open[("timer", event.event_id)] = step
    tl.open[("timer id", text_of(a, "timerId"))] = step


def on_timer_closed(fired: bool, tl: Timeline, event: HistoryEvent) -> None:
    a = event.attributes
    step = tl.attach(event, "timer", int_of(a.get("startedEventId"))) or tl.attach(event, "timer id", text_of(a, "timerId"))
    if step is None:
        generic(tl, event)
        return
    step.status = "ok" if fired else "cancelled"
    step.detail = f"timer {text_of(a, 'timerId')} · {'fired' if fired else 'cancelled'}"
    waited = tl.offset_of(event)
    if waited is not None and step.offset is not None:
        step.notes.append(f"{'fired' if fired else 'cancelled'} after {format_seconds(waited - step.offset)}")
