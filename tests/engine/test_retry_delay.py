"""RetryPolicy's delay stays capped however many attempts an activity has made."""

from __future__ import annotations

from datetime import timedelta

from engine.common import RetryPolicy


def test_retry_delay_stays_capped_after_a_thousand_attempts() -> None:
    # An activity retried for ever reached attempt ~1,030 under time skipping, and the delay's
    # float power overflowed: an OverflowError inside the engine's timer loop, on every tick.
    policy = RetryPolicy(initial_interval=timedelta(seconds=1))
    assert policy.delay_before_attempt(5000) == timedelta(seconds=100)
    assert RetryPolicy(maximum_interval=timedelta(minutes=5)).delay_before_attempt(10**6) == timedelta(minutes=5)
