"""Rich notebook displays of a run: its events as a table, its steps as a graph and a table.

:class:`EventTable` lists every event like ``temporal workflow show`` (or, detailed, with
all attributes and payloads decoded). :class:`RunView` shows the steps of
:func:`kernel_ext.graphs.history_timeline_rows` as a Graphviz graph (when ``dot`` is
installed) above a table of the same steps. :class:`SagaView` shows a run as a saga
(forward steps, failure, compensations) and :class:`ChainView` the runs of a
continue-as-new chain, each as a graph above a table.

All of them implement ``_repr_mimebundle_`` with ``text/plain`` and ``text/html`` and honour
``include``/``exclude`` like the graphviz package. The HTML is deterministic (no random
ids, no current time) so notebook tests can compare it, and every piece of history data
in it goes through :func:`html.escape`. Events of types nobody taught us show as their
type name; nothing in a history makes these displays raise.
"""

from __future__ import annotations

import functools
import html
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping, Sequence

from engine.errors import HistoryFormatError
from engine.history import History, HistoryEvent
from kernel_ext._graph_views import ChainView, SagaView
from kernel_ext._html import MIME_TYPES, TABLE_CSS, badge, cell, graph_html, html_table, text_table, wanted
from kernel_ext._steps._read import Encoded, display_value, failure_summary, int_of, payloads_text, shorten, text_of, value_text
from kernel_ext.graphs import (
    collapse_rows,
    format_duration,
    format_offset,
    format_seconds,
    history_timeline_rows,
    render_svg,
    run_graph,
    seconds_between,
)

if TYPE_CHECKING:
    from engine.client import ActivityAttempt
    from engine.run_snapshot import RunSnapshot

__all__ = ["ChainView", "EventTable", "RunView", "SagaView"]

_DETAIL_LIMIT = 100
_EVENTS_IN_RUN_VIEW = 500


# --- one line per event ---------------------------------------------------------------


class _Names:
    """Names of the things later events refer to by event id (activity types, timers, ...)."""

    def __init__(self, history: History) -> None:
        self.by_event: dict[int, str] = {}
        for event in history.events:
            a = event.attributes if isinstance(event.attributes, Mapping) else {}
            if event.event_type == "ActivityTaskScheduled":
                self.by_event[event.event_id] = text_of(a, "activityType", "name") or "?"
            elif event.event_type == "StartChildWorkflowExecutionInitiated":
                self.by_event[event.event_id] = text_of(a, "workflowType", "name") or "?"
            elif event.event_type == "SignalExternalWorkflowExecutionInitiated":
                self.by_event[event.event_id] = f"signal {text_of(a, 'signalName')}"
            elif event.event_type == "TimerStarted":
                self.by_event[event.event_id] = f"timer {text_of(a, 'timerId')}"

    def of(self, a: Mapping[str, Any], key: str) -> str:
        return self.by_event.get(int_of(a.get(key)) or 0, "?")


Detail = Callable[[Mapping[str, Any], _Names], str]


def _activity_closed(a: Mapping[str, Any], names: _Names) -> str:
    name = names.of(a, "scheduledEventId")
    if "result" in a:
        return f"{name} → {payloads_text(a.get('result'))}"
    failure = failure_summary(a.get("failure"))
    return f"{name}: {failure}" if failure else name


def _child_event(a: Mapping[str, Any], names: _Names) -> str:
    text = f"{names.of(a, 'initiatedEventId')} {text_of(a, 'workflowExecution', 'workflowId')}"
    if "result" in a:
        return f"{text} → {payloads_text(a.get('result'))}"
    failure = failure_summary(a.get("failure"))
    return f"{text}: {failure}" if failure else text


def _task_failed(a: Mapping[str, Any], names: _Names) -> str:
    cause = text_of(a, "cause").removeprefix("WORKFLOW_TASK_FAILED_CAUSE_")
    failure = failure_summary(a.get("failure"))
    return f"{cause}: {failure}" if failure else cause


