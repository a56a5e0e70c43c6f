"""The links between a server's runs, read from their histories (no server needed)."""

from __future__ import annotations

from typing import Any

from engine.client import WorkflowExecutionStatus
from engine.history import History
from kernel_ext._temporal_views import children_of, next_run, previous_run, status_of


def _history(*events: tuple[str, dict[str, Any]]) -> History:
    return History.from_json("w", {"events": [
        {"eventId": str(i), "eventTime": "2026-01-01T00:00:00Z", "eventType": etype,
         f"{etype[0].lower()}{etype[1:]}EventAttributes": attrs}
        for i, (etype, attrs) in enumerate(events, 1)]})


START = ("WorkflowExecutionStarted", {"workflowType": {"name": "Cron"}, "taskQueue": {"name": "q"}, "continuedExecutionRunId": "r1"})


def test_a_cron_run_links_back_and_forward() -> None:
    cron = _history(START, ("WorkflowExecutionCompleted", {"newExecutionRunId": "r3"}))
    assert (previous_run(cron), next_run(cron), status_of(cron)) == ("r1", "r3", WorkflowExecutionStatus.COMPLETED)


def test_a_running_run_has_no_next_run_and_a_first_run_no_previous() -> None:
    running = _history(("WorkflowExecutionStarted", {"workflowType": {"name": "X"}}), ("WorkflowTaskScheduled", {}))
    assert (previous_run(running), next_run(running), status_of(running)) == ("", "", WorkflowExecutionStatus.RUNNING)


def test_children_carry_their_run_and_how_they_closed() -> None:
    history = _history(
        START,
        ("StartChildWorkflowExecutionInitiated", {"workflowId": "c1", "workflowType": {"name": "Child"}}),
        ("StartChildWorkflowExecutionInitiated", {"workflowId": "c2", "workflowType": {"name": "Child"}}),
        ("ChildWorkflowExecutionStarted", {"initiatedEventId": "2", "workflowExecution": {"workflowId": "c1", "runId": "cr1"}}),
        ("ChildWorkflowExecutionFailed", {"initiatedEventId": "2"}),
    )
    first, second = children_of(history)
    assert (first.workflow_id, first.run_id, first.status) == ("c1", "cr1", WorkflowExecutionStatus.FAILED)
    assert (second.workflow_id, second.run_id, second.status) == ("c2", "", None)
