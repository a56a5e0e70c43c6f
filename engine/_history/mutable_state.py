"""A run's mutable state (Temporal's name for it): its row of ``executions``, what this
connection remembers of it, and the one way events are appended to its history.

Every state change of the history service takes a ``Tx`` (see ``engine._persistence.store``)
and is run by ``Store.run``: the events it appends and the tasks and timers it creates or
removes commit together or not at all.
"""

from __future__ import annotations

import functools
import os
import random
import time
from datetime import datetime, timedelta, timezone
from typing import Any

from engine._api import sdk_flags as _sdk_flags
from engine._api.durations import to_duration
from engine._matching.dispatch import queued
from engine._persistence.event_rows import TYPE_CODES, pack_dumped as _pack, time_value as _time_value
from engine._persistence.transactions import Tx, dumps, loads
from engine.errors import WorkflowNotFoundError
from engine.history import HistoryEvent


OPEN = "Running"


_type_value = TYPE_CODES.get  # event_rows.type_value, without a call of its own per event


QUEUE_KIND = "TASK_QUEUE_KIND_NORMAL"


# Flags of Temporal's SDK core that our workers follow (see engine._api.sdk_flags); recorded so that
# temporalio's replayer checks exported histories just as strictly.
SDK_FLAGS = _sdk_flags.SDK_FLAGS


class StaleTaskError(Exception):
    """The task was timed out, completed or reassigned meanwhile: its result is dropped."""


# Request ids only need to be unique: a generator seeded once from os.urandom spares a
# system call per id.
_ids = random.Random()


def request_id() -> str:
    """A random (version 4) UUID as text, as uuid.uuid4() gives, three times faster."""
    h = f"{_ids.getrandbits(128):032x}"
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{'89ab'[int(h[16], 16) & 3]}{h[17:20]}-{h[20:]}"


def new_run_id() -> str:
    """A time-ordered UUID (version 7, RFC 9562): 48 bits of Unix milliseconds, then random.

    Every index keyed by run id (events, executions, tasks, attempts) then keeps the runs in
    flight together at its right edge, so a batch of changes dirties a few shared pages
    instead of one page per run and index, and each dirty page is a 4 KiB WAL write.
    """
    h = f"{time.time_ns() // 1_000_000:012x}{os.urandom(10).hex()}"
    return f"{h[:8]}-{h[8:12]}-7{h[13:16]}-{'89ab'[int(h[16], 16) & 3]}{h[17:20]}-{h[20:32]}"


@functools.lru_cache(maxsize=256)
def identity_of(owner: str) -> str:
    """The worker identity recorded in history; the lease token adds a per-worker suffix."""
    return owner.split("#", 1)[0]


def ts(when: datetime) -> float:
    return when.timestamp()


def from_ts(value: float) -> datetime:
    return datetime.fromtimestamp(value, timezone.utc)


