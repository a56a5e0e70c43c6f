"""``%workflow show --output graph|saga|chain`` and ``%engine --advance`` through the session
(what the magics wrap) and through the magics themselves."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path
from typing import Iterator

import pytest
from IPython.core.interactiveshell import InteractiveShell

from engine import activity, workflow
from engine.errors import WorkflowUpdateFailedError
from kernel_ext._session import Session, SessionError, TimeAdvance
from kernel_ext.display import ChainView, RunView, SagaView
from tests.kernel_ext.test_magics import loaded_shell, run, usage_error



@activity.defn
async def bill(month: int) -> str:
    return f"billed month {month}"


@workflow.defn
class Monthly:
    def __init__(self) -> None:
        self.month = 0

    @workflow.run
    async def run(self, months: int, per_run: int) -> int:
        for _ in range(per_run):
            if self.month >= months:
                return self.month
            await workflow.sleep(timedelta(days=30))
            self.month += 1
            await workflow.execute_activity(bill, self.month, start_to_close_timeout=timedelta(seconds=5))
        workflow.continue_as_new(args=[months - per_run, per_run])

    @workflow.query
    def billed(self) -> int:
        return self.month


async def _skipping_session() -> Session:
    session = Session(":memory:", "skip")
    session.define([bill, Monthly])
    await session.start_worker("bills")
    return session


async def test_chain_output_shows_every_run_of_the_chain_from_any_run() -> None:
    session = await _skipping_session()
    try:
        run = await session.start_workflow("Monthly", task_queue="bills", workflow_id="sub", args=[5, 2])
        assert await run == 1
        for run_id in (None, run.run_id):  # the latest run, or the first one
            view = await session.show_workflow("sub", run_id, output="chain")
            assert isinstance(view, ChainView) and len(view.histories) == 3
            assert [row[2] for row in view.table()] == ["continued as new", "continued as new", "completed"]
            assert view.histories[0].run_id == run.run_id
        graph = await session.show_workflow("sub", output="graph")
        assert isinstance(graph, RunView) and "previous run" in graph.dot
    finally:
        await session.close()


async def test_saga_output_is_the_saga_view() -> None:
    session = await _skipping_session()
    try:
        await session.start_workflow("Monthly", task_queue="bills", workflow_id="one", args=[1, 1])
        await asyncio.sleep(0)
        view = await session.show_workflow("one", output="saga")
        assert isinstance(view, SagaView) and view.title == "one (Monthly)"
        with pytest.raises(SessionError, match="Unknown output 'tree'.*saga, chain"):
            await session.show_workflow("one", output="tree")
    finally:
        await session.close()


async def test_advance_moves_engine_time_and_due_timers_fire() -> None:
    session = await _skipping_session()
    try:
        run = await session.start_workflow("Monthly", task_queue="bills", workflow_id="adv", args=[12, 12])
        for month in (1, 2, 3):
            # The clock jumps at once: advance only once the run waits on its next timer.
            for _ in range(200):
                if (await run.describe()).pending_timers == 1:
                    break
                await asyncio.sleep(0.01)
            moved = await session.advance_time(timedelta(days=30))
            assert isinstance(moved, TimeAdvance) and moved.after - moved.before >= timedelta(days=30)
            assert moved.text().endswith("(+30d)")
            for _ in range(200):
                if await session.query_workflow("adv", "billed") == month:
                    break
                await asyncio.sleep(0.01)
            assert await session.query_workflow("adv", "billed") == month
        await run.terminate(reason="enough")
        with pytest.raises(SessionError, match="positive duration"):
            await session.advance_time(timedelta(0))
        await session.set_time_mode("real")
        with pytest.raises(SessionError, match="wall clock.*%engine --time skip"):
            await session.advance_time(timedelta(days=1))
    finally:
        await session.close()


# --- the magics ---------------------------------------------------------------------------


@pytest.fixture
def shell(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[InteractiveShell]:
    monkeypatch.chdir(tmp_path)
    yield from loaded_shell(before=("%config DurableLab.db_path = ':memory:'",))


def test_engine_advance_needs_time_skipping_and_a_duration(shell: InteractiveShell) -> None:
    assert "--advance 'soon' is not a duration" in usage_error(shell, "%engine --advance soon")
    assert "%engine --time skip" in usage_error(shell, "%engine --advance 1d")
    moved = run(shell, "%engine --time skip --advance 2h")
    assert isinstance(moved, TimeAdvance) and moved.delta == timedelta(hours=2)
    assert "[--advance D]" in (shell.find_line_magic("engine").__doc__ or "")


def test_show_output_choices_include_saga_and_chain(shell: InteractiveShell) -> None:
    message = usage_error(shell, "%workflow show --workflow-id x --output tree")
    assert "invalid choice: 'tree'" in message and "'saga', 'chain', 'explorer'" in message


# --- child workflows and updates, as the engine makes them ---------------------------------


@workflow.defn
class Leaf:
    @workflow.run
    async def run(self, month: int) -> str:
        return await workflow.execute_activity(bill, month, start_to_close_timeout=timedelta(seconds=5))


@workflow.defn
class Branch:
    @workflow.run
    async def run(self, months: int) -> list[str]:
        wid = workflow.info().workflow_id
        return [await workflow.execute_child_workflow(Leaf.run, m, id=f"{wid}-leaf-{m}") for m in range(1, months + 1)]


@workflow.defn
class Root:
    @workflow.run
    async def run(self) -> list[str]:
        return await workflow.execute_child_workflow(Branch.run, 2, id="root-branch")


async def test_child_runs_of_the_engine_are_drawn_nested_two_levels_deep() -> None:
    from tests.kernel_ext.dot_reading import read

    session = Session(":memory:", "skip")
    session.define([bill, Leaf, Branch, Root])
    await session.start_worker("tree")
    try:
        root = await session.start_workflow("Root", task_queue="tree", workflow_id="root")
        assert await root == ["billed month 1", "billed month 2"]
        view = await session.show_workflow("root", output="graph")
        assert set(view.children) == {"root-branch", "root-branch-leaf-1", "root-branch-leaf-2"}
        graph = read(view.dot)
        labels = sorted(attrs["label"] for attrs in graph.clusters.values())
        assert labels == ["child run: Branch · root-branch", "child run: Leaf · root-branch-leaf-1",
                          "child run: Leaf · root-branch-leaf-2"]
        leaves = [n for n in graph.nodes.values() if n.title == "bill"]
        assert len(leaves) == 2 and all(n.fill == "#d9f2dc" for n in leaves)
        assert len(graph.pairs(label="starts")) == 3
    finally:
        await session.close()


@workflow.defn
class Basket:
    def __init__(self) -> None:
        self.items: list[str] = []
        self.done = False

    @workflow.run
    async def run(self) -> list[str]:
        await workflow.wait_condition(lambda: self.done)
        return self.items

    @workflow.update
    async def add(self, item: str) -> int:
        await workflow.execute_activity(bill, len(self.items) + 1, start_to_close_timeout=timedelta(seconds=5))
        self.items.append(item)
        return len(self.items)

    @add.validator
    def check(self, item: str) -> None:
        if not item:
            raise ValueError("an item needs a name")

    @workflow.signal
    def close(self) -> None:
        self.done = True


async def test_updates_of_the_engine_are_arrows_with_their_result() -> None:
    from tests.kernel_ext.dot_reading import read

    session = Session(":memory:", "skip")
    session.define([bill, Basket])
    await session.start_worker("basket")
    try:
        run = await session.start_workflow("Basket", task_queue="basket", workflow_id="basket")
        assert await run.execute_update(Basket.add, "tea") == 1
        with pytest.raises(WorkflowUpdateFailedError) as refused:
            await run.execute_update(Basket.add, "")
        assert "an item needs a name" in str(refused.value.cause)
        await run.signal(Basket.close)
        assert await run == ["tea"]
        view = await session.show_workflow("basket", output="graph")
        graph = read(view.dot)
        update = graph.titled("update add")
        assert update.attrs["shape"] == "cds" and '(\\"tea\\") · → 1' in update.attrs["label"]
        assert len(graph.starting("update add")) == 1  # the rejected update left no event
        assert [n.title for n in graph.nodes.values()] == ["Workflow started", "update add", "bill", "signal close", "Completed"]
    finally:
        await session.close()
