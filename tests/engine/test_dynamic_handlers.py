"""Handlers set while a run runs (workflow.set_signal_handler and friends) and dynamic
handlers (dynamic=True), with temporalio's semantics: signals that find no handler are kept
and handed over, in order, when one is set; a named handler wins over the dynamic one."""

from __future__ import annotations

import asyncio
from typing import Any, Sequence

import pytest

from engine import Worker, workflow
from engine.client import WorkflowQueryFailedError, WorkflowUpdateFailedError
from engine.common import RawValue
from engine.errors import DefinitionError
from engine.testing import WorkflowEnvironment
from engine.worker import Replayer


def _raw(args: Sequence[RawValue]) -> list[Any]:
    return [workflow.payload_converter().from_payload(a.payload, None) for a in args]


@workflow.defn
class LateHandlers:
    def __init__(self) -> None:
        self.seen: list[str] = []

    @workflow.run
    async def run(self) -> list[str]:
        # Nothing listens for "add" until the first wake-up: the signals sent with the start
        # wait, then come in the order they were sent.
        await workflow.wait_condition(lambda: self.seen == ["ready"] or bool(self.seen))
        workflow.set_signal_handler("add", self._add)
        workflow.set_query_handler("count", lambda: len(self.seen))
        workflow.set_update_handler("pop", self._pop, validator=self._check_pop)
        assert workflow.get_update_handler("pop") == self._pop and workflow.get_update_handler("push") is None
        await workflow.wait_condition(lambda: "stop" in self.seen)
        workflow.set_signal_handler("add", None)
        assert workflow.get_signal_handler("add") is None
        return self.seen

    @workflow.signal
    def wake(self, word: str) -> None:
        self.seen.append(word)

    def _add(self, word: str) -> None:
        self.seen.append(word)

    def _pop(self) -> str:
        return self.seen.pop()

    def _check_pop(self) -> None:
        if not self.seen:
            raise ValueError("nothing to pop")


async def test_signals_wait_for_the_handler_set_later_and_keep_their_order() -> None:
    env = await WorkflowEnvironment.start_time_skipping()
    handle = await env.client.start_workflow(LateHandlers.run, id="late", task_queue="q")
    for word in ("a", "b", "c"):
        await handle.signal("add", word)
    await handle.signal(LateHandlers.wake, "ready")
    async with Worker(env.client, task_queue="q", workflows=[LateHandlers]):
        # Updates are not kept (as in temporalio): send one once the first task, which sets
        # the handlers, has completed.
        for _ in range(500):
            if any(e.event_type == "WorkflowTaskCompleted" for e in (await handle.fetch_history()).events):
                break
            await asyncio.sleep(0.01)
        await handle.signal("add", "d")
        assert await handle.query("count") == 5
        assert await handle.execute_update("pop") == "d"
        await handle.signal("add", "stop")
        assert await handle.result() == ["ready", "a", "b", "c", "stop"]
        history = await handle.fetch_history()
    await env.shutdown()
    assert (await Replayer(workflows=[LateHandlers]).replay_workflow(history)).replay_failure is None


@workflow.defn
class Dynamic:
    def __init__(self) -> None:
        self.seen: list[Any] = []

    @workflow.run
    async def run(self) -> list[Any]:
        await workflow.wait_condition(lambda: "done" in [s[0] for s in self.seen])
        return self.seen

    @workflow.signal
    def named(self, value: int) -> None:
        self.seen.append(["named", value])

    @workflow.signal(dynamic=True)
    def any_signal(self, name: str, args: Sequence[RawValue]) -> None:
        self.seen.append([name, *_raw(args)])

    @workflow.query(dynamic=True)
    def any_query(self, name: str, args: Sequence[RawValue]) -> str:
        return f"{name}{_raw(args)}"

    @workflow.update(dynamic=True)
    def any_update(self, name: str, args: Sequence[RawValue]) -> int:
        return len(args)

    @any_update.validator
    def check_update(self, name: str, args: Sequence[RawValue]) -> None:
        if name == "refused":
            raise ValueError("no")


async def test_dynamic_handlers_take_what_no_named_handler_takes() -> None:
    env = await WorkflowEnvironment.start_time_skipping()
    async with Worker(env.client, task_queue="q", workflows=[Dynamic]):
        handle = await env.client.start_workflow(Dynamic.run, id="dyn", task_queue="q")
        await handle.signal("named", 1)
        await handle.signal("other", args=[2, "x"])
        assert await handle.query("whatever", 3) == "whatever[3]"
        assert await handle.execute_update("grow", args=[1, 2]) == 2
        with pytest.raises(WorkflowUpdateFailedError):
            await handle.execute_update("refused")
        await handle.signal("done")
        assert await handle.result() == [["named", 1], ["other", 2, "x"], ["done"]]
        history = await handle.fetch_history()
    await env.shutdown()
    assert (await Replayer(workflows=[Dynamic]).replay_workflow(history)).replay_failure is None


