"""The server side: every state change of a run, as a function of one transaction.

Each public function here takes a ``Tx`` (see ``_store``) and is run by ``Store.run``: the
events it appends and the tasks and timers it creates or removes commit together or not at
all. Events that arrive while a workflow task is in flight are buffered and appended after
that task completes, as Temporal does, so each workflow task sees a stable prefix of history.
"""

from __future__ import annotations

import functools
import json
import os
import random
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Sequence

from engine import _sdk_flags
from engine._dispatch import pick, pick_sticky
from engine._durations import from_duration, from_timestamp, to_duration, to_timestamp
from engine._store import Tx, dumps
from engine.errors import (
    WorkflowAlreadyStartedError,
    WorkflowNotFoundError,
)
from engine.history import HistoryEvent

OPEN = "Running"
_QUEUE_KIND = "TASK_QUEUE_KIND_NORMAL"
# Flags of Temporal's SDK core that our workers follow (see _sdk_flags); recorded so that
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
    ``_store.Cache``): the events appended since the last workflow task was handed out, and
    the workflow task it leased."""

    __slots__ = (
        "run_id", "workflow_id", "workflow_type", "task_queue", "status", "next_event_id", "wft_state",
        "wft_scheduled_id", "wft_started_id", "wft_attempt", "buffered", "task_timeout", "close_time",
        "tail", "tail_from", "wft_task", "has_updates", "is_child", "has_children", "is_cron", "epoch",
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
        """Parameters of the batched UPDATE in ``_store.Tx.flush``."""
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
    "wft_scheduled_id, wft_started_id, wft_attempt, buffered, task_timeout, close_time, flags"
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
    run = Run(*row[:10], json.loads(row[10]) if row[10] else [], row[11], row[12])  # type: ignore[misc,call-arg]
    run.read_flags(row[13])
    if cached is not None:
        _carry_over(cached, run)
    _remember(tx, run)
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


def _remember(tx: Tx, run: Run) -> None:
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
    ``text`` is the attributes' JSON when the caller has it already."""
    event_id = run.next_event_id
    run.next_event_id += 1
    when = now if now.tzinfo is timezone.utc else now.astimezone(timezone.utc)
    run_id = run.run_id
    tx.events.append((run_id, event_id, event_type, stamp or to_timestamp(when), text or dumps(attrs)))
    run.tail.append(HistoryEvent(event_id, event_type, when, attrs))
    tx.notes.add(("history", run_id))  # Tx.notify, inlined: this runs for every event
    return event_id


def deliver(tx: Tx, run: Run, now: datetime, items: list[tuple[Any, ...]], *, link_started: bool = False) -> None:
    """Append events that the workflow must react to, or buffer them behind a running task.

    With ``link_started`` the second event's ``startedEventId`` is the first event's id (an
    activity's Started + Completed pair), resolved when the ids are assigned.
    """
    # An item may carry its own time: an activity's Started event is written at completion
    # (only the last attempt is recorded) but keeps the attempt's real start time.
    if run.wft_state == "started":
        run.buffered.append(
            {
                "time": to_timestamp(now),
                "items": [[i[0], i[1], to_timestamp(i[2]) if len(i) > 2 and i[2] else None] for i in items],
                "link": link_started,
            }
        )
        return
    first_id = None
    for index, item in enumerate(items):
        attrs = item[1]
        if link_started and index == 1 and first_id is not None:
            attrs = {**attrs, "startedEventId": str(first_id)}
        event_id = append(tx, run, item[2] if len(item) > 2 and item[2] else now, item[0], attrs)
        if first_id is None:
            first_id = event_id
    ensure_workflow_task(tx, run, now)


def _append_group(tx: Tx, run: Run, group: dict[str, Any]) -> None:
    first_id = None
    for index, (etype, attrs, at) in enumerate(group["items"]):
        if group["link"] and index == 1 and first_id is not None:
            attrs = {**attrs, "startedEventId": str(first_id)}
        stamp = at or group["time"]
        event_id = append(tx, run, from_timestamp(stamp), etype, attrs, stamp)
        if first_id is None:
            first_id = event_id


def _wft_scheduled_attrs(run: Run) -> dict[str, Any]:
    return _wft_scheduled(run.task_queue, run.task_timeout, run.wft_attempt)[0]


