"""Lesson 13 (timeouts and heartbeats): a resumable import."""

from __future__ import annotations

import json
from typing import Any

from kernel_ext.exercises import Check, exercise

ROWS = 30


def _timeout_type(failure: Any) -> str:
    """HEARTBEAT, START_TO_CLOSE, ... of a timeout failure (its cause's, if wrapped), else ''."""
    text = json.dumps(failure or {})
    for kind in ("HEARTBEAT", "START_TO_CLOSE", "SCHEDULE_TO_CLOSE", "SCHEDULE_TO_START"):
        if f"TIMEOUT_TYPE_{kind}" in text:
            return kind
    return ""


@exercise(
    "a resumable import",
    concept="heartbeats: heartbeat_timeout notices a frozen attempt, heartbeat details resume it",
    hint="Heartbeat after each row (activity.heartbeat(row)), give the activity heartbeat_timeout=timedelta(seconds=1), "
    "and start after activity.info().heartbeat_details[0] when a retry has details.",
)
async def resumable_import(c: Check) -> None:
    imported: Any = c.namespace.get("imported")
    if not isinstance(imported, list):
        raise Exception("run the exercise's %%activity cell first: it defines imported")
    before = len(imported)
    run = await c.run("ImportRows", ROWS, task_queue="timeouts", workflow_id="import-check", timeout=8)
    scheduled = run.events("ActivityTaskScheduled")
    heartbeat_timeout = str(scheduled[0].attributes.get("heartbeatTimeout") or "0s") if scheduled else "0s"
    c.require(
        heartbeat_timeout not in ("0s", "0"),
        f"the activity has a heartbeat timeout ({heartbeat_timeout})",
        "the activity has no heartbeat timeout, so a frozen attempt is noticed only by its 10-minute start-to-close timeout",
        hint="Give execute_activity heartbeat_timeout=timedelta(seconds=1).",
    )
    c.require_completed(
        run,
        "the import completed",
        hint="With a heartbeat timeout but no heartbeats, every attempt times out: call activity.heartbeat(row) after each row.",
    )
    attempts = run.attempts_of("import_rows")
    first = _timeout_type(attempts[0].failure) if attempts else ""
    c.expect(
        len(attempts) == 2 and first == "HEARTBEAT",
        "2 attempts: the frozen one ended by a heartbeat timeout, then one that finished",
        f"{len(attempts)} attempt(s), the first ended by {first or 'no'} timeout",
    )
    rows = [row for _, _, row in imported[before:]]
    twice = sorted({row for row in rows if rows.count(row) > 1})
    c.expect(
        not twice and sorted(rows) == list(range(1, ROWS + 1)),
        f"each of the {ROWS} rows was imported once: the second attempt resumed at row {min((r for _, a, r in imported[before:] if a == 2), default='?')}",
        f"rows {twice[0]}-{twice[-1]} were imported twice: the second attempt started again from row 1" if twice
        else f"the rows imported were {rows}",
        hint="Start at activity.info().heartbeat_details[0] + 1 when the details hold a row (they are empty on attempt 1).",
    )
