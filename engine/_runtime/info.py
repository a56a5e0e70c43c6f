"""``workflow.info()``: what a run knows about itself, read from its first event.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Sequence

from engine._api.durations import from_duration
from engine._conversion import search_attributes as _search_attributes
from engine._runtime import interceptors as _interceptors
from engine._runtime.event_loop import current
from engine.common import TypedSearchAttributes
from engine.history import HistoryEvent


@dataclass(frozen=True)
class ParentInfo:
    """The parent of a child workflow run (temporalio's ``workflow.ParentInfo``)."""

    namespace: str
    run_id: str
    workflow_id: str


@dataclass
class WorkflowInfo:
    """What ``workflow.info()`` returns (a subset of temporalio's ``workflow.Info``)."""

    workflow_id: str
    run_id: str
    workflow_type: str
    task_queue: str
    namespace: str = "default"
    attempt: int = 1
    start_time: datetime = field(default_factory=lambda: datetime.now(timezone.utc))
    first_execution_run_id: str = ""
    continued_run_id: str | None = None
    execution_timeout: timedelta | None = None
    run_timeout: timedelta | None = None
    task_timeout: timedelta = timedelta(seconds=10)
    headers: dict[str, Any] = field(default_factory=dict)
    parent: ParentInfo | None = None
    root: ParentInfo | None = None
    # As the run started, then as workflow code upserted them (not by other means).
    typed_search_attributes: TypedSearchAttributes = TypedSearchAttributes.empty
    # Memo fields as payloads (JSON form): workflow.memo() converts them.
    raw_memo: dict[str, Any] = field(default_factory=dict)
    cron_schedule: str | None = None

    def get_current_history_length(self) -> int:
        """Events in the history as the current workflow task began (its WorkflowTaskStarted's id)."""
        return current().last_started_event_id

    def get_current_history_size(self) -> int:
        """The history's size in bytes as the current workflow task began: what Temporal
        recorded, or the engine's measure of its own histories (engine/_runtime/history_size.py)."""
        instance = current()
        return instance.history_size.current(instance.last_started_event_id)  # type: ignore[no-any-return]

    def is_continue_as_new_suggested(self) -> bool:
        """Whether the server suggested continuing as new when the current workflow task began
        (WorkflowTaskStarted's ``suggestContinueAsNew``; this engine sets none of its own)."""
        return current().continue_as_new_suggested



_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def info_from_history(workflow_id: str, run_id: str, events: Sequence[HistoryEvent], namespace: str = "default") -> WorkflowInfo:
    """The ``workflow.info()`` of a run, read from its WorkflowExecutionStarted event."""
    started = events[0].attributes
    return WorkflowInfo(
        workflow_id=workflow_id,
        run_id=run_id,
        workflow_type=(started.get("workflowType") or {}).get("name", ""),
        task_queue=(started.get("taskQueue") or {}).get("name", ""),
        namespace=namespace,
        attempt=int(started.get("attempt", 1) or 1),
        # An imported history may have no times; then workflow.now() starts at the epoch.
        start_time=events[0].event_time or _EPOCH,
        first_execution_run_id=str(started.get("firstExecutionRunId") or run_id),
        continued_run_id=started.get("continuedExecutionRunId") or None,
        execution_timeout=from_duration(started.get("workflowExecutionTimeout")),
        run_timeout=from_duration(started.get("workflowRunTimeout")),
        task_timeout=from_duration(started.get("workflowTaskTimeout")) or timedelta(seconds=10),
        parent=_parent_info(started, "parentWorkflowExecution", "parentWorkflowNamespace", namespace),
        root=_parent_info(started, "rootWorkflowExecution", "parentWorkflowNamespace", namespace),
        typed_search_attributes=_search_attributes.decode_typed((started.get("searchAttributes") or {}).get("indexedFields")),
        raw_memo=dict((started.get("memo") or {}).get("fields") or {}),
        headers=_interceptors.headers_from_json(started.get("header")),
        cron_schedule=started.get("cronSchedule") or None,
    )


def _parent_info(started: Any, key: str, ns_key: str, namespace: str) -> ParentInfo | None:
    execution = started.get(key)
    if not execution:
        return None
    return ParentInfo(str(started.get(ns_key) or namespace), str(execution.get("runId", "")), str(execution.get("workflowId", "")))