@functools.lru_cache(maxsize=256)
def _wft_scheduled(task_queue: str, timeout: float, attempt: int) -> tuple[dict[str, Any], str]:
    """WorkflowTaskScheduled's attributes and their JSON: the same for every task of a queue."""
    attrs = {
        "taskQueue": {"name": task_queue, "kind": _QUEUE_KIND},
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
    tx.notify("queue", f"workflow:{run.task_queue}")


def ensure_workflow_task(tx: Tx, run: Run, now: datetime, *, delay: float = 0.0) -> None:
    if not run.open or run.wft_state:
        return
    if run.wft_attempt > 1:
        # A retry of a failed or timed-out workflow task is transient, as in Temporal: its
        # events are written only if it completes, so a bug that fails every attempt does
        # not grow the history while it is being fixed.
        schedule_transient_task(tx, run, ts(now) + delay)
        return
    attrs, text = _wft_scheduled(run.task_queue, run.task_timeout, run.wft_attempt)
    scheduled = append(tx, run, now, "WorkflowTaskScheduled", attrs, text=text)
    run.wft_state = "scheduled"
    run.wft_scheduled_id = scheduled
    run.wft_started_id = None
    receiver = None if delay else pick_sticky(tx.receivers, "workflow:" + run.task_queue, run.run_id)
    if receiver is not None:
        tx.dispatch(receiver, _start_workflow_task(tx, run, now, receiver.owner, None, {}, receiver.known))
        return
    tx.conn.execute(
        "INSERT INTO tasks (kind, task_queue, run_id, scheduled_event_id, attempt, visible_at) VALUES ('workflow', ?, ?, ?, ?, ?)",
        (run.task_queue, run.run_id, scheduled, run.wft_attempt, ts(now) + delay),
    )
    tx.notify("queue", f"workflow:{run.task_queue}")


def close_run(tx: Tx, run: Run, now: datetime, status: str, outcome: dict[str, Any] | None = None) -> None:
    """Close a run; ``outcome`` is its closing event's attributes (told to a parent)."""
    run.status = status
    run.wft_state = ""
    run.buffered = []
    run.close_time = ts(now)
    run.wft_task = None
    tx.conn.execute("UPDATE executions SET status = ?, close_time = ? WHERE run_id = ?", (status, run.close_time, run.run_id))
    tx.conn.execute("DELETE FROM tasks WHERE run_id = ?", (run.run_id,))
    tx.conn.execute("DELETE FROM timers WHERE run_id = ?", (run.run_id,))
    tx.cache.runs.pop(run.run_id, None)
    closing = run.tail[-1] if run.tail else None
    if closing is not None:
        tx.closed[run.run_id] = (closing.event_type, closing.attributes)
    tx.notify("closed", run.run_id)
    tx.notify("closed", run.workflow_id)
    # Status and close time are written above, at once: the parent and children touched
    # below read them.
    save_run(tx, run)
    if run.has_updates is not False:
        _service_updates.run_closed(tx, run)
    if status != "ContinuedAsNew" and run.is_child is not False:
        _service_children.tell_parent(tx, run, now, status, outcome or {})
    if run.has_children is not False:
        _service_children.apply_close_policy(tx, run, now)


# ---------------------------------------------------------------------------- start
@dataclass(frozen=True)
class StartRequest:
    workflow_id: str
    workflow_type: str
    task_queue: str
    input: dict[str, Any]
    identity: str
    execution_timeout: timedelta | None = None
    run_timeout: timedelta | None = None
    task_timeout: timedelta | None = None
    run_id: str | None = None
    memo: dict[str, Any] | None = None
    # indexedFields of searchAttributes (payloads, JSON form).
    search_attributes: dict[str, Any] | None = None
    continued_from: str | None = None
    first_run_id: str | None = None
    # For a child run: the parent* / root* attributes of its WorkflowExecutionStarted event.
    parent: dict[str, Any] | None = None
    # The start's header fields (interceptors' headers; {} when none), as Temporal records them.
    header: dict[str, Any] | None = None
    # Start options (engine._service_starts): temporalio's policy enum values (0: default).
    id_reuse_policy: int = 0
    id_conflict_policy: int = 0
    cron_schedule: str | None = None
    first_task_backoff: timedelta | None = None  # None: up to the cron schedule's next time
    last_completion_result: dict[str, Any] | None = None
    # Update-with-start: (update id, name, payloads) the first workflow task carries.
    update: tuple[str, str, dict[str, Any]] | None = None


def start_workflow(tx: Tx, req: StartRequest, now: datetime) -> str:
    # Policies decide about runs of the same id ("+status" in their look-up: without it SQLite
    # picks the status index and walks every open run; no flush needed, close_run writes
    # status at once). USE_EXISTING answers with the open run.
    existing = _service_starts.existing_run(tx, req, now)
    if existing is not None:
        return existing
    backoff = _service_starts.first_task_backoff(req, now)
    run_id = req.run_id or new_run_id()
    task_timeout = (req.task_timeout or timedelta(seconds=10)).total_seconds()
    # As Temporal's frontend: the run timeout defaults to (and is capped by) the execution
    # timeout, and the workflow-task timeout by the run timeout.
    run_limit = min((t for t in (req.run_timeout, req.execution_timeout) if t), default=None)
    task_timeout = min(task_timeout, run_limit.total_seconds()) if run_limit else task_timeout
    run = Run(run_id, req.workflow_id, req.workflow_type, req.task_queue, OPEN, 1, "", None, None, 1, [], task_timeout)
    run.has_updates, run.is_child, run.has_children = False, bool(req.parent), False
    run.is_cron = bool(req.cron_schedule)
    attrs: dict[str, Any] = {
        "workflowType": {"name": req.workflow_type},
        "taskQueue": {"name": req.task_queue, "kind": _QUEUE_KIND},
        "input": req.input,
        "workflowTaskTimeout": to_duration(timedelta(seconds=task_timeout)),
        "originalExecutionRunId": run_id,
        "identity": req.identity,
        "firstExecutionRunId": req.first_run_id or run_id,
        "attempt": 1,
        "firstWorkflowTaskBackoff": to_duration(backoff) if backoff else "0s",
        "header": req.header or {},
        "workflowId": req.workflow_id,
    }
    if req.execution_timeout:
        attrs["workflowExecutionTimeout"] = to_duration(req.execution_timeout)
        attrs["workflowExecutionExpirationTime"] = to_timestamp(now + req.execution_timeout)
    if run_limit:
        attrs["workflowRunTimeout"] = to_duration(run_limit)
    if req.memo:
        attrs["memo"] = {"fields": req.memo}
    if req.search_attributes:
        attrs["searchAttributes"] = {"indexedFields": req.search_attributes}
        _service_visibility.index(tx, run_id, req.search_attributes, fresh=True, strict=not (req.continued_from or req.parent))
    if req.parent:
        attrs.update(req.parent)
        del attrs["identity"]  # as Temporal: a child's start carries its parent, not a client
    if req.continued_from:
        attrs["continuedExecutionRunId"] = req.continued_from
        attrs["initiator"] = "CONTINUE_AS_NEW_INITIATOR_WORKFLOW"
    if req.cron_schedule:
        attrs["cronSchedule"] = req.cron_schedule
        attrs["initiator"] = "CONTINUE_AS_NEW_INITIATOR_CRON_SCHEDULE"
        attrs.pop("identity", None) if req.continued_from else None
    if req.last_completion_result:
        attrs["lastCompletionResult"] = req.last_completion_result
    append(tx, run, now, "WorkflowExecutionStarted", attrs)
    limit = min(t for t in (req.execution_timeout, req.run_timeout, timedelta.max) if t)
    if limit != timedelta.max:
        tx.conn.execute(
            "INSERT INTO timers (run_id, timer_key, kind, fire_at) VALUES (?, 'execution-timeout', 'execution_timeout', ?)",
            (run_id, ts(now + limit)),
        )
        tx.notify("timers", "")
    if req.update is not None:
        _service_starts.add_update(tx, run, req.update, req.identity)
    if backoff:
        # The first workflow task waits (a cron run's next time); it is scheduled when the
        # timer fires, as Temporal writes it then.
        tx.conn.execute(
            "INSERT INTO timers (run_id, timer_key, kind, fire_at) VALUES (?, 'first-task-backoff', 'first_task_backoff', ?)",
            (run_id, ts(now + backoff)),
        )
        tx.notify("timers", "")
    else:
        ensure_workflow_task(tx, run, now)
    _service_starts.remember(tx, run_id, req, now + backoff)
    tx.conn.execute(
        "INSERT INTO executions (run_id, workflow_id, workflow_type, task_queue, status, start_time, next_event_id, "
        "wft_state, wft_scheduled_id, wft_started_id, wft_attempt, task_timeout, flags, search_attributes, memo) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (run_id, req.workflow_id, req.workflow_type, req.task_queue, OPEN, ts(now), run.next_event_id,
         run.wft_state, run.wft_scheduled_id, run.wft_started_id, run.wft_attempt, task_timeout, run.flags(),
         dumps(req.search_attributes) if req.search_attributes else None, dumps(req.memo) if req.memo else None),
    )
    _remember(tx, run)
    return run_id


