"""Workflows written with temporalio's imports, for the replay debugger's tests against
histories a real Temporal server recorded (ours, from the dev server, and public ones)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from temporalio import activity, workflow

MINUTE = timedelta(minutes=1)


@activity.defn
async def count_letters(word: str) -> int:
    return len(word)


@workflow.defn
class LetterCount:
    """Counts the letters of words one activity at a time; a signal adds a word."""

    def __init__(self) -> None:
        self.extra: list[str] = []

    @workflow.signal
    def add(self, word: str) -> None:
        self.extra.append(word)  # ADD

    @workflow.run
    async def run(self, words: list[str]) -> int:
        total = 0
        for word in words:
            total += await workflow.execute_activity(count_letters, word, start_to_close_timeout=MINUTE)  # COUNT
        await workflow.wait_condition(lambda: bool(self.extra))  # WAIT_EXTRA
        await workflow.sleep(timedelta(seconds=1))
        for word in self.extra:
            total += await workflow.execute_activity(count_letters, word, start_to_close_timeout=MINUTE)
        return total  # TOTAL


# Shaped after the public histories of ../shared/histories (their types, activities and
# inputs), written here: the code that produced them is not part of this project.
@workflow.defn(name="SayHelloWorkflow")
class SayHello:
    @workflow.run
    async def run(self, params: dict[str, Any]) -> str:
        if params.get("should_cause_nondeterminism"):
            await workflow.sleep(timedelta(milliseconds=1))  # EXTRA_TIMER
        return await workflow.execute_activity("say_hello", params["name"], start_to_close_timeout=MINUTE)  # SAY_HELLO


@workflow.defn(name="http")
class HttpGet:
    @workflow.run
    async def run(self) -> str:
        page = await workflow.execute_activity("httpGet", "https://temporal.io", start_to_close_timeout=MINUTE)  # HTTP_GET
        return page


@workflow.defn
class WaitConditionTrueWorkflow:
    """tests/histories/fixture_workflows.py's workflow of this name (its history was recorded
    on the dev server), on its own: that module imports names the engine does not map."""

    def __init__(self) -> None:
        self.ready = True

    @workflow.run
    async def run(self, name: str) -> str:
        await workflow.wait_condition(lambda: self.ready, timeout=timedelta(seconds=30))  # READY
        await workflow.sleep(timedelta(milliseconds=100))  # NAP
        return f"ready: {name}"