@workflow.defn
class SetDynamic:
    def __init__(self) -> None:
        self.seen: list[Any] = []

    @workflow.run
    async def run(self) -> list[Any]:
        await workflow.wait_condition(lambda: bool(self.seen))  # the start's signal wakes it: "first"
        got = [workflow.get_dynamic_signal_handler() is None, workflow.get_signal_handler("first") is not None]

        # As in temporalio, a dynamic handler's parameters must be annotated (str, Sequence[RawValue]).
        def on_signal(name: str, args: Sequence[RawValue]) -> None:
            self.seen.append([name, *_raw(args)])

        def on_query(name: str, args: Sequence[RawValue]) -> str:
            return name.upper()

        with pytest.raises(DefinitionError, match="must take"):
            workflow.set_dynamic_signal_handler(lambda name, args: None)

        async def waits() -> int:
            return 1

        with pytest.raises(TypeError, match="must be a plain 'def'"):
            workflow.set_query_handler("waits", waits)
        def on_update(name: str, args: Sequence[RawValue]) -> str:
            return f"{name} with {_raw(args)}"

        workflow.set_dynamic_signal_handler(on_signal)
        workflow.set_dynamic_query_handler(on_query)
        assert workflow.get_dynamic_update_handler() is None
        workflow.set_dynamic_update_handler(on_update)
        assert workflow.get_dynamic_update_handler() is on_update
        assert workflow.get_dynamic_query_handler() is not None and workflow.get_query_handler("x") is None
        await workflow.wait_condition(lambda: ["end"] in self.seen)
        return [got, self.seen]

    @workflow.signal
    def first(self) -> None:
        self.seen.append(["first"])


async def test_a_dynamic_handler_set_later_gets_every_kept_signal() -> None:
    env = await WorkflowEnvironment.start_time_skipping()
    handle = await env.client.start_workflow(SetDynamic.run, id="sd", task_queue="q")
    await handle.signal("x", 1)
    await handle.signal("y", 2)
    await handle.signal(SetDynamic.first)
    async with Worker(env.client, task_queue="q", workflows=[SetDynamic]):
        # An update that comes before the code set its handler is rejected (nothing keeps it,
        # as in temporalio): ask once the dynamic query handler, set just before, answers.
        for _ in range(500):
            try:
                await handle.query("ready")
                break
            except WorkflowQueryFailedError:
                await asyncio.sleep(0.01)
        assert await handle.execute_update("grow", 3) == "grow with [3]"
        await handle.signal("end")
        assert await handle.result() == [[True, True], [["first"], ["x", 1], ["y", 2], ["end"]]]
        assert await handle.query("anything") == "ANYTHING"
    await env.shutdown()


@workflow.defn
class NoQueryYet:
    @workflow.run
    async def run(self) -> None:
        await workflow.wait_condition(lambda: False)


async def test_a_query_or_update_without_handler_fails_and_names_the_ones_there_are() -> None:
    env = await WorkflowEnvironment.start_time_skipping()
    async with Worker(env.client, task_queue="q", workflows=[NoQueryYet]):
        handle = await env.client.start_workflow(NoQueryYet.run, id="nq", task_queue="q")
        with pytest.raises(WorkflowQueryFailedError, match=r"Query handler for 'missing' expected but not found, known queries: \[\]"):
            await handle.query("missing")
        with pytest.raises(WorkflowUpdateFailedError):
            await handle.execute_update("missing")
        await handle.terminate()
    await env.shutdown()


def test_a_dynamic_handler_must_take_a_name_and_raw_values() -> None:
    with pytest.raises(DefinitionError, match=r"dynamic signal handler .* must take \(name: str, args: Sequence\[RawValue\]\)"):

        @workflow.defn
        class Wrong:
            @workflow.run
            async def run(self) -> None:
                pass

            @workflow.signal(dynamic=True)
            def any_signal(self, value: int) -> None:
                pass

    with pytest.raises(DefinitionError, match="both a name and dynamic=True"):
        workflow.signal(name="x", dynamic=True)(lambda self: None)


def test_the_dynamic_method_cannot_be_sent_to_by_reference() -> None:
    from engine._runtime.foreign import handler_name

    with pytest.raises(DefinitionError, match="dynamic signal handler: send the signal by its name"):
        handler_name(Dynamic.any_signal, "signal")