# ---------------------------------------------------------------------------- workflow tasks
@dataclass
class WorkflowTask:
    task_id: int
    run_id: str
    workflow_id: str
    workflow_type: str
    task_queue: str
    started_event_id: int
    events: list[HistoryEvent]
    history_complete: bool
    updates: list[dict[str, Any]] = field(default_factory=list)


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
        (kind, task_queue, ts(now), limit),
    ).fetchall()
    if receiver is not None:
        receiver.drained = len(rows) < limit
    return rows


def claim_workflow_tasks(
    tx: Tx,
    task_queue: str,
    owner: str,
    now: datetime,
    limit: int,
    known: Callable[[str], int],
    receiver: Any = None,
) -> list[WorkflowTask]:
    """Claim up to ``limit`` workflow tasks; ``known(run_id)`` is the last event id the
    worker already holds for a run (0 for none), so only newer events are read. With a
    ``receiver`` (see ``_dispatch``) each claimed task takes one of its slots."""
    rows = claimable(tx, "workflow", "id, run_id, info", task_queue, now, limit, receiver)
    claimed = []
    for task_id, run_id, info_text in rows:
        run = load_run(tx, run_id)
        if not run.open or run.wft_state != "scheduled":
            tx.conn.execute("DELETE FROM tasks WHERE id = ?", (task_id,))
            continue
        if receiver is not None:
            receiver.taken += 1
        claimed.append(_start_workflow_task(tx, run, now, owner, task_id, json.loads(info_text), known))
        save_run(tx, run)
    if claimed:
        tx.notify("timers", "")
    return claimed


def _start_workflow_task(
    tx: Tx, run: Run, now: datetime, owner: str, task_id: int | None, info: dict[str, Any], known: Callable[[str], int]
) -> WorkflowTask:
    """Lease the run's scheduled workflow task to ``owner`` (inserting the task row when
    ``task_id`` is None: eager dispatch) and build what the worker gets."""
    started_attrs = {"identity": identity_of(owner), "requestId": request_id()}
    synthetic: list[HistoryEvent] = []
    if run.wft_scheduled_id is None:
        # Transient retry: hand the worker the two events without writing them yet.
        scheduled_id, started = run.next_event_id, run.next_event_id + 1
        sched_time = from_ts(info.get("scheduledTime", ts(now)))
        started_attrs["scheduledEventId"] = str(scheduled_id)
        synthetic = [
            HistoryEvent(scheduled_id, "WorkflowTaskScheduled", sched_time, _wft_scheduled_attrs(run)),
            HistoryEvent(started, "WorkflowTaskStarted", now, started_attrs),
        ]
        info["transient"] = [ts(sched_time), ts(now), started_attrs]
        run.wft_scheduled_id = scheduled_id
    else:
        started_attrs["scheduledEventId"] = str(run.wft_scheduled_id)
        started = append(tx, run, now, "WorkflowTaskStarted", started_attrs)
    run.wft_state = "started"
    run.wft_started_id = started
    t = ts(now)
    expires = t + run.task_timeout
    if task_id is None:
        task_id = tx.conn.execute(
            "INSERT INTO tasks (kind, task_queue, run_id, scheduled_event_id, attempt, visible_at, lease_owner, "
            "lease_expires, due_at, started_at) VALUES ('workflow', ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (run.task_queue, run.run_id, run.wft_scheduled_id, run.wft_attempt, t, owner, expires, expires, t),
        ).lastrowid
        tx.notify("timers", "")
    else:
        tx.conn.execute(
            "UPDATE tasks SET lease_owner = ?, lease_expires = ?, due_at = ?, started_at = ?, info = ? WHERE id = ?",
            (owner, expires, expires, t, dumps(info), task_id),
        )
    assert task_id is not None
    run.wft_task = (task_id, owner, info)
    after = known(run.run_id)
    return WorkflowTask(
        task_id,
        run.run_id,
        run.workflow_id,
        run.workflow_type,
        run.task_queue,
        started,
        _events_after(tx, run, after) + synthetic,
        after == 0,
        _service_updates.claim(tx, run.run_id) if run.has_updates is not False else [],
    )


