"""Waiting for a run from a cell (``%workflow execute``, ``%workflow result``) without hanging.

A run whose workflow task fails (a sandbox violation, a non-determinism error, a bug) stays
Running and the engine retries the task for ever, so a cell awaiting its result would show
``[*]`` and nothing else. Temporal's CLI keeps waiting there, since the fix is deployed
elsewhere; in a notebook the fix is another cell, which cannot run while this one waits. So
the wait stops at the first failure of the task and shows it (the message, the line of the
cell) with what to do: fix the cell, run it again, then ``%workflow result``. The run itself
is untouched. An interrupt while waiting is one line too: the run goes on.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from engine._persistence.event_rows import RUN_KEY, read_attributes, type_value
from engine.client import Client
from engine.converter import decode_failure_json
from kernel_ext._errors import user_frames

__all__ = ["TaskFailedError", "WaitInterrupted", "wait_for_result"]

WATCH_INTERVAL = 0.2  # seconds between looks at the run's workflow task while waiting


class TaskFailedError(Exception):
    """The run's workflow task failed while a cell waited for its result; the run is still
    Running and retries the task (with backoff) until its code is fixed."""

    def __init__(self, workflow_id: str, workflow_type: str, failure: dict[str, Any]) -> None:
        self.workflow_id = workflow_id
        self.workflow_type = workflow_type
        self.failure = failure
        super().__init__(f"The workflow task of {workflow_id!r} ({workflow_type}) failed: {failure.get('message', '')}")

    def lines(self) -> list[str]:
        info = self.failure.get("applicationFailureInfo") or {}
        kind = info.get("type") or "Error"
        message = str(self.failure.get("message") or "")
        lines = [
            f"WorkflowTaskFailed: the workflow task of {self.workflow_id!r} ({self.workflow_type}) failed, so the run cannot go on.",
            f"  {kind}: {message}",
        ]
        frames = user_frames(str(self.failure.get("stackTrace") or ""))
        if frames:
            lines.append("Where it was raised (your code, most recent call last):")
            lines += frames
        lines.append(
            "The run stays Running and the engine retries the task (1 s, 2 s, ... up to 1 min apart). Fix the "
            f"cell, run it again, then wait for the run: %workflow result -w {self.workflow_id}"
        )
        return lines

    def _render_traceback_(self) -> list[str]:
        return self.lines()


class WaitInterrupted(asyncio.CancelledError):
    """The kernel was interrupted while a cell waited for a run (the run goes on).

    ipykernel turns an interrupt into cancelling the cell's task; this is that cancellation
    (asyncio still sees a cancelled task), shown as one line instead of the engine's stack."""

    def __init__(self, workflow_id: str) -> None:
        super().__init__(
            f"Stopped waiting for workflow {workflow_id!r}; the run goes on (%workflow describe -w {workflow_id}, "
            f"or wait again: %workflow result -w {workflow_id})."
        )

    def _render_traceback_(self) -> list[str]:
        return [f"Interrupted: {self}"]


def _task_failures(conn: Any, run_id: str) -> tuple[tuple[int, int], dict[str, Any] | None, dict[str, Any] | None]:
    """What the run's workflow task failures are now: a key that changes with each new one
    (how many WorkflowTaskFailed events, the attempt of the last unrecorded one), the last
    event's failure, and the last unrecorded failure. The first failure of a streak is a
    WorkflowTaskFailed event; retries that fail again are kept only in the run's row."""
    row = conn.execute("SELECT last_task_failure FROM executions WHERE run_id = ?", (run_id,)).fetchone()
    transient = json.loads(row[0]) if row and row[0] else {}
    count, last = conn.execute(
        "SELECT COUNT(*), MAX(event_id) FROM events WHERE run = " + RUN_KEY + " AND event_type = ?",
        (run_id, type_value("WorkflowTaskFailed")),
    ).fetchone()
    recorded = None
    if last is not None:
        event = read_attributes(conn, run_id, last)
        recorded = (event[1] if event else {}).get("failure") or {}
    return (int(count), int(transient.get("attempt") or 0)), recorded, transient.get("failure")


async def wait_for_result(client: Client, run: Any, interval: float = WATCH_INTERVAL, *, new: bool = False) -> Any:
    """``await run`` (a :class:`kernel_ext._session.RunHandle`), but raise
    :class:`TaskFailedError` as soon as the run's workflow task fails anew, and
    :class:`WaitInterrupted` when the kernel is interrupted. A ``new`` run (just started by
    the caller) has had no failure to compare with: every failure is new, unread."""
    run_id = run.run_id
    assert run_id is not None
    before: tuple[int, int] = (0, 0)
    if not new:
        before, _, _ = await client.store.read(_task_failures, run_id)
    outcome = asyncio.ensure_future(run.result())
    try:
        while True:
            done, _ = await asyncio.wait({outcome}, timeout=interval)
            if done:
                return outcome.result()
            now, recorded, transient = await client.store.read(_task_failures, run_id)
            if now != before:
                failure = transient if now[1] != before[1] else recorded
                readable = await decode_failure_json(failure or {}, client.data_converter)
                raise TaskFailedError(run.workflow_id, run.workflow_type, readable)
    except asyncio.CancelledError:
        # The kernel cancels the cell's task on an interrupt: one line, not the engine's stack.
        raise WaitInterrupted(run.workflow_id) from None
    finally:
        if not outcome.done():
            outcome.cancel()
            await asyncio.gather(outcome, return_exceptions=True)
