"""Leases of dead workers, taken back at once instead of when they expire.

A worker that is SIGKILLed holds its leased tasks until their timeouts pass (a workflow
task's, an activity's start-to-close or heartbeat): up to seconds or minutes during which its
runs stand still. On one machine there is no need to wait. Every running worker holds an
exclusive ``flock`` on its entry in the registry beside the database
(``engine._matching.worker_registry``), which names its lease owner; the kernel drops that
lock when the process ends, however it ends. So a worker that can lock another's entry knows
that its process is gone, and expires that owner's leases now: the timer queue then treats
them exactly as timed-out leases (``WorkflowTaskTimedOut`` and a new workflow task, or the
activity attempt timed out and retried under its retry policy).

Why this is safe:

- the proof is the lock, not a pid: a reused pid holds no lock on the dead worker's entry;
- the entry stays locked until the worker's last change has committed (``Worker.run`` closes
  it last), so a worker still finishing work is never taken for dead;
- only entries written on this host count (a lock says nothing about another machine's
  processes on a shared file system); their leases expire as before;
- an activity that chose to complete asynchronously (``activity.raise_complete_async``) is
  marked on its task, and keeps its lease: someone else completes it, not the dead process;
- an entry is removed only after the change that expired its leases committed, and it stays
  locked by the reclaiming process meanwhile: a crash in between leaves it for the next one.
"""

from __future__ import annotations

import json
import logging
import os
import socket
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Callable, Sequence

from engine._matching import worker_registry
from engine._persistence.transactions import Tx

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: leases expire
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger("engine.worker")
INTERVAL = 0.5  # seconds between two looks at the registry by a running worker
ASYNC_MARK = "completesAsync"  # in an activity task's info: completed through a handle


@dataclass
class DeadEntry:
    """A dead worker's registry entry, locked by this process until ``release``."""

    path: Path
    fd: int
    owner: str

    def release(self, remove: bool) -> None:
        if self.fd < 0:
            return
        try:
            # The same file still (a new entry may have taken the name since: keep it).
            if remove and os.fstat(self.fd).st_ino == os.stat(self.path).st_ino:
                self.path.unlink()
        except OSError:
            pass
        os.close(self.fd)
        self.fd = -1


def find_dead(db_path: str) -> list[DeadEntry]:
    """The entries of workers of ``db_path`` whose processes are gone, each locked here.
    Release each one (``DeadEntry.release``)."""
    if fcntl is None or db_path == ":memory:":
        return []
    folder = worker_registry.folder_of(db_path)
    try:
        names = [e for e in os.scandir(folder) if e.name.endswith((".json", worker_registry.DEAD_SUFFIX))]
    except OSError:
        return []
    host = socket.gethostname()
    dead = []
    for entry in names:
        try:
            fd = os.open(entry.path, os.O_RDONLY)
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:  # held: its worker runs (or another process is taking it back)
            os.close(fd)
            continue
        try:
            data: Any = json.loads(os.pread(fd, 1 << 16, 0) or b"{}")
        except (OSError, ValueError):
            data = {}
        owner = str(data.get("owner", "")) if isinstance(data, dict) else ""
        if not owner or data.get("host") != host:
            # No lease owner named, or another machine's worker: nothing to take back here.
            os.close(fd)
            continue
        dead.append(DeadEntry(Path(entry.path), fd, owner))
    return dead


def expire_leases(tx: Tx, owners: Sequence[str], now: datetime) -> int:
    """Make every lease of ``owners`` due now (the timer queue times them out at once);
    returns how many. Activities completing asynchronously keep their leases."""
    t = now.timestamp()
    count = 0
    for owner in owners:
        count += tx.conn.execute(
            "UPDATE tasks SET lease_expires = ?, due_at = ? WHERE lease_owner = ? "
            f"AND (kind = 'workflow' OR json_extract(info, '$.{ASYNC_MARK}') IS NULL)",
            (t, t, owner),
        ).rowcount
    if count:
        tx.notify("timers", "")
    return count


def mark_completing_async(tx: Tx, task_id: int, owner: str, attempt: int) -> None:
    """The attempt leased to ``owner`` will be completed through a handle: its lease must
    outlive the worker's process."""
    tx.cache.tasks.pop(task_id, None)  # its info is read from the row from now on
    tx.conn.execute(
        f"UPDATE tasks SET info = json_set(info, '$.{ASYNC_MARK}', json('true')) "
        "WHERE id = ? AND lease_owner = ? AND attempt = ?",
        (task_id, owner, attempt),
    )


def _take_back(tx: Tx, owners: Sequence[str], now: datetime, fire: Callable[[Tx, datetime], Any] | None) -> int:
    count = expire_leases(tx, owners, now)
    if count and fire is not None:
        # Timed out in the same change rather than on the timer queue's next turn: that turn
        # waits behind the claims a starting worker's pollers make meanwhile (0.1-0.3 s with
        # 1,000 runs to finish), and the runs of the dead worker's leases are the last to end.
        fire(tx, now)
    return count


async def reclaim(store: Any, now: datetime, fire: Callable[[Tx, datetime], Any] | None = None) -> int:
    """Take back the leases of this database's dead workers; returns how many were expired.
    ``fire`` (the timer queue's ``fire_due``) times them out in the same change; without it
    the timer queue does, on its next turn. Returns at once, without yielding to the event
    loop, when no worker is dead."""
    dead = find_dead(store.path)
    if not dead:
        return 0
    committed = False
    try:
        count: int = await store.run(_take_back, [d.owner for d in dead], now, fire)
        committed = True
    finally:
        for entry in dead:
            entry.release(remove=committed)
    if count:
        log.info("took back %d leases of %d worker(s) whose process is gone", count, len(dead))
    return count