class Run:
    """A run's row of ``executions``, plus what this connection remembers of it (see
    ``transactions.Cache``): the events appended since the last workflow task was handed out, and
    the workflow task it leased."""

    __slots__ = (
        "run_id", "workflow_id", "workflow_type", "task_queue", "status", "next_event_id", "wft_state",
        "wft_scheduled_id", "wft_started_id", "wft_attempt", "buffered", "task_timeout", "close_time",
        "tail", "tail_from", "wft_task", "has_updates", "is_child", "has_children", "is_cron", "epoch", "key",
    )

    def __init__(
        self,
        run_id: str,
        workflow_id: str,
        workflow_type: str,
        task_queue: str,
        status: str,
        next_event_id: int,
        wft_state: str,
        wft_scheduled_id: int | None,
        wft_started_id: int | None,
        wft_attempt: int,
        buffered: list[dict[str, Any]],
        task_timeout: float,
        close_time: float | None = None,
    ) -> None:
        self.run_id = run_id
        self.workflow_id = workflow_id
        self.workflow_type = workflow_type
        self.task_queue = task_queue
        self.status = status
        self.next_event_id = next_event_id
        self.wft_state = wft_state
        self.wft_scheduled_id = wft_scheduled_id
        self.wft_started_id = wft_started_id
        self.wft_attempt = wft_attempt
        self.buffered = buffered
        self.task_timeout = task_timeout
        self.close_time = close_time
        # Events with ids >= tail_from that this connection appended, in order: a workflow
        # task for a worker that already holds the earlier ones needs no read of history.
        self.tail: list[HistoryEvent] = []
        self.tail_from = next_event_id
        # executions.id: the run's key in the events table (engine._persistence.event_rows).
        self.key = 0
        # (task id, lease owner, info) of the workflow task leased here, if any.
        self.wft_task: tuple[int, str, dict[str, Any]] | None = None
        # Whether the run has update requests, is a child, has children: known (False) for
        # runs this connection started, None (ask the database) for runs it loaded. Saves
        # the updates/children look-ups that most runs, which have neither, would make.
        self.has_updates: bool | None = None
        self.is_child: bool | None = None
        self.has_children: bool | None = None
        self.is_cron: bool | None = None  # a run of a cron chain (a row in crons)
        # The cache's epoch when this was last known to match the database (see load_run).
        self.epoch = -1

    @property
    def open(self) -> bool:
        return self.status == OPEN

    def row(self) -> tuple[Any, ...]:
        """Parameters of the batched UPDATE in ``transactions.Tx.flush``."""
        return (
            self.next_event_id,
            self.wft_state,
            self.wft_scheduled_id,
            self.wft_started_id,
            self.wft_attempt,
            dumps(self.buffered) if self.buffered else None,
            self.flags(),
            self.run_id,
        )

    def flags(self) -> int | None:
        """The ``flags`` column: which side tables hold rows of this run (None: not known)."""
        if self.has_updates is None or self.is_child is None or self.has_children is None or self.is_cron is None:
            return None
        return (
            (FLAG_UPDATES if self.has_updates else 0)
            | (FLAG_CHILD if self.is_child else 0)
            | (FLAG_CHILDREN if self.has_children else 0)
            | (FLAG_CRON if self.is_cron else 0)
        )

    def read_flags(self, flags: int | None) -> None:
        if flags is not None:
            self.has_updates = bool(flags & FLAG_UPDATES)
            self.is_child = bool(flags & FLAG_CHILD)
            self.has_children = bool(flags & FLAG_CHILDREN)
            self.is_cron = bool(flags & FLAG_CRON)


_RUN_COLUMNS = (
    "run_id, workflow_id, workflow_type, task_queue, status, next_event_id, wft_state, "
    "wft_scheduled_id, wft_started_id, wft_attempt, buffered, task_timeout, close_time, flags, id"
)


# Bits of executions.flags: the run has update requests, is a child, has started children,
# is a run of a cron chain.
# They spare most runs, which have none of these, the look-ups in those tables. A run
# written before schema 7 has NULL flags: every look-up is made.
FLAG_UPDATES, FLAG_CHILD, FLAG_CHILDREN, FLAG_CRON = 1, 2, 4, 8


# Runs remembered per connection; the oldest are forgotten first (they are reloaded on need).
_CACHED_RUNS = 20000


def load_run(tx: Tx, run_id: str) -> Run:
    runs = tx.cache.runs
    cached: Run | None = runs.get(run_id)
    if cached is not None and cached.epoch == tx.cache.epoch:
        return cached
    if cached is None:
        tx.flush()
    else:
        # Another connection committed since the run was cached. Its row is not pending (it
        # was not touched in this batch yet), so it reads without a flush; most often it is
        # just as this connection left it, and the cached run stands.
        state = tx.conn.execute(_STATE_SELECT, (run_id,)).fetchone()
        if state is not None and state == _state_of(cached):
            cached.epoch = tx.cache.epoch
            return cached
    row = tx.conn.execute(f"SELECT {_RUN_COLUMNS} FROM executions WHERE run_id = ?", (run_id,)).fetchone()
    if row is None:
        runs.pop(run_id, None)
        raise WorkflowNotFoundError(f"No workflow run with run id {run_id!r}.")
    run = Run(*row[:10], loads(row[10]) if row[10] else [], row[11], row[12])  # type: ignore[misc,call-arg]
    run.read_flags(row[13])
    run.key = row[14]
    if cached is not None:
        _carry_over(cached, run)
    cache_run(tx, run)
    return run


