"""One write transaction of the store (``Tx``): the events, run rows and notes that the history
service's state changes add, written together just before COMMIT; the connection's cache of
the runs and tasks it wrote; and ``dumps``, the JSON every row is written with.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, field
from typing import Any

import orjson


class Cache:
    """What this connection knows of rows it wrote itself, so that changes need not re-read them.

    Touched only on the database thread. It is valid while no other connection (another
    process, or another client of this one) commits: ``PRAGMA data_version``, read at the
    start of every write transaction, tells, and any foreign commit clears it all. A rolled
    back transaction clears it too, since the changes it ran had already updated it.
    """

    def __init__(self) -> None:
        self.version: int | None = None
        # Bumped when another connection has committed: runs cached in an older epoch are
        # checked against their row before use (engine._history.mutable_state.load_run).
        self.epoch = 0
        # How many times another connection was seen to have committed (the first look at
        # data_version, and the one after a rollback, compare with nothing and do not count).
        self.foreign_commits = 0
        self.runs: dict[str, Any] = {}  # run id -> engine._history.mutable_state.Run
        self.tasks: dict[int, Any] = {}  # task id -> engine._history.activities.HeldActivity (leased here)

    def clear(self) -> None:
        self.version = None
        self.epoch += 1
        self.runs.clear()
        self.tasks.clear()

    def foreign_commit(self, version: int) -> None:
        """Another connection committed. Runs are rechecked lazily; held activities stay, since
        only their lease holder changes them and every use proves the lease by row count."""
        if self.version is not None:
            self.foreign_commits += 1
        self.version = version
        self.epoch += 1


@dataclass
class Tx:
    """What a state-change function gets: the connection, the cache, and what to do after commit."""

    conn: sqlite3.Connection
    notes: set[tuple[str, str]] = field(default_factory=set)
    cache: Cache = field(default_factory=Cache)
    # Local receivers of eagerly dispatched tasks, by "workflow:Q" / "activity:Q".
    receivers: dict[str, tuple[Any, ...]] = field(default_factory=dict)
    # (receiver, task) pairs handed over after the commit.
    dispatched: list[tuple[Any, Any]] = field(default_factory=list)
    # run id -> (closing event type, attributes), for result waiters in this process.
    closed: dict[str, tuple[str, Any]] = field(default_factory=dict)
    # Rows not yet written: one executemany per batch and table rather than one statement
    # per change. Events and attempts are only inserted; runs are updated once per batch
    # however many of its changes touched them (see engine._history.mutable_state.save_run).
    events: list[tuple[Any, ...]] = field(default_factory=list)
    attempts: list[tuple[Any, ...]] = field(default_factory=list)
    runs: dict[str, Any] = field(default_factory=dict)
    # The earliest moment (seconds since the epoch) something this batch wrote falls due (a
    # lease's expiry, say): the timer queue is woken only if that is before it looks anyway.
    due: float | None = None

    def flush(self) -> None:
        """Write pending rows; call before reading the executions or events table."""
        if self.events:
            self.conn.executemany(
                "INSERT INTO events (run, event_id, event_type, event_time, attributes) VALUES (?, ?, ?, ?, ?)",
                self.events,
            )
            self.events.clear()
        if self.attempts:
            self.conn.executemany(
                # Keyed by the run's executions.id (schema 10), found here from its run id.
                "INSERT OR REPLACE INTO activity_attempts (run, scheduled_event_id, attempt, started_at, ended_at, "
                "outcome, failure, identity) VALUES ((SELECT id FROM executions WHERE run_id = ?), ?, ?, ?, ?, ?, ?, ?)",
                self.attempts,
            )
            self.attempts.clear()
        if self.runs:
            self.conn.executemany(
                "UPDATE executions SET next_event_id = ?, wft_state = ?, wft_scheduled_id = ?, wft_started_id = ?, "
                "wft_attempt = ?, buffered = ?, flags = ? WHERE run_id = ?",
                [run.row() for run in self.runs.values()],
            )
            self.runs.clear()

    def drop_pending(self) -> None:
        self.events.clear()
        self.attempts.clear()
        self.runs.clear()

    def notify(self, kind: str, key: str) -> None:
        self.notes.add((kind, key))

    def note_due(self, at: float | None) -> None:
        """Something written in this batch falls due at ``at``: the timer queue must look by
        then (``notify("timers", "")`` wakes it whatever the time)."""
        if at is not None and (self.due is None or at < self.due):
            self.due = at

    def dispatch(self, receiver: Any, task: Any) -> None:
        self.dispatched.append((receiver, task))

    def undo_dispatch(self, keep: int = 0) -> None:
        """Give back the slots of tasks dispatched in a rolled-back change."""
        for receiver, _ in self.dispatched[keep:]:
            receiver.untake()
        del self.dispatched[keep:]


# Every event's attributes, task and buffered rows are encoded inside the write transaction,
# the one part of the engine that processes sharing a file take in turns: orjson encodes them
# about six times faster than the standard library (49 -> 8 us for a workflow's 23 events).
# What it refuses (integers beyond 64 bits, keys that are not strings) goes to json, whose C
# encoder is built once here rather than on every json.dumps call.
_c_encode = json.encoder.c_make_encoder(  # type: ignore[attr-defined]
    None, json.JSONEncoder().default, json.encoder.encode_basestring_ascii, None, ":", ",", False, False, True
) if json.encoder.c_make_encoder is not None else None  # type: ignore[attr-defined]


_encode = json.JSONEncoder(separators=(",", ":")).encode


_orjson_dumps = orjson.dumps
_orjson_loads = orjson.loads


def loads(text: str | bytes) -> Any:
    """What ``dumps`` wrote (orjson, faster than json), or older rows json wrote: json reads
    what orjson refuses (NaN, integers beyond 64 bits)."""
    try:
        return _orjson_loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)


def dumps(value: Any) -> str:
    try:
        return _orjson_dumps(value).decode()
    except TypeError:
        pass
    if _c_encode is not None:
        return "".join(_c_encode(value, 0))
    return _encode(value)
