"""A child workflow's id_reuse_policy (temporalio's start_child_workflow option) reaches the
start command as Temporal's enum name and is applied to the child's id, as for a client start."""

from __future__ import annotations

from engine import Worker, workflow
from engine.common import WorkflowIDReusePolicy
from engine.errors import WorkflowAlreadyStartedError
from engine.testing import WorkflowEnvironment


@workflow.defn
class Kid:
    @workflow.run
    async def run(self) -> str:
        return "done"


@workflow.defn
class Parent:
    @workflow.run
    async def run(self) -> list[str]:
        outcomes = [await workflow.execute_child_workflow(Kid.run, id="kid")]
        for policy in (WorkflowIDReusePolicy.ALLOW_DUPLICATE, WorkflowIDReusePolicy.REJECT_DUPLICATE):
            try:
                outcomes.append(await workflow.execute_child_workflow(Kid.run, id="kid", id_reuse_policy=policy))
            except WorkflowAlreadyStartedError:
                outcomes.append(f"refused by {policy.name}")
        return outcomes


async def test_a_child_id_reuse_policy_is_recorded_and_applied() -> None:
    env = await WorkflowEnvironment.start_time_skipping()
    async with Worker(env.client, task_queue="q", workflows=[Parent, Kid]):
        handle = await env.client.start_workflow(Parent.run, id="parent", task_queue="q")
        assert await handle.result() == ["done", "done", "refused by REJECT_DUPLICATE"]
        history = await handle.fetch_history()
    await env.shutdown()
    initiated = [e.attributes["workflowIdReusePolicy"] for e in history.events if e.event_type == "StartChildWorkflowExecutionInitiated"]
    assert initiated == [
        "WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE", "WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE", "WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE",
    ]
