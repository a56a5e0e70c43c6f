"""Running workers list themselves beside the database file; a dead process's entry goes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from engine import Client, Worker, activity
from engine._matching.worker_registry import folder_of, live_workers, register


@activity.defn
async def noop() -> None:
    return None


async def test_a_running_worker_is_listed_until_it_stops(tmp_path: Path) -> None:
    db = str(tmp_path / "engine.db")
    client = await Client.connect(db)
    try:
        assert live_workers(db) == []
        async with Worker(client, task_queue="q", activities=[noop], identity="me@here"):
            [record] = live_workers(db)
            assert (record.identity, record.task_queue, record.pid, record.activities) == ("me@here", "q", os.getpid(), ("noop",))
            assert oct(folder_of(db).stat().st_mode & 0o777) == "0o700"
        assert live_workers(db) == [] and not list(folder_of(db).iterdir())
    finally:
        await client.close()
    assert live_workers(":memory:") == [] and register(":memory:", "x", "q", [], []) is None


@pytest.mark.skipif(sys.platform == "win32", reason="no flock")
def test_the_entry_of_a_killed_process_is_removed_by_the_next_reader(tmp_path: Path) -> None:
    db = str(tmp_path / "engine.db")
    code = (
        "import sys, time\nfrom engine._matching.worker_registry import register\n"
        f"entry = register({db!r}, 'doomed', 'q', ['W'], [])\nprint('ready', flush=True)\ntime.sleep(60)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])})
    try:
        assert proc.stdout is not None and proc.stdout.readline() == "ready\n"
        assert [r.identity for r in live_workers(db)] == ["doomed"]
    finally:
        os.kill(proc.pid, signal.SIGKILL)  # no cleanup runs: the kernel drops its lock
        proc.wait()
    assert live_workers(db) == [] and not list(folder_of(db).glob("*.json"))
