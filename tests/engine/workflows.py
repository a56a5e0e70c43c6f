"""Workflows and activities shared by the engine tests."""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass
from datetime import timedelta

from engine import activity, workflow
from engine.common import RetryPolicy
from engine.errors import ApplicationError

RUNS: Counter[str] = Counter()


@dataclass
class Transfer:
    source: str
    target: str
    amount: int
    reference: str | None = None


@activity.defn
async def withdraw(t: Transfer) -> str:
    RUNS["withdraw"] += 1
    return f"withdrew {t.amount} from {t.source}"


@activity.defn
def deposit(t: Transfer) -> str:
    RUNS["deposit"] += 1
    if activity.info().attempt <= 2:
        raise ConnectionError(f"bank {t.target} unavailable (attempt {activity.info().attempt})")
    return f"deposited {t.amount} into {t.target}"


MONEY_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1), backoff_coefficient=2.0, maximum_interval=timedelta(minutes=1), maximum_attempts=500
)


@workflow.defn
class MoneyTransfer:
    @workflow.run
    async def run(self, t: Transfer) -> list[str]:
        opts = dict(start_to_close_timeout=timedelta(minutes=1), retry_policy=MONEY_RETRY)
        w = await workflow.execute_activity(withdraw, t, **opts)
        d = await workflow.execute_activity(deposit, t, **opts)
        return [w, d]


@activity.defn
async def echo(value: str) -> str:
    RUNS["echo"] += 1
    return value


@activity.defn
async def refuse(reason: str) -> str:
    raise ApplicationError(f"refused: {reason}", type="Refused", non_retryable=True)


@workflow.defn
class Sleeper:
    @workflow.run
    async def run(self, days: int) -> str:
        start = workflow.now()
        await workflow.sleep(timedelta(days=days))
        await asyncio.sleep(60)
        return f"{(workflow.now() - start).total_seconds():.0f}"


@workflow.defn
class Parallel:
    @workflow.run
    async def run(self, words: list[str]) -> list[str]:
        return list(
            await asyncio.gather(
                *(workflow.execute_activity(echo, w, start_to_close_timeout=timedelta(seconds=5)) for w in words)
            )
        )


@workflow.defn
class Refusing:
    @workflow.run
    async def run(self) -> str:
        return await workflow.execute_activity(refuse, "no", start_to_close_timeout=timedelta(seconds=5))
