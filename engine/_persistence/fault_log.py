"""The log of injected faults that fired (table ``fault_log``), as viewers read it.

Kept in persistence, below the frontend and the workers: a run's snapshot
(``engine._frontend.snapshots``) reads the firings of its run in the same transaction as its
events, and the workers (``engine.worker._injected_faults``) write them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any


@dataclass(frozen=True)
class FaultFired:
    """One firing of a fault, from the log. ``scheduled_event_id`` and ``attempt`` name the
    activity attempt it hit (activity faults, and crashes at an activity's outcome)."""

    fault_id: int | None
    kind: str
    target: str
    run_id: str | None
    workflow_id: str | None
    detail: str
    identity: str
    fired_at: datetime
    scheduled_event_id: int | None = None
    attempt: int | None = None


def read_fault_log(conn: Any, run_id: str | None) -> list[FaultFired]:
    """Every firing (of run ``run_id``, if given), oldest first."""
    query = (
        "SELECT fault_id, kind, target, run_id, workflow_id, detail, identity, fired_at, scheduled_event_id, attempt FROM fault_log"
    )
    rows = conn.execute(query + (" WHERE run_id = ? ORDER BY id" if run_id else " ORDER BY id"), (run_id,) if run_id else ()).fetchall()
    return [
        FaultFired(fid, kind, target, run, wid, detail, ident, datetime.fromtimestamp(at, timezone.utc), sched, attempt)
        for fid, kind, target, run, wid, detail, ident, at, sched, attempt in rows
    ]