# The columns another connection may change; the others are fixed when the run starts.
_STATE_SELECT = (
    "SELECT status, next_event_id, wft_state, wft_scheduled_id, wft_started_id, wft_attempt, buffered, flags "
    "FROM executions WHERE run_id = ?"
)


def _state_of(run: Run) -> tuple[Any, ...]:
    return (
        run.status,
        run.next_event_id,
        run.wft_state,
        run.wft_scheduled_id,
        run.wft_started_id,
        run.wft_attempt,
        dumps(run.buffered) if run.buffered else None,
        run.flags(),
    )


def _carry_over(cached: Run, run: Run) -> None:
    """Keep what this connection knew of a run that another connection may have changed.

    History is append-only, so an unchanged next event id means nobody else appended: the
    events this connection appended (the tail) are still the newest, and the workflow task
    it leased is still the one the row names (its lease is proven by row count on use).
    Everything else comes from the row, flags included.
    """
    if run.next_event_id != cached.next_event_id:
        return
    run.tail, run.tail_from = cached.tail, cached.tail_from
    if (run.wft_state, run.wft_scheduled_id, run.wft_started_id, run.wft_attempt) == (
        cached.wft_state, cached.wft_scheduled_id, cached.wft_started_id, cached.wft_attempt
    ):
        run.wft_task = cached.wft_task


def cache_run(tx: Tx, run: Run) -> None:
    run.epoch = tx.cache.epoch
    runs = tx.cache.runs
    if len(runs) >= _CACHED_RUNS:
        for old in list(runs)[: _CACHED_RUNS // 10]:
            del runs[old]
    runs[run.run_id] = run


def save_run(tx: Tx, run: Run) -> None:
    """Write the run's state with the batch (status and close time are written by close_run)."""
    tx.runs[run.run_id] = run


def append(
    tx: Tx, run: Run, now: datetime, event_type: str, attrs: dict[str, Any], stamp: str | None = None, text: str | None = None
) -> int:
    """Append one event (written with the batch's other events just before its commit).
    ``text`` is the attributes' JSON (from ``dumps``) when the caller has it already. ``stamp``,
    the time as text, is no longer stored (``now`` is, to the microsecond: the same instant)."""
    event_id = run.next_event_id
    run.next_event_id += 1
    when = now if now.tzinfo is timezone.utc else now.astimezone(timezone.utc)
    run_id = run.run_id
    tx.events.append((run.key, event_id, _type_value(event_type, event_type), _time_value(when), _pack(event_type, text or dumps(attrs))))
    run.tail.append(HistoryEvent(event_id, event_type, when, attrs))
    tx.notes.add(("history", run_id))  # Tx.notify, inlined: this runs for every event
    return event_id


def wft_scheduled_attrs(run: Run) -> dict[str, Any]:
    return _wft_scheduled(run.task_queue, run.task_timeout, run.wft_attempt)[0]


@functools.lru_cache(maxsize=256)
def _wft_scheduled(task_queue: str, timeout: float, attempt: int) -> tuple[dict[str, Any], str]:
    """WorkflowTaskScheduled's attributes and their JSON: the same for every task of a queue."""
    attrs = {
        "taskQueue": {"name": task_queue, "kind": QUEUE_KIND},
        "startToCloseTimeout": to_duration(timedelta(seconds=timeout)),
        "attempt": attempt,
    }
    return attrs, dumps(attrs)


def schedule_transient_task(tx: Tx, run: Run, visible_at: float, **info: Any) -> None:
    """A workflow task whose Scheduled/Started events are written only when it completes
    (a retry after a failure, or a speculative task carrying an update); ``info`` is kept
    with the task row."""
    run.wft_state = "scheduled"
    run.wft_scheduled_id = None
    run.wft_started_id = None
    tx.conn.execute(
        "INSERT INTO tasks (kind, task_queue, run_id, scheduled_event_id, attempt, visible_at, info) "
        "VALUES ('workflow', ?, ?, 0, ?, ?, ?)",
        (run.task_queue, run.run_id, run.wft_attempt, visible_at, dumps({"scheduledTime": visible_at, **info})),
    )
    queued(tx.receivers, f"workflow:{run.task_queue}")
    tx.notify("queue", f"workflow:{run.task_queue}")
