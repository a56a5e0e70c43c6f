"""Signals: an event delivered to a run, from a client or another workflow.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from engine._history.mutable_state import load_run, save_run
from engine._history.workflow_tasks import deliver
from engine._persistence.transactions import Tx
from engine.errors import WorkflowNotFoundError


def signal_workflow(
    tx: Tx, run_id: str, name: str, payloads: dict[str, Any], identity: str, now: datetime, external: dict[str, Any] | None = None,
    header: dict[str, Any] | None = None,
) -> None:
    run = load_run(tx, run_id)
    if not run.open:
        raise WorkflowNotFoundError(f"Workflow run {run_id} is already closed ({run.status}); it cannot receive signal {name!r}.")
    attrs = {"signalName": name, "input": payloads, "identity": identity, "header": header or {}, **(external or {})}
    deliver(tx, run, now, [("WorkflowExecutionSignaled", attrs)])
    save_run(tx, run)
