"""Task queues: the unleased tasks of a queue that a worker may claim, oldest first.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from engine._persistence.transactions import Tx


def claimable(tx: Tx, kind: str, columns: str, task_queue: str, now: datetime, limit: int, receiver: Any) -> list[Any]:
    """Unleased visible ``kind`` tasks of a queue, oldest first, at most ``limit`` (and no
    more than the ``receiver``'s free slots); tells the receiver whether the queue drained."""
    if receiver is not None:
        limit = min(limit, receiver.free())
        if limit <= 0:
            receiver.drained = False
            return []
    rows: list[Any] = tx.conn.execute(
        f"SELECT {columns} FROM tasks WHERE kind = ? AND task_queue = ? AND lease_owner IS NULL "
        "AND visible_at <= ? ORDER BY visible_at, id LIMIT ?",
        (kind, task_queue, now.timestamp(), limit),
    ).fetchall()
    if receiver is not None:
        receiver.drained = len(rows) < limit
    return rows


def has_tasks(conn: Any, kind: str, task_queue: str, now: float) -> bool:
    return conn.execute(
        "SELECT EXISTS(SELECT 1 FROM tasks WHERE kind = ? AND task_queue = ? AND lease_owner IS NULL AND visible_at <= ?)",
        (kind, task_queue, now),
    ).fetchone()[0] == 1