def _events_after(tx: Tx, run: Run, after: int) -> list[HistoryEvent]:
    """The run's events after ``after``: from memory when this connection appended them all."""
    if after + 1 >= run.tail_from:
        events = [e for e in run.tail if e.event_id > after]
    else:
        tx.flush()
        events = read_events(tx.conn, run.run_id, after)
    # The worker will hold everything up to now: later tasks need only what follows.
    run.tail = []
    run.tail_from = run.next_event_id
    return events


def read_events(conn: Any, run_id: str, after: int = 0) -> list[HistoryEvent]:
    return [
        HistoryEvent(eid, etype, from_timestamp(etime), json.loads(attrs))
        for eid, etype, etime, attrs in conn.execute(
            "SELECT event_id, event_type, event_time, attributes FROM events WHERE run_id = ? AND event_id > ? ORDER BY event_id",
            (run_id, after),
        )
    ]


def _take_workflow_task(tx: Tx, task_id: int, owner: str, run: Run, started_event_id: int) -> dict[str, Any]:
    """Check that ``owner`` still holds the task and delete it; return the task's info."""
    stale = StaleTaskError(f"workflow task {started_event_id} of run {run.run_id} is no longer held by {owner}")
    if run.wft_started_id != started_event_id or not run.open:
        raise stale
    held = run.wft_task
    if held is not None and held[0] == task_id and held[1] == owner:
        info = held[2]
    else:
        row = tx.conn.execute("SELECT info FROM tasks WHERE id = ?", (task_id,)).fetchone()
        info = json.loads(row[0]) if row is not None else {}
    # The row count proves the lease: another owner (or none) means the task was reassigned.
    if tx.conn.execute("DELETE FROM tasks WHERE id = ? AND lease_owner = ?", (task_id, owner)).rowcount != 1:
        raise stale
    run.wft_task = None
    return info


def _write_transient(tx: Tx, run: Run, info: dict[str, Any]) -> None:
    """A transient workflow task completed: its Scheduled and Started events become real."""
    sched_time, started_time, started_attrs = info["transient"]
    append(tx, run, from_ts(sched_time), "WorkflowTaskScheduled", _wft_scheduled_attrs(run))
    append(tx, run, from_ts(started_time), "WorkflowTaskStarted", started_attrs)


def complete_workflow_task(
    tx: Tx,
    task_id: int,
    owner: str,
    run_id: str,
    started_event_id: int,
    commands: Sequence[tuple[str, dict[str, Any]]],
    now: datetime,
    first_task: bool,
) -> bool:
    """Record a workflow task's completion; False if it left no trace (a speculative task
    that only rejected updates), so the worker's cached state is ahead of the history."""
    run = load_run(tx, run_id)
    info = _take_workflow_task(tx, task_id, owner, run, started_event_id)
    if _service_updates.droppable(info, run, commands):
        for kind, cattrs in commands:
            _COMMANDS[kind](tx, run, now, 0, cattrs)
        run.wft_state = ""
        for group in run.buffered:
            _append_group(tx, run, group)
        if run.buffered or _updates_waiting(tx, run):
            ensure_workflow_task(tx, run, now)
        run.buffered = []
        save_run(tx, run)
        return False
    if "transient" in info:
        _write_transient(tx, run, info)
    attrs: dict[str, Any] = {
        "scheduledEventId": str(run.wft_scheduled_id),
        "startedEventId": str(started_event_id),
        "identity": identity_of(owner),
    }
    if first_task:
        attrs["sdkMetadata"] = {"coreUsedFlags": SDK_FLAGS}
    closing = any(kind in _CLOSE_COMMANDS for kind, _ in commands)
    if closing and any(item[0] == "WorkflowExecutionSignaled" for group in run.buffered for item in group["items"]):
        # A signal arrived while the code decided to finish: as in Temporal, the completion is
        # refused and a new workflow task lets the code see the signal. Signals are never lost.
        append(
            tx,
            run,
            now,
            "WorkflowTaskFailed",
            {**{k: v for k, v in attrs.items() if k != "sdkMetadata"}, "cause": "WORKFLOW_TASK_FAILED_CAUSE_UNHANDLED_COMMAND", "failure": {"message": "new signals arrived while the workflow was completing", "source": "Server"}},
        )
        run.wft_state = ""
        for group in run.buffered:
            _append_group(tx, run, group)
        run.buffered = []
        ensure_workflow_task(tx, run, now)
        save_run(tx, run)
        return True
    completed = append(tx, run, now, "WorkflowTaskCompleted", attrs)
    run.wft_state = ""
    run.wft_attempt = 1
    new_task_needed = False
    for kind, cattrs in commands:
        if not run.open:
            break
        new_task_needed |= _COMMANDS[kind](tx, run, now, completed, cattrs)
    if run.open:
        buffered, run.buffered = run.buffered, []
        for group in buffered:
            _append_group(tx, run, group)
        if buffered or new_task_needed or _updates_waiting(tx, run):
            ensure_workflow_task(tx, run, now)
    save_run(tx, run)
    return True


