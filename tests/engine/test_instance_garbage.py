"""A replayed instance is freed by its reference count once evicted, without the cycle
collector: a worker that recovers a thousand runs rebuilds a thousand instances, and collecting
them cost about a third of its CPU (benchmarks/README.md, issue 18, ``perfrecover``)."""

from __future__ import annotations

import gc
import weakref
from pathlib import Path

import pytest

from engine import Client, Worker, activity
from engine.replay import Replayer
from engine.worker.workflow_sandbox import SandboxedWorkflowRunner, UnsandboxedWorkflowRunner, WorkflowRunner
from tests.engine.dead_worker_app import OneStep


@activity.defn(name="step")
async def _done(value: str) -> str:
    return value + ":done"


@pytest.mark.parametrize("runner", [SandboxedWorkflowRunner(), UnsandboxedWorkflowRunner()], ids=["sandboxed", "unsandboxed"])
async def test_an_evicted_instance_after_a_replay_is_freed_at_once(tmp_path: Path, runner: WorkflowRunner) -> None:
    client = await Client.connect(str(tmp_path / "engine.db"))
    try:
        async with Worker(client, task_queue="q", workflows=[OneStep], activities=[_done]):
            handle = await client.start_workflow(OneStep.run, "x", id="one", task_queue="q")
            assert await handle.result() == "x:done"
        history = await handle.fetch_history()
    finally:
        await client.close()
    replayer = Replayer(workflows=[OneStep], workflow_runner=runner)
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        instance = replayer.instance_for(history)
        instance.apply(list(history.events), live_tail=False)
        assert instance._finished  # the activity's command met its event, the run completed
        instance.evict()
        gone = weakref.ref(instance)
        del instance
        assert gone() is None, "the evicted instance is kept alive by a reference cycle"
    finally:
        if was_enabled:
            gc.enable()
