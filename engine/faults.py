"""Fault injection: make activities fail, hang or slow down, and workers crash, on purpose.

Faults live in the engine's database, so every worker of every process sharing the file
obeys them, and each firing is logged (``fault_log``) so that viewers can tell injected
failures from organic ones. ::

    await faults.fail_activity(client, deposit, times=2)              # next 2 attempts raise
    await faults.hang_activity(client, deposit)                        # runs past its timeout
    await faults.slow_activity(client, deposit, delay=3)               # 3 s late
    await faults.crash_worker(client, after="ActivityTaskCompleted", activity="withdraw")
    await faults.list_faults(client); await faults.clear_faults(client)

``crash_worker`` makes the worker that writes the chosen event die at once, as a process
would: its cache and in-flight work are lost, and nothing is reported. With
``when="before_commit"`` it dies just before its report reaches the database (the work was
done but is lost), with ``"after_commit"`` (the default) just after (the work is recorded
but the worker never hears so). ``explore`` runs a workflow once per crash point.
"""

from __future__ import annotations

import difflib
import os
import signal
import time
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from engine._sandbox.translation import activity_definition
from engine._testing.explore import CrashPointResult, Exploration, RunOutcome
from engine._testing.explore import explore as _explore
from engine.worker._injected_faults import (
    CRASH_EVENTS,
    CRASH_PHASES,
    INJECTED_TYPE,
    ChangePoint,
    Fault,
    FaultFired,
    _active,
    _delete,
    _insert,
    _log,
    _log_kill,
    is_injected,
)

if TYPE_CHECKING:
    from engine.client import Client

__all__ = [
    "Fault",
    "FaultFired",
    "ChangePoint",
    "fail_activity",
    "hang_activity",
    "slow_activity",
    "crash_worker",
    "CRASH_EVENTS",
    "list_faults",
    "clear_faults",
    "fault_log",
    "kill_process",
    "record_kill",
    "is_injected",
    "explore",
    "Exploration",
    "CrashPointResult",
    "RunOutcome",
]


# ------------------------------------------------------------------------- public API
def _name(activity: Any) -> str:
    if isinstance(activity, str):
        return activity
    return activity_definition(activity).name


async def _add(client: Client, kind: str, target: str, times: int, params: dict[str, Any]) -> Fault:
    if times < 1:
        raise ValueError(f"times must be at least 1 (got {times}).")
    fault_id = await client.store.run(_insert, kind, target, times, params, time.time())
    client._faults_epoch += 1
    return Fault(fault_id, kind, target, times, params)


async def fail_activity(
    client: Client,
    activity: Any,
    *,
    times: int = 1,
    error_type: str = INJECTED_TYPE,
    non_retryable: bool = False,
    message: str | None = None,
) -> Fault:
    """Make the next ``times`` attempts of ``activity`` raise ``ApplicationError(type=error_type)``
    instead of running (retried by the activity's policy unless ``non_retryable``)."""
    name = _name(activity)
    return await _add(
        client, "fail", name, times, {"error_type": error_type, "non_retryable": non_retryable, "message": message or f"injected fault: {name} failed on purpose"}
    )


async def hang_activity(client: Client, activity: Any, *, times: int = 1) -> Fault:
    """Make the next ``times`` attempts of ``activity`` never return: the engine's
    start-to-close (or heartbeat) timeout ends each one, and the retry policy decides."""
    return await _add(client, "hang", _name(activity), times, {})


async def slow_activity(client: Client, activity: Any, delay: float | timedelta, *, times: int = 1) -> Fault:
    """Delay the next ``times`` attempts of ``activity`` by ``delay`` before they run."""
    seconds = delay.total_seconds() if isinstance(delay, timedelta) else float(delay)
    if seconds < 0:
        raise ValueError(f"delay must not be negative (got {seconds}).")
    return await _add(client, "slow", _name(activity), times, {"delay": seconds})


async def crash_worker(
    client: Client, *, after: str, activity: Any = None, when: str = "after_commit", times: int = 1
) -> Fault:
    """Crash the worker that writes event type ``after`` (optionally only for ``activity``,
    an activity's or child workflow's type), ``when`` before or after that write commits."""
    if when not in CRASH_PHASES:
        raise ValueError(f"when must be one of {', '.join(CRASH_PHASES)} (got {when!r}).")
    if after not in CRASH_EVENTS:
        close = difflib.get_close_matches(after, CRASH_EVENTS, n=1)
        hint = f"Did you mean {close[0]}? " if close else ""
        raise ValueError(
            f"A crash cannot follow {after!r}: a worker crashes when it writes an event, and workers write only "
            f"{', '.join(CRASH_EVENTS)}. {hint}".rstrip()
        )
    name = _name(activity) if activity is not None else ""
    return await _add(client, "crash_worker", name, times, {"after": after, "activity": name, "when": when})


async def list_faults(client: Client) -> list[Fault]:
    """The faults that will still fire."""
    return await client.store.read(_active)


async def clear_faults(client: Client, fault_id: int | None = None) -> int:
    """Remove one fault (by id) or all; returns how many were removed."""
    removed = await client.store.run(_delete, fault_id)
    client._faults_epoch += 1
    return removed


async def fault_log(client: Client, *, run_id: str | None = None) -> list[FaultFired]:
    """Every firing of an injected fault (of one run, if ``run_id``), oldest first."""
    return await client.store.read(_log, run_id)


def kill_process(pid: int) -> None:
    """SIGKILL a worker process: no cleanup runs, exactly as a machine losing power."""
    os.kill(pid, signal.SIGKILL)


async def explore(*args: Any, **kwargs: Any) -> Any:
    """Run a workflow once for every crash point and check that it recovers.

    ``explore(Workflow.run, arg, activities=[...], setup=..., check=..., signals=...)``
    returns an ``Exploration`` (``.ok``, ``.violations``, ``.table()``); see ``engine._testing.explore``."""
    return await _explore(*args, **kwargs)


async def record_kill(client: Client, owner_prefix: str, who: str) -> int:
    """Log that a worker was killed on purpose (SIGKILL, ``%worker kill``): one entry per
    task it held, so viewers mark the steps it left behind. ``owner_prefix`` matches the
    killed worker's lease owner (``"<pid>@<host>#"`` for a process). Returns the entries."""
    return await client.store.run(_log_kill, owner_prefix, who, time.time())