def _updates_waiting(tx: Tx, run: Run) -> bool:
    return run.has_updates is not False and _service_updates.waiting(tx, run.run_id)


def fail_workflow_task(
    tx: Tx,
    task_id: int,
    owner: str,
    run_id: str,
    started_event_id: int,
    failure: dict[str, Any],
    cause: str,
    now: datetime,
) -> None:
    run = load_run(tx, run_id)
    info = _take_workflow_task(tx, task_id, owner, run, started_event_id)
    if "transient" not in info:
        append(
            tx,
            run,
            now,
            "WorkflowTaskFailed",
            {
                "scheduledEventId": str(run.wft_scheduled_id),
                "startedEventId": str(started_event_id),
                "cause": cause,
                "failure": failure,
                "identity": identity_of(owner),
            },
        )
    else:
        # Not in history, but kept where viewers can show why the run is stuck.
        tx.conn.execute(
            "UPDATE executions SET last_task_failure = ? WHERE run_id = ?",
            (dumps({"attempt": run.wft_attempt, "cause": cause, "failure": failure}), run_id),
        )
    _retry_workflow_task(tx, run, now)
    save_run(tx, run)


def _retry_workflow_task(tx: Tx, run: Run, now: datetime, *, backoff: bool = True) -> None:
    run.wft_state = ""
    run.wft_task = None
    for group in run.buffered:
        _append_group(tx, run, group)
    run.buffered = []
    run.wft_attempt += 1
    # A failing workflow task is retried with backoff (1 s, 2 s, ... at most 1 min) so a bug
    # does not spin; restarting the worker with fixed code lets the next attempt succeed.
    # A timed-out task (its worker died or stalled) is offered again at once.
    delay = min(60.0, 2.0 ** min(run.wft_attempt - 2, 6)) if backoff else 0.0
    ensure_workflow_task(tx, run, now, delay=delay)
    if delay:
        tx.notify("timers", "")


# ---------------------------------------------------------------------------- commands
def _cmd_schedule_activity(tx: Tx, run: Run, now: datetime, completed: int, attrs: dict[str, Any]) -> bool:
    event_attrs = {**attrs, "workflowTaskCompletedEventId": str(completed)}
    scheduled = append(tx, run, now, "ActivityTaskScheduled", event_attrs)
    s2c = from_duration(attrs.get("scheduleToCloseTimeout"))
    s2s = from_duration(attrs.get("scheduleToStartTimeout"))
    info = {
        "activityId": attrs["activityId"],
        "activityType": attrs["activityType"]["name"],
        "workflowId": run.workflow_id,
        "workflowType": run.workflow_type,
        "input": attrs.get("input"),
        "scheduledTime": ts(now),
        "deadline": ts(now + s2c) if s2c else None,
        "scheduleToStart": s2s.total_seconds() if s2s else None,
        "startToClose": (from_duration(attrs.get("startToCloseTimeout")) or s2c or timedelta(0)).total_seconds(),
        "heartbeat": (from_duration(attrs.get("heartbeatTimeout")) or timedelta(0)).total_seconds(),
        "retryPolicy": attrs.get("retryPolicy"),
    }
    if attrs.get("header"):
        info["header"] = attrs["header"]  # for the activity's interceptors
    queue = attrs["taskQueue"]["name"]
    t = ts(now)
    receiver = pick(tx.receivers, "activity:" + queue)
    if receiver is not None:
        # Eager dispatch: leased at once to a worker of this process with a free slot.
        expires = _lease_expiry(info, t, t)
        due = min(x for x in (expires, info["deadline"]) if x)
        task_id = tx.conn.execute(
            "INSERT INTO tasks (kind, task_queue, run_id, scheduled_event_id, attempt, visible_at, due_at, lease_owner, "
            "lease_expires, started_at, info) VALUES ('activity', ?, ?, ?, 1, ?, ?, ?, ?, ?, ?)",
            (queue, run.run_id, scheduled, t, due, receiver.owner, expires, t, dumps(info)),
        ).lastrowid
        assert task_id is not None
        tx.cache.tasks[task_id] = HeldActivity(run.run_id, scheduled, info, t)
        tx.dispatch(receiver, ActivityTask(task_id, run.run_id, scheduled, 1, info, t))
    else:
        tx.conn.execute(
            "INSERT INTO tasks (kind, task_queue, run_id, scheduled_event_id, attempt, visible_at, due_at, info) "
            "VALUES ('activity', ?, ?, ?, 1, ?, ?, ?)",
            (queue, run.run_id, scheduled, t, _unleased_due(info, t), dumps(info)),
        )
        tx.notify("queue", f"activity:{queue}")
    tx.notify("timers", "")
    return False


def _unleased_due(info: dict[str, Any], visible_at: float) -> float | None:
    candidates = [info.get("deadline")]
    if info.get("scheduleToStart"):
        candidates.append(visible_at + info["scheduleToStart"])
    present = [c for c in candidates if c]
    return min(present) if present else None


def _cmd_start_timer(tx: Tx, run: Run, now: datetime, completed: int, attrs: dict[str, Any]) -> bool:
    started = append(tx, run, now, "TimerStarted", {**attrs, "workflowTaskCompletedEventId": str(completed)})
    fire = now + (from_duration(attrs.get("startToFireTimeout")) or timedelta(0))
    tx.conn.execute(
        "INSERT INTO timers (run_id, timer_key, kind, fire_at, info) VALUES (?, ?, 'timer', ?, ?)",
        (run.run_id, "timer:" + attrs["timerId"], ts(fire), dumps({"timerId": attrs["timerId"], "startedEventId": started})),
    )
    tx.notify("timers", "")
    return False


