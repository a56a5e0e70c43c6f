"""One temporalio worker process of a load test on a Temporal server (see engine._load.temporal_target).

A temporalio ``Client`` and ``Worker`` on the server, serving the built-in target written with
temporalio (engine._load.temporal_definitions) and, with ``--module``, the temporalio workflows
and activities of that module; it writes its CPU seconds to the metrics file every half
second and stops when its parent (the driver) dies. No write-lock counter: a Temporal server
has no such lock to wait for.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import os
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any, Sequence

from engine._load.processes import READY
from engine.cli._load_serving import serve


def _counters(name: str) -> dict[str, Any]:
    return {"name": name, "pid": os.getpid(), "time": time.time(), "cpu": time.process_time()}


async def _serve(args: argparse.Namespace) -> None:
    from temporalio.client import Client
    from temporalio.worker import Worker
    from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

    from engine._load.temporal_definitions import LoadChild, LoadTarget, definitions_in, load_activity

    workflows: list[Any] = [LoadTarget, LoadChild]
    activities: list[Any] = [load_activity]
    if args.module:
        sys.path.insert(0, os.getcwd())  # a module beside the driver, as `python -m` would find it
        found_workflows, found_activities = definitions_in(importlib.import_module(args.module))
        if not found_workflows and not found_activities:
            raise SystemExit(f"Module {args.module!r} defines no temporalio workflow or activity (@workflow.defn, @activity.defn).")
        workflows += found_workflows
        activities += found_activities
    client = await Client.connect(args.address, namespace=args.namespace)
    # The sandbox imports a workflow's module afresh for every run; the built-in target's
    # module lives in the engine package, whose imports then ran again each time (measured:
    # 360 ms of CPU per run, against 30 ms with the engine passed through). The engine's
    # modules hold no state a run could leak into another, so they are passed through.
    runner = SandboxedWorkflowRunner(restrictions=SandboxRestrictions.default.with_passthrough_modules("engine"))
    worker = Worker(client, task_queue=args.task_queue, workflows=workflows, activities=activities, workflow_runner=runner,
                    max_concurrent_activities=args.max_concurrent_activities, graceful_shutdown_timeout=timedelta(seconds=2))
    await serve(worker, Path(args.metrics), lambda: _counters(args.name),
                f"{READY}: {args.name} pid {os.getpid()} on {args.task_queue!r} at {args.address}", args.parent_pid)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m engine.cli._load_temporal_worker", description="One temporalio worker process of a load test.")
    parser.add_argument("--address", required=True)
    parser.add_argument("--namespace", default="default")
    parser.add_argument("--task-queue", required=True)
    parser.add_argument("--metrics", required=True)
    parser.add_argument("--name", default="worker")
    parser.add_argument("--module")
    parser.add_argument("--parent-pid", type=int)
    parser.add_argument("--max-concurrent-activities", type=int)
    asyncio.run(_serve(parser.parse_args(argv)))


if __name__ == "__main__":
    main()
