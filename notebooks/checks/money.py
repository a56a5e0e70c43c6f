"""Lesson 02 (money transfer): the retry policy the bank asks for."""

from __future__ import annotations

from typing import Any

from kernel_ext.exercises import Check, exercise

TRANSFER = {"source": "alice", "target": "bob", "amount": 100}
ASKED = {"initialInterval": 0.1, "backoffCoefficient": 3.0, "maximumInterval": 1.0, "maximumAttempts": 5}
NAMES = {"initialInterval": "initial_interval", "backoffCoefficient": "backoff_coefficient",
         "maximumInterval": "maximum_interval", "maximumAttempts": "maximum_attempts"}


def _number(value: Any) -> float:
    """'0.100s' or '1s' or 3.0 or 5 as a number."""
    return float(str(value).rstrip("s") or 0)


@exercise(
    "the retry policy the bank asks for",
    concept="retry policies: initial interval, backoff, maximum interval, maximum attempts",
    hint="A RetryPolicy has a field for each of the bank's rules: initial_interval and maximum_interval "
    "(timedeltas), backoff_coefficient (the factor between delays), maximum_attempts.",
)
async def polite_retries(c: Check) -> None:
    run = await c.run("PoliteTransfer", TRANSFER, task_queue="money-transfer", workflow_id="polite-transfer", timeout=10)
    c.require_completed(run, "the transfer completed, though the bank was down twice")
    deposits = [e for e in run.events("ActivityTaskScheduled") if (e.attributes.get("activityType") or {}).get("name") == "deposit"]
    policy = dict(deposits[0].attributes.get("retryPolicy") or {}) if deposits else {}
    wrong = [
        f"{NAMES[key]} is {_number(policy.get(key)):g}, the bank asks {asked:g}"
        for key, asked in ASKED.items()
        if abs(_number(policy.get(key)) - asked) > 1e-6
    ]
    c.expect(
        not wrong,
        "the history records the bank's policy for the deposit (0.1 s, x3, at most 1 s apart, 5 attempts)",
        "the deposit's recorded retry policy differs: " + "; ".join(wrong),
    )
    tries = len(run.attempts_of("deposit"))
    c.expect(tries == 3, "the deposit took 3 attempts", f"the deposit took {tries} attempts, expected 3")
