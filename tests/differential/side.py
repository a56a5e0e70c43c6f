"""Runs every scenario on one side, or replays the other side's histories, in its own process.

    python -m tests.differential.side run --side temporal --target 127.0.0.1:PORT --out DIR
    python -m tests.differential.side run --side engine --out DIR         # $DLAB_DB names the file
    python -m tests.differential.side replay --side temporal|engine --histories DIR
    python -m tests.differential.side serve --side temporal --target 127.0.0.1:PORT   # a worker until stopped

``--side engine`` turns the temporalio switch on before anything imports temporalio, so the
same ``workflows.py`` and ``drivers.py`` run on our engine; ``--side temporal`` uses the real
SDK against the dev server. A process per side keeps the two temporalio's apart (the switch
replaces ``temporalio`` in ``sys.modules``) and lets them run at the same time.

``run`` writes ``DIR/<scenario>.json``: ``{"outcome", "histories": [{"workflow_id",
"run_id", "history"}], "error"}``; ``replay`` prints one ``REPLAY {json}`` line per history.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
import traceback
from pathlib import Path
from typing import Any

RUN_LIMIT = 60.0  # seconds for one scenario's driver


def _switch(side: str) -> None:
    if side == "engine":
        from engine import temporalio_compat

        temporalio_compat.install()


async def _histories(client: Any, workflow_id: str) -> list[dict[str, Any]]:
    """Every run of ``workflow_id``, first to last, found by following the continue-as-new links
    and the reset links (a reset run's start is a copy of its base run's: its own id and its
    base's are in its last ``RESET_WORKFLOW`` workflow-task failure)."""
    runs: list[dict[str, Any]] = []
    run_id: str | None = None
    while True:
        history = await client.get_workflow_handle(workflow_id, run_id=run_id).fetch_history()
        document = json.loads(history.to_json())
        started = document["events"][0]["workflowExecutionStartedEventAttributes"]
        resets = [
            e["workflowTaskFailedEventAttributes"] for e in document["events"]
            if e.get("workflowTaskFailedEventAttributes", {}).get("cause") == "WORKFLOW_TASK_FAILED_CAUSE_RESET_WORKFLOW"
        ]
        own = resets[-1]["newRunId"] if resets else started.get("originalExecutionRunId")
        runs.append({"workflow_id": workflow_id, "run_id": own, "history": document})
        run_id = resets[-1]["baseRunId"] if resets else started.get("continuedExecutionRunId")
        if not run_id:
            return runs[::-1]


async def _run_one(client: Any, name: str, out: Path) -> None:
    from tests.differential.drivers import DRIVERS

    record: dict[str, Any] = {"scenario": name, "outcome": None, "histories": [], "error": None}
    began = time.monotonic()
    try:
        driven = await asyncio.wait_for(DRIVERS[name](client, f"diff-{name.replace('_', '-')}"), RUN_LIMIT)
        record["outcome"] = driven.outcome
        for workflow_id in driven.workflow_ids:
            record["histories"] += await _histories(client, workflow_id)
    except BaseException as err:  # noqa: BLE001 - reported to the test, which fails with it
        record["error"] = "".join(traceback.format_exception(err))
    record["seconds"] = round(time.monotonic() - began, 2)
    (out / f"{name}.json").write_text(json.dumps(record, indent=1, default=repr), encoding="utf-8")
    print(f"{name}: {'ok' if record['error'] is None else 'ERROR'} in {record['seconds']}s", flush=True)


async def run(side: str, target: str, out: Path, only: list[str]) -> None:
    from temporalio.client import Client
    from temporalio.worker import Worker

    from tests.differential import workflows
    from tests.differential.drivers import DRIVERS, TASK_QUEUE

    out.mkdir(parents=True, exist_ok=True)
    client = await _connect(Client, target)
    async with Worker(client, task_queue=TASK_QUEUE, workflows=workflows.WORKFLOWS, activities=workflows.ACTIVITIES,
                      max_concurrent_activities=50):
        await asyncio.gather(*(_run_one(client, name, out) for name in (only or DRIVERS)))


async def _connect(client_class: Any, target: str) -> Any:
    # The dev server's port opens before its frontend answers: retry for a while.
    deadline = time.monotonic() + 30
    while True:
        try:
            return await client_class.connect(target)
        except Exception:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.2)


async def replay(histories: Path) -> bool:
    from temporalio.client import WorkflowHistory
    from temporalio.worker import Replayer

    from tests.differential import workflows

    replayer = Replayer(workflows=workflows.WORKFLOWS)
    all_ok = True
    for path in sorted(histories.glob("*.json")):
        record = json.loads(path.read_text(encoding="utf-8"))
        for run in record["histories"]:
            item = {"scenario": record["scenario"], "workflow_id": run["workflow_id"], "run_id": run["run_id"], "failure": None}
            print(f"replaying {run['workflow_id']} {run['run_id']}", file=sys.stderr, flush=True)
            try:
                history = WorkflowHistory.from_json(run["workflow_id"], run["history"])
                result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
                failure = result.replay_failure
            except Exception as err:  # noqa: BLE001 - a history that does not even load fails too
                failure = err
            if failure is not None:
                all_ok = False
                item["failure"] = f"{type(failure).__name__}: {failure}"
            print("REPLAY " + json.dumps(item), flush=True)
    return all_ok


async def serve(target: str) -> None:
    """A worker of every workflow and activity on ``target`` until the process is stopped
    (tests of %temporal start runs on the server and need something to run them)."""
    from temporalio.client import Client
    from temporalio.worker import Worker

    from tests.differential import workflows
    from tests.differential.drivers import TASK_QUEUE

    client = await _connect(Client, target)
    async with Worker(client, task_queue=TASK_QUEUE, workflows=workflows.WORKFLOWS, activities=workflows.ACTIVITIES):
        print("serving", flush=True)
        await asyncio.Event().wait()


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.differential.side", description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=["run", "replay", "serve"])
    parser.add_argument("--side", choices=["temporal", "engine"], required=True)
    parser.add_argument("--target", default="localhost:7233", help="the dev server's address (the engine maps it to $DLAB_DB)")
    parser.add_argument("--out", type=Path, help="run: where to write one JSON file per scenario")
    parser.add_argument("--histories", type=Path, help="replay: a folder written by run (of the other side)")
    parser.add_argument("--only", action="append", default=[], help="run: only this scenario (repeatable)")
    args = parser.parse_args(argv)
    _switch(args.side)
    if args.command == "serve":
        asyncio.run(serve(args.target))
        return 0
    if args.command == "run":
        if args.out is None:
            parser.error("run needs --out DIR")
        asyncio.run(run(args.side, args.target, args.out, args.only))
        return 0
    if args.histories is None:
        parser.error("replay needs --histories DIR")
    return 0 if asyncio.run(replay(args.histories)) else 1


if __name__ == "__main__":
    code = main(sys.argv[1:])
    sys.stdout.flush()
    sys.stderr.flush()
    # temporalio's core runtime has crashed while the interpreter tore it down on a loaded
    # machine (tests/engine/oracle/replay_check.py): every result is written by now.
    os._exit(code)
