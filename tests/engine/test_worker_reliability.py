"""Nothing user code raises ends the worker: an activity's or a workflow's SystemExit,
KeyboardInterrupt or stray CancelledError is that attempt's or that workflow task's failure."""

from __future__ import annotations

import asyncio
import sys
from datetime import timedelta
from typing import Any, Awaitable, Callable

import pytest

from engine import Worker, activity, workflow
from engine.common import RetryPolicy
from engine.errors import ActivityError, ApplicationError, DefinitionError, WorkflowFailureError
from engine.testing import WorkflowEnvironment

CALLS: list[int] = []


def _no_escape(scenario: Callable[[], Awaitable[Any]]) -> Any:
    """Run ``scenario`` on a fresh loop; an exception that would end the process fails the test
    (a KeyboardInterrupt reaching pytest would stop the whole session instead)."""
    try:
        return asyncio.run(asyncio.wait_for(scenario(), timeout=30))
    except (SystemExit, KeyboardInterrupt) as e:
        pytest.fail(f"{type(e).__name__} escaped the worker: it would have ended the process")


@activity.defn
async def exits_async(kind: str) -> str:
    CALLS.append(activity.info().attempt)
    if activity.info().attempt == 1:
        if kind == "SystemExit":
            sys.exit(3)
        if kind == "KeyboardInterrupt":
            raise KeyboardInterrupt
        raise asyncio.CancelledError  # nobody cancelled it
    return f"ok after {kind}"


@activity.defn
def exits_sync(kind: str) -> str:
    CALLS.append(activity.info().attempt)
    if activity.info().attempt == 1:
        if kind == "SystemExit":
            sys.exit(3)
        if kind == "KeyboardInterrupt":
            raise KeyboardInterrupt
        raise asyncio.CancelledError
    return f"ok after {kind}"


@workflow.defn
class RunsExiting:
    @workflow.run
    async def run(self, kind: str, sync: bool, attempts: int) -> str:
        return await workflow.execute_activity(
            exits_sync if sync else exits_async,
            kind,
            start_to_close_timeout=timedelta(minutes=5),
            retry_policy=RetryPolicy(initial_interval=timedelta(milliseconds=10), maximum_attempts=attempts),
        )


@pytest.mark.parametrize("sync", [False, True], ids=["async", "sync"])
@pytest.mark.parametrize("kind", ["SystemExit", "KeyboardInterrupt", "CancelledError"])
def test_an_activity_that_raises_a_base_exception_fails_its_attempt_and_the_worker_lives_on(kind: str, sync: bool) -> None:
    async def scenario() -> None:
        CALLS.clear()
        # Real time: a lost attempt would wait for its 5-minute start-to-close timeout.
        env = await WorkflowEnvironment.start_local()
        acts = [exits_sync] if sync else [exits_async]
        async with Worker(env.client, task_queue="q", workflows=[RunsExiting], activities=acts) as worker:
            retried = await env.client.execute_workflow(RunsExiting.run, args=[kind, sync, 2], id="retried", task_queue="q")
            CALLS.clear()
            handle = await env.client.start_workflow(RunsExiting.run, args=[kind, sync, 1], id="failed", task_queue="q")
            with pytest.raises(WorkflowFailureError) as info:
                await handle.result()
            attempts = await handle.activity_attempts()
            assert worker.is_running
        await env.shutdown()
        assert retried == f"ok after {kind}"
        cause = info.value.cause
        assert isinstance(cause, ActivityError)
        # As temporalio: an application failure whose type is the exception's class name.
        assert isinstance(cause.__cause__, ApplicationError) and cause.__cause__.type == kind
        assert [a.outcome for a in attempts] == ["failed"]
        assert attempts[0].failure["applicationFailureInfo"]["type"] == kind
        assert "start-to-close" not in attempts[0].failure["message"]

    _no_escape(scenario)


@workflow.defn
class ExitsInWorkflowCode:
    @workflow.run
    async def run(self, kind: str) -> str:
        await workflow.sleep(0.01)  # the second workflow task exits: the instance is cached then
        if kind == "SystemExit":
            sys.exit(5)
        raise KeyboardInterrupt


