"""durable-lab's durable engine: event-sourced workflows and activities on SQLite.

The API mirrors the temporalio Python SDK, so code moves to a Temporal cluster by changing
imports: ``from engine import workflow, activity, Client, Worker, RetryPolicy``. How the
package is built, part by part as Temporal is: docs/architecture.md.
"""

from __future__ import annotations

from engine import activity, errors, workflow
from engine.client import Client, WorkflowExecutionDescription, WorkflowExecutionStatus, WorkflowHandle
from engine.common import RetryPolicy
from engine.errors import (
    ActivityError,
    ApplicationError,
    NondeterminismError,
    WorkflowFailureError,
)
from engine.history import History, HistoryEvent
from engine.worker import Worker

__all__ = [
    "activity",
    "workflow",
    "errors",
    "Client",
    "WorkflowHandle",
    "WorkflowExecutionStatus",
    "WorkflowExecutionDescription",
    "Worker",
    "RetryPolicy",
    "ApplicationError",
    "ActivityError",
    "WorkflowFailureError",
    "NondeterminismError",
    "History",
    "HistoryEvent",
]
