"""The workload of throughput.py: three sequential activities that return at once.

In a module of its own, as Temporal recommends for workflow code: the sandbox (the default
workflow runner) runs a fresh copy of the defining module's definitions for every workflow
instance, so this keeps that copy to what the workflow needs rather than the whole script.
"""

from __future__ import annotations

from datetime import timedelta

from engine import activity, workflow


@activity.defn
async def reserve(order: str) -> str:
    return f"reserved:{order}"


@activity.defn
async def charge(reservation: str) -> str:
    return f"charged:{reservation}"


@activity.defn
async def ship(receipt: str) -> str:
    return f"shipped:{receipt}"


@workflow.defn
class ThreeSteps:
    @workflow.run
    async def run(self, order: str) -> str:
        timeout = timedelta(seconds=30)
        a = await workflow.execute_activity(reserve, order, start_to_close_timeout=timeout)
        b = await workflow.execute_activity(charge, a, start_to_close_timeout=timeout)
        return await workflow.execute_activity(ship, b, start_to_close_timeout=timeout)
