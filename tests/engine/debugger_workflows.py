"""Workflows whose replay traces the debugger tests read line by line.

Line numbers matter to the tests: they look lines up by their text (``line_of``), so edit
freely, but keep each marked text unique in this file.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from datetime import timedelta

from engine import activity, workflow
from engine.common import RetryPolicy
from engine.errors import ActivityError, ApplicationError

T = timedelta(seconds=10)
ONCE = RetryPolicy(maximum_attempts=1)


@activity.defn
async def add_one(n: int) -> int:
    return n + 1


@activity.defn
async def shout(text: str) -> str:
    return text.upper()


@dataclass
class Basket:
    items: list[str] = field(default_factory=list)


@workflow.defn
class Counting:
    """A loop: three activities one after another."""

    def __init__(self) -> None:
        self.total = 0

    @workflow.run
    async def run(self, rounds: int) -> int:
        for i in range(rounds):  # LOOP
            self.total = await workflow.execute_activity(add_one, self.total, start_to_close_timeout=T)  # CALL
        return self.total  # DONE


@workflow.defn
class Approval:
    """Waits for a signal; its handler sets the attribute the condition reads."""

    def __init__(self) -> None:
        self.approved_by: str | None = None
        self.basket = Basket()

    @workflow.signal
    def approve(self, who: str) -> None:
        self.approved_by = who  # HANDLER
        self.basket.items.append(who)

    @workflow.run
    async def run(self) -> str:
        await workflow.wait_condition(lambda: self.approved_by is not None)  # WAIT
        return await workflow.execute_activity(shout, self.approved_by or "", start_to_close_timeout=T)  # SHOUT


@workflow.defn
class ApprovalWithoutHandler:
    """Approval with its signal handler removed (a code change): the signal finds no handler."""

    def __init__(self) -> None:
        self.approved_by: str | None = None

    @workflow.run
    async def run(self) -> str:
        await workflow.wait_condition(lambda: self.approved_by is not None)  # WAIT2
        return await workflow.execute_activity(shout, self.approved_by or "", start_to_close_timeout=T)


@workflow.defn
class Child:
    @workflow.run
    async def run(self, name: str) -> str:
        return await workflow.execute_activity(shout, name, start_to_close_timeout=T)  # CHILD


@workflow.defn
class Parent:
    @workflow.run
    async def run(self) -> str:
        greeting = await workflow.execute_child_workflow(Child.run, "ada", id="child-of-parent")  # SPAWN
        return f"parent got {greeting}"  # PARENT_DONE


@workflow.defn
class Race:
    """A timer races a signal through wait_condition with a timeout."""

    def __init__(self) -> None:
        self.paid = False

    @workflow.signal
    def pay(self) -> None:
        self.paid = True

    @workflow.run
    async def run(self) -> str:
        try:
            await workflow.wait_condition(lambda: self.paid, timeout=timedelta(hours=1))  # RACE
            outcome = "paid"
        except asyncio.TimeoutError:
            outcome = "expired"  # EXPIRED
        return outcome


@workflow.defn(name="Counting")
class CountingChangedActivity:
    """Counting with another activity in the loop (a code change without workflow.patched)."""

    def __init__(self) -> None:
        self.total = 0

    @workflow.run
    async def run(self, rounds: int) -> int:
        for i in range(rounds):
            if i == 1:
                await workflow.execute_activity(shout, "changed", start_to_close_timeout=T)  # CHANGED_ACTIVITY
            self.total = await workflow.execute_activity(add_one, self.total, start_to_close_timeout=T)
        return self.total


@workflow.defn(name="Race")
class RaceChangedTimer:
    """Race with a sleep before the wait (a timer the history does not have)."""

    def __init__(self) -> None:
        self.paid = False

    @workflow.signal
    def pay(self) -> None:
        self.paid = True

    @workflow.run
    async def run(self) -> str:
        await workflow.sleep(timedelta(minutes=5))  # CHANGED_TIMER
        try:
            await workflow.wait_condition(lambda: self.paid, timeout=timedelta(hours=1))  # SECOND_TIMER
            return "paid"
        except asyncio.TimeoutError:
            return "expired"


@workflow.defn(name="Approval")
class ApprovalHandlerRemoved:
    """Approval without its signal handler: the signal recorded in history goes unhandled."""

    def __init__(self) -> None:
        self.approved_by: str | None = None

    @workflow.run
    async def run(self) -> str:
        await workflow.wait_condition(lambda: self.approved_by is not None)  # NO_HANDLER_WAIT
        return await workflow.execute_activity(shout, self.approved_by or "", start_to_close_timeout=T)


class Loud:
    """A value whose repr misbehaves: the trace must not call it unguarded."""

    def __repr__(self) -> str:
        raise RuntimeError("repr exploded")


class Huge:
    def __repr__(self) -> str:
        return "h" * 100_000


class Clocky:
    """A repr that reads the clock: the sandbox forbids it in workflow code."""

    def __repr__(self) -> str:
        return f"Clocky at {time.time()}"


@workflow.defn
class Awkward:
    @workflow.run
    async def run(self) -> int:
        loud = Loud()
        huge = Huge()
        clocky = Clocky()
        nested = [[[[[1]]]]]
        me: list[object] = []
        me.append(me)
        await workflow.execute_activity(add_one, 1, start_to_close_timeout=T)
        return len(nested) + len(me) + (loud is not None) + (huge is not None) + (clocky is not None)  # AWKWARD_END


def line_of(marker: str) -> int:
    """The line number of the line ending with ``# marker`` in this file."""
    with open(__file__) as f:
        for number, text in enumerate(f, start=1):
            if text.rstrip().endswith(f"# {marker}"):
                return number
    raise LookupError(marker)


@activity.defn
async def flaky(n: int) -> int:
    raise ApplicationError("busy" if n < 3 else "gone", non_retryable=n >= 3)


@workflow.defn
class Storm:
    """Retries an activity itself with a delay that never grows, then gives up."""

    @workflow.run
    async def run(self) -> int:
        attempt = 0
        delay = timedelta(seconds=1)
        while True:
            attempt += 1
            try:
                return await workflow.execute_activity(flaky, attempt, start_to_close_timeout=T, retry_policy=ONCE)
            except ActivityError as err:
                gone = "gone" in str(err.cause)
                if gone or attempt >= 10:
                    break
                await workflow.sleep(delay)
                delay = delay * 1
        return -attempt
