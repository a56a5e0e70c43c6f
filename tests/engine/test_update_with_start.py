"""Update-with-start (issue 11, item 7): temporalio's WithStartWorkflowOperation and
execute/start_update_with_start_workflow, with the history shape a real Temporal writes
(tests/histories/update_with_start.json: two calls with USE_EXISTING, then a signal)."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine import Worker, workflow
from engine.client import Client, WithStartWorkflowOperation, WorkflowUpdateStage
from engine.common import WorkflowIDConflictPolicy
from engine.errors import WorkflowAlreadyStartedError
from engine.history import History

HISTORIES = Path(__file__).resolve().parents[1] / "histories"


@workflow.defn(name="CartWorkflow", sandboxed=False)
class CartWorkflow:
    def __init__(self) -> None:
        self.items: list[str] = []
        self.done = False

    @workflow.run
    async def run(self, owner: str) -> list[str]:
        await workflow.wait_condition(lambda: self.done)
        return self.items

    @workflow.update
    def add_item(self, item: str) -> int:
        self.items.append(item)
        return len(self.items)

    @workflow.signal
    def checkout(self) -> None:
        self.done = True


def _shape(history: History) -> list[tuple[str, list[str]]]:
    keys = {"acceptedRequest", "acceptedRequestSequencingEventId", "outcome", "acceptedEventId", "meta", "protocolInstanceId"}
    return [(e.event_type, sorted(k for k in e.attributes if k in keys)) for e in history.events]


def _operation(policy: WorkflowIDConflictPolicy = WorkflowIDConflictPolicy.USE_EXISTING) -> WithStartWorkflowOperation:
    return WithStartWorkflowOperation(CartWorkflow.run, "Ada", id="fixture-update-with-start", task_queue="fixtures", id_conflict_policy=policy)


async def test_update_with_start_has_the_history_temporal_writes() -> None:
    real = History.from_json("fixture-update-with-start", (HISTORIES / "update_with_start.json").read_text())
    async with await Client.connect(":memory:") as client:
        async with Worker(client, task_queue="fixtures", workflows=[CartWorkflow]):
            first = _operation()
            assert await client.execute_update_with_start_workflow(CartWorkflow.add_item, "apple", start_workflow_operation=first) == 1
            second = _operation()
            assert await client.execute_update_with_start_workflow(CartWorkflow.add_item, "pear", start_workflow_operation=second) == 2
            handle = await second.workflow_handle()
            assert handle.run_id == (await first.workflow_handle()).run_id  # USE_EXISTING: the same run
            await handle.signal(CartWorkflow.checkout)
            assert await handle.result() == ["apple", "pear"]
            ours = await handle.fetch_history()
    assert _shape(ours) == _shape(real)
    accepted = [e for e in ours.events if e.event_type == "WorkflowExecutionUpdateAccepted"]
    assert [e.attributes["acceptedRequest"]["input"]["name"] for e in accepted] == ["add_item", "add_item"]


async def test_start_update_with_start_returns_at_the_stage_asked() -> None:
    async with await Client.connect(":memory:") as client:
        async with Worker(client, task_queue="fixtures", workflows=[CartWorkflow]):
            op = _operation()
            update = await client.start_update_with_start_workflow(
                CartWorkflow.add_item, "fig", start_workflow_operation=op, id="u1", wait_for_stage=WorkflowUpdateStage.ACCEPTED
            )
            assert update.id == "u1" and await update.result() == 1
            with pytest.raises(ValueError, match="used already"):
                await client.execute_update_with_start_workflow(CartWorkflow.add_item, "x", start_workflow_operation=op)
            await (await op.workflow_handle()).terminate()


async def test_conflict_policy_fail_and_a_missing_policy() -> None:
    async with await Client.connect(":memory:") as client:
        await client.start_workflow(CartWorkflow.run, "Ada", id="fixture-update-with-start", task_queue="fixtures")
        op = _operation(WorkflowIDConflictPolicy.FAIL)
        with pytest.raises(WorkflowAlreadyStartedError):
            await client.execute_update_with_start_workflow(CartWorkflow.add_item, "x", start_workflow_operation=op)
        with pytest.raises(WorkflowAlreadyStartedError):
            await op.workflow_handle()
        with pytest.raises(ValueError, match="needs an id_conflict_policy"):
            _operation(WorkflowIDConflictPolicy.UNSPECIFIED)
