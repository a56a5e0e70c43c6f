"""A user's own load-test target written with temporalio, for tests/engine/test_loadtest_temporal.py
(the worker processes import it with --module tests.engine.load_temporal_app)."""

from __future__ import annotations

from datetime import timedelta

from temporalio import activity, workflow


@activity.defn
async def shout(text: str) -> str:
    return text.upper()


@workflow.defn(name="ShoutLoad")
class ShoutLoad:
    @workflow.run
    async def run(self, text: str, number: int) -> str:
        loud = await workflow.execute_activity(shout, text, start_to_close_timeout=timedelta(seconds=30))
        return f"{loud} {number}"