def _cmd_cancel_timer(tx: Tx, run: Run, now: datetime, completed: int, attrs: dict[str, Any]) -> bool:
    row = tx.conn.execute(
        "SELECT info FROM timers WHERE run_id = ? AND timer_key = ?", (run.run_id, "timer:" + attrs["timerId"])
    ).fetchone()
    started = json.loads(row[0])["startedEventId"] if row else 0
    tx.conn.execute("DELETE FROM timers WHERE run_id = ? AND timer_key = ?", (run.run_id, "timer:" + attrs["timerId"]))
    append(
        tx,
        run,
        now,
        "TimerCanceled",
        {"timerId": attrs["timerId"], "startedEventId": str(started), "workflowTaskCompletedEventId": str(completed), "identity": ""},
    )
    return False


def _cmd_cancel_activity(tx: Tx, run: Run, now: datetime, completed: int, attrs: dict[str, Any]) -> bool:
    scheduled = int(attrs["scheduledEventId"])
    requested = append(
        tx,
        run,
        now,
        "ActivityTaskCancelRequested",
        {"scheduledEventId": str(scheduled), "workflowTaskCompletedEventId": str(completed)},
    )
    row = tx.conn.execute(
        "SELECT id, lease_owner, info FROM tasks WHERE run_id = ? AND kind = 'activity' AND scheduled_event_id = ?",
        (run.run_id, scheduled),
    ).fetchone()
    if row is None:
        return False
    task_id, lease_owner, info = row
    tx.cache.tasks.pop(task_id, None)
    if lease_owner is None:
        tx.conn.execute("DELETE FROM tasks WHERE id = ?", (task_id,))
        append(
            tx,
            run,
            now,
            "ActivityTaskCanceled",
            {"scheduledEventId": str(scheduled), "startedEventId": "0", "latestCancelRequestedEventId": str(requested), "identity": ""},
        )
        return True
    data = json.loads(info)
    data["cancelRequested"] = requested
    tx.conn.execute("UPDATE tasks SET info = ? WHERE id = ?", (dumps(data), task_id))
    return False


def _close_command(status: str, event_type: str):  # type: ignore[no-untyped-def]
    def handler(tx: Tx, run: Run, now: datetime, completed: int, attrs: dict[str, Any]) -> bool:
        extra: dict[str, Any] = {"workflowTaskCompletedEventId": str(completed)}
        if event_type == "WorkflowExecutionFailed":
            extra["retryState"] = "RETRY_STATE_RETRY_POLICY_NOT_SET"
        follow = _service_starts.next_cron_run(tx, run, now, attrs) if status in ("Completed", "Failed") else None
        if follow is not None:
            extra["newExecutionRunId"] = follow.run_id
        append(tx, run, now, event_type, {**attrs, **extra})
        close_run(tx, run, now, status, attrs)
        if follow is not None:
            save_run(tx, run)
            start_workflow(tx, follow, now)
        return False

    return handler


def _cmd_continue_as_new(tx: Tx, run: Run, now: datetime, completed: int, attrs: dict[str, Any]) -> bool:
    next_run_id = new_run_id()
    tx.flush()
    first = tx.conn.execute(
        "SELECT attributes FROM events WHERE run_id = ? AND event_id = 1", (run.run_id,)
    ).fetchone()
    started = json.loads(first[0]) if first else {}
    attrs = {**attrs, **_service_visibility.carried_over(tx, run.run_id, started, attrs)}
    append(
        tx,
        run,
        now,
        "WorkflowExecutionContinuedAsNew",
        {"newExecutionRunId": next_run_id, **attrs, "workflowTaskCompletedEventId": str(completed), "inheritBuildId": True},
    )
    close_run(tx, run, now, "ContinuedAsNew")
    save_run(tx, run)
    start_workflow(
        tx,
        StartRequest(
            workflow_id=run.workflow_id,
            workflow_type=attrs["workflowType"]["name"],
            task_queue=attrs["taskQueue"]["name"],
            input=attrs.get("input") or {"payloads": []},
            identity=str(started.get("identity", "")),
            run_timeout=from_duration(attrs.get("workflowRunTimeout")),
            task_timeout=from_duration(attrs.get("workflowTaskTimeout")),
            run_id=next_run_id,
            memo=(attrs.get("memo") or {}).get("fields"),
            search_attributes=(attrs.get("searchAttributes") or {}).get("indexedFields"),
            continued_from=run.run_id,
            first_run_id=str(started.get("firstExecutionRunId") or run.run_id),
            parent={k: v for k, v in started.items() if k.startswith(("parent", "root"))} or None,
        ),
        now,
    )
    tx.conn.execute("UPDATE children SET child_run_id = ? WHERE child_run_id = ?", (next_run_id, run.run_id))
    tx.notify("continued", run.run_id)
    return False


def _cmd_record_marker(tx: Tx, run: Run, now: datetime, completed: int, attrs: dict[str, Any]) -> bool:
    append(tx, run, now, "MarkerRecorded", {**attrs, "workflowTaskCompletedEventId": str(completed)})
    return False


_CLOSE_COMMANDS = frozenset(
    {"CompleteWorkflowExecution", "FailWorkflowExecution", "CancelWorkflowExecution", "ContinueAsNewWorkflowExecution"}
)

