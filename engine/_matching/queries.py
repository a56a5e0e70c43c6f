"""Queries answered by a worker of another process (the ``queries`` table).

A query replays the run with its workflow code. When no worker of the asking process has that
code (a ``dlab worker`` process runs it), the question goes into the database; workers poll
for questions about the types they serve, answer from a replay, and write the answer back.
Nothing reaches the run's history.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import TYPE_CHECKING, Any, Mapping

from engine._persistence import lock_waits as _lock_waits
from engine._persistence.transactions import Tx, dumps
from engine.converter import Payload
from engine.errors import WorkflowQueryFailedError

if TYPE_CHECKING:
    from engine.client import Client
    from engine.worker import Worker

log = logging.getLogger("engine.worker")


class NoAnswerError(WorkflowQueryFailedError):
    """No worker answered in time: unlike the other query failures, the fix is a worker
    (or, for ``dlab workflow query``, the code given on the command line)."""


POLL = 0.1
STALE = 60.0  # questions nobody took for this long are dropped


# ------------------------------------------------------------------------- asking
async def ask(
    client: Client, run_id: str, workflow_type: str, task_queue: str, name: str, payloads: Mapping[str, Any], timeout: float,
    header: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The answer payload; ``payloads`` are the encoded arguments (the client's codec ran).
    ``header`` (``{"fields": {name: payload}}``, from the client's interceptors) travels with
    the arguments, so the answering worker's interceptors see it as a same-process one's do."""
    if header and header.get("fields"):
        payloads = {**payloads, "header": dict(header)}
    query_id = await client.store.run(_insert, run_id, task_queue, workflow_type, name, payloads, time.time())
    deadline = time.monotonic() + timeout
    try:
        while True:
            row = await client.store.read(_answer, query_id)
            if row is not None and row[0] in ("answered", "failed"):
                state, answer = row
                if state == "failed":
                    failed = json.loads(answer)
                    if failed.get("query_failed"):  # the worker's own WorkflowQueryFailedError: same text here
                        raise WorkflowQueryFailedError(failed["message"])
                    raise WorkflowQueryFailedError(f"Query {name!r} failed in the worker: {failed['message']}")
                return dict(json.loads(answer))
            if time.monotonic() > deadline:
                raise NoAnswerError(
                    f"No worker answered query {name!r} within {timeout:g} s. Queries replay the run with its code: "
                    f"start a worker for workflow type {workflow_type!r} on task queue {task_queue!r} (in this process or another)."
                )
            await asyncio.sleep(POLL / 2)
    finally:
        await client.store.run(_forget, query_id)


def _insert(tx: Tx, run_id: str, task_queue: str, workflow_type: str, name: str, payloads: Any, now: float) -> int:
    cursor = tx.conn.execute(
        "INSERT INTO queries (run_id, task_queue, workflow_type, name, args, created) VALUES (?, ?, ?, ?, ?, ?)",
        (run_id, task_queue, workflow_type, name, dumps(payloads), now),
    )
    tx.notify("queries", task_queue)
    return int(cursor.lastrowid or 0)


def _answer(conn: Any, query_id: int) -> tuple[str, str] | None:
    row = conn.execute("SELECT state, answer FROM queries WHERE id = ?", (query_id,)).fetchone()
    return (row[0], row[1]) if row else None


def _forget(tx: Tx, query_id: int) -> None:
    tx.conn.execute("DELETE FROM queries WHERE id = ?", (query_id,))


# ------------------------------------------------------------------------- answering
def _claim(tx: Tx, task_queue: str, types: list[str], now: float) -> list[tuple[int, str, str, str]]:
    tx.conn.execute("DELETE FROM queries WHERE created < ?", (now - STALE,))
    marks = ",".join("?" * len(types))
    rows = tx.conn.execute(
        f"SELECT id, run_id, name, args FROM queries WHERE task_queue = ? AND state = 'pending' AND workflow_type IN ({marks})",
        (task_queue, *types),
    ).fetchall()
    for row in rows:
        tx.conn.execute("UPDATE queries SET state = 'taken' WHERE id = ?", (row[0],))
    return rows


def _reply(tx: Tx, query_id: int, state: str, answer: str) -> None:
    tx.conn.execute("UPDATE queries SET state = ?, answer = ? WHERE id = ?", (state, answer, query_id))


def _pending(conn: Any, task_queue: str) -> bool:
    return conn.execute("SELECT EXISTS(SELECT 1 FROM queries WHERE task_queue = ? AND state = 'pending')", (task_queue,)).fetchone()[0] == 1


async def serve(worker: Worker) -> None:
    """A worker's query loop: answer questions about the workflow types it serves."""
    store = worker.client.store
    outage = _lock_waits.Outage(f"answering queries of task queue {worker.task_queue!r}")
    while not worker._stop.is_set():
        try:
            # A cheap read first: the write lock is taken only when a question waits.
            if await store.read(_pending, worker.task_queue):
                rows = await store.run(_claim, worker.task_queue, sorted(worker._workflows), time.time())
                for query_id, run_id, name, args in rows:
                    await _answer_one(worker, query_id, run_id, name, json.loads(args))
        except Exception as e:  # noqa: BLE001 - the database may be busy; the asker times out clearly
            outage.failed(e)
        else:
            outage.passed()
        try:
            await asyncio.wait_for(store.waiter("queries", worker.task_queue).wait(), POLL)
        except asyncio.TimeoutError:
            pass


async def _answer_one(worker: Worker, query_id: int, run_id: str, name: str, args: Any) -> None:
    store = worker.client.store
    try:
        header = args.pop("header", None) if isinstance(args, dict) else None
        headers = {key: Payload.from_json(value) for key, value in ((header or {}).get("fields") or {}).items()}
        answer = dumps(await worker.query(run_id, name, args, headers))
        await store.run(_reply, query_id, "answered", answer)
    except WorkflowQueryFailedError as e:  # no such handler, or the handler raised
        await store.run(_reply, query_id, "failed", dumps({"message": str(e), "query_failed": True}))
    except Exception as e:  # noqa: BLE001 - the handler's error goes back to the asker
        await store.run(_reply, query_id, "failed", dumps({"message": f"{type(e).__name__}: {e}"}))