async def _first_task_failure(env: WorkflowEnvironment, workflow_type: str, *args: Any) -> tuple[Any, dict[str, Any]]:
    handle = await env.client.start_workflow(workflow_type, args=list(args), id=f"{workflow_type}-1", task_queue="q")
    for _ in range(500):
        events = (await handle.fetch_history()).events
        failed = [e for e in events if e.event_type == "WorkflowTaskFailed"]
        if failed:
            return handle, failed[0].attributes["failure"]
        await asyncio.sleep(0.01)
    raise AssertionError("no workflow task failed")


@pytest.mark.parametrize("kind", ["SystemExit", "KeyboardInterrupt"])
def test_workflow_code_that_raises_system_exit_fails_the_workflow_task_and_the_worker_lives_on(kind: str) -> None:
    async def scenario() -> None:
        env = await WorkflowEnvironment.start_local()
        async with Worker(env.client, task_queue="q", workflows=[ExitsInWorkflowCode]) as worker:
            handle, failure = await _first_task_failure(env, "ExitsInWorkflowCode", kind)
            assert worker.is_running
            await handle.terminate()
        await env.shutdown()
        assert failure["applicationFailureInfo"]["type"] == kind
        code = "5" if kind == "SystemExit" else ""
        assert failure["message"].startswith(f"Workflow code raised {kind}({code}) (")
        assert "The worker went on; this workflow task failed and is retried" in failure["message"]
        assert "ExitsInWorkflowCode" in failure["stackTrace"] or "test_worker_reliability" in failure["stackTrace"]

    _no_escape(scenario)


EXITING_MODULE = '''
import sys
from engine import workflow

if "--exit-at-load" in sys.argv:
    sys.exit(2)


@workflow.defn
class LoadsThenExits:
    @workflow.run
    async def run(self) -> str:
        return "loaded"
'''


def test_a_workflow_module_that_exits_while_the_sandbox_loads_it_does_not_end_the_worker(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "exits_at_load.py").write_text(EXITING_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    import exits_at_load  # type: ignore[import-not-found]

    async def scenario() -> None:
        env = await WorkflowEnvironment.start_local()
        worker = Worker(env.client, task_queue="q", workflows=[exits_at_load.LoadsThenExits])
        async with worker:
            # Each run loads the module afresh; by now its top level exits (argparse would on an
            # unknown argument), as it did for the worker's trial load below.
            monkeypatch.setattr(sys, "argv", [*sys.argv, "--exit-at-load"])
            handle, failure = await _first_task_failure(env, "LoadsThenExits")
            assert worker.is_running
            await handle.terminate()
        with pytest.raises(DefinitionError) as info:
            Worker(env.client, task_queue="q", workflows=[exits_at_load.LoadsThenExits])
        await env.shutdown()
        for message in (failure["message"], str(info.value)):
            assert "in the sandbox for workflow 'LoadsThenExits' raised SystemExit(2) at " in message
            assert f"{tmp_path / 'exits_at_load.py'}:6: a sys.exit() call, or argparse's parse_args()" in message

    _no_escape(scenario)


@workflow.defn
class HandlersExit:
    def __init__(self) -> None:
        self.done = False

    @workflow.run
    async def run(self) -> str:
        await workflow.wait_condition(lambda: self.done)
        return "done"

    @workflow.signal
    def leave(self) -> None:
        sys.exit(6)

    @workflow.signal
    def finish(self) -> None:
        self.done = True

    @workflow.query
    def state(self) -> str:
        raise KeyboardInterrupt


def test_signal_and_query_handlers_that_exit_do_not_end_the_worker() -> None:
    async def scenario() -> None:
        env = await WorkflowEnvironment.start_local()
        async with Worker(env.client, task_queue="q", workflows=[HandlersExit]) as worker:
            handle = await env.client.start_workflow(HandlersExit.run, id="handlers", task_queue="q")
            with pytest.raises(Exception, match=r"Query 'state' raised KeyboardInterrupt\(\)"):
                await handle.query(HandlersExit.state)
            await handle.signal(HandlersExit.leave)
            for _ in range(500):
                failed = [e for e in (await handle.fetch_history()).events if e.event_type == "WorkflowTaskFailed"]
                if failed:
                    break
                await asyncio.sleep(0.01)
            assert failed[0].attributes["failure"]["message"].startswith("Workflow code raised SystemExit(6) (")
            assert worker.is_running
            await handle.terminate()
        await env.shutdown()

    _no_escape(scenario)
