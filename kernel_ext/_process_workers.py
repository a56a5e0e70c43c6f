"""Worker processes started from a notebook: ``%worker start --process``, ``%worker kill``.

A process worker is ``python -m engine.cli worker`` over the kernel's database file. It runs
the code of the notebook's ``%%workflow`` / ``%%activity`` cells, written in execution order
to a module file beside the database (later cells override earlier ones, as in the kernel),
so runs started in the kernel finish in the process and the other way round. Killing it with
SIGKILL is what a crashed machine does: another worker on this machine sees that the process is
gone (engine._matching.dead_workers), takes its leases back and carries on.
A worker process stops when the kernel that started it dies (``dlab worker --parent-pid``),
so a restarted kernel never finds workers running the code of the one before.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

READY = "dlab worker ready"
START_TIMEOUT = 30.0


class ProcessWorkerError(Exception):
    """A worker process could not be started (the message says why, with its log's tail)."""


class ProcessWorker:
    """One worker process: ``state`` is running, stopped (exit code) or killed."""

    def __init__(self, name: str, task_queue: str, proc: subprocess.Popen[bytes], log: Path, code: Path) -> None:
        self.name = name
        self.task_queue = task_queue
        self.proc = proc
        self.log = log
        self.code = code
        self.killed = False

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def state(self) -> str:
        code = self.proc.poll()
        if code is None:
            return "running"
        if self.killed or code == -signal.SIGKILL:
            return "killed (SIGKILL)"
        return f"exited ({code})"

    @property
    def stats(self) -> dict[str, int]:
        return {}

    def kill(self) -> None:
        """SIGKILL: no cleanup, no reports; other workers take its leases back and carry on."""
        if self.proc.poll() is None:
            self.killed = True
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    async def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM: the worker finishes what it can (graceful shutdown), then exits."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.to_thread(self.proc.wait, timeout)
            except subprocess.TimeoutExpired:
                self.kill()

    def log_tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def __repr__(self) -> str:
        return f"<process worker {self.name!r} (pid {self.pid}) on task queue {self.task_queue!r}: {self.state}>"


def write_code(folder: Path, sources: list[str]) -> Path:
    """The notebook's definition cells as one module, in the order they ran."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "notebook_definitions.py"
    parts = [
        '"""Written by durable-lab: the %%workflow and %%activity cells of the notebook, in the order they ran."""\n',
        # The cells ran with temporalio's imports mapped onto the engine (kernel_ext.magics): so here too.
        "\nfrom engine import temporalio_compat as _dlab_temporalio_compat\n\n_dlab_temporalio_compat.install()\n",
    ]
    for number, source in enumerate(sources, 1):
        parts.append(f"\n# ---- cell {number}\n{source.rstrip()}\n")
    path.write_text("".join(parts), encoding="utf-8")
    return path


async def start(name: str, task_queue: str, db_path: str, sources: list[str]) -> ProcessWorker:
    """Start ``dlab worker`` on ``task_queue`` and wait until it polls."""
    folder = Path(db_path).parent
    code = write_code(folder, sources)
    log = folder / f"worker-{name}.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            # --parent-pid: the worker stops when this kernel dies, rather than serving its code on.
            [sys.executable, "-m", "engine.cli", "worker", "--db", db_path, "--task-queue", task_queue, "--file", str(code),
             "--parent-pid", str(os.getpid())],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=os.getcwd(),
        )
    worker = ProcessWorker(name, task_queue, proc, log, code)
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        text = log.read_text(errors="replace") if log.exists() else ""
        if READY in text:
            return worker
        if proc.poll() is not None:
            raise ProcessWorkerError(f"The worker process exited at once (code {proc.returncode}). Its output:\n{worker.log_tail()}")
        if time.monotonic() > deadline:
            worker.kill()
            raise ProcessWorkerError(f"The worker process did not get ready in {START_TIMEOUT:.0f} s. Its output:\n{worker.log_tail()}")
        await asyncio.sleep(0.05)
