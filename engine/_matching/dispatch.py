"""Eager dispatch: a task created for a queue that a worker of this process serves is leased
to that worker in the transaction that creates it, and handed to it after the commit.

This is Temporal's eager activity dispatch (and eager workflow start), applied to every task:
it saves the poll round trip (a claim transaction, its SELECT and UPDATE, and for workflow
tasks a read of the new events, which the creating change already holds in memory). Tasks
for queues nobody here serves, or created while the worker's slots are full, wait in the
database for a poll as before; a worker that dies leaves its leased tasks to time out and
be retried, exactly like polled ones.

A ``Receiver`` counts a worker's slots across two threads without a lock: the database
thread takes slots (``taken``, only it writes that), the event loop gives them back when a
task is done (``returned``, only it writes that).
"""

from __future__ import annotations

import asyncio
from typing import Any, Callable


class Receiver:
    """One worker's intake for one kind of task ("workflow" or "activity") on one queue."""

    def __init__(
        self,
        key: str,
        owner: str,
        slots: int,
        accept: Callable[[Any], None],
        known: Callable[[str], int] | None = None,
        eager: Callable[[], bool] | None = None,
    ) -> None:
        self.key = key
        self.owner = owner
        self.slots = slots
        self._accept = accept
        # Last event id the worker already holds for a run (0: none), so that a workflow task
        # carries only the events the worker lacks. Called on the database thread.
        self.known: Callable[[str], int] = known or (lambda run_id: 0)
        # Whether to take tasks eagerly at all (a worker obeying injected faults does not:
        # a crash must find it holding only what it claimed). Called on the database thread.
        self.eager: Callable[[], bool] = eager or (lambda: True)
        self.taken = 0
        self.returned = 0
        self.open = True
        # Set by a claim (database thread): the queue had fewer ready tasks than the claim
        # could take, so polling again before new work arrives would find nothing.
        self.drained = False
        self.freed = asyncio.Event()

    def free(self) -> int:
        return self.slots - (self.taken - self.returned)

    # ---------------------------------------------------------------- database thread
    def try_take(self, force: bool = False) -> bool:
        if self.open and (force or self.taken - self.returned < self.slots):
            self.taken += 1
            return True
        return False

    def untake(self) -> None:
        """A dispatch in a rolled-back change: the slot was never used."""
        self.taken -= 1

    # ---------------------------------------------------------------- event loop
    def accept(self, task: Any) -> None:
        self._accept(task)

    def release(self) -> None:
        self.returned += 1
        self.freed.set()


def pick(receivers: dict[str, tuple[Any, ...]], key: str) -> Receiver | None:
    """A receiver for ``key`` with a free slot (which it takes), or None."""
    for receiver in receivers.get(key, ()):
        if receiver.eager() and receiver.try_take():
            return receiver
    return None


def pick_waiting(receivers: dict[str, tuple[Any, ...]], key: str) -> Receiver | None:
    """A receiver for a workflow task no worker holds (a new run's first, say), with a free
    slot (which it takes), but only while its queue is known to be empty: the worker's last
    claim found fewer tasks than it could take, and this process queued none since
    (``queued``). The task then passes nobody waiting there, and the run saves the claim's
    transaction and the poller's wake-up, which a run started alone paid for in full."""
    for receiver in receivers.get(key, ()):
        if receiver.drained and receiver.eager() and receiver.try_take():
            return receiver
    return None


def queued(receivers: dict[str, tuple[Any, ...]], key: str) -> None:
    """A task went into ``key``'s queue: its workers must claim before taking new ones eagerly."""
    for receiver in receivers.get(key, ()):
        receiver.drained = False


def pick_sticky(receivers: dict[str, tuple[Any, ...]], key: str, run_id: str) -> Receiver | None:
    """The receiver whose worker holds ``run_id`` in its cache (Temporal's sticky queue).

    It gets the run's next workflow task even when its slots are full: the task is short
    (the run's code until it blocks), and sending it to the queue instead would put it
    behind every new run waiting there while its cached state ages out. New runs (no
    worker holds them) wait in the queue, in order, for a free slot.
    """
    for receiver in receivers.get(key, ()):
        if receiver.known(run_id) and receiver.eager() and receiver.try_take(force=True):
            return receiver
    return None