_COMMANDS = {
    "StartChildWorkflowExecution": lambda *a: _service_children.cmd_start_child(*a),
    "SignalExternalWorkflowExecution": lambda *a: _service_children.cmd_signal_external(*a),
    "RequestCancelExternalWorkflowExecution": lambda *a: _service_children.cmd_cancel_external(*a),
    "ScheduleActivityTask": _cmd_schedule_activity,
    "StartTimer": _cmd_start_timer,
    "CancelTimer": _cmd_cancel_timer,
    "RequestCancelActivityTask": _cmd_cancel_activity,
    "RecordMarker": _cmd_record_marker,
    "UpsertWorkflowSearchAttributes": lambda *a: _service_visibility.cmd_upsert_search_attributes(*a),
    "ModifyWorkflowProperties": lambda *a: _service_visibility.cmd_modify_properties(*a),
    "AcceptUpdate": lambda *a: _service_updates.cmd_accept(*a),
    "CompleteUpdate": lambda *a: _service_updates.cmd_complete(*a),
    "RejectUpdate": lambda *a: _service_updates.cmd_reject(*a),
    "CompleteWorkflowExecution": _close_command("Completed", "WorkflowExecutionCompleted"),
    "FailWorkflowExecution": _close_command("Failed", "WorkflowExecutionFailed"),
    "CancelWorkflowExecution": _close_command("Canceled", "WorkflowExecutionCanceled"),
    "ContinueAsNewWorkflowExecution": _cmd_continue_as_new,
}


# ---------------------------------------------------------------------------- timers and timeouts
def fire_due(tx: Tx, now: datetime, limit: int = 500) -> int:
    t = ts(now)
    fired = 0
    for run_id, key, kind, info_text in tx.conn.execute(
        "SELECT run_id, timer_key, kind, info FROM timers WHERE fire_at <= ? ORDER BY fire_at LIMIT ?", (t, limit)
    ).fetchall():
        tx.conn.execute("DELETE FROM timers WHERE run_id = ? AND timer_key = ?", (run_id, key))
        if kind == "schedule":
            _service_schedules.fire(tx, run_id, json.loads(info_text), now)
            fired += 1
            continue
        run = load_run(tx, run_id)
        if not run.open:
            continue
        info = json.loads(info_text)
        if kind == "timer":
            deliver(tx, run, now, [("TimerFired", {"timerId": info["timerId"], "startedEventId": str(info["startedEventId"])})])
        elif kind == "first_task_backoff":
            ensure_workflow_task(tx, run, now)
        elif kind == "execution_timeout":
            append(tx, run, now, "WorkflowExecutionTimedOut", {"retryState": "RETRY_STATE_TIMEOUT"})
            close_run(tx, run, now, "TimedOut", {"retryState": "RETRY_STATE_TIMEOUT"})
        save_run(tx, run)
        fired += 1
    for task_id, kind, run_id, scheduled, attempt, lease_owner, lease_expires, started_at, info_text in tx.conn.execute(
        "SELECT id, kind, run_id, scheduled_event_id, attempt, lease_owner, lease_expires, started_at, info FROM tasks "
        "WHERE due_at <= ? ORDER BY due_at LIMIT ?",
        (t, limit),
    ).fetchall():
        tx.cache.tasks.pop(task_id, None)
        run = load_run(tx, run_id)
        if kind == "workflow":
            if run.open and run.wft_state == "started":
                if "transient" not in json.loads(info_text):
                    append(
                        tx,
                        run,
                        now,
                        "WorkflowTaskTimedOut",
                        {"scheduledEventId": str(run.wft_scheduled_id), "startedEventId": str(run.wft_started_id), "timeoutType": "TIMEOUT_TYPE_START_TO_CLOSE"},
                    )
                tx.conn.execute("DELETE FROM tasks WHERE id = ?", (task_id,))
                _retry_workflow_task(tx, run, now, backoff=False)
            else:
                tx.conn.execute("UPDATE tasks SET due_at = NULL WHERE id = ?", (task_id,))
        else:
            _activity_timeout(tx, run, task_id, scheduled, attempt, lease_owner, lease_expires, started_at, json.loads(info_text), now)
        save_run(tx, run)
        fired += 1
    return fired


def _activity_timeout(
    tx: Tx,
    run: Run,
    task_id: int,
    scheduled: int,
    attempt: int,
    lease_owner: str | None,
    lease_expires: float | None,
    started_at: float | None,
    info: dict[str, Any],
    now: datetime,
) -> None:
    from engine._failure_converter import encode_failure
    from engine.errors import TimeoutError, TimeoutType

    t = ts(now)
    # Both due: Temporal times the attempt out first, then finds no time left to retry it.
    attempt_over = lease_owner is not None and lease_expires is not None and lease_expires <= t
    if info.get("deadline") and info["deadline"] <= t and not attempt_over:
        kind = TimeoutType.SCHEDULE_TO_CLOSE
    elif lease_owner is not None and lease_expires is not None and lease_expires <= t:
        hb_expired = info.get("heartbeat") and (started_at or 0) + (info.get("startToClose") or float("inf")) > t
        kind = TimeoutType.HEARTBEAT if hb_expired else TimeoutType.START_TO_CLOSE
    elif lease_owner is None and info.get("scheduleToStart"):
        kind = TimeoutType.SCHEDULE_TO_START
    else:
        tx.conn.execute("UPDATE tasks SET due_at = NULL WHERE id = ?", (task_id,))
        return
    failure = encode_failure(TimeoutError(f"activity {kind.name.lower().replace('_', '-')} timeout", type=kind))
    failure["stackTrace"] = ""
    failure["source"] = "Server"
    if kind is TimeoutType.HEARTBEAT and info.get("heartbeatDetails"):  # as Temporal: the last details travel with it
        failure["timeoutFailureInfo"]["lastHeartbeatDetails"] = info["heartbeatDetails"]
    if kind in (TimeoutType.START_TO_CLOSE, TimeoutType.HEARTBEAT):
        _attempt_failed(tx, run, task_id, scheduled, attempt, info, started_at, failure, now, lease_owner or "", "timed out")
        return
    tx.conn.execute("DELETE FROM tasks WHERE id = ?", (task_id,))
    _record_attempt(tx, run.run_id, scheduled, attempt, started_at, now, "timed out", failure, lease_owner or "")
    items: list[tuple[Any, ...]] = []
    if lease_owner is not None:
        items.append(("ActivityTaskStarted", _started_attrs(scheduled, lease_owner, attempt, info), from_ts(started_at) if started_at else None))
    items.append(
        ("ActivityTaskTimedOut", {"failure": failure, "scheduledEventId": str(scheduled), "startedEventId": "0", "retryState": "RETRY_STATE_TIMEOUT"})
    )
    deliver(tx, run, now, items, link_started=lease_owner is not None)


