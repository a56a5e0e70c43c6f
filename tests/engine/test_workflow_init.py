"""@workflow.init as temporalio's: __init__ gets the run's arguments, with temporalio's rules."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from engine import Worker, workflow
from engine.testing import WorkflowEnvironment


@dataclass
class Order:
    customer: str
    items: int


@workflow.defn
class Greeter:
    @workflow.init
    def __init__(self, order: Order, greeting: str = "Hello") -> None:
        # Set from the input before run starts, so a handler delivered first can use it.
        self.text = f"{greeting}, {order.customer}"
        self.extra: list[str] = []

    @workflow.run
    async def run(self, order: Order, greeting: str = "Hello") -> str:
        await workflow.wait_condition(lambda: bool(self.extra))
        return f"{self.text} x{order.items} {self.extra}"

    @workflow.signal
    def add(self, word: str) -> None:
        self.extra.append(word + "/" + self.text)

    @workflow.query
    def current(self) -> str:
        return self.text


async def test_init_receives_the_runs_arguments_also_on_replay() -> None:
    env = await WorkflowEnvironment.start_time_skipping()
    async with Worker(env.client, task_queue="q", workflows=[Greeter], max_cached_workflows=0):
        handle = await env.client.start_workflow(Greeter.run, args=[Order("ada", 2), "Hi"], id="g", task_queue="q")
        assert await handle.query(Greeter.current) == "Hi, ada"
        await handle.signal(Greeter.add, "x")
        assert await handle.result() == "Hi, ada x2 ['x/Hi, ada']"
    await env.shutdown()


def test_init_rules_are_temporalios() -> None:
    with pytest.raises(ValueError, match="only be used on the __init__ method"):

        @workflow.init
        def setup(self, x: int) -> None: ...

    with pytest.raises(Exception, match="@workflow.init and @workflow.run method parameters do not match") as info:

        @workflow.defn
        class Mismatch:
            @workflow.init
            def __init__(self, a: int) -> None: ...

            @workflow.run
            async def run(self, a: str) -> None: ...

    assert "same parameters" in str(info.value)

    @workflow.defn
    class NamesDiffer:  # only the names differ: fine, as in temporalio
        @workflow.init
        def __init__(self, first: int) -> None: ...

        @workflow.run
        async def run(self, x: int) -> None: ...

    with pytest.raises(Exception, match="@workflow.init to receive the run's arguments"):

        @workflow.defn
        class NeedsArgs:
            def __init__(self, a: int) -> None: ...

            @workflow.run
            async def run(self, a: int) -> None: ...


def test_temporalios_init_marker_is_seen() -> None:
    temporal_workflow = pytest.importorskip("temporalio.workflow")

    @workflow.defn
    class Marked:
        @temporal_workflow.init
        def __init__(self, a: int) -> None:
            self.a = a

        @workflow.run
        async def run(self, a: int) -> int:
            return self.a

    assert Marked.__workflow_definition__.name == "Marked"  # type: ignore[attr-defined]
