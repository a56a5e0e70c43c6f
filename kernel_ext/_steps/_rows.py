"""A history's events grouped into steps, one row (a plain dict) per step."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any, Mapping, Sequence

from engine.history import History, HistoryEvent
from kernel_ext._steps import _activities as act
from kernel_ext._steps import _faults
from kernel_ext._steps import _messages as msg
from kernel_ext._steps import _runs as runs
from kernel_ext._steps._model import Handler, Step, Timeline, generic
from kernel_ext._steps._read import format_event_ids, format_offset, int_of, one_line, shorten

if TYPE_CHECKING:
    from engine.client import ActivityAttempt

Row = dict[str, Any]

_TOOLTIP_LIMIT = 1500
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


def _skip(tl: Timeline, event: HistoryEvent) -> None:
    del tl, event


_HANDLERS: dict[str, Handler] = {
    **{name: _skip for name in _BOOKKEEPING},
    **{name: runs.on_closed for name in runs.FINAL},
    "WorkflowExecutionStarted": runs.on_started,
    "WorkflowTaskFailed": runs.on_task_failed,
    "WorkflowTaskTimedOut": runs.on_task_timed_out,
    "ActivityTaskScheduled": act.on_activity_scheduled,
    "ActivityTaskStarted": functools.partial(act.on_activity_event, "started"),
    "ActivityTaskCompleted": functools.partial(act.on_activity_event, "completed"),
    "ActivityTaskFailed": functools.partial(act.on_activity_event, "failed"),
    "ActivityTaskTimedOut": functools.partial(act.on_activity_event, "timed out"),
    "ActivityTaskCancelRequested": functools.partial(act.on_activity_event, "cancel requested"),
    "ActivityTaskCanceled": functools.partial(act.on_activity_event, "canceled"),
    "TimerStarted": act.on_timer_started,
    "TimerFired": functools.partial(act.on_timer_closed, True),
    "TimerCanceled": functools.partial(act.on_timer_closed, False),
    "MarkerRecorded": msg.on_marker,
    "UpsertWorkflowSearchAttributes": msg.on_search_attributes,
    "WorkflowExecutionSignaled": msg.on_signal,
    "WorkflowExecutionCancelRequested": msg.on_cancel_requested,
    "WorkflowExecutionUpdateAdmitted": functools.partial(msg.on_update, "admitted"),
    "WorkflowExecutionUpdateAccepted": functools.partial(msg.on_update, "accepted"),
    "WorkflowExecutionUpdateRejected": functools.partial(msg.on_update, "rejected"),
    "WorkflowExecutionUpdateCompleted": functools.partial(msg.on_update, "completed"),
    "StartChildWorkflowExecutionInitiated": runs.on_child_initiated,
    "StartChildWorkflowExecutionFailed": functools.partial(runs.on_child_event, "start failed"),
    "ChildWorkflowExecutionStarted": functools.partial(runs.on_child_event, "started"),
    "ChildWorkflowExecutionCompleted": functools.partial(runs.on_child_event, "completed"),
    "ChildWorkflowExecutionFailed": functools.partial(runs.on_child_event, "failed"),
    "ChildWorkflowExecutionCanceled": functools.partial(runs.on_child_event, "canceled"),
    "ChildWorkflowExecutionTimedOut": functools.partial(runs.on_child_event, "timed out"),
    "ChildWorkflowExecutionTerminated": functools.partial(runs.on_child_event, "terminated"),
    "SignalExternalWorkflowExecutionInitiated": functools.partial(runs.on_external_initiated, "signal_external"),
    "ExternalWorkflowExecutionSignaled": functools.partial(runs.on_external_closed, "signal_external", True),
    "SignalExternalWorkflowExecutionFailed": functools.partial(runs.on_external_closed, "signal_external", False),
    "RequestCancelExternalWorkflowExecutionInitiated": functools.partial(runs.on_external_initiated, "cancel_external"),
    "ExternalWorkflowExecutionCancelRequested": functools.partial(runs.on_external_closed, "cancel_external", True),
    "RequestCancelExternalWorkflowExecutionFailed": functools.partial(runs.on_external_closed, "cancel_external", False),
    "NexusOperationScheduled": functools.partial(runs.on_nexus, "scheduled"),
    "NexusOperationStarted": functools.partial(runs.on_nexus, "started"),
    "NexusOperationCompleted": functools.partial(runs.on_nexus, "completed"),
    "NexusOperationFailed": functools.partial(runs.on_nexus, "failed"),
    "NexusOperationCanceled": functools.partial(runs.on_nexus, "canceled"),
    "NexusOperationTimedOut": functools.partial(runs.on_nexus, "timed out"),
    "NexusOperationCancelRequested": functools.partial(runs.on_nexus, "cancel requested"),
}


def _row(step: Step) -> Row:
    events = format_event_ids(step.event_ids)
    notes = [shorten(note, 600) for note in step.notes if note]
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
        "detail": one_line(step.detail),
        "tooltip": shorten(tooltip, _TOOLTIP_LIMIT),
        "batch": step.batch,
        "offset": step.offset,
        "count": 1,
        "summary": step.data.get("summary", ""),
        "input": list(step.data.get("input_values", [])),
        "result": list(step.data.get("result_values", [])),
        "links": [dict(link) for link in step.links],
    }


def history_timeline_rows(history: History, attempts: Sequence[ActivityAttempt] = (), faults: Sequence[Any] = ()) -> list[Row]:
    """Group a history's events into the steps a reader thinks in, in event order.

    Each row is a dict: ``kind`` (``start``, ``activity``, ``timer``, ``marker``,
    ``patch`` (a versioning marker), ``signal``, ``child``, ``update``,
    ``cancel_request``, ``workflow_task_failed``, ``result``, ``event`` for types without
    a special meaning, ...), ``title``, ``status`` (a key of
    :data:`kernel_ext.graphs.STATUS_COLOURS`), ``event_ids``, ``events`` (those ids as
    text), ``attempts`` (activities: how many tries), ``detail`` (one line), ``tooltip``
    (several lines: inputs, results, every failed attempt), ``batch`` (the workflow task
    completion that started the step; equal batches ran in parallel), ``offset`` (seconds
    since the run started), ``count`` (1; more in rows from :func:`collapse_rows`),
    ``summary`` (an activity's user-metadata summary, ``""`` if none), ``input`` and
    ``result`` (an activity's decoded values) and ``links`` (other runs this step is tied
    to: ``{"relation": "child" | "parent" | "next" | "previous" | "target",
    "workflow_id": ..., "run_id": ...}``, ids ``""`` where the history does not say).

    ``attempts`` is the engine's side table (``await handle.activity_attempts()``): the
    history holds only an activity's last attempt, the side table holds every one. A run
    with no close event ends with a ``Running`` row. ``faults`` is the run's fault log
    (``await engine.faults.fault_log(client, run_id=...)``): each firing marks its step.
    """
    tl = Timeline(history)
    block: int | None = None  # the workflow task completion whose commands we are reading
    for event in history.events:
        attributes = event.attributes if isinstance(event.attributes, Mapping) else {}
        if event.event_type == "WorkflowTaskCompleted":
            block = event.event_id
        elif event.event_type not in _COMMAND_EVENTS:
            block = None
        explicit = int_of(attributes.get("workflowTaskCompletedEventId"))
        tl.batch = explicit if explicit is not None else block
        if attributes is event.attributes:
            _HANDLERS.get(event.event_type, generic)(tl, event)
        else:
            generic(tl, event)
    by_scheduled: dict[Any, list[ActivityAttempt]] = {}
    for attempt in attempts:
        by_scheduled.setdefault(getattr(attempt, "scheduled_event_id", None), []).append(attempt)
    for step in tl.steps:
        if step.kind == "activity" and "id" in step.data:
            act.finish_activity(step, by_scheduled.get(step.event_ids[0], []))
    if faults:
        _faults.mark(tl.steps, faults)
    if tl.steps and not any(step.kind == "result" for step in tl.steps):
        last = history.events[-1]
        running = Step("result", "Running", None, [], tl.offset_of(last), "running")
        running.detail = "no close event yet"
        tl.steps.append(running)
    return [_row(step) for step in tl.steps]
