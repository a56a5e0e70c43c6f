"""Two histories of the same code side by side: what lines up, what differs, and why that is allowed.

Tutorial 09 runs one workflow on the kernel's engine and on a Temporal server and compares the
two histories. Two runs of the same code never have identical histories, even on one Temporal
server: times, ids and worker names differ, and how many workflow tasks a run takes depends on
when results arrive. :func:`compare_histories` lines up the events that the *code* decides
(activities, timers, signals, children, the run's start and end) and compares their meaningful
attributes; every field it does not compare is in :data:`ALLOWED` with the reason Temporal
itself lets it differ. The workflow-task events are counted on each side, not lined up (see
``WORKFLOW_TASK_EVENTS``). The differential suite (tests/differential) does the same, more
strictly, for every scenario it runs.

    comparison = compare_histories(engine_history, temporal_history, names=("engine", "Temporal"))
    comparison            # a table in the notebook; comparison.same says whether only allowed differences remain
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass, field
from itertools import zip_longest
from typing import Any, Mapping, Sequence

from engine.history import History, HistoryEvent, decode_payloads
from engine.errors import HistoryFormatError
from kernel_ext._html import html_table

__all__ = ["ALLOWED", "WORKFLOW_TASK_EVENTS", "HistoryComparison", "Step", "compare_histories"]

# Attribute (at any depth) -> why two runs of the same code may differ in it.
ALLOWED: Mapping[str, str] = {
    "identity": "the worker or client that did it (pid@host/name): another process, another name",
    "taskId": "the server's own sequence number for the write",
    "requestId": "a random id per request",
    "eventTime": "two runs never happen at the same moment",
    "expirationTime": "a moment (start plus a timeout)",
    "workflowExecutionExpirationTime": "a moment (start plus the execution timeout)",
    "originalExecutionRunId": "run ids are random: each run gets its own",
    "firstExecutionRunId": "run ids are random: each run gets its own",
    "runId": "run ids are random: each run gets its own",
    "scheduledEventId": "an event number, which counts the workflow-task events (they differ: see below)",
    "startedEventId": "an event number, which counts the workflow-task events",
    "workflowTaskCompletedEventId": "an event number, which counts the workflow-task events",
    "namespaceId": "a random id each server (or engine database) gives a namespace when it creates it",
    "historySizeBytes": "grows with ids, identities and workflow tasks",
    "workerVersion": "the worker's build id",
    "stackTrace": "file paths and line numbers of each SDK's own frames",
    "header": "context propagated by the client or worker (tracing), empty by default",
    "version": "the server's failover version (0 on one cluster)",
    "useCompatibleVersion": "a worker-versioning flag the engine does not record",
    "inheritBuildId": "a worker-versioning flag the engine does not record",
    "priority": "a task priority, which recent Temporal servers write and the engine does not",
    "versioningOverride": "worker versioning, which the engine does not have",
    "prevAutoResetPoints": "reset points, which name a run id, a build id and a moment",
    "lastCompletionResult": "empty unless the run is a cron or a retry",
}

# Events whose number and position depend on timing, not on the code (counted, not lined up).
WORKFLOW_TASK_EVENTS: Mapping[str, str] = {
    "WorkflowTaskScheduled": "how many workflow tasks a run takes depends on when results arrive "
    "(a server batches what arrives while a task runs), and Temporal sends the next ones to the "
    "worker's sticky queue",
    "WorkflowTaskStarted": "one per workflow task (see WorkflowTaskScheduled)",
    "WorkflowTaskCompleted": "one per workflow task (see WorkflowTaskScheduled)",
    "WorkflowTaskTimedOut": "a slow worker on a loaded machine; the task runs again",
}


@dataclass(frozen=True)
class Step:
    """One line of the comparison: the events at the same place in each history (None where a
    history has no event there), and each difference with its reason ("" when not allowed)."""

    left: HistoryEvent | None
    right: HistoryEvent | None
    differences: tuple[tuple[str, str, str, str], ...] = ()  # (field, left value, right value, why allowed)
    labels: tuple[str, str] = ("-", "-")  # each event as the table names it

    @property
    def same(self) -> bool:
        """Only allowed differences (or none)."""
        return self.left is not None and self.right is not None and all(why for *_, why in self.differences)


@dataclass(frozen=True)
class HistoryComparison:
    """The comparison of two histories (see :func:`compare_histories`)."""

    names: tuple[str, str]
    steps: tuple[Step, ...]
    workflow_tasks: tuple[int, int]  # workflow-task events on each side
    allowed_fields: Mapping[str, str] = field(default_factory=dict)  # the allowed fields that did differ

    @property
    def same(self) -> bool:
        """True when the histories differ only where Temporal allows two runs to differ."""
        return all(step.same for step in self.steps)

    def summary(self) -> str:
        left, right = self.names
        bad = [s for s in self.steps if not s.same]
        tasks = f"Workflow-task events, counted apart: {self.workflow_tasks[0]} on {left}, {self.workflow_tasks[1]} on {right}."
        if not bad:
            return (f"Same steps: the {len(self.steps)} events the code decided line up, and they differ only where two "
                    f"runs of the same code may differ. {tasks}")
        return f"{len(bad)} of the {len(self.steps)} lined-up events differ where two runs of the same code may not. {tasks}"

    def rows(self) -> list[tuple[str, str, str, str]]:
        """(left event, right event, the fields that differ, verdict) per line."""
        out = []
        for step in self.steps:
            if step.left is None or step.right is None:
                out.append((*step.labels, "only in one history", "NOT allowed: the code took another path"))
                continue
            fields = ", ".join(dict.fromkeys(f.rsplit(".", 1)[-1] for f, *_ in step.differences)) or "nothing"
            wrong = [f"{f} ({a} vs {b})" for f, a, b, why in step.differences if not why]
            verdict = "NOT allowed: " + "; ".join(wrong) if wrong else ("allowed" if step.differences else "same")
            out.append((*step.labels, fields, verdict))
        return out

    def reasons(self) -> list[tuple[str, str]]:
        """Each allowed field that did differ, with why Temporal allows it; and the workflow tasks."""
        seen = {f.rsplit(".", 1)[-1]: why for f, why in self.allowed_fields.items()}
        return [*sorted(seen.items()), ("workflow tasks", WORKFLOW_TASK_EVENTS["WorkflowTaskScheduled"])]

    def text(self) -> str:
        header = (self.names[0], self.names[1], "fields that differ", "verdict")
        rows = [header, *self.rows()]
        widths = [max(len(r[i]) for r in rows) for i in range(3)]
        lines = ["  ".join([*(c.ljust(w) for c, w in zip(r[:3], widths)), r[3]]).rstrip() for r in rows]
        why = [f"  {name}: {reason}" for name, reason in self.reasons()]
        return "\n".join([self.summary(), "", *lines, "", "Why these may differ between two runs of the same code:", *why])

    def __repr__(self) -> str:
        return self.text()

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(self.text())

    def _repr_html_(self) -> str:
        e = html.escape
        table = html_table((self.names[0], self.names[1], "fields that differ", "verdict"), self.rows())
        reasons = "".join(f"<li><code>{e(name)}</code>: {e(reason)}</li>" for name, reason in self.reasons())
        return (f"<div class='durable-lab-compare'><p>{e(self.summary())}</p>{table}"
                f"<p>Why these may differ between two runs of the same code:</p><ul>{reasons}</ul></div>")


def _labeller(history: History) -> Any:
    """Names events as the table shows them: id, type, and the activity, timer or signal."""
    scheduled = {e.event_id: (e.attributes.get("activityType") or {}).get("name", "") for e in history.events
                 if e.event_type == "ActivityTaskScheduled"}

    def label(event: HistoryEvent | None) -> str:
        if event is None:
            return "-"
        a = event.attributes
        name = ((a.get("activityType") or a.get("workflowType") or {}).get("name") or a.get("signalName") or a.get("timerId")
                or scheduled.get(_int(a.get("scheduledEventId")), ""))
        return f"{event.event_id} {event.event_type}" + (f" ({name})" if name else "")

    return label


def _int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def _value(key: str, value: Any) -> Any:
    """A field as compared: payloads decoded (both sides write JSON), the rest as is."""
    if isinstance(value, Mapping) and "payloads" in value:
        try:
            return decode_payloads(value)
        except HistoryFormatError:
            return value
    return value


def _flatten(prefix: str, value: Any, out: dict[str, Any]) -> None:
    if isinstance(value, Mapping) and not ("payloads" in value):
        for k, v in value.items():
            if k in ALLOWED:
                out.setdefault("__allowed__", {})[f"{prefix}{k}"] = (k, v)
                continue
            _flatten(f"{prefix}{k}.", v, out)
        return
    key = prefix[:-1]
    if value in (None, "", [], {}, "0s", 0, False) and key.rsplit(".", 1)[-1] not in ("attempt", "result"):
        return  # an absent default: Temporal's JSON leaves defaults out, the engine may write them
    out[key] = _value(key, value)


def _fields(event: HistoryEvent) -> tuple[dict[str, Any], dict[str, tuple[str, Any]]]:
    out: dict[str, Any] = {}
    _flatten("", event.attributes, out)
    allowed = out.pop("__allowed__", {})
    return out, allowed


def _show(value: Any) -> str:
    text = json.dumps(value, default=str, ensure_ascii=False) if not isinstance(value, str) else value
    return text if len(text) <= 40 else text[:37] + "..."


def _compare(left: HistoryEvent, right: HistoryEvent) -> tuple[tuple[str, str, str, str], ...]:
    if left.event_type != right.event_type:
        return (("event type", left.event_type, right.event_type, ""),)
    (a, a_allowed), (b, b_allowed) = _fields(left), _fields(right)
    out = [(k, _show(a.get(k, "-")), _show(b.get(k, "-")), "") for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]
    for path in sorted(set(a_allowed) | set(b_allowed)):
        (name, x), (_, y) = a_allowed.get(path, (path.rsplit(".", 1)[-1], None)), b_allowed.get(path, (path.rsplit(".", 1)[-1], None))
        if x != y:
            out.append((path, _show(x if x is not None else "-"), _show(y if y is not None else "-"), ALLOWED[name]))
    return tuple(out)


def compare_histories(left: History, right: History, *, names: Sequence[str] = ("engine", "Temporal")) -> HistoryComparison:
    """Line up the events of two histories of the same code and compare them (module docstring)."""
    if len(names) != 2:
        raise ValueError("names: two names, one per history (e.g. ('engine', 'Temporal')).")
    lefts = [e for e in left.events if e.event_type not in WORKFLOW_TASK_EVENTS]
    rights = [e for e in right.events if e.event_type not in WORKFLOW_TASK_EVENTS]
    steps = []
    allowed: dict[str, str] = {}
    left_label, right_label = _labeller(left), _labeller(right)
    for a, b in zip_longest(lefts, rights):
        differences = _compare(a, b) if a is not None and b is not None else ()
        allowed.update({f: why for f, _, _, why in differences if why})
        steps.append(Step(a, b, differences, (left_label(a), right_label(b))))
    tasks = (len(left.events) - len(lefts), len(right.events) - len(rights))
    return HistoryComparison((str(names[0]), str(names[1])), tuple(steps), tasks, allowed)
