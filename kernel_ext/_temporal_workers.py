"""``%worker start`` while connected to Temporal: a real temporalio ``Worker`` in the kernel.

The ``%%workflow``/``%%activity`` cells ran with the temporalio switch on, so the objects in
the notebook are the engine's: a Temporal server cannot run them. Their *sources* are kept
(``Session.sources``, the same list a ``%worker start --process`` worker runs), so here they
are written, in the order they ran, to one module file and imported with the real temporalio
SDK. That module is a plain file on ``sys.path`` on purpose: temporalio's workflow sandbox
re-imports a workflow's module by name for every run, which a notebook's ``__main__`` cannot
offer (see docs/temporalio.md, "In a notebook"). Each set of sources gets its own module name
(a digest of the code), so a re-run cell makes a new module and the next worker serves it.

The worker runs as a task on the kernel's event loop, as the engine's kernel workers do.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import hashlib
import importlib
import inspect
import logging
import os
import shutil
import socket
import sys
import tempfile
import types
from collections import deque
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Generator, Sequence

from kernel_ext._cell_modules import _MARK as _CELL_MODULE_MARK
from kernel_ext._session_errors import SessionError

START_LIMIT = 30.0  # seconds for a worker to pass temporalio's namespace check and poll


class WorkerLog(logging.Handler):
    """Keeps temporalio's warnings (its Python side's and its Rust core's, forwarded) for
    ``%worker list``. Workers run in the background: with no handler, Python would print each
    record (a failed activity attempt's traceback, say) to stderr, into whatever cell runs. A
    failed attempt is left out: the run's views show it."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self._records: deque[str] = deque(maxlen=5)
        self._logger = logging.getLogger("temporalio")

    def emit(self, record: logging.LogRecord) -> None:
        if getattr(record, "__temporal_error_identifier", None) == "ActivityFailure":
            return
        message = record.getMessage()
        text = message.splitlines()[0] if message else record.name
        if record.exc_info and record.exc_info[1] is not None:
            text += f": {record.exc_info[1]!r}"
        self._records.append(f"{datetime.now(timezone.utc):%H:%M:%S} {text[:300]}")

    def recent(self) -> tuple[str, ...]:
        return tuple(self._records)

    def attach(self) -> None:
        """Keep temporalio's records from now on. It replaces the log of an earlier load of the
        extension, which stays attached after unloading: temporalio's core may still forward a
        record or two of a client it made, and with no handler Python would print them."""
        for handler in list(self._logger.handlers):
            if isinstance(handler, WorkerLog) and handler is not self:
                self._logger.removeHandler(handler)
        if self not in self._logger.handlers:
            self._logger.addHandler(self)


class TemporalWorker:
    """A temporalio ``Worker`` of the kernel on a Temporal server's task queue. ``await`` it to
    wait until it stops."""

    def __init__(self, name: str, task_queue: str, address: str, module: types.ModuleType, worker: Any,
                 executor: concurrent.futures.ThreadPoolExecutor | None) -> None:
        self.name = name
        self.task_queue = task_queue
        self.address = address
        self.module = module
        self.worker = worker
        self.error: BaseException | None = None
        self._executor = executor
        self._task: asyncio.Task[None] | None = None
        self._stopped = asyncio.Event()

    @property
    def state(self) -> str:
        if self._stopped.is_set():
            return "stopped"
        if self.error is not None:
            return f"failed: {type(self.error).__name__}: {self.error}"
        return "running" if self.worker.is_running else "starting"

    @property
    def stats(self) -> dict[str, int]:
        return {}  # the server keeps the counts (temporal task-queue describe)

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self.worker.run(), name=f"durable-lab temporalio worker {self.name}")
        self._task.add_done_callback(self._ran)

    def _ran(self, task: asyncio.Task[None]) -> None:
        # Kept for %worker list, rather than asyncio logging it to stderr.
        if not task.cancelled() and task.exception() is not None:
            self.error = task.exception()

    async def ready(self) -> None:
        """Wait until the worker polls (temporalio checks the namespace first), or say why not."""
        assert self._task is not None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + START_LIMIT
        while not self.worker.is_running and not self._task.done():
            if loop.time() > deadline:
                await self.stop()
                raise SessionError(f"The temporalio worker did not start polling {self.address} in {START_LIMIT:.0f} s.")
            await asyncio.sleep(0.02)
        if self._task.done():
            error = self._task.exception() if not self._task.cancelled() else None
            self._stopped.set()
            raise SessionError(f"The temporalio worker stopped at once: {type(error).__name__}: {error}")

    async def stop(self) -> None:
        """Shut down (workflow tasks in flight finish; running activities are cancelled)."""
        if not self._stopped.is_set():
            if self._task is not None and not self._task.done():
                await self.worker.shutdown()
                await asyncio.gather(self._task, return_exceptions=True)
            if self._executor is not None:
                self._executor.shutdown(wait=False, cancel_futures=True)
            self._stopped.set()

    def cancel(self) -> None:
        """End it without a shutdown handshake (its server is gone)."""
        if self._task is not None:
            self._task.cancel()
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
        self._stopped.set()

    async def _wait(self) -> "TemporalWorker":
        await self._stopped.wait()
        return self

    def __await__(self) -> Generator[Any, None, "TemporalWorker"]:
        return self._wait().__await__()

    def __repr__(self) -> str:
        return f"<temporalio worker {self.name!r} on task queue {self.task_queue!r} at {self.address}: {self.state}>"


