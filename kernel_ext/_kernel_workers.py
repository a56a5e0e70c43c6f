"""The kernel's named workers and the definitions they serve: what a cell defined, which
worker serves which task queue (in the kernel or in a process of its own), and how a
worker is started, stopped, killed and brought up to date with newer definitions.
"""

from __future__ import annotations

import asyncio
import inspect
import os
import socket
from dataclasses import dataclass, field
from typing import Any, Generator, Mapping

from engine._sandbox.translation import served_activity
from engine.worker import Worker


# The database path that keeps everything in this process (no file another process can open).
MEMORY_DB = ":memory:"


class KernelWorker:
    """A named worker of the kernel. It serves every workflow and activity the kernel's cells
    defined, and keeps its name when the engine reopens (``%engine --reset``, a new clock).
    ``await`` it to wait until it stops."""

    def __init__(self, name: str, task_queue: str) -> None:
        self.name = name
        self.task_queue = task_queue
        self.identity = f"{os.getpid()}@{socket.gethostname()}/{name}"
        self.worker: Worker | None = None  # the engine worker serving now, if any
        self.polls: tuple[bool, bool] = (False, False)  # (workflow tasks, activity tasks)
        self.error: BaseException | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopped = asyncio.Event()
        self._crashed = False

    @property
    def crashed(self) -> bool:
        """True once an injected fault crashed it: like a dead process, it serves no more
        (a new clock or database does not bring it back); start another worker."""
        return self._crashed or (self.worker is not None and self.worker.crashed)

    @property
    def state(self) -> str:
        if self._stopped.is_set():
            return "stopped"
        if self.crashed:
            return "crashed (injected fault)"
        if self.error is not None:
            return f"failed: {self.error}"
        return "running" if self.worker is not None else "waiting for definitions"

    @property
    def stats(self) -> dict[str, int]:
        return dict(self.worker.stats) if self.worker is not None else {}

    def _attach(self, worker: Worker, task: asyncio.Task[None], polls: tuple[bool, bool]) -> None:
        self.worker, self._task, self.polls, self.error = worker, task, polls, None
        task.add_done_callback(self._ran)

    def _ran(self, task: asyncio.Task[None]) -> None:
        # Keep the error for `%worker list` instead of letting asyncio log it to stderr.
        if not task.cancelled() and task.exception() is not None:
            self.error = task.exception()

    async def _detach(self) -> None:
        worker, task = self.worker, self._task
        self._crashed = self.crashed
        self.worker, self._task = None, None
        if worker is not None:
            await worker.shutdown()
        if task is not None:
            await asyncio.gather(task, return_exceptions=True)

    async def _wait(self) -> "KernelWorker":
        await self._stopped.wait()
        return self

    def __await__(self) -> Generator[Any, None, "KernelWorker"]:
        return self._wait().__await__()

    def __repr__(self) -> str:
        return f"<worker {self.name!r} on task queue {self.task_queue!r}: {self.state}>"


@dataclass
class Registration:
    """What a ``%%workflow`` / ``%%activity`` cell changed."""

    added: list[tuple[str, str]] = field(default_factory=list)  # (kind, name)
    replaced: list[tuple[str, str]] = field(default_factory=list)
    unchanged: list[tuple[str, str]] = field(default_factory=list)
    evicted: int = 0
    workers: list[str] = field(default_factory=list)

    def names(self, kind: str) -> list[str]:
        return [n for k, n in self.added + self.replaced + self.unchanged if k == kind]

    def summary(self) -> str:
        parts = [f"{k} {n} registered" for k, n in self.added] + [f"{k} {n} replaced" for k, n in self.replaced]
        parts += [f"{k} {n} unchanged" for k, n in self.unchanged]
        text = "durable-lab: " + ("; ".join(parts) or "nothing to register")
        if self.workers:
            text += f" (workers updated: {', '.join(self.workers)}"
            text += f"; {self.evicted} cached run(s) will replay with the new code)" if self.evicted else ")"
        return text


def _workflow_defn(obj: Any) -> Any:
    defn = getattr(obj, "__workflow_definition__", None) if isinstance(obj, type) else None
    return defn if defn is not None and defn.cls is obj else None


def _activity_defn(obj: Any) -> Any:
    defn = getattr(obj, "__activity_definition__", None) if callable(obj) and not isinstance(obj, type) else None
    if defn is not None and inspect.ismethod(obj) and obj.__func__ is defn.fn:
        return served_activity(obj)  # a method of an instance: its definition calls it bound
    return defn if defn is not None and defn.fn is obj else None


def _install_definitions(worker: Worker, workflows: Mapping[str, Any], activities: Mapping[str, Any]) -> int:
    """Give a running engine worker new definitions (it starts any poller it lacked and evicts
    cached runs of replaced workflow types). Returns how many runs were evicted."""
    return worker.register(
        workflows=[d.cls for d in workflows.values()], activities=[d.fn for d in activities.values()]
    )
