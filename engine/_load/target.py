"""What the bench needs of the system under load, and the embedded engine's answer.

``TargetSystem`` is the small interface the bench's activities use: start a run, signal it,
count the runs of a test and how many tasks wait, read their histories. ``EmbeddedTarget``
answers it from the engine's own database file (one SQL read per question, using the
indexes the engine already has); a Temporal server can be another implementation (start and
signal through its client, counts through visibility, backlog through
``DescribeTaskQueue``) without the bench changing.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Protocol, Sequence

from engine._history.mutable_state import OPEN
from engine._history.workflow_tasks import read_events
from engine.client import Client
from engine.common import WorkflowIDReusePolicy
from engine.errors import WorkflowAlreadyStartedError
from engine.history import History

# Closed statuses the engine writes (executions.status) that count as a failed run.
FAILED_STATUSES = ("Failed", "TimedOut", "Terminated", "Canceled")


@dataclass(frozen=True)
class Progress:
    """The runs of one test at one moment, and the latencies (seconds) of those that closed
    after the moment asked about."""

    open: int
    closed: int
    failed: int
    latest_close: float
    latencies: tuple[float, ...]


class TargetSystem(Protocol):
    # False where the system has no write lock to wait for (a Temporal server): the samples
    # then leave the lock wait out instead of showing the bench database's own.
    has_write_lock: bool

    async def start_run(self, workflow_id: str, workflow_type: str, args: Sequence[Any], task_queue: str) -> bool:
        """Start a run; False when a run of that id exists already (the start was done before
        a crash: starting again must not make a second run)."""

    async def signal_run(self, workflow_id: str, name: str) -> None: ...

    async def progress(self, prefix: str, since: float) -> Progress: ...

    async def backlog(self, task_queue: str) -> tuple[int, int]:
        """Workflow tasks and activity tasks that could run now but no worker has taken."""

    def storage_bytes(self) -> int | None: ...

    async def histories(self, prefix: str) -> list[History]: ...


class EmbeddedTarget:
    """The engine on one database file, reached through a ``Client`` of the driving process."""

    has_write_lock = True

    def __init__(self, client: Client) -> None:
        self.client = client

    async def start_run(self, workflow_id: str, workflow_type: str, args: Sequence[Any], task_queue: str) -> bool:
        try:
            await self.client.start_workflow(
                workflow_type, args=args, id=workflow_id, task_queue=task_queue, id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            )
        except WorkflowAlreadyStartedError:
            return False
        return True

    async def signal_run(self, workflow_id: str, name: str) -> None:
        await self.client.get_workflow_handle(workflow_id).signal(name)

    async def progress(self, prefix: str, since: float) -> Progress:
        return await self.client.store.read(_progress, prefix, since)

    async def backlog(self, task_queue: str) -> tuple[int, int]:
        return await self.client.store.read(_backlog, task_queue, self.client.clock.now().timestamp())

    def storage_bytes(self) -> int | None:
        path = self.client.store.path
        if path == ":memory:":
            return None
        return sum(os.path.getsize(p) for p in (path, path + "-wal", path + "-shm") if os.path.exists(p))

    async def histories(self, prefix: str) -> list[History]:
        return await self.client.store.read(_histories, prefix)


def _range(prefix: str) -> tuple[str, str]:
    # workflow_id >= prefix AND < prefix + U+FFFF: a range on the executions_by_workflow index,
    # where LIKE would need escaping and could not use it.
    return prefix, prefix + "\uffff"


def _progress(conn: Any, prefix: str, since: float) -> Progress:
    low, high = _range(prefix)
    open_, closed, failed, latest = conn.execute(
        "SELECT sum(status = ?), sum(status != ?), sum(status IN (?, ?, ?, ?)), max(close_time) FROM executions "
        "WHERE workflow_id >= ? AND workflow_id < ?",
        (OPEN, OPEN, *FAILED_STATUSES, low, high),
    ).fetchone()
    latencies = tuple(
        close - start
        for start, close in conn.execute(
            "SELECT start_time, close_time FROM executions WHERE workflow_id >= ? AND workflow_id < ? AND close_time > ?",
            (low, high, since),
        )
    )
    return Progress(int(open_ or 0), int(closed or 0), int(failed or 0), float(latest or since), latencies)


def _backlog(conn: Any, task_queue: str, now: float) -> tuple[int, int]:
    counts = dict(
        conn.execute(
            "SELECT kind, count(*) FROM tasks WHERE task_queue = ? AND lease_owner IS NULL AND visible_at <= ? GROUP BY kind",
            (task_queue, now),
        ).fetchall()
    )
    return int(counts.get("workflow", 0)), int(counts.get("activity", 0))


def _histories(conn: Any, prefix: str) -> list[History]:
    low, high = _range(prefix)
    rows = conn.execute(
        "SELECT workflow_id, run_id FROM executions WHERE workflow_id >= ? AND workflow_id < ? ORDER BY workflow_id, start_time",
        (low, high),
    ).fetchall()
    return [History(workflow_id, tuple(read_events(conn, run_id))) for workflow_id, run_id in rows]