def idle_state(conn: Any, now: float, served: Sequence[str], owners: Sequence[str] = ()) -> tuple[bool, float | None, bool]:
    """(nothing runnable or due now, the next moment something becomes due, something is due).

    Runnable means visible on a queue that one of this process's workers serves (``served``
    holds ``"workflow:Q"`` / ``"activity:Q"``): a task nobody polls must not stop time, or its
    schedule-to-start timeout could never fire. Likewise only leases held by this process's
    live workers (``owners``) are work in progress: a crashed worker's lease must time out.
    """
    marks = ",".join("?" * len(served)) or "NULL"
    owner_marks = ",".join("?" * len(owners)) or "NULL"
    busy = conn.execute(
        f"SELECT EXISTS(SELECT 1 FROM tasks WHERE (lease_owner IS NULL AND visible_at <= ? AND kind || ':' || task_queue IN ({marks})) "
        f"OR lease_owner IN ({owner_marks}) OR due_at <= ?) OR EXISTS(SELECT 1 FROM timers WHERE fire_at <= ?)",
        (now, *served, *owners, now, now),
    ).fetchone()[0]
    row = conn.execute(
        "SELECT min(x) FROM (SELECT min(fire_at) AS x FROM timers UNION ALL SELECT min(due_at) FROM tasks "
        f"UNION ALL SELECT min(visible_at) FROM tasks WHERE visible_at > ? AND kind || ':' || task_queue IN ({marks}))",
        (now, *served),
    ).fetchone()
    due = conn.execute(
        "SELECT EXISTS(SELECT 1 FROM timers WHERE fire_at <= ?) OR EXISTS(SELECT 1 FROM tasks WHERE due_at <= ?)", (now, now)
    ).fetchone()[0]
    return (not busy), (row[0] if row else None), bool(due)


def next_due(conn: Any) -> float | None:
    """When the next timer fires or the next task times out: all that the clock work needs
    to know in real time (idle_state's other answers serve time skipping). Two index look-ups."""
    return conn.execute(
        "SELECT min(x) FROM (SELECT min(fire_at) AS x FROM timers UNION ALL SELECT min(due_at) FROM tasks WHERE due_at IS NOT NULL)"
    ).fetchone()[0]


def has_tasks(conn: Any, kind: str, task_queue: str, now: float) -> bool:
    return conn.execute(
        "SELECT EXISTS(SELECT 1 FROM tasks WHERE kind = ? AND task_queue = ? AND lease_owner IS NULL AND visible_at <= ?)",
        (kind, task_queue, now),
    ).fetchone()[0] == 1


# ---------------------------------------------------------------------------- client requests
def request_cancel(
    tx: Tx, run_id: str, reason: str, identity: str, now: datetime, external: dict[str, Any] | None = None
) -> None:
    """``external``: the ``externalInitiatedEventId``/``externalWorkflowExecution`` of a
    cancel sent by another workflow."""
    run = load_run(tx, run_id)
    if not run.open:
        raise WorkflowNotFoundError(f"Workflow run {run_id} is already closed ({run.status}); nothing to cancel.")
    attrs = {"cause": reason, "identity": identity, **(external or {})}
    if not reason:
        del attrs["cause"]
    deliver(tx, run, now, [("WorkflowExecutionCancelRequested", attrs)])
    save_run(tx, run)


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


def terminate(tx: Tx, run_id: str, reason: str, details: dict[str, Any] | None, identity: str, now: datetime) -> None:
    run = load_run(tx, run_id)
    if not run.open:
        raise WorkflowNotFoundError(f"Workflow run {run_id} is already closed ({run.status}); nothing to terminate.")
    if run.wft_state == "started":
        # The in-flight task's outcome is dropped (StaleTaskError); record that it ended.
        append(
            tx,
            run,
            now,
            "WorkflowTaskFailed",
            {
                "scheduledEventId": str(run.wft_scheduled_id),
                "startedEventId": str(run.wft_started_id),
                "cause": "WORKFLOW_TASK_FAILED_CAUSE_FORCE_CLOSE_COMMAND",
                "identity": identity,
            },
        )
    for group in run.buffered:
        _append_group(tx, run, group)
    run.buffered = []
    append(tx, run, now, "WorkflowExecutionTerminated", {"reason": reason, "details": details, "identity": identity})
    close_run(tx, run, now, "Terminated", {"reason": reason})
    save_run(tx, run)


# At the end: they use this module's functions (and this module calls them only at run time).
from engine import _service_children, _service_updates, _service_visibility  # noqa: E402
from engine import _service_schedules, _service_starts  # noqa: E402
from engine._service_activities import (  # noqa: E402  (re-exported: the worker and tests use them from here)
    ActivityTask,
    HeldActivity,
    _attempt_failed,
    _lease_expiry,
    _record_attempt,
    _started_attrs,
    claim_activity_tasks,
    complete_activity,
    fail_activity,
    heartbeat_activity,
)