def _activity_started(a: Mapping[str, Any], names: _Names) -> str:
    text = f"{names.of(a, 'scheduledEventId')} attempt {text_of(a, 'attempt') or 1}"
    last = failure_summary(a.get("lastFailure"))
    return f"{text} (last failure: {last})" if last else text


def _update(a: Mapping[str, Any], names: _Names) -> str:
    name = text_of(a, "acceptedRequest", "input", "name") or text_of(a, "rejectedRequest", "input", "name")
    name = name or text_of(a, "request", "input", "name")
    if text_of(a, "outcome", "failure", "message"):
        return f"{name} failed: {failure_summary(a['outcome']['failure'])}".strip()
    if isinstance(a.get("outcome"), Mapping):
        return f"{name} → {payloads_text(a['outcome'].get('success'))}".strip()
    return name


def _mapping(value: Any) -> Mapping[str, Any]:
    """``value`` when it is a mapping, else empty: an imported history may hold anything."""
    return value if isinstance(value, Mapping) else {}


def _fields_text(fields: Any) -> str:
    """``name = value`` for each payload of a search attribute or memo upsert (null: removed)."""
    if not isinstance(fields, dict):
        return ""
    return ", ".join(f"{name} = {payloads_text({'payloads': [payload]})}" for name, payload in fields.items())


_DETAILS: dict[str, Detail] = {
    "WorkflowExecutionStarted": lambda a, n: (
        f"{text_of(a, 'workflowType', 'name')}({payloads_text(a.get('input'))})"
        + (f" on {text_of(a, 'taskQueue', 'name')}" if text_of(a, "taskQueue", "name") else "")
    ),
    "WorkflowTaskScheduled": lambda a, n: f"queue {text_of(a, 'taskQueue', 'name')}"
    + (f", attempt {text_of(a, 'attempt')}" if (int_of(a.get("attempt")) or 1) > 1 else ""),
    "WorkflowTaskStarted": lambda a, n: f"by {text_of(a, 'identity')}" if text_of(a, "identity") else "",
    "WorkflowTaskFailed": _task_failed,
    "WorkflowTaskTimedOut": lambda a, n: text_of(a, "timeoutType").removeprefix("TIMEOUT_TYPE_"),
    "ActivityTaskScheduled": lambda a, n: (
        f"{text_of(a, 'activityType', 'name')} id {text_of(a, 'activityId')}, input {payloads_text(a.get('input'))}"
    ),
    "ActivityTaskStarted": _activity_started,
    "ActivityTaskCompleted": _activity_closed,
    "ActivityTaskFailed": _activity_closed,
    "ActivityTaskTimedOut": _activity_closed,
    "ActivityTaskCancelRequested": lambda a, n: n.of(a, "scheduledEventId"),
    "ActivityTaskCanceled": lambda a, n: n.of(a, "scheduledEventId"),
    "TimerStarted": lambda a, n: f"timer {text_of(a, 'timerId')} for {format_duration(a.get('startToFireTimeout'))}",
    "TimerFired": lambda a, n: f"timer {text_of(a, 'timerId')}",
    "TimerCanceled": lambda a, n: f"timer {text_of(a, 'timerId')}",
    "MarkerRecorded": lambda a, n: text_of(a, "markerName"),
    "UpsertWorkflowSearchAttributes": lambda a, n: _fields_text(_mapping(a.get("searchAttributes")).get("indexedFields")),
    "WorkflowPropertiesModified": lambda a, n: "memo " + _fields_text(_mapping(a.get("upsertedMemo")).get("fields")),
    "WorkflowExecutionSignaled": lambda a, n: f"{text_of(a, 'signalName')}({payloads_text(a.get('input'))})",
    "WorkflowExecutionCancelRequested": lambda a, n: text_of(a, "cause") or text_of(a, "identity"),
    "StartChildWorkflowExecutionInitiated": lambda a, n: (
        f"{text_of(a, 'workflowType', 'name')} {text_of(a, 'workflowId')}({payloads_text(a.get('input'))})"
    ),
    "ChildWorkflowExecutionStarted": _child_event,
    "ChildWorkflowExecutionCompleted": _child_event,
    "ChildWorkflowExecutionFailed": _child_event,
    "ChildWorkflowExecutionCanceled": _child_event,
    "ChildWorkflowExecutionTimedOut": _child_event,
    "ChildWorkflowExecutionTerminated": _child_event,
    "SignalExternalWorkflowExecutionInitiated": lambda a, n: (
        f"{text_of(a, 'signalName')} to {text_of(a, 'workflowExecution', 'workflowId')}"
    ),
    "ExternalWorkflowExecutionSignaled": lambda a, n: (
        f"{n.of(a, 'initiatedEventId')} to {text_of(a, 'workflowExecution', 'workflowId')}"
    ),
    "SignalExternalWorkflowExecutionFailed": lambda a, n: f"{n.of(a, 'initiatedEventId')}: {text_of(a, 'cause')}",
    "WorkflowExecutionUpdateAccepted": _update,
    "WorkflowExecutionUpdateRejected": _update,
    "WorkflowExecutionUpdateCompleted": _update,
    "WorkflowExecutionCompleted": lambda a, n: f"result {payloads_text(a.get('result'))}",
    "WorkflowExecutionFailed": lambda a, n: failure_summary(a.get("failure")),
    "WorkflowExecutionTerminated": lambda a, n: text_of(a, "reason"),
    "WorkflowExecutionTimedOut": lambda a, n: text_of(a, "retryState").removeprefix("RETRY_STATE_"),
    "WorkflowExecutionContinuedAsNew": lambda a, n: f"new run with ({payloads_text(a.get('input'))})",
}


