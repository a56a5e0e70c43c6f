"""A Temporal server as the system under load: the bench's questions answered by the server.

``TemporalServerTarget`` is the ``TargetSystem`` of a real Temporal frontend, reached through
the temporalio client: runs start and are signalled through it, a test's runs are counted
through visibility (``WorkflowId STARTS_WITH`` the test's prefix, grouped by status), the
backlog is ``DescribeTaskQueue``'s approximate backlog of workflow and activity tasks, and the
histories are the server's own (``fetch_history``). ``TemporalWorkerPool`` starts the target's
worker processes: temporalio workers (``engine.cli._load_temporal_worker``), not the engine's.

The bench stays in the engine, on a database file of the driver's: see ``engine.loadtest``.
What a server does not tell is not measured: the write-lock wait (the engine's SQLite lock;
a server has none), and the database size unless the server is a local dev server whose file
is known (``TemporalServer.db_file``).
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Sequence

from engine._load.processes import WorkerPool, _proc_cpu
from engine._load.target import FAILED_STATUSES, Progress
from engine.errors import WorkflowNotFoundError
from engine.history import History

CONNECT_LIMIT = 10.0  # seconds to reach the frontend before saying it cannot be reached
FETCH_AT_ONCE = 16  # histories fetched concurrently when the report is built
# What a report of a test on a server says it could not measure, rather than showing zeros.
NOT_MEASURED = ("write-lock wait (a Temporal server has no engine write lock)",)
NOT_MEASURED_SIZE = "database size (the server's persistence is not a file known here; a local dev server's is: TemporalServer(db_file=...))"


@dataclass(frozen=True)
class TemporalServer:
    """Where the target runs: a Temporal frontend ``address`` and ``namespace``. For a dev
    server on this machine, ``pid`` adds its CPU to the samples and ``db_file`` its database
    size (``%loadtest run`` fills both in for the kernel's own dev server)."""

    address: str
    namespace: str = "default"
    pid: int | None = None
    db_file: str | None = None

    def describe(self) -> str:
        return f"Temporal at {self.address}, namespace {self.namespace}"

    def not_measured(self) -> list[str]:
        return [*NOT_MEASURED, *([] if self.db_file else [NOT_MEASURED_SIZE])]


async def connect(server: TemporalServer) -> Any:
    """A temporalio client of ``server``; a clear ``RuntimeError`` when it cannot be reached."""
    try:
        from temporalio.client import Client
    except ModuleNotFoundError:
        raise RuntimeError("A load test on a Temporal server needs the temporalio SDK: pip install temporalio.") from None
    from engine import temporalio_compat

    if temporalio_compat.is_installed():
        raise RuntimeError("temporalio means the engine in this process (engine.temporalio_compat.install()): "
                           "call engine.temporalio_compat.uninstall() to load-test a real Temporal server.")
    try:
        return await asyncio.wait_for(Client.connect(server.address, namespace=server.namespace), CONNECT_LIMIT)
    except Exception as e:  # noqa: BLE001 - an unreachable address is the user's to fix
        raise RuntimeError(f"Cannot reach Temporal at {server.address} ({type(e).__name__}: {e}). Is the server running? "
                           "`temporal server start-dev` starts one.") from None


def _quoted(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _rfc3339(moment: float) -> str:
    return datetime.fromtimestamp(moment, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class TemporalServerTarget:
    """The bench's ``TargetSystem`` on a Temporal server (see the module's docstring)."""

    has_write_lock = False

    def __init__(self, client: Any, server: TemporalServer) -> None:
        self.client = client
        self.server = server

    async def start_run(self, workflow_id: str, workflow_type: str, args: Sequence[Any], task_queue: str) -> bool:
        from temporalio.common import WorkflowIDReusePolicy
        from temporalio.exceptions import WorkflowAlreadyStartedError

        try:
            await self.client.start_workflow(workflow_type, args=list(args), id=workflow_id, task_queue=task_queue,
                                             id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE)
        except WorkflowAlreadyStartedError:
            return False
        return True

    async def signal_run(self, workflow_id: str, name: str) -> None:
        from temporalio.service import RPCError, RPCStatusCode

        try:
            await self.client.get_workflow_handle(workflow_id).signal(name)
        except RPCError as e:
            if e.status == RPCStatusCode.NOT_FOUND:  # closed already: the bench decides whether that matters
                raise WorkflowNotFoundError(f"{workflow_id}: {e.message}") from None
            raise

    async def progress(self, prefix: str, since: float) -> Progress:
        # Visibility lags the histories by a moment: a run that closed just before `since` and
        # was indexed after the previous sample is missed by the per-second latencies (the
        # report's steps use the histories, which miss nothing).
        counted = await self.client.count_workflows(f"WorkflowId STARTS_WITH {_quoted(prefix)} GROUP BY ExecutionStatus")
        by_status = {str(g.group_values[0]): int(g.count) for g in counted.groups if g.group_values}
        total = sum(by_status.values())
        open_ = by_status.get("Running", 0)
        failed = sum(by_status.get(s, 0) for s in FAILED_STATUSES)
        latencies: list[float] = []
        latest = since
        query = f"WorkflowId STARTS_WITH {_quoted(prefix)} AND CloseTime > {_quoted(_rfc3339(since))}"
        async for run in self.client.list_workflows(query):
            if run.close_time is None:
                continue
            close = run.close_time.timestamp()
            latencies.append(close - run.start_time.timestamp())
            latest = max(latest, close)
        return Progress(open_, total - open_, failed, latest, tuple(latencies))

    async def backlog(self, task_queue: str) -> tuple[int, int]:
        from temporalio.api.enums.v1 import TaskQueueType
        from temporalio.api.taskqueue.v1 import TaskQueue
        from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest

        counts = []
        for kind in (TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW, TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY):
            request = DescribeTaskQueueRequest(namespace=self.server.namespace, task_queue=TaskQueue(name=task_queue),
                                               task_queue_type=kind, report_stats=True)
            answer = await self.client.workflow_service.describe_task_queue(request)
            counts.append(int(answer.stats.approximate_backlog_count))
        return counts[0], counts[1]

    def storage_bytes(self) -> int | None:
        path = self.server.db_file
        if not path:
            return None
        return sum(os.path.getsize(p) for p in (path, path + "-wal", path + "-shm") if os.path.exists(p))

    def readings(self) -> list[dict[str, Any]]:
        """The dev server's CPU, when it runs on this machine and its pid is known."""
        if self.server.pid is None:
            return []
        cpu = _proc_cpu(self.server.pid)
        return [] if cpu is None else [{"name": "server", "pid": self.server.pid, "time": time.time(), "cpu": cpu}]

    async def histories(self, prefix: str) -> list[History]:
        ids = sorted({run.id async for run in self.client.list_workflows(f"WorkflowId STARTS_WITH {_quoted(prefix)}")})
        gate = asyncio.Semaphore(FETCH_AT_ONCE)

        async def fetch(workflow_id: str) -> History:
            async with gate:
                fetched = await self.client.get_workflow_handle(workflow_id).fetch_history()
            return History.from_json(workflow_id, fetched.to_json_dict())

        return list(await asyncio.gather(*(fetch(i) for i in ids)))


class TemporalWorkerPool(WorkerPool):
    """``count`` temporalio worker processes on ``server``, serving ``task_queue``."""

    def __init__(self, server: TemporalServer, task_queue: str, folder: Path, count: int, *, module: str | None = None,
                 max_concurrent_activities: int | None = None) -> None:
        super().__init__("", task_queue, folder, count, module=module, max_concurrent_activities=max_concurrent_activities)
        self.server = server

    def command(self, name: str, metrics: Path) -> list[str]:
        command = [sys.executable, "-m", "engine.cli._load_temporal_worker", "--address", self.server.address,
                   "--namespace", self.server.namespace, "--task-queue", self.task_queue, "--metrics", str(metrics),
                   "--name", name, "--parent-pid", str(os.getpid())]
        if self.module:
            command += ["--module", self.module]
        if self.max_concurrent_activities:
            command += ["--max-concurrent-activities", str(self.max_concurrent_activities)]
        return command
