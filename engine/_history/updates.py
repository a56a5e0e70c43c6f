"""Service side of workflow updates.

A request is stored in the ``updates`` table in the caller's transaction. If no workflow
task is pending, a *speculative* one is created: like a transient task, its events are
written only when it completes, and not at all if all it did was reject updates and nothing
else happened to the run meanwhile (as Temporal drops a rejected update's speculative task).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from engine._history.mutable_state import Run, append, load_run, save_run, schedule_transient_task, ts
from engine._persistence.transactions import Tx, dumps
from engine.errors import WorkflowNotFoundError


# Update states: requested (waiting for a task) -> delivered (in a task) -> accepted ->
# completed; or rejected (by the validator) or failed (the run closed first).
FINAL_STATES = ("completed", "rejected", "failed")


def request_update(
    tx: Tx, run_id: str, update_id: str, name: str, payloads: dict[str, Any], identity: str, now: datetime
) -> None:
    run = load_run(tx, run_id)
    existing = tx.conn.execute("SELECT 1 FROM updates WHERE run_id = ? AND update_id = ?", (run_id, update_id)).fetchone()
    if existing is not None:
        return  # the same update id again: as in Temporal, one update, answered once
    if not run.open:
        raise WorkflowNotFoundError(f"Workflow run {run_id} is already closed ({run.status}); it cannot take update {name!r}.")
    run.has_updates = True
    tx.conn.execute(
        "INSERT INTO updates (run_id, update_id, name, input, identity, state) VALUES (?, ?, ?, ?, ?, 'requested')",
        (run_id, update_id, name, dumps(payloads), identity),
    )
    save_run(tx, run)  # its flags now name the updates table
    if run.wft_state:
        return  # the pending (or running) task, or the next one, carries it
    schedule_transient_task(tx, run, ts(now), speculative=run.next_event_id)
    save_run(tx, run)


def claim(tx: Tx, run_id: str) -> list[dict[str, Any]]:
    """The update requests a claimed workflow task carries (also those of a lost task)."""
    rows = tx.conn.execute(
        "SELECT update_id, name, input, identity FROM updates WHERE run_id = ? AND state IN ('requested', 'delivered') ORDER BY rowid",
        (run_id,),
    ).fetchall()
    if not rows:
        return []
    tx.conn.execute("UPDATE updates SET state = 'delivered' WHERE run_id = ? AND state = 'requested'", (run_id,))
    requests = []
    for u, n, i, ident in rows:
        args = json.loads(i)
        header = args.pop("header", None) if isinstance(args, dict) else None  # stored beside the args
        requests.append({"updateId": u, "name": n, "args": args, "identity": ident, **({"header": header} if header else {})})
    return requests


def waiting(tx: Tx, run_id: str) -> bool:
    """Requests that arrived while a task was running: they need another task."""
    return tx.conn.execute("SELECT EXISTS(SELECT 1 FROM updates WHERE run_id = ? AND state = 'requested')", (run_id,)).fetchone()[0] == 1


def droppable(info: dict[str, Any], run: Run, commands: Any) -> bool:
    """A speculative task that only rejected updates, with nothing new in the run: no trace."""
    return (
        "speculative" in info
        and info["speculative"] == run.next_event_id
        and bool(commands)
        and all(kind == "RejectUpdate" for kind, _ in commands)
    )


# ------------------------------------------------------------------------- commands
def cmd_accept(tx: Tx, run: Run, now: datetime, completed: int, attrs: dict[str, Any]) -> bool:
    update_id = attrs["protocolInstanceId"]
    accepted = append(
        tx, run, now, "WorkflowExecutionUpdateAccepted", {**attrs, "acceptedRequestSequencingEventId": str(run.wft_scheduled_id)}
    )
    tx.conn.execute(
        "UPDATE updates SET state = 'accepted', accepted_event_id = ? WHERE run_id = ? AND update_id = ?",
        (accepted, run.run_id, update_id),
    )
    tx.notify("update", f"{run.run_id}/{update_id}")
    return False


def cmd_complete(tx: Tx, run: Run, now: datetime, completed: int, attrs: dict[str, Any]) -> bool:
    update_id = attrs["meta"]["updateId"]
    row = tx.conn.execute(
        "SELECT accepted_event_id FROM updates WHERE run_id = ? AND update_id = ?", (run.run_id, update_id)
    ).fetchone()
    append(tx, run, now, "WorkflowExecutionUpdateCompleted", {**attrs, "acceptedEventId": str(row[0] if row else 0)})
    _finish(tx, run.run_id, update_id, "completed", attrs["outcome"])
    return False


def cmd_reject(tx: Tx, run: Run, now: datetime, completed: int, attrs: dict[str, Any]) -> bool:
    _finish(tx, run.run_id, attrs["updateId"], "rejected", {"failure": attrs["failure"]})
    return False


def _finish(tx: Tx, run_id: str, update_id: str, state: str, outcome: dict[str, Any]) -> None:
    tx.conn.execute(
        "UPDATE updates SET state = ?, outcome = ? WHERE run_id = ? AND update_id = ?", (state, dumps(outcome), run_id, update_id)
    )
    tx.notify("update", f"{run_id}/{update_id}")


def run_closed(tx: Tx, run: Run) -> None:
    """Updates still open when the run closes fail, so that no caller waits for ever."""
    rows = tx.conn.execute(
        "SELECT update_id FROM updates WHERE run_id = ? AND state NOT IN ('completed', 'rejected', 'failed')", (run.run_id,)
    ).fetchall()
    for (update_id,) in rows:
        _finish(
            tx,
            run.run_id,
            update_id,
            "failed",
            {"failure": {"message": f"The workflow run closed ({run.status}) before the update completed.", "applicationFailureInfo": {"type": "WorkflowClosed", "nonRetryable": True}}},
        )


def outcome(conn: Any, run_id: str, update_id: str) -> tuple[str, dict[str, Any] | None] | None:
    row = conn.execute("SELECT state, outcome FROM updates WHERE run_id = ? AND update_id = ?", (run_id, update_id)).fetchone()
    if row is None:
        return None
    return row[0], (json.loads(row[1]) if row[1] else None)
