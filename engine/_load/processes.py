"""Worker processes for a load test, and what each of them costs.

``python -m engine.cli._load_worker --db F --task-queue Q --metrics M`` is one worker process:
a ``Client`` and a ``Worker`` on the shared database file, serving the built-in target (and
the user's module or file, if given). Every half second it writes its CPU seconds and its
seconds spent waiting for the write lock to the metrics file (a small JSON document, replaced
atomically), which the bench reads each second. It stops when its parent process dies, so a
driver killed with SIGKILL leaves no workers behind.

``WorkerPool`` starts and stops them; ``ProcessMeter`` turns the counters of every process
(the workers and the driver itself) into per-second CPU and lock-wait figures.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

READY = "load worker ready"
START_TIMEOUT = 60.0
METRICS_EVERY = 0.5
SYNCHRONOUS = ("OFF", "NORMAL", "FULL", "EXTRA")


def counters(name: str, client: Any) -> dict[str, Any]:
    """This process's counters: CPU seconds, seconds waiting for the write lock, commits."""
    return {
        "name": name,
        "pid": os.getpid(),
        "time": time.time(),
        "cpu": time.process_time(),
        "lock_wait": client.store.lock_wait_seconds,
        "batches": client.store.batches,
    }


async def set_synchronous(client: Any, mode: str) -> None:
    """SQLite's durability setting for this process's writes (the engine uses NORMAL: with
    WAL, a commit survives a crash of the process but not of the machine; FULL syncs every
    commit to disk)."""
    if mode.upper() not in SYNCHRONOUS:
        raise ValueError(f"synchronous must be one of {', '.join(SYNCHRONOUS)} (got {mode!r}).")
    conn = client.store._conn  # the write connection: the setting is per connection
    await conn.execute(f"PRAGMA synchronous = {mode.upper()}")


@dataclass
class _Sample:
    time: float
    cpu: float
    lock_wait: float


class ProcessMeter:
    """Per-interval CPU (cores) and lock wait (seconds per second) of each process."""

    def __init__(self) -> None:
        self._last: dict[str, _Sample] = {}

    @property
    def primed(self) -> bool:
        return bool(self._last)

    def measure(self, readings: Sequence[dict[str, Any]]) -> tuple[dict[str, float], dict[str, float]]:
        cpu: dict[str, float] = {}
        lock: dict[str, float] = {}
        for r in readings:
            # A process without a write lock (a temporalio worker, a Temporal server) has no lock_wait:
            # its lock figure is left out rather than shown as 0.
            has_lock = r.get("lock_wait") is not None
            now = _Sample(float(r["time"]), float(r["cpu"]), float(r["lock_wait"]) if has_lock else 0.0)
            key = f"{r['name']}"
            before = self._last.get(key)
            self._last[key] = now
            # A process restarted since (a resumed test) starts its counters again: skip it once.
            if before is None or now.time <= before.time or now.cpu < before.cpu:
                continue
            span = now.time - before.time
            cpu[key] = round((now.cpu - before.cpu) / span, 3)
            if has_lock:
                lock[key] = round((now.lock_wait - before.lock_wait) / span, 4)
        return cpu, lock


class WorkerProcess:
    def __init__(self, name: str, proc: subprocess.Popen[bytes], log: Path, metrics: Path) -> None:
        self.name = name
        self.proc = proc
        self.log = log
        self.metrics = metrics

    def reading(self) -> dict[str, Any] | None:
        try:
            reading = dict(json.loads(self.metrics.read_text()))
        except (OSError, ValueError):
            return None
        # The process writes its file every half second, but a saturated worker writes late
        # and its CPU would go missing just when it matters: read the CPU from /proc now.
        cpu = _proc_cpu(self.proc.pid)
        if cpu is not None:
            reading["cpu"], reading["time"] = cpu, time.time()
        return reading

    def log_tail(self, lines: int = 12) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


class WorkerPool:
    """``count`` worker processes on ``db_path``, serving ``task_queue``."""

    def __init__(self, db_path: str, task_queue: str, folder: Path, count: int, *, module: str | None = None,
                 file: str | None = None, synchronous: str | None = None, max_concurrent_activities: int | None = None) -> None:
        self.db_path, self.task_queue, self.folder, self.count = db_path, task_queue, folder, count
        self.module, self.file, self.synchronous = module, file, synchronous
        self.max_concurrent_activities = max_concurrent_activities
        self.workers: list[WorkerProcess] = []

    async def start(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        for i in range(self.count):
            name = f"worker-{i}"
            log, metrics = self.folder / f"{name}.log", self.folder / f"{name}.json"
            metrics.unlink(missing_ok=True)
            command = self.command(name, metrics)
            with open(log, "wb") as out:
                proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
            self.workers.append(WorkerProcess(name, proc, log, metrics))
        deadline = time.monotonic() + START_TIMEOUT
        for worker in self.workers:
            while READY not in (worker.log.read_text(errors="replace") if worker.log.exists() else ""):
                if worker.proc.poll() is not None or time.monotonic() > deadline:
                    await self.stop()
                    raise RuntimeError(f"Load worker {worker.name} did not start (exit code {worker.proc.poll()}). Its output:\n{worker.log_tail()}")
                await asyncio.sleep(0.05)

    def command(self, name: str, metrics: Path) -> list[str]:
        """The command line of one worker process (the engine's; a Temporal server's pool has its own)."""
        command = [sys.executable, "-m", "engine.cli._load_worker", "--db", self.db_path, "--task-queue", self.task_queue,
                   "--metrics", str(metrics), "--name", name, "--parent-pid", str(os.getpid())]
        if self.module:
            command += ["--module", self.module]
        if self.file:
            command += ["--file", self.file]
        if self.synchronous:
            command += ["--synchronous", self.synchronous]
        if self.max_concurrent_activities:
            command += ["--max-concurrent-activities", str(self.max_concurrent_activities)]
        return command

    def readings(self) -> list[dict[str, Any]]:
        return [r for r in (w.reading() for w in self.workers) if r is not None]

    async def stop(self, timeout: float = 10.0) -> None:
        for w in self.workers:
            if w.proc.poll() is None:
                w.proc.send_signal(signal.SIGTERM)
        for w in self.workers:
            try:
                await asyncio.to_thread(w.proc.wait, timeout)
            except subprocess.TimeoutExpired:
                w.proc.kill()
                w.proc.wait()
        self.workers = []


_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _proc_cpu(pid: int) -> float | None:
    """CPU seconds (user + system) of process ``pid`` from /proc; None where there is none."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
    except OSError:
        return None
    # After the command name: state is field 3, utime and stime are fields 14 and 15.
    return (int(fields[11]) + int(fields[12])) / _TICKS


def write_atomically(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data))
    os.replace(tmp, path)