def _short_detail(event: HistoryEvent, names: _Names) -> str:
    if not isinstance(event.attributes, Mapping):
        return ""
    detail = _DETAILS.get(event.event_type)
    if detail is None:
        return failure_summary(event.attributes.get("failure"))
    return " ".join(detail(event.attributes, names).split())


# --- every attribute, payloads decoded ---------------------------------------------


def _is_payload(value: Mapping[str, Any]) -> bool:
    return isinstance(value.get("metadata"), Mapping) and set(value) <= {"metadata", "data", "externalPayloads"}


def _decoded(value: Any) -> Any:
    """``value`` with every payload (and ``{"payloads": [...]}``) replaced by its value."""
    if isinstance(value, Mapping):
        if set(value) == {"payloads"} and isinstance(value["payloads"], list):
            return [_decoded(p) for p in value["payloads"]]
        if _is_payload(value):
            try:
                decoded = display_value(value)
            except HistoryFormatError as exc:
                return f"<payload that cannot be decoded: {exc}>"
            if isinstance(decoded, Encoded):
                return decoded
            return f"<{len(decoded)} bytes: {bytes(decoded[:32])!r}>" if isinstance(decoded, bytes) else decoded
        return {str(k): _decoded(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_decoded(v) for v in value]
    return value


def _tree_lines(key: str, value: Any, depth: int) -> list[str]:
    pad = "  " * depth
    if isinstance(value, Mapping) and value:
        return [f"{pad}{key}:"] + [line for k, v in value.items() for line in _tree_lines(str(k), v, depth + 1)]
    if isinstance(value, list) and any(isinstance(v, (Mapping, list)) for v in value):
        return [f"{pad}{key}:"] + [line for i, v in enumerate(value) for line in _tree_lines(f"- [{i}]", v, depth + 1)]
    if isinstance(value, str) and "\n" in value:
        return [f"{pad}{key}: |"] + [f"{pad}  {line}" for line in value.splitlines()]
    return [f"{pad}{key}: {value_text(value)}"]


def _all_attributes(event: HistoryEvent) -> str:
    attributes = _decoded(event.attributes)
    if not isinstance(attributes, Mapping):
        return value_text(attributes)
    return "\n".join(line for k, v in attributes.items() for line in _tree_lines(k, v, 0))


class EventTable:
    """A history's events as a table, like ``temporal workflow show``.

    Columns: event id, time since the run started, event type, and a short summary
    (activity type, attempt, result or failure message, timer id and duration, signal
    name, ...). With ``detailed=True`` the last column holds every attribute of the event,
    payloads decoded.
    """

    def __init__(self, history: History, *, detailed: bool = False) -> None:
        self.history = history
        self.detailed = detailed

    def rows(self) -> list[tuple[str, str, str, str]]:
        """``(id, time offset, type, details)`` per event, as text."""
        names = _Names(self.history)
        start = self.history.events[0].event_time if self.history.events else None
        out = []
        for event in self.history.events:
            if self.detailed:
                details = _all_attributes(event)
            else:
                details = shorten(_short_detail(event, names), _DETAIL_LIMIT)
            offset = format_offset(seconds_between(start, event.event_time))
            out.append((str(event.event_id), offset, event.event_type or "?", details))
        return out

    def to_text(self) -> str:
        """Aligned plain-text columns (attributes indented under each event if detailed)."""
        header = ("ID", "TIME", "TYPE", "DETAILS")
        if not self.detailed:
            return text_table(header, self.rows(), right=(0,))
        lines = []
        for event_id, offset, event_type, details in self.rows():
            lines.append(f"{event_id:>4}  {offset}  {event_type}")
            lines += [f"      {line}" for line in details.splitlines()]
        return "\n".join(lines)

    def to_html(self) -> str:
        """An HTML table; every cell is escaped."""
        header = ("ID", "Time", "Type", "Attributes" if self.detailed else "Details")
        return html_table(header, self.rows(), pre_column=3 if self.detailed else None)

    def _repr_mimebundle_(
        self, include: Iterable[str] | None = None, exclude: Iterable[str] | None = None, **_: Any
    ) -> dict[str, str]:
        makers = {"text/plain": self.to_text, "text/html": self.to_html}
        return {mime: makers[mime]() for mime in MIME_TYPES if mime in wanted(include, exclude)}


# --- graph + steps --------------------------------------------------------------------


class RunView:
    """A run as a graph of its steps (when Graphviz is installed) and a table of them.

    ``attempts`` is the engine's side table of activity attempts
    (``await handle.activity_attempts()``); without it only each activity's last attempt
    is known. Long histories are collapsed and capped as :func:`run_graph` describes.
    ``children`` maps child workflow ids to their histories, drawn nested in the graph.
    ``faults`` is the run's fault log: steps injected faults hit are marked.
    """

    def __init__(
        self,
        history: History,
        attempts: Sequence[ActivityAttempt] = (),
        *,
        title: str | None = None,
        max_nodes: int = 200,
        children: Mapping[str, History] | None = None,
        faults: Sequence[Any] = (),
    ) -> None:
        self.history = history
        self.attempts = tuple(attempts)
        self.faults = tuple(faults)
        self.title = title or " · ".join(p for p in (history.workflow_type, history.workflow_id) if p) or "run"
        self.max_nodes = max_nodes
        self.children = dict(children or {})

    @classmethod
    def of(cls, snapshot: RunSnapshot, *, title: str | None = None, max_nodes: int = 200) -> RunView:
        """The view of a run read by ``await handle.snapshot()``: its history, every attempt,
        its child runs drawn nested and the faults that fired in it."""
        return cls(snapshot.history, snapshot.attempts, title=title, max_nodes=max_nodes,
                   children=snapshot.child_histories, faults=snapshot.faults)

    @functools.cached_property
    def rows(self) -> list[dict[str, Any]]:
        """The steps, with long runs of identical steps collapsed (see ``collapse_rows``)."""
        return collapse_rows(history_timeline_rows(self.history, self.attempts, self.faults))

    @functools.cached_property
    def dot(self) -> str:
        """The graph as DOT text."""
        return run_graph(self.history, self.attempts, max_nodes=self.max_nodes, children=self.children, faults=self.faults)

    def summary(self) -> str:
        """One line: outcome, duration, events, steps, activities."""
        events = self.history.events
        if not events:
            return "empty history"
        final = next((row for row in reversed(self.rows) if row["kind"] == "result"), None)
        outcome = final["title"].lower() if final else "?"
        if final and final["status"] == "failed" and final["detail"]:
            outcome += f" ({shorten(final['detail'], 80)})"
        took = seconds_between(events[0].event_time, events[-1].event_time)
        if took is not None:
            # A running run's history only says how long it ran until its last event: at least that.
            still_running = final is not None and final["status"] == "running"
            outcome += f" {'for at least' if still_running else 'in'} {format_seconds(round(took, 3))}"
        parts = [outcome, f"{len(events)} events"]
        activities = [row for row in self.rows if row["kind"] == "activity"]
        if activities:
            count = sum(row["count"] for row in activities)
            retried = sum(row["count"] for row in activities if row["status"] == "retried")
            failed = sum(row["count"] for row in activities if row["status"] == "failed")
            extra = ", ".join(f"{n} {word}" for n, word in ((retried, "retried"), (failed, "failed")) if n)
            parts.append(f"{count} activit{'y' if count == 1 else 'ies'}" + (f" ({extra})" if extra else ""))
        return " · ".join(parts)

    def _table_rows(self) -> list[tuple[str, str, str, str, str]]:
        return [
            (str(row.get("step", "")), row["events"], row["status"], row["title"], row["detail"]) for row in self.rows
        ]

    def to_text(self) -> str:
        """Title, summary, and the steps as aligned columns."""
        rows = [(n, e, s, t, shorten(d, _DETAIL_LIMIT)) for n, e, s, t, d in self._table_rows()]
        table = text_table(("#", "EVENTS", "STATUS", "STEP", "DETAIL"), rows, right=(0,))
        return f"{self.title}: {self.summary()}\n\n{table}"

    def _graph_html(self) -> str:
        return graph_html(self.dot, render_svg)

    def _steps_html(self) -> str:
        out = [TABLE_CSS, '<table class="durable-lab-table"><thead><tr>']
        out += [cell(name, "th") for name in ("#", "Events", "Status", "Step", "Detail")]
        out.append("</tr></thead><tbody>")
        for row, (number, events, status, title, detail) in zip(self.rows, self._table_rows()):
            cells = [html.escape(number), html.escape(events), badge(status), html.escape(title), html.escape(detail)]
            out.append(
                f'<tr title="{html.escape(row["tooltip"])}">' + "".join(cell(c) for c in cells) + "</tr>"
            )
        out.append("</tbody></table>")
        return "".join(out)

    def to_html(self) -> str:
        """Title and summary, the graph (or how to get it), the steps, and all events folded."""
        events = len(self.history.events)
        if events <= _EVENTS_IN_RUN_VIEW:
            folded = (
                f"<details><summary>All {events} events</summary>{EventTable(self.history).to_html()}</details>"
            )
        else:
            folded = f"<p>{events} events: <code>EventTable(history)</code> lists them all.</p>"
        return (
            '<div class="durable-lab-run">'
            f"<p><strong>{html.escape(self.title)}</strong>: {html.escape(self.summary())}</p>"
            f"{self._graph_html()}{self._steps_html()}{folded}</div>"
        )

    def _repr_mimebundle_(
        self, include: Iterable[str] | None = None, exclude: Iterable[str] | None = None, **_: Any
    ) -> dict[str, str]:
        makers = {"text/plain": self.to_text, "text/html": self.to_html}
        return {mime: makers[mime]() for mime in MIME_TYPES if mime in wanted(include, exclude)}
