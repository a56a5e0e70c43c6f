"""A program that ends without closing its Client (or stopping its Worker) exits cleanly:
no "Event loop is closed" traceback from a database thread, no hang (issue 11, item 15)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

READ_IN_FLIGHT = """
import asyncio, sys, time
from engine.client import Client

def slow(conn):
    time.sleep(0.3)
    return 1

async def main():
    client = await Client.connect(sys.argv[1])
    asyncio.get_running_loop().create_task(client.store.read(slow))
    await asyncio.sleep(0.05)

asyncio.run(main())
time.sleep(0.6)  # the program goes on (a test session, say) while the database thread ends
print("exited")
"""

WORKER_LEFT_RUNNING = """
import asyncio, sys, time
from engine.client import Client
from engine.worker import Worker
from engine import workflow

@workflow.defn(sandboxed=False)
class Ticker:
    @workflow.run
    async def run(self) -> int:
        for _ in range(50):
            await asyncio.sleep(0.01)
        return 1

async def main():
    client = await Client.connect(sys.argv[1])
    worker = Worker(client, task_queue="q", workflows=[Ticker])
    asyncio.ensure_future(worker.run())
    for i in range(20):
        await client.start_workflow(Ticker.run, id=f"t{i}", task_queue="q")
    await asyncio.sleep(0.2)

asyncio.run(main())
time.sleep(0.3)
print("exited")
"""


def _run(script: str, target: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script), target], capture_output=True, text=True, timeout=60, env=env, cwd=ROOT
    )


@pytest.mark.parametrize("where", ["memory", "file"])
def test_unclosed_client_with_a_read_in_flight_exits_without_traceback(tmp_path: Path, where: str) -> None:
    result = _run(READ_IN_FLIGHT, ":memory:" if where == "memory" else str(tmp_path / "e.db"))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "exited"
    assert "Traceback" not in result.stderr and "Event loop is closed" not in result.stderr, result.stderr


def test_unclosed_client_and_running_worker_exit_promptly(tmp_path: Path) -> None:
    # Workers left running are cancelled by asyncio.run; they wait for their last writes,
    # which must go on even though the task writing them was cancelled too (it hung before).
    for attempt in range(4):
        target = str(tmp_path / f"w{attempt}.db")
        result = _run(WORKER_LEFT_RUNNING, target)
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == "exited"
        assert "Traceback" not in result.stderr and "Event loop is closed" not in result.stderr, result.stderr
