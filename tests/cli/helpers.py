"""Shared by the CLI tests: the library-written runs, results of ``dlab`` calls, a library view."""

from __future__ import annotations

import asyncio
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Awaitable, Callable

import pytest

from engine import Client, Worker
from tests.cli import app

ROOT = Path(__file__).resolve().parents[2]
QUEUE = "cli-tests"


@dataclass
class Result:
    code: int
    out: str
    err: str


async def write_library_runs(path: Path) -> None:
    """Runs in every state the CLI shows: completed, failed, running with a signal, terminated."""
    client = await Client.connect(str(path))
    try:
        async with Worker(client, task_queue=QUEUE, workflows=[app.Hello, app.Boom, app.Collector, app.Again], activities=[app.greet]):
            assert await client.execute_workflow(app.Hello.run, "Ada", id="hello-1", task_queue=QUEUE) == "Hello, Ada!"
            failing = await client.start_workflow(app.Boom.run, "on purpose", id="boom-1", task_queue=QUEUE)
            with pytest.raises(Exception):
                await failing.result()
            assert await client.execute_workflow(app.Again.run, 1, id="again-1", task_queue=QUEUE) == 2
            collector = await client.start_workflow(app.Collector.run, "Hi", id="collect-1", task_queue=QUEUE)
            await collector.signal(app.Collector.add, "Ann")
            doomed = await client.start_workflow(app.Collector.run, "Bye", id="doomed-1", task_queue=QUEUE)
            await doomed.terminate(reason="no longer needed")
            # Let the worker record the signal before it stops, so the history is settled.
            for _ in range(200):
                history = await collector.fetch_history()
                if history.events[-1].event_type == "WorkflowTaskCompleted" and any(e.event_type == "WorkflowExecutionSignaled" for e in history.events):
                    break
                await asyncio.sleep(0.01)
    finally:
        await client.close()


def with_client(path: Path, body: Callable[[Client], Awaitable[Any]]) -> Any:
    """Look at the database with the library, as a program sharing the file would."""

    async def go() -> Any:
        client = await Client.connect(str(path))
        try:
            return await body(client)
        finally:
            await client.close()

    return asyncio.run(go())


def worker_command(db: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "engine.cli", "worker", "--db", str(db), "--task-queue", QUEUE, *extra]