def module_source(sources: Sequence[str]) -> str:
    """The definition cells as one module for the real SDK, in the order they ran."""
    parts = ['"""Written by durable-lab: the %%workflow and %%activity cells, for a temporalio worker."""\n']
    parts += [f"\n# ---- cell {number}\n{source.rstrip()}\n" for number, source in enumerate(sources, 1)]
    return "".join(parts)


def load_cells(sources: Sequence[str], folder: Path) -> types.ModuleType:
    """Import the cells' sources as a module whose ``temporalio`` is the real SDK; its file goes
    to ``folder``, which must be on ``sys.path``."""
    if not sources:
        raise SessionError("No %%workflow or %%activity cell has run yet: the temporalio worker serves what those cells define.")
    text = module_source(sources)
    name = "durable_lab_cells_" + hashlib.sha256(text.encode()).hexdigest()[:12]
    if name in sys.modules:
        return sys.modules[name]
    (folder / f"{name}.py").write_text(text, encoding="utf-8")
    importlib.invalidate_caches()
    # Cells made importable with --module hold the engine's objects in the kernel: hide them
    # while the module runs, so its `from NAME import ...` gets its own (real-SDK) definitions.
    # (The module's own dict: getattr on some lazy modules imports, which changes sys.modules.)
    hidden = {k: m for k, m in list(sys.modules.items()) if isinstance(m, types.ModuleType) and vars(m).get(_CELL_MODULE_MARK)}
    for key in hidden:
        del sys.modules[key]
    try:
        return importlib.import_module(name)
    except Exception as e:  # noqa: BLE001 - the cells' code, run by the real SDK: the user's to fix
        sys.modules.pop(name, None)
        raise SessionError(f"The cells do not load with the real temporalio SDK: {_causes(e)}") from None
    finally:
        sys.modules.update(hidden)  # the kernel's own again (the import may have set these names)


def cells_folder() -> Path:
    """A new folder for the cells' modules, put on ``sys.path`` (removed when the kernel exits)."""
    folder = Path(tempfile.mkdtemp(prefix="durable-lab-temporal-cells-"))
    sys.path.append(str(folder))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return folder


def definitions(module: types.ModuleType) -> tuple[list[type], list[Any]]:
    """The real SDK's workflow classes and activities the module defines (and the activity
    methods of instances it made at top level, bound, as ``Worker(activities=[obj.method])``)."""
    from temporalio.activity import _Definition as ActivityDefinition
    from temporalio.workflow import _Definition as WorkflowDefinition

    workflows: list[type] = []
    activities: dict[str, Any] = {}  # by activity name: a later cell's definition wins
    for value in list(vars(module).values()):
        if isinstance(value, type):
            if WorkflowDefinition.from_class(value) is not None and value.__module__ == module.__name__:
                workflows.append(value)
        elif isinstance(value, types.FunctionType):
            defn = ActivityDefinition.from_callable(value)
            if defn is not None and value.__module__ == module.__name__ and defn.name is not None:
                activities[defn.name] = value
        elif type(value).__module__ == module.__name__:  # an instance of a class the cells define
            for attribute, member in vars(type(value)).items():
                defn = ActivityDefinition.from_callable(member) if callable(member) else None
                if defn is not None and defn.name is not None:
                    activities[defn.name] = getattr(value, attribute)
    return workflows, list(activities.values())


def make_worker(client: Any, module: types.ModuleType, name: str, task_queue: str, address: str) -> TemporalWorker:
    """A temporalio ``Worker`` for the module's definitions; the SDK's objections as SessionError."""
    from temporalio.worker import Worker

    workflows, activities = definitions(module)
    if not workflows and not activities:
        raise SessionError(
            "The cells define no workflow or activity for the real temporalio SDK: they must use "
            "`from temporalio import workflow, activity` (cells written with `from engine import ...` run only on the engine)."
        )
    sync = [fn for fn in activities if not inspect.iscoroutinefunction(fn)]
    executor = concurrent.futures.ThreadPoolExecutor(max_workers=8) if sync else None
    try:
        worker = Worker(client, task_queue=task_queue, workflows=workflows, activities=activities,
                        activity_executor=executor, identity=f"{os.getpid()}@{socket.gethostname()}/{name}")
    except Exception as e:  # noqa: BLE001 - temporalio's validation of the cells' definitions
        if executor is not None:
            executor.shutdown(wait=False)
        raise SessionError(f"temporalio's Worker refuses the cells' definitions: {_causes(e)}") from None
    return TemporalWorker(name, task_queue, address, module, worker, executor)


def _causes(error: BaseException) -> str:
    """The error and what caused it (temporalio wraps a sandbox refusal in "Failed validating")."""
    parts, seen = [], set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        parts.append(f"{type(current).__name__}: {current}")
        current = current.__cause__ or current.__context__
    return ", because ".join(parts)
