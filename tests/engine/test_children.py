"""Child workflows: start, result, failure, cancellation, parent close policies, signals
between workflows; the parent's history has Temporal's shapes (tests/histories/child.json)."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from engine import Worker, workflow
from engine.errors import (
    ApplicationError,
    CancelledError,
    ChildWorkflowError,
    TerminatedError,
    WorkflowAlreadyStartedError,
    WorkflowFailureError,
)
from engine.testing import WorkflowEnvironment

from tests.engine.workflows import echo


@workflow.defn
class Greet:
    @workflow.run
    async def run(self, name: str) -> str:
        return await workflow.execute_activity(echo, f"Hello, {name}!", start_to_close_timeout=timedelta(seconds=5))


@workflow.defn
class Refuse:
    @workflow.run
    async def run(self, reason: str) -> str:
        raise ApplicationError(f"child refused: {reason}", type="ChildRefused")


@workflow.defn
class Waiter:
    """Waits for a signal (or for ever); reports how it ended."""

    def __init__(self) -> None:
        self.got: list[str] = []

    @workflow.run
    async def run(self) -> list[str]:
        try:
            await workflow.wait_condition(lambda: bool(self.got))
        except asyncio.CancelledError:
            await workflow.execute_activity(echo, "child cleanup", start_to_close_timeout=timedelta(seconds=5))
            raise
        return self.got

    @workflow.signal
    def poke(self, value: str) -> None:
        self.got.append(value)

    @workflow.query
    def parent(self) -> str:
        info = workflow.info()
        return f"{info.parent.workflow_id if info.parent else None}"


@workflow.defn
class Parent:
    @workflow.run
    async def run(self, name: str) -> list[str]:
        out = [await workflow.execute_child_workflow(Greet.run, name, id=f"{workflow.info().workflow_id}-greet")]
        try:
            await workflow.execute_child_workflow(Refuse.run, "bad input", id=f"{workflow.info().workflow_id}-refuse")
        except ChildWorkflowError as err:
            cause = err.__cause__
            assert isinstance(cause, ApplicationError)
            out.append(f"{type(err).__name__}: {cause.type}: {cause}")
        return out


async def test_a_child_runs_and_the_parent_history_has_temporals_shape() -> None:
    env = await WorkflowEnvironment.start_time_skipping()
    async with Worker(env.client, task_queue="q", workflows=[Parent, Greet, Refuse], activities=[echo]):
        handle = await env.client.start_workflow(Parent.run, "Grace", id="p1", task_queue="q")
        assert await handle.result() == ["Hello, Grace!", "ChildWorkflowError: ChildRefused: child refused: bad input"]
    history = await handle.fetch_history()
    child = await env.client.get_workflow_handle("p1-greet").fetch_history()
    await env.shutdown()
    # The same event sequence as the real server's child.json.
    wt = ["WorkflowTaskScheduled", "WorkflowTaskStarted", "WorkflowTaskCompleted"]
    assert [e.event_type for e in history.events] == [
        "WorkflowExecutionStarted", *wt,
        "StartChildWorkflowExecutionInitiated", "ChildWorkflowExecutionStarted", *wt,
        "ChildWorkflowExecutionCompleted", *wt,
        "StartChildWorkflowExecutionInitiated", "ChildWorkflowExecutionStarted", *wt,
        "ChildWorkflowExecutionFailed", *wt,
        "WorkflowExecutionCompleted",
    ]
    initiated = history.events[4].attributes
    assert initiated["workflowId"] == "p1-greet" and initiated["parentClosePolicy"] == "PARENT_CLOSE_POLICY_TERMINATE"
    started = history.events[5].attributes
    assert started["initiatedEventId"] == "5" and started["workflowExecution"]["runId"] == child.run_id
    done = history.events[9].attributes
    assert done["initiatedEventId"] == "5" and done["startedEventId"] == "6"
    failed = history.events[18].attributes
    assert failed["failure"]["applicationFailureInfo"]["type"] == "ChildRefused"
    first = child.events[0].attributes
    assert first["parentWorkflowExecution"]["workflowId"] == "p1"
    assert first["parentInitiatedEventId"] == "5"
    assert first["rootWorkflowExecution"]["workflowId"] == "p1"
    assert "identity" not in first


@workflow.defn
class StartTwice:
    @workflow.run
    async def run(self) -> str:
        await workflow.start_child_workflow(Waiter.run, id="same-id", parent_close_policy=workflow.ParentClosePolicy.ABANDON)
        try:
            await workflow.start_child_workflow(Waiter.run, id="same-id")
        except WorkflowAlreadyStartedError:
            return "refused"
        return "started twice?"


async def test_starting_a_child_whose_id_is_running_fails_the_start() -> None:
    env = await WorkflowEnvironment.start_time_skipping()
    async with Worker(env.client, task_queue="q", workflows=[StartTwice, Waiter], activities=[echo]):
        handle = await env.client.start_workflow(StartTwice.run, id="s2", task_queue="q")
        assert await handle.result() == "refused"
        types = [e.event_type for e in (await handle.fetch_history()).events]
        assert "StartChildWorkflowExecutionFailed" in types
        # ABANDON: the first child outlives its parent.
        assert (await env.client.get_workflow_handle("same-id").describe()).status.name == "RUNNING"
        await env.client.get_workflow_handle("same-id").signal(Waiter.poke, "x")
        assert await env.client.get_workflow_handle("same-id").result() == ["x"]
    await env.shutdown()


@workflow.defn
class SignalChild:
    @workflow.run
    async def run(self) -> list[str]:
        child = await workflow.start_child_workflow(Waiter.run, id="sc-child")
        await child.signal(Waiter.poke, "from parent")
        return await child


async def test_a_parent_signals_its_child_and_the_child_knows_its_parent() -> None:
    env = await WorkflowEnvironment.start_time_skipping()
    async with Worker(env.client, task_queue="q", workflows=[SignalChild, Waiter], activities=[echo]):
        handle = await env.client.start_workflow(SignalChild.run, id="sc", task_queue="q")
        assert await handle.result() == ["from parent"]
        assert await env.client.get_workflow_handle("sc-child").query(Waiter.parent) == "sc"
        types = [e.event_type for e in (await handle.fetch_history()).events]
        assert "SignalExternalWorkflowExecutionInitiated" in types and "ExternalWorkflowExecutionSignaled" in types
        child_events = (await env.client.get_workflow_handle("sc-child").fetch_history()).events
        signaled = [e for e in child_events if e.event_type == "WorkflowExecutionSignaled"][0]
        assert signaled.attributes["externalWorkflowExecution"]["workflowId"] == "sc"
    await env.shutdown()


@workflow.defn
class CancelChild:
    @workflow.run
    async def run(self, kind: str) -> str:
        child = await workflow.start_child_workflow(
            Waiter.run, id=f"cc-{kind}", cancellation_type=workflow.ChildWorkflowCancellationType[kind]
        )
        await workflow.sleep(1)
        child.cancel()
        try:
            await child
        except ChildWorkflowError as err:
            assert isinstance(err.__cause__, CancelledError)
            return f"cancelled ({kind})"
        return "not cancelled?"


@pytest.mark.parametrize("kind", ["WAIT_CANCELLATION_COMPLETED", "TRY_CANCEL", "WAIT_CANCELLATION_REQUESTED"])
async def test_cancelling_a_child_cancels_its_run(kind: str) -> None:
    env = await WorkflowEnvironment.start_time_skipping()
    async with Worker(env.client, task_queue="q", workflows=[CancelChild, Waiter], activities=[echo]):
        handle = await env.client.start_workflow(CancelChild.run, kind, id=f"cc{kind}", task_queue="q")
        assert await handle.result() == f"cancelled ({kind})"
        child = env.client.get_workflow_handle(f"cc-{kind}")
        with pytest.raises(WorkflowFailureError) as info:
            await child.result()
        child_types = [e.event_type for e in (await child.fetch_history()).events]
        assert "WorkflowExecutionCancelRequested" in child_types
        if kind != "WAIT_CANCELLATION_COMPLETED":
            # The parent did not wait for the end: it completed while the child ran its cleanup, so the
            # default parent close policy (TERMINATE) ended the child.
            assert isinstance(info.value.__cause__, (CancelledError, TerminatedError))
        else:
            assert isinstance(info.value.__cause__, CancelledError)
            assert child_types[-1] == "WorkflowExecutionCanceled"
        parent_types = [e.event_type for e in (await handle.fetch_history()).events]
        assert "RequestCancelExternalWorkflowExecutionInitiated" in parent_types
        if kind == "WAIT_CANCELLATION_COMPLETED":
            # The parent waited: it heard of the child's end before it completed.
            assert parent_types.index("ChildWorkflowExecutionCanceled") < parent_types.index("WorkflowExecutionCompleted")
    await env.shutdown()


@workflow.defn
class LeaveChildren:
    @workflow.run
    async def run(self) -> str:
        for policy in ("TERMINATE", "REQUEST_CANCEL", "ABANDON"):
            await workflow.start_child_workflow(
                Waiter.run, id=f"lc-{policy}", parent_close_policy=workflow.ParentClosePolicy[policy]
            )
        return "parent done"


async def test_parent_close_policies() -> None:
    env = await WorkflowEnvironment.start_time_skipping()
    async with Worker(env.client, task_queue="q", workflows=[LeaveChildren, Waiter], activities=[echo]):
        handle = await env.client.start_workflow(LeaveChildren.run, id="lc", task_queue="q")
        assert await handle.result() == "parent done"
        with pytest.raises(WorkflowFailureError) as info:
            await env.client.get_workflow_handle("lc-TERMINATE").result()
        assert isinstance(info.value.__cause__, TerminatedError)
        with pytest.raises(WorkflowFailureError) as info:
            await env.client.get_workflow_handle("lc-REQUEST_CANCEL").result()
        assert isinstance(info.value.__cause__, CancelledError)
        abandoned = env.client.get_workflow_handle("lc-ABANDON")
        assert (await abandoned.describe()).status.name == "RUNNING"
        await abandoned.signal(Waiter.poke, "still here")
        assert await abandoned.result() == ["still here"]
    await env.shutdown()


@workflow.defn
class Outer:
    @workflow.run
    async def run(self) -> str:
        return await workflow.execute_child_workflow(Waiter.run, id="outer-child")


async def test_cancelling_the_parent_cancels_the_child_it_waits_for() -> None:
    env = await WorkflowEnvironment.start_time_skipping()
    async with Worker(env.client, task_queue="q", workflows=[Outer, Waiter], activities=[echo]):
        handle = await env.client.start_workflow(Outer.run, id="outer", task_queue="q")
        child = env.client.get_workflow_handle("outer-child")
        for _ in range(500):
            try:
                if (await child.describe()).status.name == "RUNNING":
                    break
            except Exception:  # noqa: BLE001 - not started yet
                pass
            await asyncio.sleep(0.01)
        await handle.cancel()
        with pytest.raises(WorkflowFailureError) as info:
            await handle.result()
        assert isinstance(info.value.__cause__, CancelledError)
        child_events = (await child.fetch_history()).events
        # The child got the cancel and ran its cleanup activity before it ended.
        assert [e.attributes["activityType"]["name"] for e in child_events if e.event_type == "ActivityTaskScheduled"] == ["echo"]
        assert child_events[-1].event_type == "WorkflowExecutionCanceled"
    await env.shutdown()


@workflow.defn
class ChildContinues:
    @workflow.run
    async def run(self, n: int) -> int:
        if n < 2:
            workflow.continue_as_new(n + 1)
        return n * 10


@workflow.defn
class ParentOfContinuing:
    @workflow.run
    async def run(self) -> int:
        return await workflow.execute_child_workflow(ChildContinues.run, 0, id="cont-child")


async def test_a_child_that_continues_as_new_reports_its_last_run_to_the_parent() -> None:
    env = await WorkflowEnvironment.start_time_skipping()
    async with Worker(env.client, task_queue="q", workflows=[ParentOfContinuing, ChildContinues]):
        handle = await env.client.start_workflow(ParentOfContinuing.run, id="poc", task_queue="q")
        assert await handle.result() == 20
    await env.shutdown()


async def test_a_child_survives_a_worker_restart_on_a_file_database(tmp_path) -> None:  # type: ignore[no-untyped-def]
    db = tmp_path / "engine.db"
    env = await WorkflowEnvironment.start_local(db)
    async with Worker(env.client, task_queue="q", workflows=[Outer, Waiter], activities=[echo]):
        await env.client.start_workflow(Outer.run, id="fo", task_queue="q")
        child = env.client.get_workflow_handle("outer-child")
        for _ in range(500):
            try:
                if (await child.describe()).status.name == "RUNNING":
                    break
            except Exception:  # noqa: BLE001 - not started yet
                pass
            await asyncio.sleep(0.01)
    await env.shutdown()
    env = await WorkflowEnvironment.start_local(db)
    async with Worker(env.client, task_queue="q", workflows=[Outer, Waiter], activities=[echo]):
        await env.client.get_workflow_handle("outer-child").signal(Waiter.poke, "after restart")
        assert await env.client.get_workflow_handle("fo").result() == ["after restart"]
    await env.shutdown()


@workflow.defn
class TakesNone:
    def __init__(self) -> None:
        self.got: list[str | None] = []

    @workflow.run
    async def run(self) -> list[str | None]:
        await workflow.wait_condition(lambda: bool(self.got))
        return self.got

    @workflow.signal
    def poke(self, value: str | None) -> None:
        self.got.append(value)


@workflow.defn
class SignalNone:
    @workflow.run
    async def run(self) -> list[str | None]:
        child = await workflow.start_child_workflow(TakesNone.run, id="sn-child")
        await child.signal(TakesNone.poke, None)  # None is an argument too, not "no argument"
        return await child


async def test_none_can_be_sent_as_a_signal_argument() -> None:
    env = await WorkflowEnvironment.start_time_skipping()
    async with Worker(env.client, task_queue="q", workflows=[SignalNone, TakesNone], activities=[echo]):
        assert await env.client.execute_workflow(SignalNone.run, id="sn", task_queue="q") == [None]
    await env.shutdown()
