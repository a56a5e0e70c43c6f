"""Waiting for runs to close: woken at once by this process's commits, and by one shared poll
for closes that other processes sharing the database file make.
"""

from __future__ import annotations

import asyncio
from typing import Any

from engine._persistence.store import Store
from engine.errors import StoreError


class _ClosingWatch:
    """Wakes result waiters when their run closes.

    A close committed by this process resolves its waiters at once, with the closing event
    (``Store.close_waiter``); one shared poll (not one per waiter) notices closes made by
    other processes sharing the database file and resolves their waiters with None.
    """

    POLL = 0.25

    def __init__(self, store: Store) -> None:
        self._store = store
        self._poller: asyncio.Task | None = None

    def waiter(self, run_id: str) -> asyncio.Future:
        if self._poller is None or self._poller.done():
            self._poller = asyncio.ensure_future(self._poll())
        return self._store.close_waiter(run_id)

    async def _poll(self) -> None:
        waiters = self._store._close_waiters
        while waiters:
            await asyncio.sleep(self.POLL)
            try:
                closed = await self._store.read(_closed_among, list(waiters))
            except StoreError:
                continue
            for run_id in closed:
                for fut in waiters.pop(run_id, ()):
                    if not fut.done():
                        fut.set_result(None)


def _closed_among(conn: Any, run_ids: list[str]) -> list[str]:
    closed: list[str] = []
    for start in range(0, len(run_ids), 500):
        chunk = run_ids[start : start + 500]
        marks = ",".join("?" * len(chunk))
        closed += [r[0] for r in conn.execute(f"SELECT run_id FROM executions WHERE status != 'Running' AND run_id IN ({marks})", chunk)]
    return closed
