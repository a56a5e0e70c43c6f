"""A worker's writes while another program holds the database's write lock past the store's
wait (``StoreLockedError``: a DB browser, the sqlite3 shell, a stuck process).

Nothing was written when the lock could not be had, and the work behind the change (a
workflow task's commands, an activity's outcome) is done: ``record`` tries the change again
until it commits, and says so in one log line rather than a traceback per try. Whether the
task is still this worker's to record is the change's own lease check, as on any commit.
Polling loops use ``Outage`` for the same reason: one line when the wait starts, one when
it ends.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Callable

from engine._persistence.store import Store
from engine.errors import StoreLockedError

log = logging.getLogger("engine.worker")
PAUSE = 0.2  # between tries; each try itself waits up to the store's lock timeout


async def record(
    store: Store,
    what: str,
    make: Callable[[], tuple[Any, ...]],
    given_up: Callable[[], bool],
    locked: StoreLockedError | None = None,
) -> Any:
    """Commit the change ``make()`` returns (``(fn, *args)``, built again for each try so that
    its time is current); while the database stays locked, try again until ``given_up()``.
    ``locked``: the error of a try made already (submitted elsewhere), to be told first."""
    waited = locked is not None
    if locked is not None:
        log.warning("%s is not recorded yet: %s It is tried again once the lock is free.", what, locked)
    while True:
        fn, *args = make()
        try:
            result = await store.run(fn, *args)
        except StoreLockedError as e:
            if given_up():
                raise
            if not waited:
                waited = True
                log.warning("%s is not recorded yet: %s It is tried again once the lock is free.", what, e)
            await asyncio.sleep(PAUSE)
            continue
        if waited:
            log.info("%s is recorded: the lock is free again.", what)
        return result


class Outage:
    """The failures of a loop that polls the database: a wait for another program's lock is
    told once when it starts and once when it ends; any other error with its traceback."""

    def __init__(self, what: str) -> None:
        self.what = what
        self.waiting = False

    def failed(self, error: BaseException) -> None:
        if not isinstance(error, StoreLockedError):
            log.error("%s failed", self.what, exc_info=error)
        elif not self.waiting:
            self.waiting = True
            log.warning("%s waits: %s It goes on once the lock is free.", self.what, error)

    def passed(self) -> None:
        if self.waiting:
            self.waiting = False
            log.info("%s goes on: the lock is free again.", self.what)
