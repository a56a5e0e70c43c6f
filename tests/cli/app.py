"""Workflows and activities the CLI tests serve with ``dlab worker --module tests.cli.app``.

``Steps`` is the crash test's workflow: each real execution of ``step`` appends one line
``<workflow_id> <n> <attempt> <pid>`` to the file named by ``DLAB_TEST_LOG`` (flushed and
fsynced before it returns), so a test can count how often each step really ran. ``step``
sleeps ``DLAB_TEST_STEP_SECONDS`` (default 0.3 s), long enough to kill a worker mid-run.
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass
from datetime import timedelta

from engine import RetryPolicy, activity, workflow
from engine.errors import ApplicationError

STEP_TIMEOUT = timedelta(seconds=1.5)
FAST_RETRY = RetryPolicy(initial_interval=timedelta(seconds=0.1), maximum_interval=timedelta(seconds=0.2))


@dataclass
class Tally:
    count: int
    names: list[str]


@activity.defn
async def greet(name: str) -> str:
    return f"Hello, {name}!"


@activity.defn
async def step(workflow_id: str, n: int) -> int:
    await asyncio.sleep(float(os.environ.get("DLAB_TEST_STEP_SECONDS", "0.3")))
    log = os.environ.get("DLAB_TEST_LOG")
    if log:
        line = f"{workflow_id} {n} {activity.info().attempt} {os.getpid()}\n"
        fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line.encode())
            os.fsync(fd)
        finally:
            os.close(fd)
    return n * n


@workflow.defn
class Hello:
    @workflow.run
    async def run(self, name: str) -> str:
        return await workflow.execute_activity(greet, name, start_to_close_timeout=timedelta(seconds=10))


@workflow.defn
class Boom:
    @workflow.run
    async def run(self, why: str) -> str:
        raise ApplicationError(f"boom: {why}", type="Boom", non_retryable=True)


@workflow.defn
class Collector:
    """Waits for ``add`` signals until ``done``; ``tally`` answers with what it has."""

    def __init__(self) -> None:
        self.names: list[str] = []
        self.finished = False

    @workflow.run
    async def run(self, greeting: str) -> str:
        await workflow.wait_condition(lambda: self.finished)
        return f"{greeting} {', '.join(self.names)}"

    @workflow.signal
    def add(self, name: str) -> None:
        self.names.append(name)

    @workflow.signal
    def done(self) -> None:
        self.finished = True

    @workflow.query
    def tally(self) -> Tally:
        return Tally(len(self.names), list(self.names))

    @workflow.query
    def has(self, name: str) -> bool:
        return name in self.names


@workflow.defn
class Steps:
    @workflow.run
    async def run(self, count: int) -> int:
        total = 0
        for n in range(1, count + 1):
            total += await workflow.execute_activity(
                step, args=[workflow.info().workflow_id, n], start_to_close_timeout=STEP_TIMEOUT, retry_policy=FAST_RETRY
            )
        return total


@workflow.defn
class Again:
    """Continues as new ``times`` times, then returns how often it ran."""

    @workflow.run
    async def run(self, times: int, runs: int = 1) -> int:
        if times > 0:
            workflow.continue_as_new(args=[times - 1, runs + 1])
        return runs
