"""Rich notebook displays of a run: its events as a table, its steps as a graph and a table.

:class:`EventTable` lists every event like ``temporal workflow show`` (or, detailed, with
all attributes and payloads decoded). :class:`RunView` shows the steps of
:func:`kernel_ext.graphs.history_timeline_rows` as a Graphviz graph (when ``dot`` is
installed) above a table of the same steps.

Both implement ``_repr_mimebundle_`` with ``text/plain`` and ``text/html`` and honour
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
from engine.history import History, HistoryEvent, decode_payload
from kernel_ext._timeline import _failure_summary, _int, _payloads_text, _shorten, _text, _value_text
from kernel_ext.graphs import (
    STATUS_COLOURS,
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
    from engine.faults import FaultFired

__all__ = ["EventTable", "RunView"]

_MIME_TYPES = ("text/plain", "text/html")
_DETAIL_LIMIT = 100
_EVENTS_IN_RUN_VIEW = 500
_NO_DOT = "Graph not shown: install graphviz (apt-get install graphviz) for the graph."
# JupyterLab right-aligns table cells; history tables read better left-aligned.
_TABLE_CSS = (
    "<style>.durable-lab-table td, .durable-lab-table th {text-align: left; vertical-align: top; "
    "padding: 2px 8px;} .durable-lab-table pre {margin: 0; white-space: pre-wrap;}</style>"
)


def _wanted(include: Iterable[str] | None, exclude: Iterable[str] | None) -> set[str]:
    wanted = set(_MIME_TYPES) if include is None else set(include) & set(_MIME_TYPES)
    return wanted - set(exclude or ())


def _text_table(header: Sequence[str], rows: Sequence[Sequence[str]], right: Sequence[int] = ()) -> str:
    """Aligned columns; the last column is left ragged (it holds free text)."""
    widths = [max([len(header[i])] + [len(row[i]) for row in rows]) for i in range(len(header) - 1)]

    def line(cells: Sequence[str]) -> str:
        parts = [c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths))]
        return "  ".join(parts + [cells[-1]]).rstrip()

    return "\n".join([line(header)] + [line(row) for row in rows])


def _html_table(header: Sequence[str], rows: Iterable[Sequence[str]], *, pre_column: int | None = None) -> str:
    """An HTML table; every cell is escaped (``pre_column`` is wrapped in ``<pre>``)."""
    out = [_TABLE_CSS, '<table class="durable-lab-table">', "<thead><tr>"]
    out += [f"<th>{html.escape(cell)}</th>" for cell in header]
    out.append("</tr></thead><tbody>")
    for row in rows:
        out.append("<tr>")
        for index, cell in enumerate(row):
            text = html.escape(cell)
            out.append(f"<td><pre>{text}</pre></td>" if index == pre_column else f"<td>{text}</td>")
        out.append("</tr>")
    out.append("</tbody></table>")
    return "".join(out)


# --- one line per event ---------------------------------------------------------------


class _Names:
    """Names of the things later events refer to by event id (activity types, timers, ...)."""

    def __init__(self, history: History) -> None:
        self.by_event: dict[int, str] = {}
        for event in history.events:
            a = event.attributes if isinstance(event.attributes, Mapping) else {}
            if event.event_type == "ActivityTaskScheduled":
                self.by_event[event.event_id] = _text(a, "activityType", "name") or "?"
            elif event.event_type == "StartChildWorkflowExecutionInitiated":
                self.by_event[event.event_id] = _text(a, "workflowType", "name") or "?"
            elif event.event_type == "SignalExternalWorkflowExecutionInitiated":
                self.by_event[event.event_id] = f"signal {_text(a, 'signalName')}"
            elif event.event_type == "TimerStarted":
                self.by_event[event.event_id] = f"timer {_text(a, 'timerId')}"

    def of(self, a: Mapping[str, Any], key: str) -> str:
        return self.by_event.get(_int(a.get(key)) or 0, "?")


Detail = Callable[[Mapping[str, Any], _Names], str]


def _activity_closed(a: Mapping[str, Any], names: _Names) -> str:
    name = names.of(a, "scheduledEventId")
    if "result" in a:
        return f"{name} → {_payloads_text(a.get('result'))}"
    failure = _failure_summary(a.get("failure"))
    return f"{name}: {failure}" if failure else name


def _child_event(a: Mapping[str, Any], names: _Names) -> str:
    text = f"{names.of(a, 'initiatedEventId')} {_text(a, 'workflowExecution', 'workflowId')}"
    if "result" in a:
        return f"{text} → {_payloads_text(a.get('result'))}"
    failure = _failure_summary(a.get("failure"))
    return f"{text}: {failure}" if failure else text


def _task_failed(a: Mapping[str, Any], names: _Names) -> str:
    cause = _text(a, "cause").removeprefix("WORKFLOW_TASK_FAILED_CAUSE_")
    failure = _failure_summary(a.get("failure"))
    return f"{cause}: {failure}" if failure else cause


def _activity_started(a: Mapping[str, Any], names: _Names) -> str:
    text = f"{names.of(a, 'scheduledEventId')} attempt {_text(a, 'attempt') or 1}"
    last = _failure_summary(a.get("lastFailure"))
    return f"{text} (last failure: {last})" if last else text


def _update(a: Mapping[str, Any], names: _Names) -> str:
    name = _text(a, "acceptedRequest", "input", "name") or _text(a, "rejectedRequest", "input", "name")
    name = name or _text(a, "request", "input", "name")
    if _text(a, "outcome", "failure", "message"):
        return f"{name} failed: {_failure_summary(a['outcome']['failure'])}".strip()
    if isinstance(a.get("outcome"), Mapping):
        return f"{name} → {_payloads_text(a['outcome'].get('success'))}".strip()
    return name


_DETAILS: dict[str, Detail] = {
    "WorkflowExecutionStarted": lambda a, n: (
        f"{_text(a, 'workflowType', 'name')}({_payloads_text(a.get('input'))})"
        + (f" on {_text(a, 'taskQueue', 'name')}" if _text(a, "taskQueue", "name") else "")
    ),
    "WorkflowTaskScheduled": lambda a, n: f"queue {_text(a, 'taskQueue', 'name')}"
    + (f", attempt {_text(a, 'attempt')}" if (_int(a.get("attempt")) or 1) > 1 else ""),
    "WorkflowTaskStarted": lambda a, n: f"by {_text(a, 'identity')}" if _text(a, "identity") else "",
    "WorkflowTaskFailed": _task_failed,
    "WorkflowTaskTimedOut": lambda a, n: _text(a, "timeoutType").removeprefix("TIMEOUT_TYPE_"),
    "ActivityTaskScheduled": lambda a, n: (
        f"{_text(a, 'activityType', 'name')} id {_text(a, 'activityId')}, input {_payloads_text(a.get('input'))}"
    ),
    "ActivityTaskStarted": _activity_started,
    "ActivityTaskCompleted": _activity_closed,
    "ActivityTaskFailed": _activity_closed,
    "ActivityTaskTimedOut": _activity_closed,
    "ActivityTaskCancelRequested": lambda a, n: n.of(a, "scheduledEventId"),
    "ActivityTaskCanceled": lambda a, n: n.of(a, "scheduledEventId"),
    "TimerStarted": lambda a, n: f"timer {_text(a, 'timerId')} for {format_duration(a.get('startToFireTimeout'))}",
    "TimerFired": lambda a, n: f"timer {_text(a, 'timerId')}",
    "TimerCanceled": lambda a, n: f"timer {_text(a, 'timerId')}",
    "MarkerRecorded": lambda a, n: _text(a, "markerName"),
    "WorkflowExecutionSignaled": lambda a, n: f"{_text(a, 'signalName')}({_payloads_text(a.get('input'))})",
    "WorkflowExecutionCancelRequested": lambda a, n: _text(a, "cause") or _text(a, "identity"),
    "StartChildWorkflowExecutionInitiated": lambda a, n: (
        f"{_text(a, 'workflowType', 'name')} {_text(a, 'workflowId')}({_payloads_text(a.get('input'))})"
    ),
    "ChildWorkflowExecutionStarted": _child_event,
    "ChildWorkflowExecutionCompleted": _child_event,
    "ChildWorkflowExecutionFailed": _child_event,
    "ChildWorkflowExecutionCanceled": _child_event,
    "ChildWorkflowExecutionTimedOut": _child_event,
    "ChildWorkflowExecutionTerminated": _child_event,
    "SignalExternalWorkflowExecutionInitiated": lambda a, n: (
        f"{_text(a, 'signalName')} to {_text(a, 'workflowExecution', 'workflowId')}"
    ),
    "ExternalWorkflowExecutionSignaled": lambda a, n: (
        f"{n.of(a, 'initiatedEventId')} to {_text(a, 'workflowExecution', 'workflowId')}"
    ),
    "SignalExternalWorkflowExecutionFailed": lambda a, n: f"{n.of(a, 'initiatedEventId')}: {_text(a, 'cause')}",
    "WorkflowExecutionUpdateAccepted": _update,
    "WorkflowExecutionUpdateRejected": _update,
    "WorkflowExecutionUpdateCompleted": _update,
    "WorkflowExecutionCompleted": lambda a, n: f"result {_payloads_text(a.get('result'))}",
    "WorkflowExecutionFailed": lambda a, n: _failure_summary(a.get("failure")),
    "WorkflowExecutionTerminated": lambda a, n: _text(a, "reason"),
    "WorkflowExecutionTimedOut": lambda a, n: _text(a, "retryState").removeprefix("RETRY_STATE_"),
    "WorkflowExecutionContinuedAsNew": lambda a, n: f"new run with ({_payloads_text(a.get('input'))})",
}


def _short_detail(event: HistoryEvent, names: _Names) -> str:
    if not isinstance(event.attributes, Mapping):
        return ""
    detail = _DETAILS.get(event.event_type)
    if detail is None:
        return _failure_summary(event.attributes.get("failure"))
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
                decoded = decode_payload(value)
            except HistoryFormatError as exc:
                return f"<payload that cannot be decoded: {exc}>"
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
    return [f"{pad}{key}: {_value_text(value)}"]


def _all_attributes(event: HistoryEvent) -> str:
    attributes = _decoded(event.attributes)
    if not isinstance(attributes, Mapping):
        return _value_text(attributes)
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
                details = _shorten(_short_detail(event, names), _DETAIL_LIMIT)
            offset = format_offset(seconds_between(start, event.event_time))
            out.append((str(event.event_id), offset, event.event_type or "?", details))
        return out

    def to_text(self) -> str:
        """Aligned plain-text columns (attributes indented under each event if detailed)."""
        header = ("ID", "TIME", "TYPE", "DETAILS")
        if not self.detailed:
            return _text_table(header, self.rows(), right=(0,))
        lines = []
        for event_id, offset, event_type, details in self.rows():
            lines.append(f"{event_id:>4}  {offset}  {event_type}")
            lines += [f"      {line}" for line in details.splitlines()]
        return "\n".join(lines)

    def to_html(self) -> str:
        """An HTML table; every cell is escaped."""
        header = ("ID", "Time", "Type", "Attributes" if self.detailed else "Details")
        return _html_table(header, self.rows(), pre_column=3 if self.detailed else None)

    def _repr_mimebundle_(
        self, include: Iterable[str] | None = None, exclude: Iterable[str] | None = None, **_: Any
    ) -> dict[str, str]:
        makers = {"text/plain": self.to_text, "text/html": self.to_html}
        return {mime: makers[mime]() for mime in _MIME_TYPES if mime in _wanted(include, exclude)}


# --- graph + steps --------------------------------------------------------------------


class RunView:
    """A run as a graph of its steps (when Graphviz is installed) and a table of them.

    ``attempts`` is the engine's side table of activity attempts
    (``await handle.activity_attempts()``); without it only each activity's last attempt
    is known. Long histories are collapsed and capped as :func:`run_graph` describes.
    ``faults`` is the run's fault log (``engine.faults.fault_log``): what injected faults
    hit is marked in the graph and the table.
    """

    def __init__(
        self,
        history: History,
        attempts: Sequence[ActivityAttempt] = (),
        *,
        title: str | None = None,
        max_nodes: int = 200,
        faults: Sequence[FaultFired] = (),
    ) -> None:
        self.history = history
        self.attempts = tuple(attempts)
        self.faults = tuple(faults)
        self.title = title or " · ".join(p for p in (history.workflow_type, history.workflow_id) if p) or "run"
        self.max_nodes = max_nodes

    @functools.cached_property
    def rows(self) -> list[dict[str, Any]]:
        """The steps, with long runs of identical steps collapsed (see ``collapse_rows``)."""
        return collapse_rows(history_timeline_rows(self.history, self.attempts, self.faults))

    @functools.cached_property
    def dot(self) -> str:
        """The graph as DOT text."""
        return run_graph(self.history, self.attempts, faults=self.faults, max_nodes=self.max_nodes)

    def summary(self) -> str:
        """One line: outcome, duration, events, steps, activities."""
        events = self.history.events
        if not events:
            return "empty history"
        final = next((row for row in reversed(self.rows) if row["kind"] == "result"), None)
        outcome = final["title"].lower() if final else "?"
        if final and final["status"] == "failed" and final["detail"]:
            outcome += f" ({_shorten(final['detail'], 80)})"
        took = seconds_between(events[0].event_time, events[-1].event_time)
        if took is not None:
            still_running = final is not None and final["status"] == "running"
            outcome += f" {'for' if still_running else 'in'} {format_seconds(round(took, 3))}"
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
        rows = [(n, e, s, t, _shorten(d, _DETAIL_LIMIT)) for n, e, s, t, d in self._table_rows()]
        table = _text_table(("#", "EVENTS", "STATUS", "STEP", "DETAIL"), rows, right=(0,))
        return f"{self.title}: {self.summary()}\n\n{table}"

    def _graph_html(self) -> str:
        try:
            svg = render_svg(self.dot)
        except RuntimeError as exc:
            return f"<p><em>{html.escape(str(exc))}</em></p>"
        if svg is None:
            return f"<p><em>{html.escape(_NO_DOT)}</em></p>"
        # Drop the XML prolog and Graphviz's version comment: the <svg> element suffices in HTML.
        start = svg.find("<svg")
        return f'<div style="overflow:auto; max-width:100%">{svg[start:] if start >= 0 else svg}</div>'

    def _steps_html(self) -> str:
        out = [_TABLE_CSS, '<table class="durable-lab-table"><thead><tr>']
        out += [f"<th>{name}</th>" for name in ("#", "Events", "Status", "Step", "Detail")]
        out.append("</tr></thead><tbody>")
        for row, (number, events, status, title, detail) in zip(self.rows, self._table_rows()):
            fill, border = STATUS_COLOURS.get(row["status"], STATUS_COLOURS["info"])
            badge = (
                f'<span style="background:{fill}; border:1px solid {border}; border-radius:3px; padding:0 4px">'
                f"{html.escape(status)}</span>"
            )
            cells = [html.escape(number), html.escape(events), badge, html.escape(title), html.escape(detail)]
            out.append(
                f'<tr title="{html.escape(row["tooltip"])}">' + "".join(f"<td>{c}</td>" for c in cells) + "</tr>"
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
        return {mime: makers[mime]() for mime in _MIME_TYPES if mime in _wanted(include, exclude)}
