"""Replay exported histories with temporalio's own ``Replayer``.

Usage (cwd = the repository root)::

    python -m tests.engine.oracle.replay_check HISTORY.json WORKFLOWCLASS [HISTORY.json WORKFLOWCLASS ...]

Each ``WORKFLOWCLASS`` is a class name from ``tests.engine.oracle.theirs``. The workflow id
given to temporalio is the file name without ``.json``. Every pair is replayed with
temporalio's default (sandboxed) workflow runner; ``--unsandboxed`` switches to
``UnsandboxedWorkflowRunner``.

For each pair one line ``ORACLE-ITEM {json}`` is printed with:

* ``ok``: the replay finished without a replay failure (non-determinism, a bad history, ...),
* ``failure``: ``"ExceptionType: message"`` of the replay failure, else ``null``,
* ``outcome``: what the workflow code returned (``{"result": ...}``) or raised
  (``{"error": type, "message": ..., "cause": ...}``) while temporalio replayed it, captured
  with a workflow interceptor, or ``null`` if the run method never finished; it also has
  ``random_seed``, the seed temporalio gave ``workflow.random()`` for the run.

The exit code is 0 when every replay succeeded and 1 otherwise (2 for bad usage).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import traceback
from pathlib import Path
from typing import Any

from temporalio import workflow
from temporalio.client import WorkflowHistory
from temporalio.worker import (
    ExecuteWorkflowInput,
    Interceptor,
    Replayer,
    UnsandboxedWorkflowRunner,
    WorkflowInboundInterceptor,
    WorkflowInterceptorClassInput,
)

# workflow id -> what its run method returned or raised during the replay
OUTCOMES: dict[str, dict[str, Any]] = {}


def _describe_error(err: BaseException) -> dict[str, Any]:
    # temporalio's failure errors have .message; str() may prefix it (e.g. with the type).
    cause = err.__cause__
    return {
        "error": type(err).__name__,
        "message": getattr(err, "message", str(err)),
        "cause": None if cause is None else _describe_error(cause),
    }


class _CaptureInbound(WorkflowInboundInterceptor):
    async def execute_workflow(self, input: ExecuteWorkflowInput) -> Any:
        workflow_id = workflow.info().workflow_id
        seed = workflow.random_seed()
        try:
            result = await super().execute_workflow(input)
        except BaseException as err:  # noqa: BLE001 - recorded, then re-raised unchanged
            OUTCOMES[workflow_id] = {**_describe_error(err), "random_seed": seed}
            raise
        OUTCOMES[workflow_id] = {"result": result, "random_seed": seed}
        return result


class _Capture(Interceptor):
    def workflow_interceptor_class(self, input: WorkflowInterceptorClassInput) -> type[WorkflowInboundInterceptor]:
        return _CaptureInbound


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=repr))


async def _replay_one(path: Path, class_name: str, unsandboxed: bool) -> dict[str, Any]:
    from tests.engine.oracle import theirs

    item: dict[str, Any] = {"file": str(path), "class": class_name, "ok": False, "failure": None, "outcome": None}
    cls = getattr(theirs, class_name, None)
    if cls is None:
        item["failure"] = f"LookupError: tests.engine.oracle.theirs has no class {class_name!r}"
        return item
    workflow_id = path.stem
    try:
        history = WorkflowHistory.from_json(workflow_id, path.read_text(encoding="utf-8"))
        kwargs: dict[str, Any] = {"workflows": [cls], "interceptors": [_Capture()]}
        if unsandboxed:
            kwargs["workflow_runner"] = UnsandboxedWorkflowRunner()
        result = await Replayer(**kwargs).replay_workflow(history, raise_on_replay_failure=False)
    except Exception as err:  # noqa: BLE001 - a history temporalio cannot even load is a failure too
        item["failure"] = f"{type(err).__name__}: {err}"
        item["traceback"] = traceback.format_exc()
        return item
    if result.replay_failure is not None:
        failure = result.replay_failure
        item["failure"] = f"{type(failure).__name__}: {failure}"
    else:
        item["ok"] = True
    item["outcome"] = _jsonable(OUTCOMES.get(workflow_id))
    return item


async def _main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.engine.oracle.replay_check", description=__doc__.split("\n\n")[0])
    parser.add_argument("pairs", nargs="+", metavar="HISTORY CLASS")
    parser.add_argument("--unsandboxed", action="store_true", help="use UnsandboxedWorkflowRunner")
    args = parser.parse_args(argv)
    if len(args.pairs) % 2:
        parser.error("give pairs of HISTORY.json WORKFLOWCLASS")
        return 2
    all_ok = True
    for file_name, class_name in zip(args.pairs[::2], args.pairs[1::2]):
        item = await _replay_one(Path(file_name), class_name, args.unsandboxed)
        all_ok = all_ok and item["ok"]
        status = "OK  " if item["ok"] else "FAIL"
        print(f"{status} {class_name} <- {file_name}" + ("" if item["ok"] else f": {item['failure']}"), flush=True)
        print("ORACLE-ITEM " + json.dumps(item), flush=True)
    return 0 if all_ok else 1


def main() -> None:
    code = asyncio.run(_main(sys.argv[1:]))
    sys.stdout.flush()
    sys.stderr.flush()
    # Every result is printed by now. temporalio's core runtime has crashed (SIGSEGV) while the
    # interpreter tore it down on a loaded machine, turning a finished check into exit -11; skip
    # that teardown.
    os._exit(code)


if __name__ == "__main__":
    main()
